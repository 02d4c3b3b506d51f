"""Feature-space losses: perceptual L1 and Gram (style), on named feature maps.

The functions take dicts of feature maps ``{layer: (B, C, H, W)}``; the
modules take images and an extractor that the caller builds and passes in.
"""

from __future__ import annotations

import torch
from torch import nn

from puppet.losses.base import weighted_sum


def perceptual_loss(fx: dict[str, torch.Tensor], fy: dict[str, torch.Tensor],
                    layer_weights: dict[str, float], normalize: bool = True) -> torch.Tensor:
    """L_P = sum_l w_l mean|phi_l(x) - phi_l(y)|.

    With ``normalize`` each layer's term is divided by the target's mean
    absolute activation, so a weight means the same thing whatever the layer's
    scale or the weight file (VGG19 ImageNet vs VGG16-HED activations differ
    by an order of magnitude). Returns a scalar >= 0.
    """
    def term(name: str) -> torch.Tensor:
        a, b = fx[name].float(), fy[name].float()
        t = (a - b).abs().mean()
        return t / (b.detach().abs().mean() + 1e-8) if normalize else t

    return weighted_sum(layer_weights, term, "perceptual_loss")


def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrix F F^T / (H W)."""
    b, c, hgt, wid = f.shape
    flat = f.reshape(b, c, hgt * wid)
    return torch.bmm(flat, flat.transpose(1, 2)) / (hgt * wid)


def gram_loss(fx: dict[str, torch.Tensor], fy: dict[str, torch.Tensor],
              layer_weights: dict[str, float]) -> torch.Tensor:
    """sum_l w_l ||G(phi_l(x)) - G(phi_l(y))||_F^2, mean over the batch; scalar >= 0."""
    def term(name: str) -> torch.Tensor:
        diff = gram_matrix(fx[name].float()) - gram_matrix(fy[name].float())
        return diff.pow(2).sum(dim=(1, 2)).mean()

    return weighted_sum(layer_weights, term, "gram_loss")


class _FeatureLoss(nn.Module):
    def __init__(self, extractor: nn.Module, layer_weights: dict[str, float]):
        super().__init__()
        self.extractor = extractor
        self.layer_weights = dict(layer_weights)

    def _features(self, x: torch.Tensor, y: torch.Tensor):
        fx = self.extractor(x)
        with torch.no_grad():
            fy = self.extractor(y)
        return fx, fy


class PerceptualLoss(_FeatureLoss):
    """Perceptual L1 on images (B, 3, H, W) in [0, 1]; ``y`` is treated as fixed."""

    def __init__(self, extractor: nn.Module, layer_weights: dict[str, float], normalize: bool = True):
        super().__init__(extractor, layer_weights)
        self.normalize = normalize

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return perceptual_loss(*self._features(x, y), self.layer_weights, self.normalize)


class GramLoss(_FeatureLoss):
    """Gatys' style loss on images (B, 3, H, W) in [0, 1]; ``y`` is treated as fixed."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return gram_loss(*self._features(x, y), self.layer_weights)
