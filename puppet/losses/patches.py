"""Raw RGB patches as a feature map: the simplest features the contextual loss can compare."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def patch_features(x: torch.Tensor, k: int = 5) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 3k^2, H, W): the k x k patch around every pixel (zero-padded) as its feature."""
    return F.unfold(x, k, padding=k // 2).reshape(x.shape[0], -1, x.shape[2], x.shape[3])
