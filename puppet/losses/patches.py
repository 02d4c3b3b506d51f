"""Colour features: k x k image patches (RGB or CIELAB) at a chosen scale.

The offline VGG16-HED trunk is an edge detector and hardly responds to colour
(a red shift of 0.2 barely moves its conv3_2/conv4_2 contextual loss), so CX on
it alone lets colours drift. Patches of the image itself are the simplest
features that carry colour and local structure; the contextual loss compares
them like any other feature map. Layer names say what they are:
``rgb5_d4`` = 5x5 RGB patches of the image average-pooled 4x, ``lab3_d1`` =
3x3 CIELAB patches at full resolution.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

_NAME = re.compile(r"^(rgb|lab)(\d+)_d(\d+)$")


def parse_patch_layer(name: str) -> tuple[str, int, int] | None:
    """``rgb5_d4`` -> ("rgb", 5, 4); None for any other name (e.g. a VGG layer)."""
    m = _NAME.match(name)
    if m is None:
        return None
    space, k, down = m.group(1), int(m.group(2)), int(m.group(3))
    if k < 1 or k % 2 == 0 or down < 1:
        raise ValueError(f"patch layer {name!r}: patch side must be odd and >= 1, downsampling >= 1")
    return space, k, down


def patch_features(x: torch.Tensor, k: int = 5) -> torch.Tensor:
    """(B, C, H, W) -> (B, C k^2, H, W): the k x k patch around every pixel (zero-padded) as its feature."""
    return F.unfold(x, k, padding=k // 2).reshape(x.shape[0], -1, x.shape[2], x.shape[3])


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB (B, 3, H, W) in [0, 1] -> CIELAB (D65) scaled to about [0, 1] (L/100, a/110, b/110); differentiable."""
    x = x.clamp(0.0, 1.0)
    lin = torch.where(x > 0.04045, ((x + 0.055) / 1.055).clamp(min=1e-8) ** 2.4, x / 12.92)
    m = x.new_tensor([[0.4124564, 0.3575761, 0.1804375],
                      [0.2126729, 0.7151522, 0.0721750],
                      [0.0193339, 0.1191920, 0.9503041]])
    xyz = torch.einsum("ck,bkhw->bchw", m, lin) / x.new_tensor([0.95047, 1.0, 1.08883]).view(1, 3, 1, 1)
    d = 6.0 / 29.0
    f = torch.where(xyz > d**3, xyz.clamp(min=1e-8) ** (1.0 / 3.0), xyz / (3 * d * d) + 4.0 / 29.0)
    lum = 116.0 * f[:, 1] - 16.0
    a = 500.0 * (f[:, 0] - f[:, 1])
    b = 200.0 * (f[:, 1] - f[:, 2])
    return torch.stack([lum / 100.0, a / 110.0, b / 110.0], dim=1)


def colour_patches(x: torch.Tensor, k: int = 5, down: int = 1, space: str = "rgb") -> torch.Tensor:
    """Images (B, 3, H, W) in [0, 1] -> patch features (B, 3 k^2, H/down, W/down).

    The image is average-pooled by ``down`` first (coarse colour layout, cheap
    to compare), converted to ``space`` (rgb | lab), then unfolded.
    """
    if down > 1:
        x = F.avg_pool2d(x, down)
    if space == "lab":
        x = rgb_to_lab(x)
    elif space != "rgb":
        raise ValueError(f"colour space {space!r}: use rgb or lab")
    return patch_features(x, k)
