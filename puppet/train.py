"""Training a per-target puppet: edge map -> target frame, with the configured losses.

``train(target_video, run_dir, cfg)`` extracts (or reuses) the target's data,
holds out the end of the clip for validation, and runs the shared loop of
:mod:`puppet.trainer`. A run folder holds::

    config.yaml        the resolved config
    data/              the extraction (see puppet.dataset)
    checkpoint.pt      latest checkpoint (atomic; model, optimizer, step, config, meta)
    samples/           step_NNNNNN.png grids (edge map | generated | real) on held-out frames
    metrics.jsonl      one JSON line per sample step: losses and held-out PSNR / L1

Ctrl-C (or the time limit) saves a checkpoint at the last finished step;
``resume=True`` continues from it with the same data order as an
uninterrupted run (the batch of step k depends only on the seed and k).

With ``data.crop_mode: auto`` (the default) the run starts with two trials,
``crop_probe/fixed`` and ``crop_probe/smooth``, of ``data.crop_probe_steps`` steps
each; the one that renders the held-out end better becomes the run's first
steps and the run goes on from it. ``crop_choice.json`` records the choice.
A run interrupted in its trials goes on with them: a finished trial is kept as it
is (``trial.json``), the stopped one resumes from its own checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from puppet.config import Config
from puppet.dataset import Extraction, extract, split
from puppet.drive import model_inputs
from puppet.edges import part_mask
from puppet.errors import PuppetError
from puppet.losses.objective import term_used
from puppet.meta import TargetMeta
from puppet.metrics import psnr
from puppet.retarget import expression_amplitude, expression_range, neutral_index, pose_range
from puppet.sampling import balance_weights, expression_features
from puppet.tensors import to_tensor_edges, to_tensor_images, to_uint8_images
from puppet.trainer import (StepCallback, Task, TrainResult, device_for, init_distributed, open_run, optimise,
                            sample_grid, torchrun_world, write_samples)
from puppet.utils import atomic_path
from puppet.video import probe

log = logging.getLogger("puppet")


def target_meta(data: Extraction, video: Path) -> TargetMeta:
    """What rendering needs from the target: neutral landmarks and frames, crop, fps, motion ranges."""
    from puppet.video import read_frames

    k = neutral_index(data.landmarks)
    src_index = data.manifest["kept"][k]
    boxes = data.manifest["crop_boxes"]
    box = boxes[0] if len(boxes) == 1 else boxes[k]
    full = None
    for i, frame in enumerate(read_frames(video, src_index + 1)):
        if i == src_index:
            full = np.ascontiguousarray(frame)
    neutral = data.landmarks[k]
    return TargetMeta(
        source=str(video), fps=float(data.manifest["fps"]), size=data.size,
        neutral_landmarks=neutral.copy(), neutral_crop=data.frames[k].copy(), crop_box=[float(v) for v in box],
        line_width=int(data.manifest["settings"]["line_width"]), neutral_index=int(k),
        neutral_source_frame=int(src_index), pose_range=dataclasses.asdict(pose_range(data.landmarks, neutral)),
        expression_range=expression_range(data.landmarks, neutral),
        expression_amplitude=expression_amplitude(data.landmarks, neutral), neutral_frame=full)


def clip_inputs(data: Extraction, meta: dict, cfg: Config) -> np.ndarray:
    """The generator's input for every frame of the clip, (K, C, S, S) uint8: the cached edge maps,
    with ``model.ramps`` their distance ramps, with ``model.mouth`` the mouth's opening, and with
    ``model.reference`` the neutral frame warped to each frame's landmarks (as rendering draws them)."""
    reference = None
    if cfg.model.reference:
        from puppet.warp import Warper

        k = int(meta["neutral_index"])
        reference = Warper(data.frames[k], data.landmarks[k])
    return model_inputs(data.edges, data.landmarks, reference, cfg.model.ramps, cfg.model.mouth)


def gpu_hint(cfg: Config, device: torch.device) -> str | None:
    """A line for a user training the CPU-sized default (128^2, default widths) on a GPU, else None."""
    from puppet.config import DataConfig, ModelConfig

    if device.type != "cuda" or cfg.data.size != DataConfig().size or cfg.model.widths != ModelConfig().widths:
        return None
    return ("training the CPU-sized default model (128^2) on a GPU; the repository's configs/gpu.yaml "
            "(--config) trains a 256^2 model measured for one: 28.7 dB held out on glasses_man after 5 minutes "
            "on an H200 (README, 'On a GPU')")


def train(target: str | Path, run_dir: str | Path, cfg: Config, resume: bool = False,
          on_step: StepCallback | None = None, on_extract=None) -> TrainResult:
    """Train (or resume) a puppet model for ``target`` in ``run_dir``; returns when done or time is up."""
    run_dir, target = Path(run_dir), Path(target)
    probe(target, audio=False)  # a bad input fails here, before the run folder is created
    if cfg.data.crop_mode == "auto":
        return _train_choosing_crop(target, run_dir, cfg, resume, on_step, on_extract)
    return _train(target, run_dir, cfg, resume, on_step, on_extract)


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


def _train_choosing_crop(target: Path, run_dir: Path, cfg: Config, resume: bool, on_step, on_extract) -> TrainResult:
    """``data.crop_mode`` auto: train the first ``data.crop_probe_steps`` steps once with the fixed crop
    and once with the one that follows the head, keep the trial whose held-out PSNR is higher as the
    run's first steps and go on from it. The trials' training time counts against ``train.max_minutes``."""
    from puppet.checkpoint import CHECKPOINT_NAME, load_checkpoint
    from puppet.config import config_from_dict

    ckpt = run_dir / CHECKPOINT_NAME
    trials = run_dir / "crop_probe"
    if resume and ckpt.is_file():  # chosen before the interruption
        chosen = config_from_dict(load_checkpoint(ckpt)["config"]).data.crop_mode
        return _train(target, run_dir, _with_crop(cfg, chosen), True, on_step, on_extract)
    if cfg.data.val_fraction == 0:
        log.info("no held-out frames to choose the crop by (data.val_fraction 0): the fixed crop")
        return _train(target, run_dir, _with_crop(cfg, "fixed"), resume, on_step, on_extract)
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
        mode, spent = _crop_trials(target, trials, cfg, choice_path, on_step, on_extract)
    for name in ("data", "samples", "metrics.jsonl", CHECKPOINT_NAME):  # the checkpoint last: it marks the move done
        src, dst = trials / mode / name, run_dir / name
        if src.exists():
            if dst.is_dir():  # left by a move that was interrupted
                shutil.rmtree(dst)
            src.replace(dst)
    shutil.rmtree(trials)
    return _train(target, run_dir, _with_crop(cfg, mode), True, on_step, on_extract, spent=spent)


def _with_crop(cfg: Config, mode: str, **train) -> Config:
    """``cfg`` with ``data.crop_mode`` set to ``mode`` and the ``train`` settings given replaced."""
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, crop_mode=mode),
                               train=dataclasses.replace(cfg.train, **train))


def _crop_trials(target: Path, trials: Path, cfg: Config, choice_path: Path, on_step,
                 on_extract) -> tuple[str, float]:
    """Train (or go on with) crop_mode auto's two trials in ``trials``/fixed and /smooth; write the choice
    to ``choice_path``; return (the better trial's crop mode, seconds the trials took)."""
    from puppet.checkpoint import CHECKPOINT_NAME

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
            res = _train(target, trials / mode, _with_crop(cfg, mode, **trial), again, on_step, on_extract)
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


def _train(target: Path, run_dir: Path, cfg: Config, resume: bool, on_step, on_extract,
           spent: float = 0.0) -> TrainResult:
    dist = init_distributed(cfg)
    state = open_run(run_dir, cfg, resume, write=dist.main)
    if dist.main:  # rank 0 extracts; the others then reuse its cached extraction
        data = extract(target, run_dir / "data", cfg.data, progress=on_extract)
    dist.barrier()
    if not dist.main:
        data = extract(target, run_dir / "data", cfg.data)
    train_idx, val_idx = split(len(data), cfg.data.val_fraction)
    if len(train_idx) < 1:
        raise PuppetError(f"{target}: too few frames with a face to train on ({len(data)})")
    log.info("%d training frames, %d held out", len(train_idx), len(val_idx))
    device = device_for(cfg, dist)
    hint = gpu_hint(cfg, device) if dist.main and not resume else None
    if hint:
        log.info(hint)
    meta = state["meta"] if state else target_meta(data, target).to_dict()

    weights = None
    if cfg.train.balance > 0:
        weights = balance_weights(expression_features(data.landmarks[train_idx]), cfg.train.balance)
    inputs = clip_inputs(data, meta, cfg)
    task = frames_task("puppet", run_dir, cfg, device, data, inputs, train_idx, val_idx, meta, weights)
    try:
        res = optimise(run_dir, cfg, device, task, state, on_step, dist, spent)
        dist.barrier()  # tear the group down only once rank 0 has written its last checkpoint
        return res
    finally:
        dist.close()


def frames_task(kind: str, run_dir: Path, cfg: Config, device: torch.device, data: Extraction, inputs: np.ndarray,
                train_idx: np.ndarray, val_idx: np.ndarray, meta: dict, weights: np.ndarray | None,
                resident: bool | None = None) -> Task:
    """The trainer's task for frames of one or more clips: draw (input, frame, part mask) batches from
    ``train_idx`` and score ``val_idx`` (about 32 of them) with a sample grid of four of them.

    ``data`` holds the frames, landmarks and edge maps (F, ...) of every clip; ``inputs`` (F, C, S, S)
    uint8 the generator's input per frame; ``weights`` (len(train_idx),) sampling probabilities or None.
    ``resident``: keep the whole clip (frames, inputs, part masks) on ``device`` as float tensors instead
    of copying each batch there (default: on a GPU).
    """
    sample_idx = val_idx if len(val_idx) else train_idx
    sample_idx = sample_idx[np.linspace(0, len(sample_idx) - 1, min(4, len(sample_idx))).round().astype(int)]
    if resident is None:
        resident = device.type == "cuda"
    masks = None  # (F, 1, S, S) uint8: eyes with brows, lips (only when a term uses them)
    if term_used(cfg.loss, "parts"):
        masks = np.stack([part_mask(lm, data.size) for lm in data.landmarks])[:, None]

    def rows(array: np.ndarray | None, to_tensor):
        """indices -> those rows of a clip array as float tensors on the device (None without an array).
        A resident array is converted once and indexed on the device; otherwise each batch is copied."""
        if array is None:
            return lambda indices: None
        if resident:
            whole = to_tensor(array, device)
            return lambda indices: whole[torch.from_numpy(indices).to(device)]
        return lambda indices: to_tensor(array[indices], device)

    input_rows, frame_rows, mask_rows = (rows(inputs, to_tensor_edges), rows(data.frames, to_tensor_images),
                                         rows(masks, to_tensor_edges))

    def load(indices: np.ndarray):
        return input_rows(indices), frame_rows(indices)

    def batch(idx: np.ndarray):
        frames = train_idx[idx]
        return (*load(frames), None, [int(i) for i in frames], mask_rows(frames))

    def evaluate(model: nn.Module, at_step: int, terms: dict) -> dict:
        ev = val_idx[:: max(1, len(val_idx) // 32)] if len(val_idx) else sample_idx
        e, r = load(ev)
        g = model(e).float()
        val = {"val_psnr": float(psnr(g, r).mean()), "val_l1": float((g - r).abs().mean())}
        g = model(load(sample_idx)[0])
        grid = sample_grid(data.edges[sample_idx], to_uint8_images(g), data.frames[sample_idx],
                           scale=2 if data.size <= 128 else 1)
        write_samples(run_dir, at_step, grid, {"step": at_step, **terms, **val})
        return val

    return Task(kind, len(train_idx), batch, evaluate, meta, weights=weights)
