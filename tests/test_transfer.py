"""Unpaired domain transfer: training lowers the loss, the model applies, errors are clear."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from puppet.cli import app
from puppet.config import load_config
from puppet.errors import PuppetError
from puppet.paper.transfer import apply_transfer, load_folder, train_transfer
from puppet.utils import write_image
from tests.conftest import ROOT

runner = CliRunner()


def _folder(path, seed, n=3):
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        write_image(path / f"{i}.png", rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
    return path


def _cfg(steps=4):
    return load_config(ROOT / "configs" / "tiny.yaml", ["train.vgg_weights=random", f"train.steps={steps}"],
                       loss_preset="transfer")


def test_load_folder_crops_and_resizes(tmp_path):
    imgs, paths = load_folder(_folder(tmp_path / "a", 0), 32)
    assert imgs.shape == (3, 32, 32, 3) and len(paths) == 3


def test_train_and_apply(tmp_path):
    a, b = _folder(tmp_path / "a", 0), _folder(tmp_path / "b", 1)
    cfg = _cfg(steps=30)
    cfg.train.sample_every = 1
    cfg.train.lr = 1e-3
    res = train_transfer(a, b, tmp_path / "run", cfg)
    assert res.step == 30
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert set(lines[-1]) >= {"cx", "cx_s"}
    total = [x["cx"] + x["cx_s"] for x in lines]
    assert np.mean(total[-5:]) < np.mean(total[:5])  # training lowers the loss
    out = apply_transfer(tmp_path / "run", np.zeros((60, 80, 3), np.uint8))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_errors(tmp_path, tiny_run):
    with pytest.raises(PuppetError, match="folder not found"):
        load_folder(tmp_path / "missing", 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PuppetError, match="no images"):
        load_folder(tmp_path / "empty", 32)
    with pytest.raises(PuppetError, match="not a domain-transfer model"):
        apply_transfer(tiny_run, np.zeros((32, 32, 3), np.uint8))


def test_cli(tmp_path):
    a, b = _folder(tmp_path / "a", 0), _folder(tmp_path / "b", 1)
    run = tmp_path / "run"
    res = runner.invoke(app, ["train-transfer", "--source", str(a), "--target", str(b), "--out", str(run),
                              "--size", "32", "--steps", "2", "--config", str(ROOT / "configs" / "tiny.yaml"),
                              "--set", "train.vgg_weights=random"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["transfer", str(a / "0.png"), "--model", str(run), "--out", str(tmp_path / "o.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o.png").is_file() and (tmp_path / "o_strip.png").is_file()


def test_transfer_model_is_not_a_puppet(tmp_path, media):
    from puppet.data.checkpoint import load_checkpoint
    from puppet.render.animate import animate
    from tests.conftest import MEDIA

    a, b = _folder(tmp_path / "a", 0), _folder(tmp_path / "b", 1)
    cfg = _cfg(steps=1)
    train_transfer(a, b, tmp_path / "run", cfg)
    assert load_checkpoint(tmp_path / "run")["config"]["loss"]["parts_weight"] == 0.0  # no clip landmarks
    with pytest.raises(PuppetError, match="domain-transfer model"):
        animate(MEDIA / "drivers" / "smile_man_short.mp4", tmp_path / "run", tmp_path / "o.mp4")


def test_ctrl_c_in_train_transfer_saves_and_prints_the_resume_command(tmp_path):
    from puppet.data.checkpoint import load_checkpoint
    from tests.conftest import interrupt_after_checkpoint

    a, b = _folder(tmp_path / "a", 0), _folder(tmp_path / "b", 1)
    run = tmp_path / "run"
    code, out, err = interrupt_after_checkpoint(
        ["train-transfer", "--source", a, "--target", b, "--out", run, "--size", 32, "--steps", 100000,
         "--set", "train.vgg_weights=random", "--set", "train.ckpt_every=2", "--set", "model.widths=[8, 8, 8]"], run)
    assert code == 130, out + err
    assert "Traceback" not in err and f"puppet train-transfer --source {a} --target {b} --out {run} --resume" in err
    assert 0 < load_checkpoint(run)["step"] < 100000
