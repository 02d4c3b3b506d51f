"""Warping training pairs alike: faces at poses and proportions the clip never showed.

A driver's retargeted landmarks put the target's face where it never was: turned a little further,
the mouth a little wider, the nose a little off the line it always sat on. The generator has seen
only the clip's own configurations, so it renders those inputs badly (streaks along the drawn nose,
lost glasses, a stranger's face). Warping a share of the training pairs, the input map and the real
frame by the same smooth field, shows it faces between and beyond the clip's.

The warp is local to the face. A similarity about the face centre (rotation, scale, shift) fades
to nothing outside the head, and a few Gaussian bumps move parts of the face (a mouth corner, a
brow, the nose) independently. The background stays where it is, as it does when a person moves
in front of a fixed camera. A warp of the whole frame moves the background too; the model then
cannot tell where it belongs and blurs it (docs/experiments.md).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# How far a warp goes, as fractions of the face's radius (half its landmarks' larger extent).
ROTATION_DEG = 8.0
SCALE = 0.08
SHIFT = 0.10
BUMPS = 3
BUMP_SHIFT = 0.06
# The similarity moves everything within about this many face radii of the centre, then fades out.
REACH = 1.4


def face_circles(landmarks: np.ndarray) -> np.ndarray:
    """(F, 478, 2) crop pixels -> (F, 3) float32 rows (centre x, centre y, radius) in crop pixels."""
    lo, hi = landmarks.min(axis=1), landmarks.max(axis=1)
    centre = (lo + hi) / 2
    radius = (hi - lo).max(axis=1) / 2
    return np.concatenate([centre, radius[:, None]], axis=1).astype(np.float32)


def face_warp_grids(circles: torch.Tensor, size: int, generator: torch.Generator | None = None,
                    part: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """Random face-local warps as ``grid_sample`` grids.

    Args:
        circles: (B, 3) face centre x, y and radius in pixels of a ``size``-pixel crop.
        size: side of the square crop in pixels.
        generator: CPU random generator (draws are reproducible with a seeded one).
        part: (rank, world): the B items are the rank-th slice of a global batch of world x B. Every
            draw is made for the global batch, so under torchrun each process warps its slice as one
            process would, and the generator ends in the same state everywhere.

    Returns:
        (B, size, size, 2) float32 sampling positions in [-1, 1] (align_corners=False), the
        identity outside about ``REACH`` face radii of each centre.
    """
    b = circles.shape[0]
    rank, world = part
    rows = slice(rank * b, (rank + 1) * b)

    def u(*shape):  # uniform in [-1, 1], drawn for the whole batch, this slice's rows returned
        return (torch.rand(world * b, *shape[1:], generator=generator) * 2 - 1)[rows]

    c, r = circles[:, None, None, :2].float(), circles[:, None, None, 2:3].float()
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32) + 0.5,
                            torch.arange(size, dtype=torch.float32) + 0.5, indexing="ij")
    p = torch.stack([xs, ys], dim=-1)[None]  # (1, S, S, 2) pixel centres
    rel = p - c
    angle = u(b) * math.radians(ROTATION_DEG)
    scale = 1 + u(b) * SCALE
    cos, sin = (torch.cos(angle) * scale)[:, None, None], (torch.sin(angle) * scale)[:, None, None]
    moved = torch.stack([cos * rel[..., 0] - sin * rel[..., 1], sin * rel[..., 0] + cos * rel[..., 1]], dim=-1)
    moved = moved + u(b, 1, 1, 2) * SHIFT * r
    dist = rel.norm(dim=-1, keepdim=True) / (REACH * r)
    fade = torch.exp(-dist ** 4)  # flat over the face, gone by about 1.5 reaches
    src = p + fade * (moved - rel)
    for _ in range(BUMPS):
        at = c + u(b, 1, 1, 2) * 0.7 * r
        width = r * (0.25 + 0.25 * (u(b, 1, 1, 1) + 1) / 2)
        bump = torch.exp(-((p - at) ** 2).sum(-1, keepdim=True) / (2 * width ** 2))
        src = src + bump * u(b, 1, 1, 2) * BUMP_SHIFT * r
    return src / size * 2 - 1


def warp_pairs(grids: torch.Tensor, *images: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """Resample each (B, C, S, S) image (input map, frame, part mask; None passes through) at the
    same ``grids`` (B, S, S, 2): the pair stays in register, as the input map was drawn from the
    frame's own landmarks. Edges sample the nearest border pixel; values stay in [0, 1]."""
    out = []
    for im in images:
        if im is None:
            out.append(None)
            continue
        g = grids.to(device=im.device, dtype=im.dtype)
        # bicubic: a bilinear resampling softens the real frame, and the model learns the softness
        out.append(F.grid_sample(im, g, mode="bicubic", padding_mode="border", align_corners=False).clamp(0, 1))
    return tuple(out)


def augment_batch(share: float, circles: torch.Tensor, size: int, generator: torch.Generator | None,
                  *images: torch.Tensor | None, part: tuple[int, int] = (0, 1)
                  ) -> tuple[bool, tuple[torch.Tensor | None, ...]]:
    """Warp a random ``share`` of a batch's items (input map, frame, part mask alike).

    ``circles`` (B, 3) face circles of the batch's items; ``part``: see :func:`face_warp_grids`.
    Returns whether anything was warped, and the images (unchanged objects when nothing was)."""
    b = circles.shape[0]
    rank, world = part
    chosen = (torch.rand(world * b, generator=generator) < share)[rank * b:(rank + 1) * b]
    grids = face_warp_grids(circles, size, generator, part)
    if not bool(chosen.any()):
        return False, images
    ys, xs = torch.meshgrid(torch.linspace(-1 + 1 / size, 1 - 1 / size, size),
                            torch.linspace(-1 + 1 / size, 1 - 1 / size, size), indexing="ij")
    identity = torch.stack([xs, ys], dim=-1)
    grids = torch.where(chosen[:, None, None, None], grids, identity[None])
    return True, warp_pairs(grids, *images)
