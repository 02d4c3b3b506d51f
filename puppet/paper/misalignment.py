"""The paper's Fig. 6: denoising against clean but misaligned images.

An image is optimised by gradient descent from a noisy copy, with the loss
measured against clean copies that are rotated and shifted by a few pixels
(none is aligned with the noisy input). L1 pulls every pixel to the
misaligned copy (with several copies: to their blurred average); the
contextual loss matches features regardless of position, so it removes noise
while keeping the input's own geometry. Scores are against the *aligned*
clean image, which the optimisation never sees.

Features for CX: VGG conv3_2 + conv4_2 as in the paper, plus colour patches
(5x5 RGB at 1/4 resolution, 3x3 RGB at full resolution, see
:mod:`puppet.losses.patches`), compared as CoBi (w_s = 16, a position term, see
:mod:`puppet.losses.contextual`) — the default puppet loss's contextual term.
With the offline VGG16-HED weights (an edge detector's trunk) the VGG layers
alone barely react to colour noise and leave it in place (docs/experiments.md); the
patches supply the colour statistics those layers lack, and the position term
keeps each match near its own place, which is what beats L1 with several
misaligned targets.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from puppet.losses.contextual import contextual_loss_layers
from puppet.losses.features import build_features
from puppet.losses.pixel import l1_loss
from puppet.measure.metrics import psnr, ssim
from puppet.paper.imageopt import optimise_image, to_uint8
from puppet.utils import center_square

log = logging.getLogger("puppet")
# The default's contextual features (docs/experiments.md): HED conv3_2 + conv4_2 and colour patches, as CoBi.
DEFAULT_LAYERS = {"conv3_2": 1.0, "conv4_2": 1.0, "rgb5_d4": 1.0, "rgb3_d1": 1.0}
DEFAULT_SPATIAL = 16.0


@dataclass
class MisalignmentResult:
    images: dict[str, np.ndarray]  # name -> RGB uint8 (S, S, 3)
    scores: dict[str, dict[str, float]]  # name -> {"psnr": dB, "ssim": value}


def _to_tensor(rgb: np.ndarray, size: int) -> torch.Tensor:
    from puppet.tensors import to_tensor_images

    return to_tensor_images(center_square(rgb, size)[None], "cpu")


def warp(img: torch.Tensor, degrees: float, shift: tuple[float, float]) -> torch.Tensor:
    """Rotate by ``degrees`` and shift by ``shift`` (fractions of the side); (B,3,H,W) -> same."""
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 2 * shift[0]],
                          [math.sin(a), math.cos(a), 2 * shift[1]]], dtype=img.dtype).unsqueeze(0)
    grid = F.affine_grid(theta.expand(img.shape[0], -1, -1), list(img.shape), align_corners=False)
    return F.grid_sample(img, grid, padding_mode="reflection", align_corners=False)


def run_misalignment(rgb: np.ndarray, size: int = 128, noise: float = 0.15, n_targets: int = 1,
                     degrees: float = 3.0, shift: float = 0.03, steps: int = 200, lr: float = 0.02,
                     weights: str = "auto", seed: int = 0, layers: dict[str, float] | None = None,
                     spatial: dict[str, float] | None = None, max_side: int = 65,
                     progress=None) -> MisalignmentResult:
    """Optimise from a noisy image under L1 and under L_CX against misaligned clean targets.

    Args:
        rgb: the clean image, uint8 (H, W, 3); centre-cropped and resized to ``size``.
        noise: std of the Gaussian noise, in [0, 1] intensity units.
        n_targets: misaligned clean copies (each: random rotation within +-degrees and
            shift within +-shift of the side).
        progress: optional callable(done_steps, total_steps).
    """
    g = torch.Generator().manual_seed(seed)
    clean = _to_tensor(rgb, size)
    noisy = (clean + noise * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    targets = []
    for _ in range(n_targets):
        r = (torch.rand(3, generator=g) * 2 - 1).tolist()
        targets.append(warp(clean, degrees * r[0], (shift * r[1], shift * r[2])))
    targets = torch.cat(targets)

    if layers is None:
        layers = DEFAULT_LAYERS
        spatial = dict.fromkeys(layers, DEFAULT_SPATIAL) if spatial is None else spatial
    features = build_features(list(layers), weights=weights)
    with torch.no_grad():
        ft = features(targets)

    def cx_loss(x):
        fx = {k: v.expand(n_targets, -1, -1, -1) for k, v in features(x).items()}
        return contextual_loss_layers(fx, ft, layers, max_side=max_side, generator=g, spatial=spatial)

    def l1(x):
        return l1_loss(x.expand_as(targets), targets)

    results = {}
    for i, (name, loss_fn) in enumerate((("L1", l1), ("CX", cx_loss))):
        report = None if progress is None else (lambda s, i=i: progress(i * steps + s, 2 * steps))
        results[name], history = optimise_image(noisy, loss_fn, steps, lr, report)
        log.debug("%s final loss %.4f", name, history[-1])

    images = {"noisy input": noisy, "misaligned target": targets[:1], "L1 result": results["L1"],
              "CX result": results["CX"], "clean (aligned)": clean}
    scores = {}
    for name in ("noisy input", "misaligned target", "L1 result", "CX result"):
        scores[name] = {"psnr": float(psnr(images[name], clean)), "ssim": float(ssim(images[name], clean))}
    return MisalignmentResult({k: to_uint8(v) for k, v in images.items()}, scores)


def strip(images: dict[str, np.ndarray], names: list[str], scale: int = 2) -> np.ndarray:
    """Side-by-side RGB uint8 strip of the named images, each labelled, upscaled ``scale`` times."""
    import cv2

    tiles = []
    for name in names:
        im = cv2.resize(images[name], None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        im = np.ascontiguousarray(im)
        cv2.rectangle(im, (0, 0), (im.shape[1], 18), (0, 0, 0), -1)
        cv2.putText(im, name, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(im)
    from puppet.utils import tile

    return tile([tiles])
