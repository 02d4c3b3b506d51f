"""The training loop shared by puppet, single-image and domain-transfer training.

A task (see :class:`Task`) says how to draw a batch, how to evaluate and what
to record; the trainer owns everything else: the run folder, Ctrl-C and time
limits, checkpoints, sample grids, metrics and torchrun/DDP.

The batch of step k is drawn from a generator seeded with (seed, k) only, so
a resumed run sees exactly the batches an uninterrupted one would. Under
torchrun each of the W processes takes its slice of a global batch of
W x train.batch_size (DistributedDataParallel averages the gradients), so W
processes give the same steps as one process with W times the batch; only
rank 0 writes checkpoints and samples.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from puppet.config import Config, config_from_dict, save_config
from puppet.data.checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from puppet.errors import PuppetError
from puppet.face.edges import edges_to_rgb
from puppet.face.inputs import InputLayout
from puppet.losses.objective import Objective, feature_layers
from puppet.models import build_model
from puppet.tensors import autocast_for
from puppet.utils import ensure_dir, pick_device, tile, write_image

log = logging.getLogger("puppet")
StepCallback = Callable[[int, int, dict], None]  # (step, total_steps, {term: value})
# sampled indices -> (input, target, source or None, target keys or None, part mask or None) on the
# device; the keys name fixed target images whose loss features may be cached
BatchFn = Callable[[np.ndarray], tuple]
EvalFn = Callable[[nn.Module, int, dict], dict]  # (model, step, last terms) -> metrics; writes samples
# (sampled indices, the step's generator, input, target, part mask, part=(rank, world)) -> (warped?, (input, target,
# mask))
AugmentFn = Callable[..., tuple]


class TrainingInterrupted(Exception):
    """Raised after Ctrl-C, once the checkpoint of the last finished step is saved."""

    def __init__(self, step: int, checkpoint: Path):
        super().__init__(f"interrupted at step {step}; checkpoint saved to {checkpoint}")
        self.step, self.checkpoint = step, checkpoint


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    seconds: float
    stopped_by_time: bool = False
    val: dict = field(default_factory=dict)


@dataclass
class Task:
    """What one kind of training contributes to the shared loop.

    Attributes:
        kind: checkpoint kind ("puppet", "single-image", "transfer", "prior").
        n_items: how many training items ``batch`` draws from.
        batch: indices -> (input, target, source or None, target keys or None, part mask or None).
        evaluate: (model, step, last terms) -> held-out metrics; writes samples.
        meta: what rendering needs, stored in the checkpoint (plain dict).
        in_channels: generator input channels; None for the face input of ``layout``
            (:func:`puppet.models.build_model`).
        weights: (n_items,) sampling probabilities, or None for uniform draws.
        layout: the input channels the model takes (a resumed run keeps its checkpoint's).
        augment: warps a share of a batch's pairs alike (:mod:`puppet.train.augment`), or None.
    """

    kind: str
    n_items: int
    batch: BatchFn
    evaluate: EvalFn
    meta: dict
    in_channels: int | None = None
    weights: np.ndarray | None = None
    layout: InputLayout = field(default_factory=InputLayout)
    augment: AugmentFn | None = None


class StopFlag:
    """First Ctrl-C asks the loop to stop after the current step; a second one aborts at once."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stopping after this step (Ctrl-C again to abort without saving)")

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


@dataclass
class Dist:
    """This process's place in a torchrun job (world 1 = plain single-process training)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def any(self, flags: list[bool], device: torch.device) -> list[bool]:
        """Each flag OR-ed over all processes (every rank must stop at the same step, or the others hang)."""
        if self.world == 1:
            return flags
        t = torch.tensor(flags, dtype=torch.float32, device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def torchrun_world() -> int:
    """How many processes the torchrun job this process belongs to has (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(cfg: Config) -> Dist:
    """Join the torchrun job described by the environment (WORLD_SIZE, RANK, LOCAL_RANK), if any."""
    world = torchrun_world()
    if world <= 1:
        return Dist()
    if not torch.distributed.is_initialized():
        use_nccl = torch.cuda.is_available() and cfg.train.device != "cpu"
        torch.distributed.init_process_group("nccl" if use_nccl else "gloo")
    return Dist(torch.distributed.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def device_for(cfg: Config, dist: Dist) -> torch.device:
    device = pick_device(cfg.train.device)
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    return device


def open_run(run_dir: Path, cfg: Config, resume: bool, write: bool = True) -> dict | None:
    """Check the run folder against ``resume``; return the checkpoint to resume from (or None).

    Call it once the inputs are known to be good: it creates the folder and writes config.yaml.
    """
    ckpt_path = run_dir / CHECKPOINT_NAME
    state = None
    if resume:
        if not ckpt_path.is_file():
            raise PuppetError(f"{run_dir}: nothing to resume (no {CHECKPOINT_NAME}); run without --resume")
        state = load_checkpoint(ckpt_path)
        saved = config_from_dict(state["config"])
        if saved.model != cfg.model or saved.data != cfg.data:
            raise PuppetError(f"{ckpt_path}: model/data settings differ from the checkpoint's; "
                              "resume with the run's own config (drop the conflicting options)")
    elif ckpt_path.exists():
        raise PuppetError(f"{run_dir}: already holds a checkpoint; pass --resume to continue it, "
                          "or choose another --out")
    elif cfg.train.init:
        resolve_checkpoint(cfg.train.init)  # a missing --init model fails before the run folder exists
    if write:
        ensure_dir(run_dir)
        save_config(cfg, run_dir / "config.yaml")
    return state


def write_samples(run_dir: Path, step: int, grid: np.ndarray, record: dict) -> None:
    """Save a sample grid as samples/step_NNNNNN.png and samples/latest.png; append metrics.jsonl."""
    write_image(run_dir / "samples" / f"step_{step:06d}.png", grid)
    write_image(run_dir / "samples" / "latest.png", grid)
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    log.debug("step %d: %s", step, " ".join(f"{k} {v:.3f}" for k, v in record.items() if k != "step"))


def sample_grid(edges: np.ndarray, generated: np.ndarray, real: np.ndarray, scale: int = 1) -> np.ndarray:
    """Rows of (edge map | generated | real) as one RGB uint8 image."""
    return tile([[edges_to_rgb(e), g, r] for e, g, r in zip(edges, generated, real)], scale=scale)


def draw_indices(cfg: Config, step: int, n_items: int, dist: Dist,
                 weights: np.ndarray | None = None) -> tuple[np.ndarray, torch.Generator]:
    """This process's item indices for ``step`` and the step's generator (also used for CX sampling).

    ``weights`` (n_items,): sampling probabilities; None draws uniformly.
    """
    g = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + step)
    bs = cfg.train.batch_size
    if weights is None:
        idx = torch.randint(n_items, (bs * dist.world,), generator=g).numpy()
    else:
        idx = torch.multinomial(torch.as_tensor(weights, dtype=torch.float64), bs * dist.world,
                                replacement=True, generator=g).numpy()
    return idx[dist.rank * bs:(dist.rank + 1) * bs], g


@dataclass
class Parts:
    """What one training step updates: the generator, its objective and its optimizer."""

    net: nn.Module  # the generator
    model: nn.Module  # the generator, DDP-wrapped under torchrun
    objective: Objective
    opt: torch.optim.Optimizer


def _build(cfg: Config, device: torch.device, task: Task, dist: Dist, state: dict | None) -> Parts:
    torch.manual_seed(cfg.train.seed)
    net = build_model(cfg, task.in_channels, task.layout).to(device)
    model = net
    if dist.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    layers = feature_layers(cfg.loss)
    features = None
    if layers:
        from puppet.losses.features import build_features

        features = build_features(layers, weights=cfg.train.vgg_weights).to(device)
    task.meta["vgg"] = features.weights_name if features is not None else "none"
    opt = torch.optim.Adam(net.parameters(), lr=cfg.train.lr)
    if state:
        net.load_state_dict(state["model"])
        if state.get("optimizer"):
            opt.load_state_dict(state["optimizer"])
    elif cfg.train.init:
        _load_init(net, cfg, task)
    # Targets keyed by an integer never change (frames of the target clip): compute their features once.
    return Parts(net, model, Objective(cfg.loss, features, cache=True), opt)


def _load_init(net: nn.Module, cfg: Config, task: Task) -> None:
    """Copy the weights of ``train.init`` (a model of the same kind, or a prior; same architecture) into
    ``net``; PuppetError if it does not fit."""
    init = load_checkpoint(cfg.train.init)
    other_kind = init.get("kind", "puppet")
    if other_kind not in (task.kind, "prior"):
        raise PuppetError(f"{cfg.train.init}: --init needs a {task.kind} model or a prior, this is a {other_kind} "
                          "checkpoint")
    other = config_from_dict(init["config"])
    if (other.model, other.data.size, init["layout"]) != (cfg.model, cfg.data.size, task.layout.to_dict()):
        raise PuppetError(f"{cfg.train.init}: --init model has another architecture (model settings or "
                          "data.size differ); train with the same config as that model")
    net.load_state_dict(init["model"])
    log.info("initialised from %s (step %d)", cfg.train.init, init["step"])


def lr_factor(progress: float, decay_fraction: float) -> float:
    """Learning-rate multiplier at ``progress`` in [0, 1] of a run: 1, then linear to 0 over the last
    ``decay_fraction`` (a short run ends on a low rate, which settles the weights it has)."""
    if decay_fraction <= 0:
        return 1.0
    return float(min(1.0, max(0.0, (1.0 - progress) / decay_fraction)))


def train_step(p: Parts, cfg: Config, device: torch.device, task: Task, step: int, dist: Dist,
               augment: bool = True) -> dict:
    """One optimiser step on the batch of ``step``; returns the weighted loss terms (floats).
    ``augment``: let the task warp a share of the batch (:attr:`Task.augment`)."""
    idx, g = draw_indices(cfg, step, task.n_items, dist, task.weights)
    e, r, src, keys, mask = task.batch(idx)
    if augment and task.augment is not None:
        warped, (e, r, mask) = task.augment(idx, g, e, r, mask, part=(dist.rank, dist.world))
        if warped:
            keys = None  # a warped frame is a new image: its loss features cannot come from the cache
    with autocast_for(device, cfg.train.amp):
        loss, terms = p.objective(p.model(e), r, step, source=src, generator=g, target_keys=keys, mask=mask)
    p.opt.zero_grad(set_to_none=True)
    loss.backward()
    p.opt.step()
    return terms


def optimise(run_dir: Path, cfg: Config, device: torch.device, task: Task, state: dict | None,
             on_step: StepCallback | None = None, dist: Dist | None = None, spent: float = 0.0) -> TrainResult:
    """Train ``task`` until ``train.steps``, the time limit, or Ctrl-C (which saves, then raises).
    ``spent``: seconds of the time limit already used (by ``crop_mode`` auto's trials)."""
    dist = dist or Dist()
    p = _build(cfg, device, task, dist, state)
    ckpt_path = run_dir / CHECKPOINT_NAME
    step = int(state["step"]) if state else 0
    if state:
        log.info("resumed from %s at step %d", ckpt_path, step)

    def save(at_step: int) -> None:
        if dist.main:
            save_checkpoint(ckpt_path, model=p.net, step=at_step, config=cfg.to_dict(), meta=task.meta,
                            optimizer=p.opt, kind=task.kind, layout=task.layout.to_dict())

    def run_eval(at_step: int, terms: dict) -> dict:
        if not dist.main:
            return {}
        p.net.eval()
        try:
            with torch.no_grad(), autocast_for(device, cfg.train.amp):
                return task.evaluate(p.net, at_step, terms)
        finally:
            p.net.train()

    t0 = time.perf_counter() - spent
    deadline = t0 + cfg.train.max_minutes * 60 if cfg.train.max_minutes > 0 else None
    terms: dict = {}
    val: dict = {}
    evaluated_at = -1
    stopped_by_time = False
    p.model.train()
    with StopFlag() as stop:
        while step < cfg.train.steps:
            progress = step / cfg.train.steps
            if deadline is not None and dist.world == 1:  # DDP ranks must agree: steps only there
                progress = max(progress, (time.perf_counter() - t0) / (deadline - t0))
            if cfg.train.lr_decay_fraction > 0:
                for group in p.opt.param_groups:
                    group["lr"] = cfg.train.lr * lr_factor(progress, cfg.train.lr_decay_fraction)
            # Warped pairs teach poses beyond the clip's but cost sharpness; the decaying end of the run
            # sees the real pairs alone, which sharpens (docs/experiments.md, "Warping training pairs").
            terms = train_step(p, cfg, device, task, step, dist,
                               augment=progress < 1 - cfg.train.lr_decay_fraction)
            step += 1
            if on_step:
                on_step(step, cfg.train.steps, terms)
            if step % cfg.train.sample_every == 0 or step == cfg.train.steps:
                val, evaluated_at = run_eval(step, terms), step
            if step % cfg.train.ckpt_every == 0:
                save(step)
            interrupted, out_of_time = dist.any(
                [stop.requested, deadline is not None and time.perf_counter() > deadline], device)
            if interrupted:
                save(step)
                raise TrainingInterrupted(step, ckpt_path)
            if out_of_time:
                stopped_by_time = True
                log.info("time limit of %.1f min reached at step %d", cfg.train.max_minutes, step)
                break
    if evaluated_at != step:
        val = run_eval(step, terms)
    save(step)
    return TrainResult(run_dir, step, time.perf_counter() - t0, stopped_by_time, val)
