"""Pixel losses on images (B, 3, H, W) in [0, 1]."""

from __future__ import annotations

import torch
from torch import nn


def l1_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference; scalar >= 0 (images in [0,1] give at most 1)."""
    return (x - y).abs().mean()


def l2_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared difference; scalar >= 0."""
    return (x - y).pow(2).mean()


class L1Loss(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return l1_loss(x, y)


class L2Loss(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return l2_loss(x, y)
