"""What every multi-layer loss shares."""

from __future__ import annotations

from typing import Callable

import torch


def weighted_sum(layer_weights: dict[str, float], term: Callable[[str], torch.Tensor],
                 what: str = "loss") -> torch.Tensor:
    """sum_l w_l term(l) over the layers with a non-zero weight; ValueError if there are none."""
    total = None
    for name, w in layer_weights.items():
        if w == 0:
            continue
        t = w * term(name)
        total = t if total is None else total + t
    if total is None:
        raise ValueError(f"{what}: no layers given")
    return total
