"""Versioned checkpoints: a plain dict of tensors and primitives, saved atomically.

Loaded with ``torch.load(weights_only=True)``: no pickled code runs.

Keys: ``format`` ("puppet-checkpoint"), ``version``, ``kind`` ("puppet" for
edge->target models, "single-image" for portrait models, "transfer" for
image->image domain-transfer models, "prior" for a puppet-shaped model of
several people, see puppet.prior), ``step``, ``config`` (nested dict),
``model`` (state dict), ``optimizer`` (state dict or None), ``meta`` (for
puppet and single-image models a :class:`puppet.meta.TargetMeta` as a dict:
neutral landmarks, crop, frame, motion ranges; for transfer models the two
image folders and the size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from puppet.errors import PuppetError
from puppet.utils import atomic_path

FORMAT = "puppet-checkpoint"
VERSION = 5
# Version 1 predates model.no_input_levels (its models take the edge map at every scale),
# versions 1 and 2 predate model.ramps (their models take the edge map alone), versions 1 to 3
# predate model.fine_ramps (their ramps, if any, stop where the lines stop), versions 1 to 4 predate
# model.mouth (no mouth channel).
READS = (1, 2, 3, 4, 5)
CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(path: str | Path, *, model: torch.nn.Module, step: int, config: dict[str, Any],
                    meta: dict[str, Any], optimizer: torch.optim.Optimizer | None = None,
                    kind: str = "puppet") -> None:
    """Write a checkpoint atomically (temp file, then rename)."""
    state = {
        "format": FORMAT, "version": VERSION, "kind": kind, "step": int(step), "config": config,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder or a checkpoint file -> the checkpoint file; PuppetError if absent."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
        if not p.is_file():
            raise PuppetError(f"{p}: no checkpoint in this run folder (train first, or pass the .pt file)")
    elif not p.exists():
        raise PuppetError(f"{p}: model not found (pass a run folder such as runs/NAME or its checkpoint.pt)")
    return p


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a checkpoint; PuppetError for anything that is not a readable one of ours."""
    p = resolve_checkpoint(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated, corrupted or foreign files
        raise PuppetError(f"{p}: corrupted or not a puppet checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise PuppetError(f"{p}: not a puppet checkpoint")
    if state.get("version") not in READS:
        raise PuppetError(f"{p}: checkpoint format version {state.get('version')} is not supported by this "
                          f"puppet (reads versions {', '.join(map(str, READS))}); retrain or use the matching "
                          "puppet release")
    for key in ("model", "config", "meta", "step"):
        if key not in state:
            raise PuppetError(f"{p}: checkpoint is missing '{key}'")
    return _upgrade(state)


def _upgrade(state: dict[str, Any]) -> dict[str, Any]:
    """Fill settings an older checkpoint's config lacks with the values it was trained with."""
    model = state["config"].get("model")
    if isinstance(model, dict):
        if state["version"] == 1:
            model.setdefault("no_input_levels", 0)
        if state["version"] <= 2:
            model.setdefault("ramps", 0.0)
        if state["version"] <= 3:
            model.setdefault("fine_ramps", False)
        if state["version"] <= 4:
            model.setdefault("mouth", False)
    return state
