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

from puppet.checkpoint import load_checkpoint
from puppet.config import Config
from puppet.errors import PuppetError
from puppet.train import (Dist, TrainResult, _open_run, _optimise, _write_samples, build_model, pick_device,
                          to_tensor_images, to_uint8_images)

log = logging.getLogger("puppet")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def load_folder(folder: str | Path, size: int) -> tuple[np.ndarray, list[Path]]:
    """Every image in ``folder``, centre-cropped square and resized: ((K, S, S, 3) uint8, paths)."""
    import cv2

    from puppet.utils import read_image

    d = Path(folder)
    if not d.is_dir():
        raise PuppetError(f"{d}: folder not found")
    paths = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise PuppetError(f"{d}: no images (.jpg, .png, ...) in this folder")
    out = []
    for p in paths:
        rgb = read_image(p)
        h, w = rgb.shape[:2]
        s = min(h, w)
        sq = rgb[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out.append(cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(out), paths


def train_transfer(source: str | Path, target: str | Path, run_dir: str | Path, cfg: Config,
                   resume: bool = False, on_step=None) -> TrainResult:
    """Train an A -> B generator from two folders of unpaired images (use ``--loss transfer``)."""
    run_dir = Path(run_dir)
    size = cfg.data.size
    a_imgs, _ = load_folder(source, size)
    b_imgs, _ = load_folder(target, size)
    state = _open_run(run_dir, cfg, resume)
    device = pick_device(cfg.train.device)
    a_t, b_t = to_tensor_images(a_imgs, device), to_tensor_images(b_imgs, device)
    meta = state["meta"] if state else {"task": "transfer", "source": str(source), "target": str(target),
                                        "size": size, "in_channels": 3}

    def batch(idx: np.ndarray):
        # One item = one (a, b) pair: every A image meets every B image equally often.
        a = a_t[torch.from_numpy(idx // len(b_imgs)).to(device)]
        return a, b_t[torch.from_numpy(idx % len(b_imgs)).to(device)], a

    def evaluate(model, at_step: int, terms: dict) -> dict:
        g = to_uint8_images(model(a_t[: min(4, len(a_imgs))]))
        grid = np.concatenate([np.concatenate([a, o], axis=1) for a, o in zip(a_imgs[: len(g)], g)], axis=0)
        _write_samples(run_dir, at_step, grid, {"step": at_step, **terms})
        return {}

    return _optimise(run_dir, cfg, device, meta, state, len(a_imgs) * len(b_imgs), batch, evaluate, on_step,
                     "transfer", Dist(), in_channels=3)


def apply_transfer(model: str | Path, rgb: np.ndarray, device: str = "auto") -> np.ndarray:
    """Run a trained A -> B generator on one RGB uint8 image; returns (S, S, 3) uint8."""
    import cv2

    from puppet.config import config_from_dict

    state = load_checkpoint(model)
    if state.get("kind") != "transfer":
        raise PuppetError(f"{model}: not a domain-transfer model (it is a {state.get('kind')} model)")
    cfg = config_from_dict(state["config"])
    dev = pick_device(device)
    net = build_model(cfg, in_channels=3)
    net.load_state_dict(state["model"])
    net = net.to(dev).eval()
    h, w = rgb.shape[:2]
    s = min(h, w)
    sq = rgb[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    x = cv2.resize(sq, (cfg.data.size, cfg.data.size), interpolation=cv2.INTER_AREA)
    with torch.inference_mode():
        return to_uint8_images(net(to_tensor_images(x[None], dev)))[0]
