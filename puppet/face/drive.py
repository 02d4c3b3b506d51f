"""The driver side, in one place: driver landmarks -> retargeted -> smoothed -> edge map.

``puppet animate``, ``puppet live``, ``puppet eval`` and single-image training
(``puppet train --image``) all turn a driver's face into the model's input
with :class:`DriverToEdges`, so a model is always driven with exactly the kind
of edge map it was trained on. :class:`RenderOptions` holds every tunable of
that path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from puppet.face.edges import draw_edges
from puppet.face.inputs import InputLayout, model_input
from puppet.face.landmarks import OneEuroFilter, landmark_box
from puppet.face.retarget import PoseLimits, Retargeter


@dataclass
class RenderOptions:
    """How driver motion becomes target motion (shared by animate, live, eval and single-image training).

    Attributes:
        smooth: temporal smoothing strength (0 = off, 1 = default, 2 = twice as smooth).
        smooth_cutoff: One Euro cutoff at rest, Hz, at ``smooth`` = 1 (lower = steadier).
        smooth_beta: how fast the cutoff rises with speed (face sizes per second), at ``smooth`` = 1.
        expression_scale: multiplies the driver's expression (e.g. 1.3 exaggerates).
        pose_scale: how much of the driver's head motion is applied (0 = none, 1 = all).
        limit_expression: keep expressions within the range the target clip shows (wider
            ones are outside what the model learned and smear).
        map_expression: scale each region's driver range onto the target's (mouth, eyes, brows)
            instead of only clamping per landmark.
        neutral: driver frame taken as its resting face (files; default: mean of the first frames).
    """

    smooth: float = 1.0
    smooth_cutoff: float = 1.0
    # 160: the puppet stops when the driver stops; on the five models measured (three targets) the
    # jitter in the driver's still stretches fell from 1.04-1.25x the real target's (80) to
    # 0.87-1.09x, mouth and eyes unchanged (docs/experiments.md, "Fine detail").
    smooth_beta: float = 160.0
    expression_scale: float = 1.0
    pose_scale: float = 1.0
    limit_expression: bool = True
    map_expression: bool = True
    neutral: int | None = None


class DriverToEdges:
    """Driver landmarks (478, 2), any pixel frame -> target landmarks and edge maps.

    Args:
        target_neutral: (478, 2) the target's neutral landmarks in its crop pixels.
        size: crop / edge-map side S. line_width: edge line thickness at S.
        options: :class:`RenderOptions`.
        pose_limits: head motion the target can show (from its clip).
        expression_limits: (2, 478, 2) per-landmark offset range of the target, or None.
        target_amplitude: {region: amplitude} of the target clip, or None (no mapping).
        layout: the input channels of the model driven (its checkpoint's; default: today's).
    """

    def __init__(self, target_neutral: np.ndarray, size: int, line_width: int = 1,
                 options: RenderOptions | None = None, pose_limits: PoseLimits | None = None,
                 expression_limits: np.ndarray | None = None, target_amplitude: dict[str, float] | None = None,
                 layout: InputLayout | None = None):
        o = options or RenderOptions()
        self.options, self.size, self.line_width = o, size, line_width
        self.layout = layout or InputLayout()
        limits = PoseLimits(**vars(pose_limits)) if pose_limits is not None else PoseLimits()
        limits.scale = o.pose_scale
        self.retargeter = Retargeter(target_neutral, o.expression_scale, limits,
                                     expression_limits if o.limit_expression else None,
                                     target_amplitude if o.map_expression else None)
        # Smoothing runs in units of the target's face size (as the target's own track in
        # puppet.data.dataset), so beta means the same for every crop size.
        self.face = float(landmark_box(target_neutral)[2]) or 1.0
        self.filter = OneEuroFilter(o.smooth_cutoff / o.smooth, o.smooth_beta / o.smooth) if o.smooth > 0 else None

    def calibrate(self, driver_neutral: np.ndarray) -> None:
        """Take driver landmarks (478, 2) as the driver's resting face; restart smoothing."""
        self.retargeter.calibrate(driver_neutral)
        if self.filter is not None:
            self.filter.reset()

    def observe(self, drivers: list[np.ndarray]) -> None:
        """Measure the driver's expression range on its whole clip (files); live mode learns it as it goes."""
        self.retargeter.observe(drivers)

    def landmarks(self, driver: np.ndarray, t: float) -> np.ndarray:
        """Driver landmarks at time t (seconds) -> smoothed target landmarks (478, 2) in crop pixels."""
        lm = self.retargeter(driver)
        if self.filter is not None:
            lm = self.filter(lm / self.face, t) * self.face
        return lm

    def draw(self, target_landmarks: np.ndarray) -> np.ndarray:
        """Target landmarks (478, 2) in crop pixels -> model input (C, S, S) uint8, as in training
        (puppet.face.inputs)."""
        return model_input(draw_edges(target_landmarks, self.size, self.line_width), target_landmarks,
                           self.layout)

    def __call__(self, driver: np.ndarray, t: float) -> np.ndarray:
        """Driver landmarks at time t -> model input (C, S, S) uint8."""
        return self.draw(self.landmarks(driver, t))

    def clip(self, drivers: list[np.ndarray], fps: float) -> np.ndarray:
        """Every frame of a driver clip (calibrated and observed, see ``animate.prepare_driver``) ->
        model inputs (F, C, S, S), frame i at time i / fps."""
        return np.stack([self(lm, i / fps) for i, lm in enumerate(drivers)])
