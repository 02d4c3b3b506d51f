"""``data.crop_mode: auto``: choose the crop by training the run's first steps with each.

The run starts with two trials, ``crop_probe/fixed`` and ``crop_probe/smooth``, of
``data.crop_probe_steps`` steps each; the one that renders the held-out end better
becomes the run's first steps and the run goes on from it. ``crop_choice.json``
records the choice. A run interrupted in its trials goes on with them: a finished
trial is kept as it is (``trial.json``), the stopped one resumes from its own
checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from puppet.config import Config
from puppet.errors import PuppetError
from puppet.train.loop import TrainResult, open_run, torchrun_world
from puppet.utils import atomic_path

log = logging.getLogger("puppet")
# (target, run_dir, cfg, resume, on_step, on_extract, spent=0.0) -> result: one plain training run
TrainOnce = Callable[..., TrainResult]

CROP_TRIAL_SHARE = 0.1  # of train.max_minutes, at most, for each crop_mode auto trial
TRIAL_DONE = "trial.json"  # written in a trial's folder when it has finished: its steps and seconds


def held_out_scores(metrics: Path) -> list[tuple[int, float]]:
    """(step, held-out PSNR) of each evaluation in a run's metrics.jsonl, by step; a step evaluated
    twice (a run resumed from a checkpoint older than its last evaluation) counts once, as last written."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    by_step = {int(r["step"]): float(r["val_psnr"]) for r in rows if "val_psnr" in r}
    return sorted(by_step.items())


def trial_score(metrics: Path) -> float:
    """Mean held-out PSNR of a trial's evaluations in its second half (metrics.jsonl lines; the last one
    if it has no second half): one evaluation of ~32 frames moves by up to a dB from one to the next."""
    rows = held_out_scores(metrics)
    if not rows:
        raise PuppetError(f"{metrics}: no held-out score (data.val_fraction is 0?)")
    last = rows[-1][0]
    late = [v for step, v in rows if step > last / 2] or [rows[-1][1]]
    return float(np.mean(late))


def train_choosing_crop(target: Path, run_dir: Path, cfg: Config, resume: bool, on_step, on_extract,
                        train_once: TrainOnce) -> TrainResult:
    """``data.crop_mode`` auto: train the first ``data.crop_probe_steps`` steps once with the fixed crop
    and once with the one that follows the head, keep the trial whose held-out PSNR is higher as the
    run's first steps and go on from it. The trials' training time counts against ``train.max_minutes``."""
    from puppet.config import config_from_dict
    from puppet.data.checkpoint import CHECKPOINT_NAME, load_checkpoint

    ckpt = run_dir / CHECKPOINT_NAME
    trials = run_dir / "crop_probe"
    if resume and ckpt.is_file():  # chosen before the interruption
        chosen = config_from_dict(load_checkpoint(ckpt)["config"]).data.crop_mode
        return train_once(target, run_dir, _with_crop(cfg, chosen), True, on_step, on_extract)
    if cfg.data.val_fraction == 0:
        log.info("no held-out frames to choose the crop by (data.val_fraction 0): the fixed crop")
        return train_once(target, run_dir, _with_crop(cfg, "fixed"), resume, on_step, on_extract)
    if torchrun_world() > 1:
        raise PuppetError("data.crop_mode auto trains its trials in one process; under torchrun set "
                          "data.crop_mode to fixed or smooth")
    if not (resume and trials.exists()):
        # what any run refuses (a checkpoint in the way, nothing to resume); config.yaml is written now
        # so that `puppet train --resume` during the trials goes on with this run's settings
        open_run(run_dir, cfg, resume)
    choice_path = run_dir / "crop_choice.json"
    if not resume:  # an earlier run's unfinished trials and choice: this one starts afresh
        shutil.rmtree(trials, ignore_errors=True)
        choice_path.unlink(missing_ok=True)
    if resume and trials.exists() and choice_path.is_file():  # chosen, then interrupted while moving it
        choice = json.loads(choice_path.read_text())
        mode, spent = choice["crop_mode"], float(choice["trial_seconds"])
    else:
        mode, spent = _crop_trials(target, trials, cfg, choice_path, on_step, on_extract, train_once)
    for name in ("data", "samples", "metrics.jsonl", CHECKPOINT_NAME):  # the checkpoint last: it marks the move done
        src, dst = trials / mode / name, run_dir / name
        if src.exists():
            if dst.is_dir():  # left by a move that was interrupted
                shutil.rmtree(dst)
            src.replace(dst)
    shutil.rmtree(trials)
    return train_once(target, run_dir, _with_crop(cfg, mode), True, on_step, on_extract, spent=spent)


def _with_crop(cfg: Config, mode: str, **train) -> Config:
    """``cfg`` with ``data.crop_mode`` set to ``mode`` and the ``train`` settings given replaced."""
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, crop_mode=mode),
                               train=dataclasses.replace(cfg.train, **train))


def _crop_trials(target: Path, trials: Path, cfg: Config, choice_path: Path, on_step, on_extract,
                 train_once: TrainOnce) -> tuple[str, float]:
    """Train (or go on with) crop_mode auto's two trials in ``trials``/fixed and /smooth; write the choice
    to ``choice_path``; return (the better trial's crop mode, seconds the trials took)."""
    from puppet.data.checkpoint import CHECKPOINT_NAME

    limit = cfg.train.max_minutes * CROP_TRIAL_SHARE if cfg.train.max_minutes > 0 else 0.0
    trial = {"steps": min(cfg.data.crop_probe_steps, cfg.train.steps), "max_minutes": limit,
             "lr_decay_fraction": 0.0}  # the first steps of a run, whose rate has not begun to fall
    scores, evaluations, spent = {}, {}, 0.0
    for mode in ("fixed", "smooth"):
        done = trials / mode / TRIAL_DONE
        if done.is_file():  # finished before an interruption: neither trained again nor its time lost
            spent += float(json.loads(done.read_text())["seconds"])
        else:
            again = (trials / mode / CHECKPOINT_NAME).is_file()  # interrupted in this trial
            if not again and (trials / mode).exists():
                shutil.rmtree(trials / mode)  # interrupted before its first checkpoint
            log.info("choosing the crop: %d steps with the %s crop%s", trial["steps"], mode,
                     ", resumed" if again else "")
            res = train_once(target, trials / mode, _with_crop(cfg, mode, **trial), again, on_step, on_extract)
            spent += res.seconds
            with atomic_path(done) as tmp:
                tmp.write_text(json.dumps({"step": res.step, "seconds": res.seconds}))
        scores[mode] = trial_score(trials / mode / "metrics.jsonl")
        evaluations[mode] = held_out_scores(trials / mode / "metrics.jsonl")
    mode = max(scores, key=scores.get)  # a tie keeps the fixed crop
    log.info("crop: %s (held-out PSNR, mean over each trial's second half: %s)", mode,
             ", ".join(f"{m} {scores[m]:.2f} dB after {evaluations[m][-1][0]} steps" for m in scores))
    with atomic_path(choice_path) as tmp:
        tmp.write_text(json.dumps({"crop_mode": mode, "trial_steps": trial["steps"], "held_out_psnr": scores,
                                   "evaluations": evaluations, "trial_seconds": spent}, indent=1))
    return mode, spent
