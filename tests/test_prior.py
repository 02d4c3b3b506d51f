"""A prior on several clips: concatenation, equal shares per clip, training, export, fine-tuning from it."""

import numpy as np
import pytest
import torch

from puppet.config import load_config
from puppet.data.checkpoint import load_checkpoint
from puppet.data.dataset import Extraction
from puppet.errors import PuppetError
from puppet.train.prior import clip_weights, concat_clips, export_prior, pretrain
from puppet.train.target import train
from tests.conftest import MEDIA, ROOT, need_shared


def _cfg(*extra):
    return load_config(ROOT / "configs" / "tiny.yaml", ["train.vgg_weights=random", *extra], loss_preset="prior")


def _extraction(n, size=8, value=0):
    return Extraction({"settings": {"size": size}, "source": f"clip{value}"},
                      np.full((n, size, size, 3), value, np.uint8), np.full((n, 478, 2), value, np.float32),
                      np.full((n, 6, size, size), value, np.uint8))


def test_concat_clips_keeps_order_and_refuses_mixed_sizes():
    both = concat_clips([_extraction(2, value=1), _extraction(3, value=2)])
    assert len(both) == 5 and both.size == 8 and both.manifest["clips"] == ["clip1", "clip2"]
    assert both.frames[:2].max() == 1 and both.frames[2:].min() == 2
    assert both.landmarks.shape == (5, 478, 2) and both.edges.shape == (5, 6, 8, 8)
    with pytest.raises(ValueError, match="different sizes"):
        concat_clips([_extraction(2), _extraction(2, size=16)])


def test_clip_weights_give_every_clip_the_same_share():
    w = clip_weights([np.full(10, 0.1), np.array([3.0, 1.0])])
    assert w.shape == (12,) and w.sum() == pytest.approx(1.0)
    assert w[:10].sum() == pytest.approx(0.5) and w[10:].sum() == pytest.approx(0.5)
    np.testing.assert_allclose(w[10:], [0.375, 0.125])  # within a clip, its own weights' proportions


def test_prior_loss_is_the_pixel_terms_alone():
    from puppet.losses.objective import feature_layers

    cfg = load_config(loss_preset="prior")
    assert feature_layers(cfg.loss) == []  # no VGG pass
    assert (cfg.loss.l1_weight, cfg.loss.parts_weight, cfg.loss.detail_weight) == (10.0, 2.0, 3.0)
    assert cfg.model == load_config().model and cfg.data.size == load_config().data.size  # --init fits


def test_pretrain_export_and_fine_tune(tmp_path, media):
    clips = [need_shared(MEDIA / "drivers" / n) for n in ("smile_man_short.mp4", "mouth_man.mp4")]
    res = pretrain(clips, tmp_path / "prior", _cfg("train.steps=3"))
    state = load_checkpoint(res.run_dir)
    assert state["kind"] == "prior" and state["step"] == 3
    assert state["meta"]["clips"] == [str(c) for c in clips] and state["meta"]["frames"] == [24, 24]
    assert sorted(p.name for p in (tmp_path / "prior" / "data").iterdir()) == ["00_smile_man_short", "01_mouth_man"]
    assert "val_psnr" in res.val and (tmp_path / "prior" / "samples" / "latest.png").is_file()

    slim = export_prior(res.run_dir, tmp_path / "prior.pt")
    small = load_checkpoint(slim)
    assert small["optimizer"] is None and small["kind"] == "prior"
    assert all(v.dtype == torch.float16 for v in small["model"].values() if v.is_floating_point())
    assert slim.stat().st_size < (tmp_path / "prior" / "checkpoint.pt").stat().st_size / 2

    # a puppet starts from the half-precision prior: with lr 0 its weights are the prior's, in float32
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    ft = train(video, tmp_path / "ft", load_config(ROOT / "configs" / "tiny.yaml", [
        "train.vgg_weights=random", "train.steps=1", "train.lr=0", f"train.init={slim}"]))
    tuned = load_checkpoint(ft.run_dir)
    assert tuned["kind"] == "puppet"
    for k, v in small["model"].items():
        assert tuned["model"][k].dtype == torch.float32
        torch.testing.assert_close(tuned["model"][k], v.float())


def test_prior_errors(tmp_path, media, tiny_run, monkeypatch):
    clip = need_shared(MEDIA / "drivers" / "smile_man_short.mp4")
    with monkeypatch.context() as m:  # under torchrun: refused before any process group is joined
        m.setenv("WORLD_SIZE", "2")
        with pytest.raises(PuppetError, match="runs in one process"):
            pretrain([clip, clip], tmp_path / "ddp", _cfg())
        assert not torch.distributed.is_initialized() and not (tmp_path / "ddp").exists()
    with pytest.raises(PuppetError, match="at least two clips"):
        pretrain([clip], tmp_path / "one", _cfg())
    with pytest.raises(PuppetError, match="not found|cannot|no such"):
        pretrain([clip, tmp_path / "missing.mp4"], tmp_path / "bad", _cfg())
    assert not (tmp_path / "bad").exists()
    with pytest.raises(PuppetError, match="not a prior"):
        export_prior(tiny_run, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_a_prior_renders_no_one(tmp_path, media):
    from puppet.render.renderer import Renderer

    clips = [need_shared(MEDIA / "drivers" / n) for n in ("smile_man_short.mp4", "mouth_man.mp4")]
    res = pretrain(clips, tmp_path / "prior", _cfg("train.steps=1"))
    with pytest.raises(PuppetError, match="is a prior.*--init"):
        Renderer.from_path(res.run_dir)


def test_pretrain_command_writes_a_prior_and_its_weights(tmp_path, media):
    from typer.testing import CliRunner

    from puppet.cli import app

    clips = [str(need_shared(MEDIA / "drivers" / n)) for n in ("smile_man_short.mp4", "mouth_man.mp4")]
    res = CliRunner().invoke(app, ["pretrain", *clips, "--out", str(tmp_path / "p"), "--config",
                                   str(ROOT / "configs" / "tiny.yaml"), "--steps", "2", "--set",
                                   "train.vgg_weights=random", "--export", str(tmp_path / "p.pt")])
    assert res.exit_code == 0, res.output
    state = load_checkpoint(tmp_path / "p.pt")
    assert state["kind"] == "prior" and state["step"] == 2 and state["config"]["loss"]["cx_weight"] == 0.0
    assert "--init" in res.output
    res = CliRunner().invoke(app, ["pretrain", clips[0], "--out", str(tmp_path / "one")])
    assert res.exit_code == 1 and "at least two clips" in res.output


def test_pretrain_resumes_to_the_uninterrupted_weights(tmp_path, media):
    clips = [need_shared(MEDIA / "drivers" / n) for n in ("smile_man_short.mp4", "mouth_man.mp4")]
    const = "train.lr_decay_fraction=0"  # the same learning rate at each step whatever the run's length
    whole = pretrain(clips, tmp_path / "whole", _cfg("train.steps=4", const))
    pretrain(clips, tmp_path / "part", _cfg("train.steps=2", const))
    resumed = pretrain(clips, tmp_path / "part", _cfg("train.steps=4", const), resume=True)
    assert resumed.step == 4
    a, b = load_checkpoint(whole.run_dir), load_checkpoint(resumed.run_dir)
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k])
