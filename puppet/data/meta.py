"""What a checkpoint records about its target, as one typed object.

Stored in checkpoints as a plain dict of tensors and primitives (loadable with
``weights_only=True``); :meth:`TargetMeta.from_dict` reads older checkpoints
too, filling what they lack with None.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from puppet.face.retarget import PoseLimits

if TYPE_CHECKING:
    from pathlib import Path

    from puppet.data.dataset import Extraction

_ARRAYS = ("neutral_landmarks", "neutral_crop", "expression_range", "neutral_frame")


@dataclass
class TargetMeta:
    """The target as rendering needs it.

    Attributes:
        source: the target video (or portrait) it was trained on; driver: single-image mode's driver.
        fps: the target clip's frame rate. size: crop / output side S. line_width: edge lines at S.
        neutral_index, neutral_source_frame: the neutral frame (among kept frames / in the video).
        neutral_landmarks: (478, 2) float32 crop pixels. neutral_crop: (S, S, 3) uint8.
        crop_box: [cx, cy, side] of the crop in source pixels.
        pose_range: PoseLimits fields (head motion the target shows).
        expression_range: (2, 478, 2) per-landmark offset range, or None.
        expression_amplitude: {region: amplitude} of the target's expressions, or None.
        neutral_frame: (H, W, 3) uint8 full frame for paste-back, or None.
        vgg: which feature weights trained it.
    """

    source: str
    fps: float
    size: int
    neutral_landmarks: np.ndarray
    neutral_crop: np.ndarray
    crop_box: list[float]
    line_width: int = 1
    neutral_index: int = 0
    neutral_source_frame: int = 0
    pose_range: dict[str, float] = field(default_factory=dict)
    expression_range: np.ndarray | None = None
    expression_amplitude: dict[str, float] | None = None
    neutral_frame: np.ndarray | None = None
    driver: str | None = None
    vgg: str = "none"

    def pose_limits(self) -> PoseLimits:
        return PoseLimits(**self.pose_range)

    def to_dict(self) -> dict[str, Any]:
        import torch

        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in _ARRAYS and v is not None:
                v = torch.from_numpy(np.ascontiguousarray(v))
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TargetMeta":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {}
        for k, v in d.items():
            if k not in names:
                continue  # keys of older versions that rendering no longer needs
            if k in _ARRAYS and v is not None and hasattr(v, "numpy"):
                v = v.numpy()
            kw[k] = v
        return cls(**kw)


def target_meta(data: "Extraction", video: "Path") -> TargetMeta:
    """What rendering needs from the target: neutral landmarks and frames, crop, fps, motion ranges."""
    from puppet.data.video import read_frames
    from puppet.face.retarget import (
        expression_amplitude,
        expression_range,
        neutral_index,
        pose_range,
    )

    k = neutral_index(data.landmarks)
    src_index = data.manifest["kept"][k]
    boxes = data.manifest["crop_boxes"]
    box = boxes[0] if len(boxes) == 1 else boxes[k]
    full = next((np.ascontiguousarray(f) for f in read_frames(video, 1, start=src_index)), None)
    neutral = data.landmarks[k]
    return TargetMeta(
        source=str(video), fps=float(data.manifest["fps"]), size=data.size,
        neutral_landmarks=neutral.copy(), neutral_crop=data.frames[k].copy(), crop_box=[float(v) for v in box],
        line_width=int(data.manifest["settings"]["line_width"]), neutral_index=int(k),
        neutral_source_frame=int(src_index), pose_range=dataclasses.asdict(pose_range(data.landmarks, neutral)),
        expression_range=expression_range(data.landmarks, neutral),
        expression_amplitude=expression_amplitude(data.landmarks, neutral), neutral_frame=full)
