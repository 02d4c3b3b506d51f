"""Versioned checkpoints: a plain dict of tensors and primitives, saved atomically.

Loaded with ``torch.load(weights_only=True)``: no pickled code runs.

Keys: ``format`` ("puppet-checkpoint"), ``version``, ``kind`` ("puppet" for
edge->target models, "single-image" for portrait models, "transfer" for
image->image domain-transfer models, "prior" for a puppet-shaped model of
several people, see puppet.train.prior), ``step``, ``config`` (nested dict),
``model`` (state dict), ``optimizer`` (state dict or None), ``layout`` (the
model's input channels, :class:`puppet.face.inputs.InputLayout` as a dict), ``meta`` (for
puppet and single-image models a :class:`puppet.data.meta.TargetMeta` as a dict:
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
VERSION = 6
# Versions 1 to 5 kept the input channels among the user's model settings, which grew a key per
# version: model.no_input_levels since 2 (version 1's models take the edge map at every scale),
# model.ramps since 3 (versions 1 and 2: the edge map alone), model.fine_ramps since 4 (versions 1
# to 3: ramps, if any, only where the lines go), model.mouth since 5 (versions 1 to 4: no mouth
# channel), and model.reference (a warped neutral frame; no longer rendered). Version 6 records the
# layout itself (``layout``) and its config has none of those keys.
READS = (1, 2, 3, 4, 5, 6)
_LAYOUT_KEYS = {"no_input_levels": "lineless_levels", "ramps": "ramps", "fine_ramps": "fine_ramps", "mouth": "mouth"}
# What each key was in the versions before it existed.
_BEFORE = {"no_input_levels": (1, 0), "ramps": (2, 0.0), "fine_ramps": (3, False), "mouth": (4, False)}
CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(path: str | Path, *, model: torch.nn.Module, step: int, config: dict[str, Any],
                    meta: dict[str, Any], optimizer: torch.optim.Optimizer | None = None,
                    kind: str = "puppet", layout: dict[str, Any] | None = None) -> None:
    """Write a checkpoint atomically (temp file, then rename). ``layout``: the model's input channels
    (``InputLayout.to_dict()``; default: today's)."""
    if layout is None:
        from puppet.face.inputs import InputLayout

        layout = InputLayout().to_dict()
    state = {
        "format": FORMAT, "version": VERSION, "kind": kind, "step": int(step), "config": config,
        "layout": layout,
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
    return _upgrade(state, p)


def _upgrade(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """Give an older checkpoint the layout it was trained with (from its version and the model settings
    of its time), and take those settings out of its config."""
    if state["version"] >= 6:
        return state
    from puppet.face.inputs import InputLayout

    model = state["config"].get("model")
    model = model if isinstance(model, dict) else {}
    if model.pop("reference", False):
        raise PuppetError(f"{path}: this model was trained with the warped reference frame (model.reference), "
                          "which this puppet no longer renders; retrain it")
    layout = InputLayout().to_dict()
    for key, name in _LAYOUT_KEYS.items():
        last_without, value = _BEFORE[key]
        layout[name] = model.pop(key, value if state["version"] <= last_without else layout[name])
    state["layout"] = layout
    return state
