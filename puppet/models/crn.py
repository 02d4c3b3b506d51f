"""Cascaded Refinement Network (Chen & Koltun, ICCV 2017).

Refinement modules run from a coarse grid up to the output size, doubling
the resolution each time. Module k takes the input map resized to its scale
concatenated with the bilinearly upsampled features of module k-1, then
applies (3x3 conv -> layer norm -> LeakyReLU(0.2)) twice. A final 1x1 conv
maps to RGB.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RefinementModule(nn.Module):
    def __init__(self, in_channels: int, width: int):
        super().__init__()
        # GroupNorm with one group = layer norm over (C, H, W), per-channel affine.
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.GroupNorm(1, width),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.GroupNorm(1, width),
            nn.LeakyReLU(0.2, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class CRN(nn.Module):
    """Input map (B, in_channels + dense_channels, S, S) in [0, 1] -> RGB image (B, 3, S, S) in [0, 1].

    Args:
        in_channels: leading input channels, which the finest ``no_input_levels`` modules do not take
            (the 6 edge-map parts; 6 more with ramps kept out of the finest modules, see build_model).
        size: output side S; must be divisible by 2^(len(widths)-1).
        widths: channels per module, coarsest first; the coarsest grid is S / 2^(len(widths)-1).
        no_input_levels: how many of the finest modules do not take the leading ``in_channels`` (the
            edge lines). At full resolution, thin input lines are a shortcut the generator can copy
            straight into the image; without them the finest modules refine upsampled features
            (and take the dense channels).
        dense_channels: trailing input channels that every module takes, the finest ones too:
            inputs too smooth to be copied into the image as lines (the distance ramps and the mouth's
            opening, see puppet.face.inputs).
    """

    def __init__(self, in_channels: int = 6, size: int = 128,
                 widths: tuple[int, ...] | list[int] = (256, 256, 256, 128, 64, 32), no_input_levels: int = 0,
                 dense_channels: int = 0):
        super().__init__()
        levels = len(widths)
        if size % (2 ** (levels - 1)):
            raise ValueError(f"size {size} must be divisible by 2^{levels - 1}")
        if not 0 <= no_input_levels < levels:
            raise ValueError(f"no_input_levels {no_input_levels} must be in [0, {levels - 1}]")
        self.in_channels, self.dense_channels, self.size, self.widths = in_channels, dense_channels, size, list(widths)
        self.sizes = [size // 2 ** (levels - 1 - k) for k in range(levels)]
        self.takes_input = [k < levels - no_input_levels for k in range(levels)]
        mods = []
        prev = 0
        for w, takes in zip(widths, self.takes_input):
            mods.append(RefinementModule((in_channels if takes else 0) + dense_channels + prev, w))
            prev = w
        self.refine = nn.ModuleList(mods)
        self.to_rgb = nn.Conv2d(prev, 3, 1)

    def forward(self, edges: torch.Tensor) -> torch.Tensor:
        feats = None
        for s, mod, takes in zip(self.sizes, self.refine, self.takes_input):
            parts = []
            x = edges if takes else edges[:, self.in_channels:]
            if x.shape[1]:
                parts.append(x if x.shape[-1] == s else F.interpolate(x, size=(s, s), mode="area"))
            if feats is not None:
                parts.append(F.interpolate(feats, size=(s, s), mode="bilinear", align_corners=False))
            feats = mod(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))
        return torch.sigmoid(self.to_rgb(feats))
