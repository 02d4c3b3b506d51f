"""The training objective: the configured weighted sum of loss terms on one batch.

Used by puppet, single-image and domain-transfer training alike. The feature
extractor (a :class:`~puppet.losses.features.FeatureSet`) is built by the
caller and passed in.
"""

from __future__ import annotations

import torch
from torch import nn

from puppet.config import LossConfig
from puppet.errors import PuppetError
from puppet.losses.contextual import contextual_loss_layers
from puppet.losses.perceptual import perceptual_loss
from puppet.losses.pixel import (
    detail_loss,
    l1_loss,
    masked_l1_loss,
)

Features = dict[str, torch.Tensor]


def feature_layers(cfg: LossConfig) -> list[str]:
    """Every feature layer (VGG or colour patches) that a term with non-zero weight needs."""
    layers: dict[str, None] = {}
    for w, ls in ((cfg.cx_weight, cfg.cx_layers), (cfg.cxs_weight, cfg.cxs_layers), (cfg.p_weight, cfg.p_layers)):
        if w > 0:
            layers.update(dict.fromkeys(k for k, v in ls.items() if v != 0))
    return list(layers)


def main_weights(cfg: LossConfig) -> dict[str, float]:
    """Weight of each scalar term after the warm-up, by term name."""
    return {"l1": cfg.l1_weight, "parts": cfg.parts_weight, "detail": cfg.detail_weight, "p": cfg.p_weight,
            "cx": cfg.cx_weight, "cx_s": cfg.cxs_weight}


def term_used(cfg: LossConfig, term: str) -> bool:
    """Whether ``term`` has a non-zero weight in the warm-up or after it (an empty
    ``warmup_weights`` means the main weights there too, as :meth:`Objective.weights` reads it)."""
    return main_weights(cfg)[term] > 0 or cfg.warmup_weights.get(term, 0.0) > 0


class TargetFeatureCache:
    """Features of fixed target images, computed once per image index and kept on their device.

    A per-target puppet trains on the same few hundred frames for thousands of
    steps; their features never change, so computing them once saves a VGG
    forward pass per image and step.
    """

    def __init__(self, features: nn.Module):
        self.features = features
        self.store: dict[int, Features] = {}

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, keys: list[int]) -> Features:
        """Images (B, 3, S, S) with one integer key each -> features, batched (B, C, H, W) per layer."""
        for i, k in enumerate(keys):
            if k not in self.store:
                # One image at a time: batched convolutions may round differently with the batch's
                # composition, and a resumed run must see exactly the features an uninterrupted one did.
                self.store[k] = {n: f[0].clone() for n, f in self.features(images[i:i + 1]).items()}
        return {n: torch.stack([self.store[k][n] for k in keys]) for n in self.store[keys[0]]}


class Objective(nn.Module):
    """The weighted sum of the configured loss terms.

    ``forward(out, target, step, source=None, generator=None, target_keys=None, mask=None)``
    takes generated and real images (B, 3, S, S) in [0, 1] (``source``: driver
    frames, for the L_CX^s term; ``target_keys``: one integer per target image
    naming a fixed image whose features may be cached; ``mask``: (B, 1, S, S) in
    [0, 1], the target's eyes, brows and lips, for the ``parts`` term) and returns
    ``(total, {term: float})``. Features are computed once per image for every
    layer any term needs, and not at all in steps that need none.

    Args:
        cfg: the loss section of the config.
        features: the extractor (e.g. a FeatureSet) the caller built, or None for pixel terms only.
        cache: keep the features of keyed target images (see :class:`TargetFeatureCache`).
    """

    def __init__(self, cfg: LossConfig, features: nn.Module | None, cache: bool = False):
        super().__init__()
        self.cfg = cfg
        self.features = features
        if feature_layers(cfg) and features is None:
            raise ValueError("these loss weights need a feature extractor")
        self.cache = TargetFeatureCache(features) if cache and features is not None else None

    def target_features(self, target: torch.Tensor, keys: list[int] | None = None) -> Features:
        if self.cache is not None and keys is not None:
            return self.cache(target, keys)
        with torch.no_grad():
            return self.features(target)

    def weights(self, step: int) -> dict[str, float]:
        """Weight of each scalar term at ``step``: the warm-up's until cx_warmup_steps, then the main ones."""
        c = self.cfg
        main = main_weights(c)
        if step >= c.cx_warmup_steps:
            return main
        if c.warmup_weights:
            return {k: float(c.warmup_weights.get(k, 0.0)) for k in main}
        return {**main, "cx": 0.0, "cx_s": 0.0}

    def forward(self, out, target, step: int, source=None, generator: torch.Generator | None = None,
                target_keys: list[int] | None = None, mask: torch.Tensor | None = None):
        c = self.cfg
        w = self.weights(step)
        terms: dict[str, torch.Tensor] = {}
        if w["l1"] > 0:
            terms["l1"] = w["l1"] * l1_loss(out.float(), target.float())
        if w["parts"] > 0:
            if mask is None:  # single-image and domain-transfer training have no target landmarks
                raise PuppetError("config key 'loss.parts_weight': the parts term needs the target's landmarks "
                                  "(puppet training from a video); set loss.parts_weight=0 and leave it out "
                                  "of loss.warmup_weights")
            terms["parts"] = w["parts"] * masked_l1_loss(out.float(), target.float(), mask)
        if w["detail"] > 0:
            terms["detail"] = w["detail"] * detail_loss(out.float(), target.float(), c.detail_window)
        if any(w[k] > 0 for k in ("cx", "cx_s", "p")):
            fx = self.features(out)
            fy = self.target_features(target, target_keys)
            if w["cx"] > 0:
                terms["cx"] = w["cx"] * contextual_loss_layers(fx, fy, c.cx_layers, c.cx_h, c.cx_eps,
                                                               c.cx_sample, generator, c.cx_spatial)
            if w["cx_s"] > 0:
                if source is None:
                    raise ValueError("loss.cxs_weight > 0 needs source images")
                fs = self.target_features(source)
                terms["cx_s"] = w["cx_s"] * contextual_loss_layers(fx, fs, c.cxs_layers, c.cx_h, c.cx_eps,
                                                                   c.cx_sample, generator)
            if w["p"] > 0:
                terms["p"] = w["p"] * perceptual_loss(fx, fy, c.p_layers)
        if not terms:
            raise PuppetError("every loss weight is 0: nothing to train")
        total = sum(terms.values())
        return total, {k: float(v.detach()) for k, v in terms.items()}
