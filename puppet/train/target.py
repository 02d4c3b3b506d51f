"""Training a per-target puppet: edge map -> target frame, with the configured losses.

``train(target_video, run_dir, cfg)`` extracts (or reuses) the target's data,
holds out the end of the clip for validation, and runs the shared loop of
:mod:`puppet.train.loop`. A run folder holds::

    config.yaml        the resolved config
    data/              the extraction (see puppet.data.dataset)
    checkpoint.pt      latest checkpoint (atomic; model, optimizer, step, config, meta)
    samples/           step_NNNNNN.png grids (edge map | generated | real) on held-out frames
    metrics.jsonl      one JSON line per sample step: losses and held-out PSNR / L1

Ctrl-C (or the time limit) saves a checkpoint at the last finished step;
``resume=True`` continues from it with the same data order as an
uninterrupted run (the batch of step k depends only on the seed and k).

With ``data.crop_mode: auto`` (the default) the run's first steps are two short
trials, one per crop, and it goes on from the better one (puppet.train.crop).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from puppet.config import Config
from puppet.data.dataset import Extraction, extract, split, summary
from puppet.data.meta import target_meta
from puppet.data.sampling import balance_weights, expression_features
from puppet.data.video import probe
from puppet.errors import PuppetError
from puppet.face.edges import part_mask
from puppet.face.inputs import InputLayout, model_inputs
from puppet.losses.objective import term_used
from puppet.measure.metrics import psnr
from puppet.tensors import to_tensor_edges, to_tensor_images, to_uint8_images
from puppet.train.augment import augment_batch, face_circles
from puppet.train.loop import (
    StepCallback,
    Task,
    TrainResult,
    device_for,
    init_distributed,
    open_run,
    optimise,
    sample_grid,
    write_samples,
)

log = logging.getLogger("puppet")


def gpu_hint(cfg: Config, device: torch.device) -> str | None:
    """A line for a user training the CPU-sized default (128^2, default widths) on a GPU, else None."""
    from puppet.config import DataConfig, ModelConfig

    if device.type != "cuda" or cfg.data.size != DataConfig().size or cfg.model.widths != ModelConfig().widths:
        return None
    return ("training the CPU-sized default model (128^2) on a GPU; the repository's configs/gpu.yaml "
            "(--config) trains a 256^2 model measured for one: 28.7 dB held out on glasses_man after 5 minutes "
            "on an H200 (docs/results.md, 'On a GPU')")


def train(target: str | Path, run_dir: str | Path, cfg: Config, resume: bool = False,
          on_step: StepCallback | None = None, on_extract=None) -> TrainResult:
    """Train (or resume) a puppet model for ``target`` in ``run_dir``; returns when done or time is up."""
    run_dir, target = Path(run_dir), Path(target)
    probe(target, audio=False)  # a bad input fails here, before the run folder is created
    if cfg.data.crop_mode == "auto":
        from puppet.train.crop import train_choosing_crop

        return train_choosing_crop(target, run_dir, cfg, resume, on_step, on_extract, train_once=_train)
    return _train(target, run_dir, cfg, resume, on_step, on_extract)


def _train(target: Path, run_dir: Path, cfg: Config, resume: bool, on_step, on_extract,
           spent: float = 0.0) -> TrainResult:
    dist = init_distributed(cfg)
    state = open_run(run_dir, cfg, resume, write=dist.main)
    if dist.main:  # rank 0 extracts; the others then reuse its cached extraction
        data = extract(target, run_dir / "data", cfg.data, progress=on_extract)
    dist.barrier()
    if not dist.main:
        data = extract(target, run_dir / "data", cfg.data)
    if dist.main:
        log.info("%s: %s (%s)", target, summary(data.manifest), run_dir / "data" / "report.png")
    train_idx, val_idx = split(len(data), cfg.data.val_fraction, data.manifest.get("segments"))
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
    layout = InputLayout.for_run(state)
    inputs = model_inputs(data.edges, data.landmarks, layout)
    task = frames_task("puppet", run_dir, cfg, device, data, inputs, train_idx, val_idx, meta, weights, layout)
    try:
        res = optimise(run_dir, cfg, device, task, state, on_step, dist, spent)
        dist.barrier()  # tear the group down only once rank 0 has written its last checkpoint
        return res
    finally:
        dist.close()


def frames_task(kind: str, run_dir: Path, cfg: Config, device: torch.device, data: Extraction, inputs: np.ndarray,
                train_idx: np.ndarray, val_idx: np.ndarray, meta: dict, weights: np.ndarray | None,
                layout: InputLayout, resident: bool | None = None) -> Task:
    """The trainer's task for frames of one or more clips: draw (input, frame, part mask) batches from
    ``train_idx`` and score ``val_idx`` (about 32 of them) with a sample grid of four of them.

    ``data`` holds the frames, landmarks and edge maps (F, ...) of every clip; ``inputs`` (F, C, S, S)
    uint8 the generator's input per frame, drawn for ``layout``; ``weights`` (len(train_idx),) sampling
    probabilities or None.
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

    augment = None
    if cfg.train.augment > 0:
        circles = torch.from_numpy(face_circles(data.landmarks))

        def augment(idx: np.ndarray, g: torch.Generator, *images, part: tuple[int, int] = (0, 1)):
            return augment_batch(cfg.train.augment, circles[train_idx[idx]], data.size, g, *images, part=part)

    return Task(kind, len(train_idx), batch, evaluate, meta, weights=weights, layout=layout, augment=augment)
