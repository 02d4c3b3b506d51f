"""Conversions between uint8 arrays and float tensors, and the one autocast policy."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch


def to_tensor_images(frames: np.ndarray, device) -> torch.Tensor:
    """(B, S, S, 3) uint8 RGB -> (B, 3, S, S) float in [0, 1] on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float().div_(255)


def to_tensor_edges(edges: np.ndarray, device) -> torch.Tensor:
    """(B, C, S, S) uint8 model inputs (edge maps, ramps, reference) -> float in [0, 1] on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(edges)).to(device).float().div_(255)


def to_uint8_images(x: torch.Tensor) -> np.ndarray:
    """(B, 3, S, S) in [0, 1] -> (B, S, S, 3) uint8 RGB on the CPU."""
    return (x.detach().float().clamp(0, 1).mul(255).add(0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())


def autocast_for(device: torch.device, amp: bool = True):
    """bf16 autocast on CUDA when ``amp``; nothing on the CPU (bf16 convolutions are slower there).

    The contextual loss keeps its similarity in float32 inside, whatever this says.
    """
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()
