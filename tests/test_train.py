"""Training: files written, resume continues exactly, objective terms, errors."""

import dataclasses
import json

import pytest
import torch

from puppet.checkpoint import load_checkpoint
from puppet.config import load_config
from puppet.errors import PuppetError
from puppet.train import gpu_hint, train
from tests.conftest import MEDIA, ROOT, make_video, need_shared

import numpy as np


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


def test_resume_matches_uninterrupted(tmp_path, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    full = train(video, tmp_path / "full", _cfg("train.steps=4"))
    train(video, tmp_path / "part", _cfg("train.steps=2"))
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


def _metrics(path, scores):
    path.write_text("".join(json.dumps({"step": 100 * (i + 1), "l1": 0.1, "val_psnr": v}) + "\n"
                            for i, v in enumerate(scores)))
    return path


def test_trial_score_averages_the_second_half(tmp_path):
    from puppet.train import trial_score

    assert trial_score(_metrics(tmp_path / "a.jsonl", [10.0, 30.0, 20.0, 21.0, 22.0])) == pytest.approx(21.0)
    assert trial_score(_metrics(tmp_path / "b.jsonl", [17.5])) == pytest.approx(17.5)
    (tmp_path / "c.jsonl").write_text(json.dumps({"step": 2, "l1": 0.1}) + "\n")
    with pytest.raises(PuppetError, match="no held-out score"):
        trial_score(tmp_path / "c.jsonl")


@pytest.mark.parametrize("winner", ["fixed", "smooth"])
def test_auto_crop_tries_both_and_goes_on_from_the_better(tmp_path, media, monkeypatch, winner):
    """crop_mode auto: two trials of crop_probe_steps, the better one's steps kept as the run's first, the
    choice recorded; the run goes on to train.steps from it and resumes with the crop it chose."""
    from puppet import train as train_module

    video = need_shared(MEDIA / "targets" / "singer_woman.mp4")
    tried = []

    def score(metrics):
        mode = metrics.parent.name
        tried.append((mode, [json.loads(x)["step"] for x in metrics.read_text().splitlines()]))
        return 20.0 + (mode == winner)

    monkeypatch.setattr(train_module, "trial_score", score)
    run = tmp_path / "auto"
    cfg = _cfg("train.steps=6", "data.crop_mode=auto", "data.crop_probe_steps=4")
    res = train(video, run, cfg)
    assert tried == [("fixed", [2, 4]), ("smooth", [2, 4])]
    assert res.step == 6 and not (run / "crop_probe").exists()
    choice = json.loads((run / "crop_choice.json").read_text())
    assert choice["crop_mode"] == winner and choice["trial_steps"] == 4
    assert [step for step, _ in choice["evaluations"]["smooth"]] == [2, 4]
    assert choice["held_out_psnr"] == {"fixed": 20.0 + (winner == "fixed"), "smooth": 20.0 + (winner == "smooth")}
    st = load_checkpoint(run)
    assert st["step"] == 6 and st["config"]["data"]["crop_mode"] == winner
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [2, 4, 6]
    boxes = json.loads((run / "data" / "manifest.json").read_text())["crop_boxes"]
    assert (len(boxes) == 1) == (winner == "fixed")
    with pytest.raises(PuppetError, match="already holds a checkpoint"):
        train(video, run, cfg)
    tried.clear()
    res = train(video, run, _cfg("train.steps=8", "data.crop_mode=auto", "data.crop_probe_steps=4"), resume=True)
    assert res.step == 8 and tried == []  # no new trials: the checkpoint's crop
    assert load_checkpoint(run)["config"]["data"]["crop_mode"] == winner
    with pytest.raises(PuppetError, match="nothing to resume"):
        train(video, tmp_path / "empty", cfg, resume=True)


def test_auto_crop_without_held_out_frames_keeps_the_fixed_crop(tmp_path, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    res = train(video, tmp_path / "run", _cfg("train.steps=2", "data.crop_mode=auto", "data.val_fraction=0"))
    assert load_checkpoint(res.run_dir)["config"]["data"]["crop_mode"] == "fixed"
    assert not (tmp_path / "run" / "crop_choice.json").exists() and not (tmp_path / "run" / "crop_probe").exists()


def test_auto_crop_interrupted_in_its_trials_tries_both_again(tmp_path, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    run = tmp_path / "auto"
    (run / "crop_probe" / "fixed").mkdir(parents=True)
    (run / "crop_probe" / "fixed" / "metrics.jsonl").write_text("half-written")
    res = train(video, run, _cfg("train.steps=2", "data.crop_mode=auto", "data.crop_probe_steps=2"), resume=True)
    assert res.step == 2 and not (run / "crop_probe").exists()
    assert json.loads((run / "crop_choice.json").read_text())["crop_mode"] in ("fixed", "smooth")


def test_held_out_scores_count_a_step_evaluated_twice_once(tmp_path):
    from puppet.train import held_out_scores

    # a run resumed from a checkpoint older than its last evaluation writes that step again
    path = _metrics(tmp_path / "m.jsonl", [10.0, 20.0])
    path.write_text(path.read_text() + json.dumps({"step": 200, "val_psnr": 21.0}) + "\n")
    assert held_out_scores(path) == [(100, 10.0), (200, 21.0)]


@pytest.mark.parametrize("stopped_at", [0, 2])
def test_auto_crop_interrupted_in_its_trials_resumes_them(tmp_path, media, monkeypatch, stopped_at):
    """Ctrl-C in the smooth trial (before its first step, or after step 2 of 4): --resume keeps the
    finished fixed trial as it was, goes on with the smooth one from its checkpoint (or afresh without
    one) and with the run's own settings, then chooses and trains on as usual."""
    from puppet import train as train_module
    from puppet.trainer import TrainingInterrupted

    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    run = tmp_path / "auto"
    cfg = _cfg("train.steps=6", "data.crop_mode=auto", "data.crop_probe_steps=4", "train.lr=0.0003")
    calls, inner = [], train_module._train

    def interrupted(target, run_dir, cfg, resume, *args, **kwargs):
        calls.append((run_dir.name, resume))
        if run_dir.name == "smooth":
            if stopped_at:
                inner(target, run_dir, dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=stopped_at)),
                      resume, *args, **kwargs)
            raise TrainingInterrupted(stopped_at, run_dir / "checkpoint.pt")
        return inner(target, run_dir, cfg, resume, *args, **kwargs)

    monkeypatch.setattr(train_module, "_train", interrupted)
    with pytest.raises(TrainingInterrupted):
        train(video, run, cfg)
    assert calls == [("fixed", False), ("smooth", False)]
    assert load_config(run / "config.yaml").train.lr == 0.0003  # what `puppet train --resume` reads
    fixed_metrics = (run / "crop_probe" / "fixed" / "metrics.jsonl").read_text()

    def spy(target, run_dir, cfg, resume, *args, **kwargs):
        calls.append((run_dir.name, resume))
        return inner(target, run_dir, cfg, resume, *args, **kwargs)

    calls.clear()
    monkeypatch.setattr(train_module, "_train", spy)
    res = train(video, run, cfg, resume=True)
    assert calls == [("smooth", stopped_at > 0), ("auto", True)] and res.step == 6
    choice = json.loads((run / "crop_choice.json").read_text())
    assert [s for s, _ in choice["evaluations"]["fixed"]] == [2, 4] == [s for s, _ in choice["evaluations"]["smooth"]]
    assert choice["trial_seconds"] > 0 and not (run / "crop_probe").exists()
    if choice["crop_mode"] == "fixed":  # the trial moved into the run, its evaluations as first written
        assert (run / "metrics.jsonl").read_text().startswith(fixed_metrics)


def test_auto_crop_interrupted_after_choosing_moves_the_chosen_trial(tmp_path, media, monkeypatch):
    """Stopped between the choice and the move of the chosen trial into the run: --resume trains no trial
    again and goes on from the recorded choice."""
    from puppet import train as train_module
    from puppet.trainer import TrainingInterrupted

    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    run = tmp_path / "auto"
    cfg = _cfg("train.steps=6", "data.crop_mode=auto", "data.crop_probe_steps=4")
    choose = train_module._crop_trials

    def then_stop(*args, **kwargs):
        choose(*args, **kwargs)
        raise TrainingInterrupted(4, run / "crop_probe")

    monkeypatch.setattr(train_module, "_crop_trials", then_stop)
    with pytest.raises(TrainingInterrupted):
        train(video, run, cfg)
    mode = json.loads((run / "crop_choice.json").read_text())["crop_mode"]
    monkeypatch.setattr(train_module, "_crop_trials", lambda *a, **k: pytest.fail("trials run again"))
    res = train(video, run, cfg, resume=True)
    assert res.step == 6 and load_checkpoint(run)["config"]["data"]["crop_mode"] == mode
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [2, 4, 6]
    assert not (run / "crop_probe").exists()


def test_time_spent_before_counts_against_the_limit(tmp_path, media):
    """optimise's ``spent`` (crop_mode auto's trials) moves the deadline: a run whose minutes are used up
    stops after its first step."""
    from puppet.train import _train

    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    res = _train(video, tmp_path / "late", _cfg("train.steps=50", "train.max_minutes=1"), False, None, None,
                 spent=60.0)
    assert res.step == 1 and res.stopped_by_time and res.seconds >= 60.0


def test_no_face_target_is_an_error(tmp_path):
    video = make_video(tmp_path / "black.mp4", [np.zeros((64, 64, 3), np.uint8)] * 6)
    with pytest.raises(PuppetError, match="no face found"):
        train(video, tmp_path / "run", _cfg())
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_ctrl_c_saves_and_resume_continues(tmp_path, media):
    import os
    import signal
    import subprocess
    import sys
    import time

    video = str(need_shared(MEDIA / "targets" / "glasses_man.mp4"))
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "puppet", "train", "--target", video, "--out", str(run), "--config",
           str(ROOT / "configs" / "tiny.yaml"), "--set", "train.vgg_weights=random", "--steps", "100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "--resume" in err and "Traceback" not in err
    step = load_checkpoint(run)["step"]
    assert 0 < step < 100000
    assert not [p for p in os.listdir(run) if ".tmp" in p]
    res = subprocess.run(cmd[:-2] + ["--steps", str(step + 2), "--resume"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert load_checkpoint(run)["step"] == step + 2


def test_lr_factor_known_answers():
    from puppet.trainer import lr_factor

    assert [lr_factor(p, 0.0) for p in (0.0, 0.5, 1.0)] == [1.0, 1.0, 1.0]
    assert [lr_factor(p, 0.2) for p in (0.0, 0.8, 0.9, 1.0)] == pytest.approx([1.0, 1.0, 0.5, 0.0])
    with pytest.raises(PuppetError, match="lr_decay_fraction"):
        _cfg("train.lr_decay_fraction=1.5")


def test_lr_decays_over_the_last_part_and_resumes_exactly(tmp_path, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    extra = ("train.lr_decay_fraction=0.5", "train.lr=0.001")
    full = train(video, tmp_path / "full", _cfg("train.steps=4", *extra))
    a = load_checkpoint(full.run_dir)
    # the last step (index 3 of 4, progress 0.75) ran at (1 - 0.75) / 0.5 of the rate
    assert a["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0005)
    train(video, tmp_path / "part", _cfg("train.steps=2", *extra))
    # a 2-step run decays over its own last half; resuming to 4 steps follows the 4-step schedule
    b = load_checkpoint(train(video, tmp_path / "part", _cfg("train.steps=4", *extra), resume=True).run_dir)
    assert b["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0005)


def test_init_starts_from_another_model(tmp_path, tiny_run, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    res = train(video, tmp_path / "ft", _cfg("train.steps=1", "train.lr=0", f"train.init={tiny_run}"))
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


def test_reference_model_trains_on_and_renders_the_warped_neutral(tmp_path, media, monkeypatch):
    from puppet import trainer
    from puppet.render import Renderer

    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    drawn = []
    original = trainer.draw_indices

    def spy(cfg, step, n_items, dist, weights=None):
        drawn.append(weights)
        return original(cfg, step, n_items, dist, weights)

    monkeypatch.setattr(trainer, "draw_indices", spy)
    res = train(video, tmp_path / "ref", _cfg("train.steps=2", "model.reference=true", "train.balance=0.5"))
    assert len(drawn) == 2 and drawn[0] is not None
    assert drawn[0].ndim == 1 and len(drawn[0]) >= 10  # one probability per training frame
    assert drawn[0].sum() == pytest.approx(1.0) and drawn[0].min() > 0
    st = load_checkpoint(res.run_dir)
    assert st["model"]["refine.0.block.0.weight"].shape[1] == 6 + 6 + 1 + 3  # edge map, ramps, mouth, reference
    r = Renderer(st, device="cpu")
    x = r.draw(r.meta.neutral_landmarks)
    assert x.shape == (16, 32, 32)
    np.testing.assert_array_equal(x[13:].transpose(1, 2, 0), r.meta.neutral_crop)  # its own landmarks: unwarped
    assert r.generate(x[None]).shape == (1, 32, 32, 3)


def test_ramps_and_mouth_model_trains_and_renders_on_thirteen_channels(tmp_path, media):
    """model.ramps (default 0.25) and model.mouth (default on): the clip's inputs and the renderer's
    carry the distance ramps and the mouth's opening, the model takes 13 channels, its finest module
    the 6 ramps and the mouth and not the lines (model.fine_ramps, the default), or the mouth alone
    (fine_ramps false); with ramps 0, the edge map and the mouth (7); with neither, the edge map (6)."""
    from puppet.edges import distance_ramps, mouth_fill
    from puppet.render import Renderer

    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    res = train(video, tmp_path / "ramps", _cfg("train.steps=2"))  # the default
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
    res = train(video, tmp_path / "coarse", _cfg("train.steps=1", "model.fine_ramps=false"))
    st = load_checkpoint(res.run_dir)
    assert st["model"]["refine.0.block.0.weight"].shape[1] == 13
    assert st["model"]["refine.3.block.0.weight"].shape[1] == 1 + 8
    np.testing.assert_array_equal(Renderer(st, device="cpu").draw(lm), x)  # the same input either way
    res = train(video, tmp_path / "lines", _cfg("train.steps=1", "model.ramps=0"))
    st = load_checkpoint(res.run_dir)
    assert st["model"]["refine.0.block.0.weight"].shape[1] == 7
    assert st["model"]["refine.3.block.0.weight"].shape[1] == 1 + 8
    res = train(video, tmp_path / "bare", _cfg("train.steps=1", "model.ramps=0", "model.mouth=false"))
    st = load_checkpoint(res.run_dir)
    assert st["model"]["refine.0.block.0.weight"].shape[1] == 6
    assert st["model"]["refine.3.block.0.weight"].shape[1] == 8


def test_a_resident_clip_gives_the_same_batches(tmp_path, tiny_run):
    """The GPU keeps the clip (frames, inputs, part masks) on the device; its batches equal the copied ones."""
    from puppet.dataset import load_extraction, split
    from puppet.train import frames_task

    cfg = _cfg("loss.parts_weight=2")
    data = load_extraction(tiny_run / "data")
    tr, va = split(len(data), cfg.data.val_fraction)
    cpu = torch.device("cpu")
    tasks = [frames_task("puppet", tmp_path, cfg, cpu, data, data.edges, tr, va, {}, None, resident=r)
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
