"""Driver -> target landmark retargeting: the puppet keeps its own face shape.

Every landmark set is normalised by a similarity transform (rotation, uniform
scale, translation) fitted on stable points (eye corners, nose bridge) to a
canonical template. The driver's *expression* is its normalised landmarks
minus its normalised neutral; it is added to the target's normalised neutral.
The driver's head motion relative to its neutral pose (a similarity in the
canonical frame, limited to plausible ranges) is applied on top, and the
result is mapped into the target's crop with the target neutral's transform.

Expressions are *mapped*, not just clamped: per region (mouth with the lower
face, eyes, brows) the driver's expression amplitude range is scaled onto the
target's (a driver who opens the mouth twice as wide as the target ever does
drives the target's mouth to its own widest, and no further), so the
motion keeps its timing and shape. The per-landmark range the target shows
remains as a safety clamp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Eye corners (33, 133, 362, 263) and nose bridge (168, 6): they move with the
# head but hardly with expressions.
STABLE = np.array([33, 133, 362, 263, 168, 6])
LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 33, 263

MOUTH = (13, 14)  # inner lip midpoints
EYES = ((159, 145), (386, 374))  # upper/lower lid midpoints, left and right


def iod(lm: np.ndarray) -> float:
    """Inter-ocular (outer eye corner) distance of landmarks (478, 2)."""
    return float(np.linalg.norm(lm[RIGHT_EYE_OUTER] - lm[LEFT_EYE_OUTER]))


def openings(lm: np.ndarray) -> tuple[float, float]:
    """(mouth opening, mean eye opening), each divided by the inter-ocular distance."""
    d = iod(lm) + 1e-6
    mouth = np.linalg.norm(lm[MOUTH[0]] - lm[MOUTH[1]]) / d
    eyes = np.mean([np.linalg.norm(lm[a] - lm[b]) for a, b in EYES]) / d
    return float(mouth), float(eyes)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama) with dst ~ A @ src + t; returns the 2x3 matrix [A | t]."""
    src = src.astype(np.float64)
    dst = dst.astype(np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s0, d0 = src - ms, dst - md
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1
    r = u @ d @ vt
    var = (s0**2).sum() / len(src)
    scale = (sig * np.diag(d)).sum() / max(var, 1e-12)
    a = scale * r
    return np.concatenate([a, (md - a @ ms)[:, None]], axis=1)


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to points (K, 2)."""
    return pts @ m[:, :2].T + m[:, 2]


def invert(m: np.ndarray) -> np.ndarray:
    a_inv = np.linalg.inv(m[:, :2])
    return np.concatenate([a_inv, (-a_inv @ m[:, 2])[:, None]], axis=1)


def compose(m2: np.ndarray, m1: np.ndarray) -> np.ndarray:
    """m2 after m1."""
    return np.concatenate([m2[:, :2] @ m1[:, :2], (m2[:, :2] @ m1[:, 2] + m2[:, 2])[:, None]], axis=1)


def normalise(lm: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Landmarks (478, 2) mapped by the similarity that best fits their stable points to ``template``."""
    return apply(fit_similarity(lm[STABLE], template), lm)


def canonical_template(lm: np.ndarray) -> np.ndarray:
    """Stable points of ``lm`` rotated level, centred, scaled to unit outer-eye-corner distance."""
    e = lm[RIGHT_EYE_OUTER] - lm[LEFT_EYE_OUTER]
    ang = math.atan2(e[1], e[0])
    c, s = math.cos(-ang), math.sin(-ang)
    rot = np.array([[c, -s], [s, c]]) / max(np.hypot(*e), 1e-6)
    pts = (lm[STABLE] - lm[STABLE].mean(0)) @ rot.T
    return pts


@dataclass
class PoseLimits:
    """Limits on the head motion transferred from the driver (canonical units: eye distance = 1)."""

    max_degrees: float = 25.0
    max_shift: float = 0.6
    max_scale_change: float = 0.3  # +-30 %
    scale: float = 1.0  # 0 = keep the target's neutral pose, 1 = full driver motion


def decompose(q: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Similarity 2x3 -> (uniform scale, angle in radians, translation (2,))."""
    a = q[:, :2]
    return math.sqrt(abs(np.linalg.det(a))), math.atan2(a[1, 0], a[0, 0]), q[:, 2].copy()


def pose_range(landmarks: np.ndarray, neutral: np.ndarray, percentile: float = 98.0) -> PoseLimits:
    """Head motion a target clip contains, relative to its neutral frame, as PoseLimits.

    The puppet can only render poses it was trained on; driver motion beyond
    them makes the generator smear the face, so it is clamped to this range.
    """
    template = canonical_template(neutral)
    t0 = fit_similarity(neutral[STABLE], template)
    degs, shifts, scales = [], [], []
    for lm in landmarks:
        s, ang, t = decompose(compose(t0, invert(fit_similarity(lm[STABLE], template))))
        degs.append(abs(math.degrees(ang)))
        shifts.append(float(np.hypot(*t)))
        scales.append(abs(s - 1))
    p = lambda v: float(np.percentile(v, percentile))  # noqa: E731
    return PoseLimits(max_degrees=p(degs), max_shift=p(shifts), max_scale_change=p(scales))


def expression_range(landmarks: np.ndarray, neutral: np.ndarray, percentile: float = 99.0,
                     margin: float = 0.25) -> np.ndarray:
    """Per-landmark range of the target's own expression offsets, (2, 478, 2) low/high, canonical units.

    Offsets are normalised landmarks minus the normalised neutral. The range
    is widened by ``margin`` of its width so expressions are not flattened.
    """
    template = canonical_template(neutral)
    n0 = normalise(neutral, template)
    offs = np.stack([normalise(lm, template) - n0 for lm in landmarks])
    lo, hi = np.percentile(offs, 100 - percentile, axis=0), np.percentile(offs, percentile, axis=0)
    pad = margin * (hi - lo)
    return np.stack([lo - pad, hi + pad]).astype(np.float32)


# Gains outside this range would amplify tracker noise (tiny driver range) or freeze the region.
GAIN_RANGE = (0.25, 2.0)
NOSE_TIP = 1


def expression_regions(neutral: np.ndarray) -> dict[str, np.ndarray]:
    """Landmark indices per expression region: ``mouth`` (lips and the face below the nose tip,
    which moves with the jaw), ``eyes`` (lids and irises) and ``brows``."""
    from puppet.face.edges import part_connections

    parts = {k: np.unique(v) for k, v in part_connections().items()}
    eyes = np.union1d(parts["eyes"], parts["irises"])
    brows = parts["brows"]
    n = normalise(neutral, canonical_template(neutral))
    below = np.flatnonzero(n[:, 1] > n[NOSE_TIP, 1])
    mouth = np.union1d(parts["lips"], np.setdiff1d(below, np.union1d(eyes, brows)))
    return {"mouth": mouth, "eyes": eyes, "brows": brows}


def region_amplitudes(offsets: np.ndarray, regions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Expression offsets (F, 478, 2) -> {region: (F,) mean offset length over the region's landmarks}."""
    lengths = np.linalg.norm(offsets, axis=-1)
    return {r: lengths[:, idx].mean(axis=1) for r, idx in regions.items()}


def expression_amplitude(landmarks: np.ndarray, neutral: np.ndarray, percentile: float = 98.0) -> dict[str, float]:
    """How far each region of a clip (F, 478, 2) moves from ``neutral``: {region: amplitude percentile}.

    Canonical units (outer-eye-corner distance 1), comparable between people.
    """
    template = canonical_template(neutral)
    n0 = normalise(neutral, template)
    offs = np.stack([normalise(lm, template) - n0 for lm in landmarks])
    return {r: float(np.percentile(a, percentile)) for r, a in region_amplitudes(offs, expression_regions(neutral)).items()}


def _limit(q: np.ndarray, lim: PoseLimits) -> np.ndarray:
    scale, ang, t = decompose(q)
    ang = max(-math.radians(lim.max_degrees), min(math.radians(lim.max_degrees), ang)) * lim.scale
    scale = 1 + max(-lim.max_scale_change, min(lim.max_scale_change, scale - 1)) * lim.scale
    t = t * lim.scale
    n = np.hypot(*t)
    if n > lim.max_shift:
        t = t * lim.max_shift / n
    c, s = math.cos(ang), math.sin(ang)
    return np.array([[scale * c, -scale * s, t[0]], [scale * s, scale * c, t[1]]])


class Retargeter:
    """Map driver landmarks (any pixel frame) to target landmarks (target crop pixels).

    Args:
        target_neutral: (478, 2) target landmarks in its crop, neutral expression.
        expression_scale: multiplies the driver's expression deltas.
        limits: head-motion limits.
        expression_limits: (2, 478, 2) low/high expression offsets the target can show
            (see :func:`expression_range`); None = unlimited.
        target_amplitude: {region: amplitude} of the target clip (see :func:`expression_amplitude`);
            with it, each region's driver range is mapped onto the target's. The driver's range is
            measured by :meth:`observe` (a whole clip) or grows as frames are seen (live).
    """

    def __init__(self, target_neutral: np.ndarray, expression_scale: float = 1.0,
                 limits: PoseLimits | None = None, expression_limits: np.ndarray | None = None,
                 target_amplitude: dict[str, float] | None = None):
        self.template = canonical_template(target_neutral)
        self.regions = expression_regions(target_neutral) if target_amplitude else {}
        self.target_amplitude = dict(target_amplitude or {})
        self.driver_amplitude: dict[str, float] = {}
        self.observed = False
        self.t_target = fit_similarity(target_neutral[STABLE], self.template)
        self.n_target = apply(self.t_target, target_neutral)
        self.t_target_inv = invert(self.t_target)
        self.expression_scale = expression_scale
        self.limits = limits or PoseLimits()
        self.expression_limits = expression_limits
        self.t_driver0: np.ndarray | None = None
        self.n_driver0: np.ndarray | None = None

    @property
    def calibrated(self) -> bool:
        return self.n_driver0 is not None

    def calibrate(self, driver_neutral: np.ndarray) -> None:
        """Take these driver landmarks (478, 2) as the driver's neutral face and pose."""
        self.t_driver0 = fit_similarity(driver_neutral[STABLE], self.template)
        self.n_driver0 = apply(self.t_driver0, driver_neutral)
        if not self.observed:
            self.driver_amplitude = {}

    def _offsets(self, driver: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t_d = fit_similarity(driver[STABLE], self.template)
        return apply(t_d, driver) - self.n_driver0, t_d

    def observe(self, drivers: list[np.ndarray], percentile: float = 98.0) -> None:
        """Measure the driver's expression range on a whole clip (list of (478, 2)); call after calibrate."""
        if not self.regions or not drivers:
            return
        if not self.calibrated:
            self.calibrate(drivers[0])
        offs = np.stack([self._offsets(lm)[0] for lm in drivers])
        amps = region_amplitudes(offs, self.regions)
        self.driver_amplitude = {r: float(np.percentile(a, percentile)) for r, a in amps.items()}
        self.observed = True

    def gains(self) -> dict[str, float]:
        """{region: factor} applied to the driver's expression: target range / driver range, bounded."""
        out = {}
        for r, a_t in self.target_amplitude.items():
            a_d = self.driver_amplitude.get(r, 0.0)
            out[r] = float(np.clip(a_t / a_d, *GAIN_RANGE)) if a_d > 1e-9 else 1.0
        return out

    def _map(self, offsets: np.ndarray) -> np.ndarray:
        if not self.observed:  # live: the driver's range is what it has shown so far, at least the target's
            for r, a in region_amplitudes(offsets[None], self.regions).items():
                self.driver_amplitude[r] = max(self.driver_amplitude.get(r, self.target_amplitude[r]), float(a[0]))
        gain = np.ones((len(offsets), 1))
        for r, g in self.gains().items():
            gain[self.regions[r]] = g
        return offsets * gain

    def __call__(self, driver: np.ndarray) -> np.ndarray:
        """Driver landmarks (478, 2) -> target landmarks (478, 2) in target crop pixels."""
        if not self.calibrated:
            self.calibrate(driver)
        offsets, t_d = self._offsets(driver)
        if self.regions:
            offsets = self._map(offsets)
        expression = self.expression_scale * offsets
        if self.expression_limits is not None:
            expression = np.clip(expression, self.expression_limits[0], self.expression_limits[1])
        shape = self.n_target + expression
        q = _limit(compose(self.t_driver0, invert(t_d)), self.limits)
        return apply(self.t_target_inv, apply(q, shape)).astype(np.float32)


def neutral_index(landmarks: np.ndarray) -> int:
    """Index of the frame whose normalised landmarks (F, 478, 2) are closest to the median shape."""
    template = canonical_template(landmarks[0])
    norm = np.stack([normalise(lm, template) for lm in landmarks])
    median = np.median(norm, axis=0)
    return int(np.argmin(((norm - median) ** 2).sum(axis=(1, 2))))
