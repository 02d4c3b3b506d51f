"""Training: files written, resume continues exactly, objective terms, errors."""

import json

import numpy as np
import pytest
import torch

from puppet.config import load_config
from puppet.data.checkpoint import load_checkpoint
from puppet.errors import PuppetError
from puppet.train.target import gpu_hint, train
from tests.conftest import (
    MEDIA,
    ROOT,
    interrupt_after_checkpoint,
    make_video,
    need_shared,
)


def _cfg(*extra):
    return load_config(ROOT / "configs" / "tiny.yaml", ["train.vgg_weights=random", *extra])


def test_tiny_run_writes_everything(tiny_run):
    for name in ("checkpoint.pt", "config.yaml", "metrics.jsonl", "samples/latest.png", "samples/step_000004.png",
                 "data/manifest.json", "data/preview.png"):
        assert (tiny_run / name).is_file(), name
    st = load_checkpoint(tiny_run)
    assert st["step"] == 4
    meta = st["meta"]
    assert meta["neutral_landmarks"].shape == (478, 2)
    assert meta["neutral_frame"].shape == (480, 480, 3)
    assert meta["size"] == 32
    lines = [json.loads(x) for x in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4]
    assert all("val_psnr" in x and "l1" in x for x in lines)
    assert "cx" in lines[-1]  # CX switched on after the 1-step warm-up


def test_resume_matches_uninterrupted(tmp_path, seed_run, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    full = train(video, seed_run(tmp_path / "full"), _cfg("train.steps=4"))
    train(video, seed_run(tmp_path / "part"), _cfg("train.steps=2"))
    with pytest.raises(PuppetError, match="already holds a checkpoint"):
        train(video, tmp_path / "part", _cfg("train.steps=4"))
    res = train(video, tmp_path / "part", _cfg("train.steps=4"), resume=True)
    assert res.step == full.step == 4
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "part")
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k]["exp_avg"], sb[k]["exp_avg"], rtol=1e-5, atol=1e-7)
        assert float(sa[k]["step"]) == float(sb[k]["step"]) == 4


def test_resume_without_checkpoint_and_conflicting_model(tmp_path, tiny_run, media):
    video = MEDIA / "targets" / "glasses_man.mp4"
    with pytest.raises(PuppetError, match="nothing to resume"):
        train(video, tmp_path / "empty", _cfg(), resume=True)
    with pytest.raises(PuppetError, match="differ from the checkpoint"):
        train(video, tiny_run, _cfg("model.widths=[8, 8, 8, 8]"), resume=True)


def test_time_spent_before_counts_against_the_limit(tmp_path, seed_run, media):
    """optimise's ``spent`` (crop_mode auto's trials) moves the deadline: a run whose minutes are used up
    stops after its first step."""
    from puppet.train.target import _train

    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    res = _train(video, seed_run(tmp_path / "late"), _cfg("train.steps=50", "train.max_minutes=1"), False, None, None,
                 spent=60.0)
    assert res.step == 1 and res.stopped_by_time and res.seconds >= 60.0


def test_no_face_target_is_an_error(tmp_path):
    video = make_video(tmp_path / "black.mp4", [np.zeros((64, 64, 3), np.uint8)] * 6)
    with pytest.raises(PuppetError, match="no face found"):
        train(video, tmp_path / "run", _cfg())
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_ctrl_c_saves_and_resume_continues(tmp_path, media):
    import os
    import subprocess
    import sys

    video = str(need_shared(MEDIA / "targets" / "glasses_man.mp4"))
    run = tmp_path / "run"
    args = ["train", "--target", video, "--out", str(run), "--config", str(ROOT / "configs" / "tiny.yaml"),
            "--set", "train.vgg_weights=random", "--steps", "100000"]
    cmd = [sys.executable, "-m", "puppet", *args]
    code, out, err = interrupt_after_checkpoint(args, run)
    assert code == 130, out + err
    assert "--resume" in err and "Traceback" not in err
    step = load_checkpoint(run)["step"]
    assert 0 < step < 100000
    assert not [p for p in os.listdir(run) if ".tmp" in p]
    res = subprocess.run(cmd[:-2] + ["--steps", str(step + 2), "--resume"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert load_checkpoint(run)["step"] == step + 2


def test_lr_factor_known_answers():
    from puppet.train.loop import lr_factor

    assert [lr_factor(p, 0.0) for p in (0.0, 0.5, 1.0)] == [1.0, 1.0, 1.0]
    assert [lr_factor(p, 0.2) for p in (0.0, 0.8, 0.9, 1.0)] == pytest.approx([1.0, 1.0, 0.5, 0.0])
    with pytest.raises(PuppetError, match="lr_decay_fraction"):
        _cfg("train.lr_decay_fraction=1.5")


def test_lr_decays_over_the_last_part_and_resumes_exactly(tmp_path, seed_run, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    extra = ("train.lr_decay_fraction=0.5", "train.lr=0.001")
    full = train(video, seed_run(tmp_path / "full"), _cfg("train.steps=4", *extra))
    a = load_checkpoint(full.run_dir)
    # the last step (index 3 of 4, progress 0.75) ran at (1 - 0.75) / 0.5 of the rate
    assert a["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0005)
    train(video, seed_run(tmp_path / "part"), _cfg("train.steps=2", *extra))
    # a 2-step run decays over its own last half; resuming to 4 steps follows the 4-step schedule
    b = load_checkpoint(train(video, tmp_path / "part", _cfg("train.steps=4", *extra), resume=True).run_dir)
    assert b["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0005)


def test_init_starts_from_another_model(tmp_path, seed_run, tiny_run, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    res = train(video, seed_run(tmp_path / "ft"), _cfg("train.steps=1", "train.lr=0", f"train.init={tiny_run}"))
    a, b = load_checkpoint(tiny_run), load_checkpoint(res.run_dir)
    assert b["step"] == 1 and b["config"]["train"]["init"] == str(tiny_run)
    for k in a["model"]:  # lr 0: the weights are the init model's
        torch.testing.assert_close(a["model"][k], b["model"][k])
    with pytest.raises(PuppetError, match="model not found"):
        train(video, tmp_path / "missing", _cfg(f"train.init={tmp_path / 'nope'}"))
    assert not (tmp_path / "missing").exists()
    with pytest.raises(PuppetError, match="another architecture"):
        train(video, tmp_path / "other", _cfg("model.widths=[8, 8, 8]", f"train.init={tiny_run}"))
    other_kind = dict(a, kind="transfer")  # right architecture, wrong kind of model
    torch.save(other_kind, tmp_path / "transfer.pt")
    with pytest.raises(PuppetError, match="needs a puppet model or a prior, this is a transfer checkpoint"):
        train(video, tmp_path / "kind", _cfg(f"train.init={tmp_path / 'transfer.pt'}"))


def test_model_trains_and_renders_on_thirteen_channels_drawing_frames_by_balance(tmp_path, seed_run, media, monkeypatch):
    """The clip's inputs and the renderer's carry the edge lines, the distance ramps and the mouth's
    opening (13 channels); the finest module takes the 6 ramps and the mouth, not the lines. With
    train.balance the trainer draws frames by one probability per training frame."""
    from puppet.face.edges import distance_ramps, mouth_fill
    from puppet.render.renderer import Renderer
    from puppet.train import loop as trainer

    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    drawn = []
    original = trainer.draw_indices

    def spy(cfg, step, n_items, dist, weights=None):
        drawn.append(weights)
        return original(cfg, step, n_items, dist, weights)

    monkeypatch.setattr(trainer, "draw_indices", spy)
    res = train(video, seed_run(tmp_path / "ramps"), _cfg("train.steps=2", "train.balance=0.5"))
    assert len(drawn) == 2 and drawn[0] is not None
    assert drawn[0].ndim == 1 and len(drawn[0]) >= 10  # one probability per training frame
    assert drawn[0].sum() == pytest.approx(1.0) and drawn[0].min() > 0
    st = load_checkpoint(res.run_dir)
    assert st["model"]["refine.0.block.0.weight"].shape[1] == 13
    assert st["model"]["refine.3.block.0.weight"].shape[1] == 7 + 8  # ramps, mouth + the previous module's 8
    r = Renderer(st, device="cpu")
    lm = r.meta.neutral_landmarks
    x = r.draw(lm)
    assert x.shape == (13, 32, 32)
    np.testing.assert_array_equal(x[6:12], distance_ramps(lm, 32, 0.25 * 32))
    np.testing.assert_array_equal(x[12:], mouth_fill(lm, 32))
    assert r.generate(x[None]).shape == (1, 32, 32, 3)
    # a model of an earlier layout (version 2: the edge map alone, lines in every module) renders from
    # its checkpoint with the input it was trained on
    from puppet.face.inputs import InputLayout
    from puppet.models import build_model

    old = {"lineless_levels": 0, "ramps": 0.0, "fine_ramps": False, "mouth": False}
    cfg = _cfg()
    st["model"] = build_model(cfg, layout=InputLayout(**old)).state_dict()
    st["layout"] = old
    r = Renderer(st, device="cpu")
    assert r.draw(lm).shape == (6, 32, 32)
    np.testing.assert_array_equal(r.draw(lm), x[:6])
    assert r.generate(r.draw(lm)[None]).shape == (1, 32, 32, 3)


def test_a_resident_clip_gives_the_same_batches(tmp_path, tiny_run):
    """The GPU keeps the clip (frames, inputs, part masks) on the device; its batches equal the copied ones."""
    from puppet.data.dataset import load_extraction, split
    from puppet.face.inputs import InputLayout
    from puppet.train.target import frames_task

    cfg = _cfg("loss.parts_weight=2")
    data = load_extraction(tiny_run / "data")
    tr, va = split(len(data), cfg.data.val_fraction)
    cpu = torch.device("cpu")
    tasks = [frames_task("puppet", tmp_path, cfg, cpu, data, data.edges, tr, va, {}, None,
                         InputLayout(ramps=0.0, mouth=False), resident=r)
             for r in (False, True)]
    idx = np.array([0, len(tr) - 1, 3])
    copied, resident = (t.batch(idx) for t in tasks)
    for a, b in zip(copied, resident):
        if isinstance(a, torch.Tensor):
            assert a.shape == b.shape and torch.equal(a, b)
        else:
            assert a == b
    assert copied[4].shape == (3, 1, data.size, data.size) and copied[4].max() == 1  # the part mask is there


def test_gpu_hint_only_for_the_cpu_sized_default_on_cuda():
    default = load_config()
    assert "configs/gpu.yaml" in gpu_hint(default, torch.device("cuda"))
    assert gpu_hint(default, torch.device("cpu")) is None
    assert gpu_hint(load_config(ROOT / "configs" / "gpu.yaml"), torch.device("cuda")) is None
    assert gpu_hint(load_config(overrides=["data.size=160"]), torch.device("cuda")) is None
