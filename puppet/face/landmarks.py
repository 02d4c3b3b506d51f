"""Facial landmarks (MediaPipe face mesh), temporal smoothing, and face crops.

Landmarks are float32 arrays (478, 2) of (x, y) pixel coordinates: 468 mesh
points plus 10 iris points (``refine_landmarks=True``). Pixel i's centre is at i,
in MediaPipe's output (measured in tests/test_landmarks.py) as in OpenCV's warps,
resizes and drawing, so crops (:func:`to_crop`) and edge maps need no half-pixel terms.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass

import numpy as np

N_LANDMARKS = 478


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C-level stderr (MediaPipe/TFLite start-up chatter that ignores Python logging)."""
    try:
        fd = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)
        os.close(devnull)


class FaceMesh:
    """MediaPipe face mesh on RGB frames; ``detect(frame)`` -> (478, 2) pixels or None.

    ``video=True`` tracks across consecutive frames (faster, steadier);
    ``video=False`` treats every frame independently (still images).
    """

    def __init__(self, video: bool = True, min_confidence: float = 0.5, max_faces: int = 1):
        with _quiet_stderr():
            import mediapipe as mp

            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=not video, refine_landmarks=True, max_num_faces=max_faces,
                min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence)
            # The graph's calculators start (and log) asynchronously; one blocking call
            # on a blank frame waits for them while stderr is still silenced.
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self._seen_face = False

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        faces = self.detect_all(rgb)
        return faces[0][:, :2].copy() if faces else None

    def detect_all(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Every face found (up to ``max_faces``): (478, 3) float32 each, x and y in pixels and
        MediaPipe's relative depth z in the same units as x (smaller is nearer the camera)."""
        h, w = rgb.shape[:2]
        # The landmark calculators log a warning on the first face; keep the terminal clean.
        with contextlib.nullcontext() if self._seen_face else _quiet_stderr():
            res = self._mesh.process(np.ascontiguousarray(rgb))
        if not res.multi_face_landmarks:
            return []
        self._seen_face = True
        return [np.array([(p.x * w, p.y * h, p.z * w) for p in face.landmark], dtype=np.float32)
                for face in res.multi_face_landmarks]

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> "FaceMesh":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class OneEuroFilter:
    """One Euro filter (Casiez et al. 2012) on arrays of any shape.

    Low speed -> low cutoff (removes jitter); high speed -> higher cutoff
    (follows fast motion without lag). ``min_cutoff`` in Hz, ``beta`` per unit
    of the signal's speed (units/second): scale the signal to O(1) first.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x = None
        self._dx = None
        self._t = None

    @staticmethod
    def _alpha(cutoff, dt):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.astype(np.float32)
        dt = t - self._t
        dx = (x - self._x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        a = self._alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x.astype(np.float32)


@dataclass(frozen=True)
class CropBox:
    """A square crop: centre (cx, cy) and side, in source pixels."""

    cx: float
    cy: float
    side: float

    def to_list(self) -> list[float]:
        return [float(self.cx), float(self.cy), float(self.side)]

    def affine(self, size: int) -> np.ndarray:
        """2x3 matrix mapping source pixels to the size x size crop."""
        s = size / self.side
        return np.array([[s, 0, size / 2 - s * self.cx], [0, s, size / 2 - s * self.cy]], dtype=np.float64)


def landmark_box(lm: np.ndarray) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the landmarks' bounding box, side = max(width, height)."""
    lo, hi = lm.min(axis=0), lm.max(axis=0)
    c = (lo + hi) / 2
    return float(c[0]), float(c[1]), float(max(hi - lo))


def fixed_crop_box(landmarks: list[np.ndarray], scale: float = 1.5) -> CropBox:
    """One box for a whole clip: median landmark-box centre, side = scale x median side."""
    boxes = np.array([landmark_box(lm) for lm in landmarks])
    cx, cy, side = np.median(boxes, axis=0)
    return CropBox(cx, cy, side * scale)


def smooth_crop_boxes(landmarks: list[np.ndarray], scale: float = 1.5, momentum: float = 0.9) -> list[CropBox]:
    """A moving box per frame: EMA over landmark-box centre and side (for large head motion)."""
    out, state = [], None
    for lm in landmarks:
        b = np.array(landmark_box(lm))
        state = b if state is None else momentum * state + (1 - momentum) * b
        out.append(CropBox(state[0], state[1], state[2] * scale))
    return out


def crop(frame: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Crop and resize a frame (H, W, 3) to (size, size, 3); outside the frame, replicate the border."""
    import cv2

    interp = cv2.INTER_AREA if box.side > size else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, box.affine(size), (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def to_crop(lm: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Source-pixel landmarks (478, 2) -> pixel coordinates in the size x size crop."""
    m = box.affine(size)
    return (lm @ m[:, :2].T + m[:, 2]).astype(np.float32)
