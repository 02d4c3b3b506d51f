"""Pixel losses on images (B, 3, H, W) in [0, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from puppet.measure.metrics import laplacian


def l1_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference; scalar >= 0 (images in [0,1] give at most 1)."""
    return (x - y).abs().mean()


def masked_l1_loss(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference inside ``mask``, per image, averaged over the batch; scalar >= 0.

    x, y: (B, C, H, W); mask: (B, 1, H, W) in [0, 1], the weight of each position. An image whose
    mask is empty adds 0. Per image, so a batch split over processes averages to the same value.
    """
    m = mask.to(x.dtype)
    per_image = ((x - y).abs() * m).sum((1, 2, 3)) / (m.sum((1, 2, 3)) * x.shape[1]).clamp_min(1e-6)
    return per_image.mean()


def detail_loss(x: torch.Tensor, y: torch.Tensor, window: int = 8, eps: float = 1e-6) -> torch.Tensor:
    """L1 between the local amounts of fine detail of two images; scalar >= 0.

    The detail of a pixel is the luma Laplacian (:func:`puppet.measure.metrics.laplacian`); its RMS over
    ``window`` x ``window`` tiles is compared. Where the real frame has hair strands or a glasses
    rim a few pixels from where the generated one has them, pixel L1 asks for blur (the mean of
    the possible positions); this term asks for as much detail in the tile as the real one has,
    wherever in the tile it sits. Images (B, 3, H, W) in [0, 1]; equal images give 0.
    """
    def rms(im: torch.Tensor) -> torch.Tensor:
        return (F.avg_pool2d(laplacian(im).pow(2), window, ceil_mode=True) + eps).sqrt()

    return (rms(x) - rms(y)).abs().mean()


class L1Loss(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return l1_loss(x, y)


class MaskedL1Loss(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_l1_loss(x, y, mask)


class DetailLoss(nn.Module):
    def __init__(self, window: int = 8):
        super().__init__()
        self.window = window

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return detail_loss(x, y, self.window)
