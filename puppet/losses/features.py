"""Named feature maps for the losses: VGG layers and colour patches side by side.

``FeatureSet(layers, vgg)`` returns ``{name: (B, C, H, W)}`` for every name in
``layers``: VGG names (``conv3_2``, ...) come from the ``vgg`` extractor the
caller built (or None when only patch layers are asked for); patch names
(``rgb5_d4``, ``lab3_d1``, see :mod:`puppet.losses.patches`) are computed from
the image directly. Losses take the resulting dicts, never an extractor.
"""

from __future__ import annotations

import torch
from torch import nn

from puppet.losses.patches import colour_patches, parse_patch_layer


def split_layers(layers: list[str] | tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(VGG layer names, patch layer names), each in the given order."""
    vgg = [n for n in layers if parse_patch_layer(n) is None]
    patches = [n for n in layers if parse_patch_layer(n) is not None]
    return vgg, patches


class FeatureSet(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> ``{name: feature map}`` for VGG and patch layers.

    Args:
        layers: every name the losses need.
        vgg: an extractor returning the VGG names of ``layers`` (e.g. VGGFeatures), or
            None if there are none.
    """

    def __init__(self, layers: list[str] | tuple[str, ...], vgg: nn.Module | None = None):
        super().__init__()
        self.vgg_layers, patch_layers = split_layers(layers)
        if self.vgg_layers and vgg is None:
            raise ValueError(f"VGG layers {self.vgg_layers} need a VGG extractor")
        self.vgg = vgg if self.vgg_layers else None
        self.patches = {n: parse_patch_layer(n) for n in patch_layers}

    @property
    def weights_name(self) -> str:
        parts = [self.vgg.weights_name] if self.vgg is not None else []
        if self.patches:
            parts.append("patches " + ", ".join(self.patches))
        return "; ".join(parts) or "none"

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = dict(self.vgg(x)) if self.vgg is not None else {}
        for name, (space, k, down) in self.patches.items():
            out[name] = colour_patches(x.float(), k, down, space)
        return out


def build_features(layers: list[str] | tuple[str, ...], weights: str = "auto") -> FeatureSet:
    """The FeatureSet for ``layers``, loading VGG weights only if a VGG layer is named."""
    vgg_names, _ = split_layers(layers)
    vgg = None
    if vgg_names:
        from puppet.losses.vgg import VGGFeatures

        vgg = VGGFeatures(vgg_names, weights=weights)
    return FeatureSet(layers, vgg)
