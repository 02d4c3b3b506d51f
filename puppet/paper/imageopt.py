"""Optimising an image directly by gradient descent (style transfer, the Fig. 6 demo)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def optimise_image(x0: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor], steps: int,
                   lr: float = 0.02, progress: Callable[[int], None] | None = None) -> tuple[torch.Tensor, list[float]]:
    """Adam on the pixels of ``x0`` (B, 3, H, W) in [0, 1], kept in [0, 1] after each step.

    Returns the optimised image (detached) and the loss of every step; ``progress(step)``
    is called after each one.
    """
    x = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    history = []
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(x)
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
        history.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1)
    return x.detach(), history


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """The first image of (B, 3, H, W) in [0, 1] as (H, W, 3) uint8."""
    return (x[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
