"""data.crop_mode auto: two trials, the better one kept, and every way of interrupting them."""

import dataclasses
import json

import pytest

from puppet.config import load_config
from puppet.data.checkpoint import load_checkpoint
from puppet.errors import PuppetError
from puppet.train.target import train
from tests.conftest import MEDIA, need_shared
from tests.test_train import _cfg


def _metrics(path, scores):
    path.write_text("".join(json.dumps({"step": 100 * (i + 1), "l1": 0.1, "val_psnr": v}) + "\n"
                            for i, v in enumerate(scores)))
    return path


def test_trial_score_averages_the_second_half(tmp_path):
    from puppet.train.crop import trial_score

    assert trial_score(_metrics(tmp_path / "a.jsonl", [10.0, 30.0, 20.0, 21.0, 22.0])) == pytest.approx(21.0)
    assert trial_score(_metrics(tmp_path / "b.jsonl", [17.5])) == pytest.approx(17.5)
    (tmp_path / "c.jsonl").write_text(json.dumps({"step": 2, "l1": 0.1}) + "\n")
    with pytest.raises(PuppetError, match="no held-out score"):
        trial_score(tmp_path / "c.jsonl")


@pytest.mark.slow
@pytest.mark.parametrize("winner", ["fixed", "smooth"])
def test_auto_crop_tries_both_and_goes_on_from_the_better(tmp_path, media, monkeypatch, winner):
    """crop_mode auto: two trials of crop_probe_steps, the better one's steps kept as the run's first, the
    choice recorded; the run goes on to train.steps from it and resumes with the crop it chose."""
    from puppet.train import crop as crop_module

    video = need_shared(MEDIA / "targets" / "singer_woman.mp4")
    tried = []

    def score(metrics):
        mode = metrics.parent.name
        tried.append((mode, [json.loads(x)["step"] for x in metrics.read_text().splitlines()]))
        return 20.0 + (mode == winner)

    monkeypatch.setattr(crop_module, "trial_score", score)
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


@pytest.mark.slow
def test_auto_crop_without_held_out_frames_keeps_the_fixed_crop(tmp_path, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    res = train(video, tmp_path / "run", _cfg("train.steps=2", "data.crop_mode=auto", "data.val_fraction=0"))
    assert load_checkpoint(res.run_dir)["config"]["data"]["crop_mode"] == "fixed"
    assert not (tmp_path / "run" / "crop_choice.json").exists() and not (tmp_path / "run" / "crop_probe").exists()


@pytest.mark.slow
def test_auto_crop_interrupted_in_its_trials_tries_both_again(tmp_path, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    run = tmp_path / "auto"
    (run / "crop_probe" / "fixed").mkdir(parents=True)
    (run / "crop_probe" / "fixed" / "metrics.jsonl").write_text("half-written")
    res = train(video, run, _cfg("train.steps=2", "data.crop_mode=auto", "data.crop_probe_steps=2"), resume=True)
    assert res.step == 2 and not (run / "crop_probe").exists()
    assert json.loads((run / "crop_choice.json").read_text())["crop_mode"] in ("fixed", "smooth")


def test_held_out_scores_count_a_step_evaluated_twice_once(tmp_path):
    from puppet.train.crop import held_out_scores

    # a run resumed from a checkpoint older than its last evaluation writes that step again
    path = _metrics(tmp_path / "m.jsonl", [10.0, 20.0])
    path.write_text(path.read_text() + json.dumps({"step": 200, "val_psnr": 21.0}) + "\n")
    assert held_out_scores(path) == [(100, 10.0), (200, 21.0)]


@pytest.mark.slow
@pytest.mark.parametrize("stopped_at", [0, 2])
def test_auto_crop_interrupted_in_its_trials_resumes_them(tmp_path, media, monkeypatch, stopped_at):
    """Ctrl-C in the smooth trial (before its first step, or after step 2 of 4): --resume keeps the
    finished fixed trial as it was, goes on with the smooth one from its checkpoint (or afresh without
    one) and with the run's own settings, then chooses and trains on as usual."""
    from puppet.train import target as target_module
    from puppet.train.loop import TrainingInterrupted

    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    run = tmp_path / "auto"
    cfg = _cfg("train.steps=6", "data.crop_mode=auto", "data.crop_probe_steps=4", "train.lr=0.0003")
    calls, inner = [], target_module._train

    def interrupted(target, run_dir, cfg, resume, *args, **kwargs):
        calls.append((run_dir.name, resume))
        if run_dir.name == "smooth":
            if stopped_at:
                inner(target, run_dir, dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=stopped_at)),
                      resume, *args, **kwargs)
            raise TrainingInterrupted(stopped_at, run_dir / "checkpoint.pt")
        return inner(target, run_dir, cfg, resume, *args, **kwargs)

    monkeypatch.setattr(target_module, "_train", interrupted)
    with pytest.raises(TrainingInterrupted):
        train(video, run, cfg)
    assert calls == [("fixed", False), ("smooth", False)]
    assert load_config(run / "config.yaml").train.lr == 0.0003  # what `puppet train --resume` reads
    fixed_metrics = (run / "crop_probe" / "fixed" / "metrics.jsonl").read_text()

    def spy(target, run_dir, cfg, resume, *args, **kwargs):
        calls.append((run_dir.name, resume))
        return inner(target, run_dir, cfg, resume, *args, **kwargs)

    calls.clear()
    monkeypatch.setattr(target_module, "_train", spy)
    res = train(video, run, cfg, resume=True)
    assert calls == [("smooth", stopped_at > 0), ("auto", True)] and res.step == 6
    choice = json.loads((run / "crop_choice.json").read_text())
    assert [s for s, _ in choice["evaluations"]["fixed"]] == [2, 4] == [s for s, _ in choice["evaluations"]["smooth"]]
    assert choice["trial_seconds"] > 0 and not (run / "crop_probe").exists()
    if choice["crop_mode"] == "fixed":  # the trial moved into the run, its evaluations as first written
        assert (run / "metrics.jsonl").read_text().startswith(fixed_metrics)


@pytest.mark.slow
def test_auto_crop_interrupted_after_choosing_moves_the_chosen_trial(tmp_path, media, monkeypatch):
    """Stopped between the choice and the move of the chosen trial into the run: --resume trains no trial
    again and goes on from the recorded choice."""
    from puppet.train import crop as crop_module
    from puppet.train.loop import TrainingInterrupted

    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    run = tmp_path / "auto"
    cfg = _cfg("train.steps=6", "data.crop_mode=auto", "data.crop_probe_steps=4")
    choose = crop_module._crop_trials

    def then_stop(*args, **kwargs):
        choose(*args, **kwargs)
        raise TrainingInterrupted(4, run / "crop_probe")

    monkeypatch.setattr(crop_module, "_crop_trials", then_stop)
    with pytest.raises(TrainingInterrupted):
        train(video, run, cfg)
    mode = json.loads((run / "crop_choice.json").read_text())["crop_mode"]
    monkeypatch.setattr(crop_module, "_crop_trials", lambda *a, **k: pytest.fail("trials run again"))
    res = train(video, run, cfg, resume=True)
    assert res.step == 6 and load_checkpoint(run)["config"]["data"]["crop_mode"] == mode
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [2, 4, 6]
    assert not (run / "crop_probe").exists()
