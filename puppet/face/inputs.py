"""The generator's input, drawn from landmarks: which channels, in which order, for which modules.

A face model's input is the edge map (6 channels, one per part), then each part's distance ramp
(6), then the mouth's opening filled (1). Training (puppet.train) and rendering (puppet.face.drive)
both build it here, so a model is always given exactly the kind of input it was trained on.

What a model takes is fixed when it is trained: :class:`InputLayout` travels in its checkpoint.
Checkpoints written before it did (versions 1 to 5) get theirs from their version and the model
settings of their time (puppet.data.checkpoint).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from puppet.face.edges import PARTS, distance_ramps, mouth_fill


@dataclass(frozen=True)
class InputLayout:
    """Which input channels a face model takes, and which of its modules take them.

    Attributes:
        ramps: reach of each part's distance ramp, a fraction of the crop side S: 1 on the part's
            lines, 0 this far away. The coarse modules then know where a part is to a fraction of a
            pixel, not only to their grid cell. 0: no ramps (models of versions 1 and 2).
        fine_ramps: the ramps go to the finest modules too, which never take the lines: too smooth to
            be copied into the image, exact enough to place closed lips and glasses frames.
        mouth: one channel with the inner lip contour filled, so the model sees how open the mouth is
            as an area.
        lineless_levels: how many of the finest modules do not take the edge lines: at full
            resolution, thin input lines are a shortcut the generator copies into the image (a
            painted nose line).
    """

    ramps: float = 0.25
    fine_ramps: bool = True
    mouth: bool = True
    lineless_levels: int = 1

    def channels(self) -> tuple[int, int]:
        """(leading, dense): the channels only the coarser modules take (the lines, and the ramps when
        they stop where the lines stop), then those every module takes (ramps, mouth)."""
        lines = ramps = len(PARTS)
        ramps = ramps if self.ramps else 0
        leading = lines + (0 if self.fine_ramps else ramps)
        dense = (ramps if self.fine_ramps else 0) + (1 if self.mouth else 0)
        return leading, dense

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputLayout":
        return cls(**d)

    @classmethod
    def for_run(cls, state: dict[str, Any] | None) -> "InputLayout":
        """The layout a training run uses: its checkpoint's when it resumes (``state``, a loaded
        checkpoint), today's when it starts afresh (None)."""
        return cls.from_dict(state["layout"]) if state else cls()


def model_input(edges: np.ndarray, landmarks: np.ndarray, layout: InputLayout) -> np.ndarray:
    """Edge map (6, S, S) uint8 of ``landmarks`` (478, 2) in crop pixels -> the generator's input
    (C, S, S) uint8: the edge map, then with ``layout.ramps`` each part's distance ramp reaching
    ``ramps`` x S, then with ``layout.mouth`` the mouth's opening filled."""
    size = edges.shape[-1]
    parts = [edges]
    if layout.ramps:
        parts.append(distance_ramps(landmarks, size, layout.ramps * size))
    if layout.mouth:
        parts.append(mouth_fill(landmarks, size))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


def model_inputs(edges: np.ndarray, landmarks: np.ndarray, layout: InputLayout) -> np.ndarray:
    """:func:`model_input` for many frames: edge maps (K, 6, S, S) and landmarks (K, 478, 2) ->
    (K, C, S, S) uint8 (the edge maps themselves when there is nothing to add)."""
    if not layout.ramps and not layout.mouth:
        return edges
    return np.stack([model_input(e, lm, layout) for e, lm in zip(edges, landmarks)])
