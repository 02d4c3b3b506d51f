"""Semantic style transfer by optimisation (the paper's Table 1, row 1: L_CX^t + L_CX^s).

The image is initialised from the content image A and optimised so that its
mid-level VGG features find matches in the style image B (L_CX^t on conv3_2 +
conv4_2) while its deeper features still match A's (L_CX^s on conv4_2, the
contextual loss again, so A's content is kept without pinning each feature to
its position). ``baseline="gram"`` runs Gatys et al.'s Gram-matrix style loss
with a perceptual content loss on the same pair, for comparison.
"""

from __future__ import annotations

import numpy as np
import torch

from puppet.losses.contextual import contextual_loss_layers
from puppet.losses.perceptual import gram_loss, gram_matrix, perceptual_loss
from puppet.losses.vgg import VGGFeatures
from puppet.paper.imageopt import optimise_image, to_uint8

STYLE_LAYERS = {"conv3_2": 1.0, "conv4_2": 1.0}
CONTENT_LAYERS = {"conv4_2": 1.0}
GRAM_LAYERS = {"conv1_1": 1.0, "conv2_1": 1.0, "conv3_1": 1.0, "conv4_1": 1.0, "conv5_1": 1.0}


def _prepare(rgb: np.ndarray, size: int) -> torch.Tensor:
    """Resize so the longer side is ``size`` (a multiple of 8), to (1, 3, H, W) in [0, 1]."""
    import cv2

    h, w = rgb.shape[:2]
    s = size / max(h, w)
    nh, nw = max(8, int(round(h * s / 8)) * 8), max(8, int(round(w * s / 8)) * 8)
    img = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div(255).unsqueeze(0)


def stylize(content: np.ndarray, style: np.ndarray, size: int = 256, steps: int = 200, lr: float = 0.02,
            content_weight: float = 1.0, baseline: str | None = None, weights: str = "auto", seed: int = 0,
            device: str = "cpu", progress=None) -> tuple[np.ndarray, list[float]]:
    """Return (result RGB uint8 (H, W, 3) at A's aspect, loss per step).

    Args:
        content, style: RGB uint8 images A and B.
        baseline: None for the contextual loss, "gram" for Gatys' Gram + perceptual content loss.
        progress: optional callable(done, total).
    """
    if baseline not in (None, "gram"):
        raise ValueError(f"unknown baseline {baseline!r}")
    g = torch.Generator().manual_seed(seed)
    dev = torch.device(device)
    a, b = _prepare(content, size).to(dev), _prepare(style, size).to(dev)
    layers = list(dict.fromkeys([*STYLE_LAYERS, *CONTENT_LAYERS, *(GRAM_LAYERS if baseline else [])]))
    vgg = VGGFeatures(layers, weights=weights).to(dev)
    with torch.no_grad():
        fa, fb = vgg(a), vgg(b)
        # Gram terms relative to the style's own Gram norm: raw values span 1e6-1e12 across layers
        # and weight files, which would leave the content term without any say.
        gram_scale = {k: 1.0 / float(gram_matrix(fb[k]).pow(2).sum().clamp_min(1e-12)) for k in GRAM_LAYERS} \
            if baseline else {}
    def loss_fn(x: torch.Tensor) -> torch.Tensor:
        fx = vgg(x)
        if baseline == "gram":
            return gram_loss(fx, fb, gram_scale) + content_weight * perceptual_loss(fx, fa, CONTENT_LAYERS)
        return (contextual_loss_layers(fx, fb, STYLE_LAYERS, generator=g)
                + content_weight * contextual_loss_layers(fx, fa, CONTENT_LAYERS, generator=g))

    x, history = optimise_image(a, loss_fn, steps, lr, None if progress is None else lambda s: progress(s, steps))
    return to_uint8(x), history


def side_by_side(images: list[np.ndarray], height: int = 256) -> np.ndarray:
    """Images resized to one height and concatenated left to right (RGB uint8)."""
    import cv2

    from puppet.utils import tile

    return tile([[cv2.resize(im, (max(2, int(round(im.shape[1] * height / im.shape[0]))), height),
                             interpolation=cv2.INTER_AREA) for im in images]])
