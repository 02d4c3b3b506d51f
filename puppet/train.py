"""Training a per-target CRN: edge map -> target frame, with the configured losses.

``train(target_video, run_dir, cfg)`` extracts (or reuses) the target's data,
holds out the end of the clip for validation, and optimises with Adam.
A run folder holds::

    config.yaml        the resolved config
    data/              the extraction (see puppet.dataset)
    checkpoint.pt      latest checkpoint (atomic; model, optimizer, step, config, meta)
    samples/           step_NNNNNN.png grids (edge map | generated | real) on held-out frames
    metrics.jsonl      one JSON line per sample step: losses and held-out PSNR / L1

Ctrl-C (or the time limit) saves a checkpoint at the last finished step;
``resume=True`` continues from it with the same data order as an
uninterrupted run (the batch of step k depends only on the seed and k).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from puppet.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from puppet.config import Config, LossConfig, config_from_dict, save_config
from puppet.dataset import Extraction, extract, split
from puppet.edges import draw_edges, edges_to_rgb
from puppet.errors import PuppetError
from puppet.losses.contextual import contextual_loss_layers
from puppet.losses.perceptual import gram_loss, perceptual_loss
from puppet.losses.pixel import l1_loss, l2_loss
from puppet.metrics import psnr
from puppet.models.crn import CRN
from puppet.retarget import expression_range, neutral_index, pose_range
from puppet.utils import pick_device, write_image

log = logging.getLogger("puppet")
StepCallback = Callable[[int, int, dict], None]  # (step, total_steps, {term: value})


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


def build_model(cfg: Config, in_channels: int = 6) -> CRN:
    """The CRN for a config: 6 edge-map channels in (3 for RGB-to-RGB domain transfer)."""
    return CRN(in_channels=in_channels, size=cfg.data.size, widths=cfg.model.widths)


class Objective(nn.Module):
    """The weighted sum of the configured loss terms on one batch.

    ``forward(out, target, step, source=None)`` takes generated and real
    images (B, 3, S, S) in [0, 1] (``source``: driver frames, for the L_CX^s
    term) and returns ``(total, {term: float})``. VGG features are computed
    once per image for every layer any term needs.
    """

    def __init__(self, cfg: LossConfig, extractor: nn.Module | None):
        super().__init__()
        self.cfg = cfg
        self.extractor = extractor

    @staticmethod
    def vgg_layers(cfg: LossConfig) -> list[str]:
        layers: dict[str, None] = {}
        for w, ls in ((cfg.cx_weight, cfg.cx_layers), (cfg.cxs_weight, cfg.cxs_layers),
                      (cfg.p_weight, cfg.p_layers), (cfg.gram_weight, cfg.gram_layers)):
            if w > 0:
                layers.update(dict.fromkeys(ls))
        return list(layers)

    def forward(self, out, target, step: int, source=None, generator: torch.Generator | None = None):
        c = self.cfg
        cx_on = step >= c.cx_warmup_steps
        terms: dict[str, torch.Tensor] = {}
        if c.l1_weight > 0:
            terms["l1"] = c.l1_weight * l1_loss(out.float(), target.float())
        if c.l2_weight > 0:
            terms["l2"] = c.l2_weight * l2_loss(out.float(), target.float())
        need_feats = (cx_on and (c.cx_weight > 0 or c.cxs_weight > 0)) or c.p_weight > 0 or c.gram_weight > 0
        if need_feats:
            fx = self.extractor(out)
            with torch.no_grad():
                fy = self.extractor(target)
            if cx_on and c.cx_weight > 0:
                terms["cx"] = c.cx_weight * contextual_loss_layers(fx, fy, c.cx_layers, c.cx_h, c.cx_eps,
                                                                   c.cx_sample, generator)
            if cx_on and c.cxs_weight > 0:
                if source is None:
                    raise ValueError("loss.cxs_weight > 0 needs source images")
                with torch.no_grad():
                    fs = self.extractor(source)
                terms["cx_s"] = c.cxs_weight * contextual_loss_layers(fx, fs, c.cxs_layers, c.cx_h, c.cx_eps,
                                                                      c.cx_sample, generator)
            if c.p_weight > 0:
                terms["p"] = c.p_weight * perceptual_loss({k: v.float() for k, v in fx.items()},
                                                          {k: v.float() for k, v in fy.items()}, c.p_layers)
            if c.gram_weight > 0:
                terms["gram"] = c.gram_weight * gram_loss({k: v.float() for k, v in fx.items()},
                                                          {k: v.float() for k, v in fy.items()}, c.gram_layers)
        if not terms:
            raise PuppetError("every loss weight is 0: nothing to train")
        total = sum(terms.values())
        return total, {k: float(v.detach()) for k, v in terms.items()}


def to_tensor_images(frames: np.ndarray, device) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float in [0, 1]."""
    return torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().div_(255)


def to_tensor_edges(edges: np.ndarray, device) -> torch.Tensor:
    """(B, 6, S, S) uint8 -> float in [0, 1]."""
    return torch.from_numpy(edges).to(device).float().div_(255)


def to_uint8_images(x: torch.Tensor) -> np.ndarray:
    """(B, 3, S, S) in [0, 1] -> (B, S, S, 3) uint8."""
    return (x.detach().float().clamp(0, 1).mul(255).add(0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())


def sample_grid(edges: np.ndarray, generated: np.ndarray, real: np.ndarray, scale: int = 1) -> np.ndarray:
    """Rows of (edge map | generated | real) as one RGB uint8 image."""
    import cv2

    rows = [np.concatenate([edges_to_rgb(e), g, r], axis=1) for e, g, r in zip(edges, generated, real)]
    grid = np.concatenate(rows, axis=0)
    if scale > 1:
        grid = cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    return grid


def autocast_for(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


class _StopFlag:
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


def target_meta(data: Extraction, video: Path) -> dict:
    """What rendering needs from the target: neutral landmarks and frames, crop, fps."""
    from puppet.landmarks import CropBox
    from puppet.video import read_frames

    k = neutral_index(data.landmarks)
    src_index = data.manifest["kept"][k]
    boxes = data.manifest["crop_boxes"]
    box = boxes[0] if len(boxes) == 1 else boxes[k]
    full = None
    for i, frame in enumerate(read_frames(video, src_index + 1)):
        if i == src_index:
            full = frame
    meta = {
        "source": str(video), "fps": float(data.manifest["fps"]), "size": data.size,
        "neutral_index": int(k), "neutral_source_frame": int(src_index),
        "neutral_landmarks": torch.from_numpy(data.landmarks[k].copy()),
        "neutral_crop": torch.from_numpy(data.frames[k].copy()),
        "crop_box": [float(v) for v in CropBox(*box).to_list()],
        "line_width": int(data.manifest["settings"]["line_width"]),
        "pose_range": dataclasses.asdict(pose_range(data.landmarks, data.landmarks[k])),
        "expression_range": torch.from_numpy(expression_range(data.landmarks, data.landmarks[k])),
    }
    if full is not None:
        meta["neutral_frame"] = torch.from_numpy(np.ascontiguousarray(full))
    return meta


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


def init_distributed(cfg: Config) -> Dist:
    """Join the torchrun job described by the environment (WORLD_SIZE, RANK, LOCAL_RANK), if any."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not torch.distributed.is_initialized():
        use_nccl = torch.cuda.is_available() and cfg.train.device != "cpu"
        torch.distributed.init_process_group("nccl" if use_nccl else "gloo")
    return Dist(torch.distributed.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def _device_for(cfg: Config, dist: Dist) -> torch.device:
    device = pick_device(cfg.train.device)
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    return device


def _open_run(run_dir: Path, cfg: Config, resume: bool, write: bool = True) -> dict | None:
    """Check the run folder against ``resume``; return the checkpoint to resume from (or None)."""
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
    if write:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    return state


def _write_samples(run_dir: Path, step: int, grid: np.ndarray, record: dict) -> None:
    write_image(run_dir / "samples" / f"step_{step:06d}.png", grid)
    write_image(run_dir / "samples" / "latest.png", grid)
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    log.debug("step %d: %s", step, " ".join(f"{k} {v:.3f}" for k, v in record.items() if k != "step"))


BatchFn = Callable[[np.ndarray], tuple]  # sampled indices -> (edges, target, source or None) on the device
EvalFn = Callable[[nn.Module, int, dict], dict]  # (model, step, last terms) -> metrics; writes samples


def _optimise(run_dir: Path, cfg: Config, device: torch.device, meta: dict, state: dict | None, n_items: int,
              batch: BatchFn, evaluate: EvalFn, on_step: StepCallback | None, kind: str,
              dist: Dist | None = None, in_channels: int = 6) -> TrainResult:
    """The training loop shared by puppet and single-image models.

    The batch of step k is drawn from a generator seeded with (seed, k) only,
    so a resumed run sees exactly the batches an uninterrupted one would.
    Under torchrun each of the W processes takes its slice of a global batch
    of W x train.batch_size (DistributedDataParallel averages the gradients),
    so W processes give the same steps as one process with W times the batch;
    only rank 0 writes checkpoints and samples.
    """
    dist = dist or Dist()
    torch.manual_seed(cfg.train.seed)
    net = build_model(cfg, in_channels).to(device)
    model = net
    if dist.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    layers = Objective.vgg_layers(cfg.loss)
    extractor = None
    if layers:
        from puppet.losses.vgg import VGGFeatures

        extractor = VGGFeatures(layers, weights=cfg.train.vgg_weights).to(device)
    objective = Objective(cfg.loss, extractor)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.train.lr)
    meta["vgg"] = extractor.weights_name if extractor is not None else "none"
    ckpt_path = run_dir / CHECKPOINT_NAME
    step = 0
    if state:
        net.load_state_dict(state["model"])
        if state.get("optimizer"):
            opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        log.info("resumed from %s at step %d", ckpt_path, step)

    def save(at_step: int) -> None:
        if dist.main:
            save_checkpoint(ckpt_path, model=net, step=at_step, config=cfg.to_dict(), meta=meta, optimizer=opt,
                            kind=kind)

    def run_eval(at_step: int, terms: dict) -> dict:
        if not dist.main:
            return {}
        net.eval()
        try:
            with torch.no_grad(), autocast_for(device, cfg.train.amp):
                return evaluate(net, at_step, terms)
        finally:
            net.train()

    total_steps = cfg.train.steps
    t0 = time.perf_counter()
    deadline = t0 + cfg.train.max_minutes * 60 if cfg.train.max_minutes > 0 else None
    terms: dict = {}
    val: dict = {}
    evaluated_at = -1
    stopped_by_time = False
    model.train()
    with _StopFlag() as stop:
        while step < total_steps:
            g = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + step)
            bs = cfg.train.batch_size
            idx = torch.randint(n_items, (bs * dist.world,), generator=g).numpy()[dist.rank * bs:(dist.rank + 1) * bs]
            e, r, src = batch(idx)
            with autocast_for(device, cfg.train.amp):
                out = model(e)
                loss, terms = objective(out, r, step, source=src, generator=g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if on_step:
                on_step(step, total_steps, terms)
            if step % cfg.train.sample_every == 0 or step == total_steps:
                val, evaluated_at = run_eval(step, terms), step
            if step % cfg.train.ckpt_every == 0:
                save(step)
            flags = [stop.requested, deadline is not None and time.perf_counter() > deadline]
            if dist.world > 1:  # every rank must stop at the same step, or the others hang
                t = torch.tensor(flags, dtype=torch.float32, device=device)
                torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
                flags = [bool(v) for v in t.tolist()]
            if flags[0]:
                save(step)
                raise TrainingInterrupted(step, ckpt_path)
            if flags[1]:
                stopped_by_time = True
                log.info("time limit of %.1f min reached at step %d", cfg.train.max_minutes, step)
                break
    if evaluated_at != step:
        val = run_eval(step, terms)
    save(step)
    return TrainResult(run_dir, step, time.perf_counter() - t0, stopped_by_time, val)


def train(target: str | Path, run_dir: str | Path, cfg: Config, resume: bool = False,
          on_step: StepCallback | None = None, on_extract=None) -> TrainResult:
    """Train (or resume) a puppet model for ``target`` in ``run_dir``; returns when done or time is up."""
    run_dir = Path(run_dir)
    dist = init_distributed(cfg)
    state = _open_run(run_dir, cfg, resume, write=dist.main)
    if dist.main:  # rank 0 extracts; the others then reuse its cached extraction
        data = extract(target, run_dir / "data", cfg.data, progress=on_extract)
    dist.barrier()
    if not dist.main:
        data = extract(target, run_dir / "data", cfg.data)
    train_idx, val_idx = split(len(data), cfg.data.val_fraction)
    if len(train_idx) < 1:
        raise PuppetError(f"{target}: too few frames with a face to train on ({len(data)})")
    log.info("%d training frames, %d held out", len(train_idx), len(val_idx))
    device = _device_for(cfg, dist)
    meta = state["meta"] if state else target_meta(data, Path(target))

    sample_idx = val_idx if len(val_idx) else train_idx
    sample_idx = sample_idx[np.linspace(0, len(sample_idx) - 1, min(4, len(sample_idx))).round().astype(int)]
    frames_dev = None  # the whole clip on the device when it fits comfortably (GPU)
    if device.type == "cuda":
        frames_dev = (to_tensor_images(data.frames, device), to_tensor_edges(data.edges, device))

    def load(indices: np.ndarray):
        if frames_dev is not None:
            t = torch.from_numpy(indices).to(device)
            return frames_dev[1][t], frames_dev[0][t]
        return to_tensor_edges(data.edges[indices], device), to_tensor_images(data.frames[indices], device)

    def batch(idx: np.ndarray):
        return (*load(train_idx[idx]), None)

    def evaluate(model: nn.Module, at_step: int, terms: dict) -> dict:
        ev = val_idx[:: max(1, len(val_idx) // 32)] if len(val_idx) else sample_idx
        e, r = load(ev)
        g = model(e).float()
        val = {"val_psnr": float(psnr(g, r).mean()), "val_l1": float((g - r).abs().mean())}
        g = model(load(sample_idx)[0])
        grid = sample_grid(data.edges[sample_idx], to_uint8_images(g), data.frames[sample_idx],
                           scale=2 if data.size <= 128 else 1)
        _write_samples(run_dir, at_step, grid, {"step": at_step, **terms, **val})
        return val

    try:
        res = _optimise(run_dir, cfg, device, meta, state, len(train_idx), batch, evaluate, on_step, "puppet",
                        dist)
        dist.barrier()  # tear the group down only once rank 0 has written its last checkpoint
        return res
    finally:
        if dist.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def portrait_crop(rgb: np.ndarray, size: int, scale: float, path: Path):
    """Face crop of a portrait: (crop (S, S, 3), landmarks in crop pixels (478, 2), CropBox)."""
    from puppet.landmarks import CropBox, FaceMesh, crop, landmark_box, to_crop

    with FaceMesh(video=False) as mesh:
        lm = mesh.detect(rgb)
    if lm is None:
        raise PuppetError(f"{path}: no face found in the image")
    cx, cy, side = landmark_box(lm)
    box = CropBox(cx, cy, side * scale)
    return crop(rgb, box, size), to_crop(lm, box, size), box


def train_single_image(image: str | Path, driver: str | Path, run_dir: str | Path, cfg: Config,
                       resume: bool = False, on_step: StepCallback | None = None, on_extract=None) -> TrainResult:
    """Single-image animation (the paper's Table 1, row 2): one portrait, one driver clip.

    The CRN maps the driver's edge maps, retargeted onto the portrait's face
    shape (the same input ``puppet animate`` will give it), to images with the
    portrait's appearance (L_CX^t against the portrait, plus the configured
    pixel/perceptual terms against it: it is roughly aligned in expression-
    neutral frames) and the driver's structure (L_CX^s against the driver's
    cropped frame).
    """
    from puppet.landmarks import OneEuroFilter
    from puppet.retarget import PoseLimits, Retargeter
    from puppet.utils import read_image

    image, run_dir = Path(image), Path(run_dir)
    rgb = read_image(image)
    state = _open_run(run_dir, cfg, resume)
    size = cfg.data.size
    portrait, p_lm, box = portrait_crop(rgb, size, cfg.data.crop_scale, image)
    data = extract(driver, run_dir / "driver", cfg.data, progress=on_extract)
    # Retarget the whole driver clip onto the portrait once; these are the model's inputs.
    limits = PoseLimits(max_degrees=10.0, max_shift=0.15, max_scale_change=0.1)
    retarget = Retargeter(p_lm, limits=limits)
    retarget.calibrate(np.mean(data.landmarks[:5], axis=0))
    smooth = OneEuroFilter(cfg.data.smooth_min_cutoff, cfg.data.smooth_beta)
    fps = float(data.manifest["fps"])
    edges = np.stack([draw_edges(smooth(retarget(lm) / size, i / fps) * size, size, cfg.data.line_width)
                      for i, lm in enumerate(data.landmarks)])
    device = pick_device(cfg.train.device)
    meta = state["meta"] if state else {
        "source": str(image), "driver": str(driver), "fps": fps, "size": size, "neutral_index": 0,
        "neutral_source_frame": 0, "neutral_landmarks": torch.from_numpy(p_lm.copy()),
        "neutral_crop": torch.from_numpy(portrait.copy()), "crop_box": box.to_list(),
        "line_width": cfg.data.line_width, "pose_range": dataclasses.asdict(limits),
        "neutral_frame": torch.from_numpy(np.ascontiguousarray(rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2])),
    }
    portrait_t = to_tensor_images(portrait[None], device)
    sample_idx = np.linspace(0, len(edges) - 1, min(4, len(edges))).round().astype(int)

    def batch(idx: np.ndarray):
        return (to_tensor_edges(edges[idx], device), portrait_t.expand(len(idx), -1, -1, -1),
                to_tensor_images(data.frames[idx], device))

    def evaluate(model: nn.Module, at_step: int, terms: dict) -> dict:
        g = to_uint8_images(model(to_tensor_edges(edges[sample_idx], device)))
        grid = sample_grid(edges[sample_idx], g, data.frames[sample_idx], scale=2 if size <= 128 else 1)
        _write_samples(run_dir, at_step, grid, {"step": at_step, **terms})
        return {}

    return _optimise(run_dir, cfg, device, meta, state, len(edges), batch, evaluate, on_step, "single-image")
