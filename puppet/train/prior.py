"""A prior: one generator trained on the faces of several clips, to start a new puppet from.

A puppet trained from scratch on one short clip has seen only the poses and
expressions of that clip. ``pretrain(clips, run_dir, cfg)`` trains the same
CRN on several people at once, to learn what an edge map says about any face
(layout, shading, an open mouth, a turned head; no person is named in the
input, though it learns to tell them apart by their face outlines, docs/experiments.md "A
prior"); ``puppet train --init PRIOR`` then fine-tunes it on the target. The
prior must never have seen the target it is judged on.

A prior's run folder holds what a puppet run does (``data/<NN>_<clip>/`` per
clip), and its checkpoint has kind ``"prior"``: it renders no one, so
``animate`` refuses it. :func:`export_prior` writes the weights alone in half
precision (7 MB for the default CRN, against 44 MB with the optimizer state).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from puppet.config import Config
from puppet.data.checkpoint import FORMAT, VERSION, load_checkpoint
from puppet.data.dataset import Extraction, extract, split
from puppet.data.sampling import balance_weights, expression_features
from puppet.data.video import probe
from puppet.errors import PuppetError
from puppet.face.inputs import InputLayout, model_inputs
from puppet.train.loop import (
    Dist,
    StepCallback,
    TrainResult,
    device_for,
    open_run,
    optimise,
    torchrun_world,
)
from puppet.train.target import frames_task
from puppet.utils import atomic_path

log = logging.getLogger("puppet")
KIND = "prior"


def concat_clips(clips: list[Extraction]) -> Extraction:
    """Several extractions of the same size -> one (frames, landmarks, edges concatenated)."""
    sizes = {c.size for c in clips}
    if len(sizes) != 1:
        raise ValueError(f"clips of different sizes {sorted(sizes)}")
    manifest = {"settings": clips[0].manifest["settings"], "clips": [c.manifest.get("source") for c in clips]}
    return Extraction(manifest, *(np.concatenate([getattr(c, k) for c in clips])
                                  for k in ("frames", "landmarks", "edges")))


def clip_weights(per_clip: list[np.ndarray]) -> np.ndarray:
    """Each clip's sampling probabilities (summing to 1 each) -> one vector in which every clip
    has the same share, so a long clip does not drown the short ones."""
    return np.concatenate([w / w.sum() for w in per_clip]) / len(per_clip)


def pretrain(clips: list[str | Path], run_dir: str | Path, cfg: Config, resume: bool = False,
             on_step: StepCallback | None = None, on_extract=None) -> TrainResult:
    """Train (or resume) a prior on ``clips`` (at least two videos) in ``run_dir``.

    Each clip's end (``data.val_fraction``) is held out, as for a puppet; the
    held-out score is over all clips. Single process only (no torchrun).
    """
    run_dir, clips = Path(run_dir), [Path(c) for c in clips]
    if len(clips) < 2:
        raise PuppetError("a prior needs at least two clips (of different people)")
    for c in clips:
        probe(c, audio=False)  # a bad input fails here, before any work
    # Checked before joining a torchrun group: refusing after it would leave the group to tear down.
    if torchrun_world() > 1:
        raise PuppetError("puppet pretrain runs in one process; start it without torchrun")
    dist = Dist()
    state = open_run(run_dir, cfg, resume)
    layout = InputLayout.for_run(state)
    datas, train_parts, val_parts, inputs, weights = [], [], [], [], []
    offset = 0
    for i, c in enumerate(clips):
        data = extract(c, run_dir / "data" / f"{i:02d}_{c.stem}", cfg.data, progress=on_extract)
        tr, va = split(len(data), cfg.data.val_fraction, data.manifest.get("segments"))
        if len(tr) < 1:
            raise PuppetError(f"{c}: too few frames with a face to train on ({len(data)})")
        inputs.append(model_inputs(data.edges, data.landmarks, layout))
        datas.append(data)
        weights.append(balance_weights(expression_features(data.landmarks[tr]), cfg.train.balance))  # 0: uniform
        train_parts.append(tr + offset)
        val_parts.append(va + offset)
        offset += len(data)
    data = concat_clips(datas)
    train_idx, val_idx = np.concatenate(train_parts), np.concatenate(val_parts)
    log.info("%d clips: %d training frames, %d held out", len(clips), len(train_idx), len(val_idx))
    meta = {"clips": [str(c) for c in clips], "frames": [len(d) for d in datas], "size": data.size}
    device = device_for(cfg, dist)
    task = frames_task(KIND, run_dir, cfg, device, data, np.concatenate(inputs), train_idx, val_idx, meta,
                       clip_weights(weights), layout)
    return optimise(run_dir, cfg, device, task, state, on_step, dist)


def export_prior(run: str | Path, out: str | Path) -> Path:
    """Write a prior's weights in half precision with its config and meta (no optimizer state)."""
    state = load_checkpoint(run)
    if state.get("kind") != KIND:
        raise PuppetError(f"{run}: not a prior (it is a {state.get('kind')} model); train one with puppet "
                          "pretrain")
    slim = {"format": FORMAT, "version": VERSION, "kind": KIND, "step": state["step"], "config": state["config"],
            "model": {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()},
            "optimizer": None, "meta": state["meta"], "layout": state["layout"]}
    out = Path(out)
    with atomic_path(out) as tmp:
        torch.save(slim, tmp)
    return out
