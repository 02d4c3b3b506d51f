"""Unpaired domain transfer (the paper's Table 1, row 4): a CRN from domain A to domain B, no pairs.

The generator sees an image a of domain A (RGB, S x S) and produces G(a). It
is trained with L_CX^t(G(a), b) against a random image b of domain B (its
look: conv3_2 + conv4_2) and L_CX^s(G(a), a) against its own input (its
content: conv4_2). No pairs are needed: the contextual loss compares feature
distributions, not aligned pixels.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from puppet.config import Config, without_target_clip
from puppet.data.checkpoint import load_checkpoint
from puppet.errors import PuppetError
from puppet.face.inputs import InputLayout
from puppet.models import build_model
from puppet.tensors import to_tensor_images, to_uint8_images
from puppet.train.loop import Task, TrainResult, open_run, optimise, write_samples
from puppet.utils import center_square, pick_device, tile

log = logging.getLogger("puppet")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def load_folder(folder: str | Path, size: int) -> tuple[np.ndarray, list[Path]]:
    """Every image in ``folder``, centre-cropped square and resized: ((K, S, S, 3) uint8, paths)."""
    from puppet.utils import read_image

    d = Path(folder)
    if not d.is_dir():
        raise PuppetError(f"{d}: folder not found")
    paths = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise PuppetError(f"{d}: no images (.jpg, .png, ...) in this folder")
    out = []
    for p in paths:
        out.append(center_square(read_image(p), size))
    return np.stack(out), paths


def train_transfer(source: str | Path, target: str | Path, run_dir: str | Path, cfg: Config,
                   resume: bool = False, on_step=None) -> TrainResult:
    """Train an A -> B generator from two folders of unpaired images (use ``--loss transfer``)."""
    run_dir = Path(run_dir)
    cfg = without_target_clip(cfg)
    size = cfg.data.size
    a_imgs, _ = load_folder(source, size)
    b_imgs, _ = load_folder(target, size)
    state = open_run(run_dir, cfg, resume)
    device = pick_device(cfg.train.device)
    a_t, b_t = to_tensor_images(a_imgs, device), to_tensor_images(b_imgs, device)
    meta = state["meta"] if state else {"task": "transfer", "source": str(source), "target": str(target),
                                        "size": size}

    def batch(idx: np.ndarray):
        # One item = one (a, b) pair: every A image meets every B image equally often.
        a = a_t[torch.from_numpy(idx // len(b_imgs)).to(device)]
        b_idx = idx % len(b_imgs)
        return a, b_t[torch.from_numpy(b_idx).to(device)], a, [int(i) for i in b_idx], None

    def evaluate(model, at_step: int, terms: dict) -> dict:
        g = to_uint8_images(model(a_t[: min(4, len(a_imgs))]))
        write_samples(run_dir, at_step, tile([[a, o] for a, o in zip(a_imgs[: len(g)], g)]), {"step": at_step, **terms})
        return {}

    layout = InputLayout.for_run(state)
    task = Task("transfer", len(a_imgs) * len(b_imgs), batch, evaluate, meta, in_channels=3, layout=layout)
    return optimise(run_dir, cfg, device, task, state, on_step)


def apply_transfer(model: str | Path, rgb: np.ndarray, device: str = "auto") -> np.ndarray:
    """Run a trained A -> B generator on one RGB uint8 image; returns (S, S, 3) uint8."""
    from puppet.config import config_from_dict

    state = load_checkpoint(model)
    if state.get("kind") != "transfer":
        raise PuppetError(f"{model}: not a domain-transfer model (it is a {state.get('kind')} model)")
    cfg = config_from_dict(state["config"])
    dev = pick_device(device)
    net = build_model(cfg, in_channels=3, layout=InputLayout.from_dict(state["layout"]))
    net.load_state_dict(state["model"])
    net = net.to(dev).eval()
    x = center_square(rgb, cfg.data.size)
    with torch.inference_mode():
        return to_uint8_images(net(to_tensor_images(x[None], dev)))[0]
