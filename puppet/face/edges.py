"""Edge maps drawn from face-mesh landmarks: the generator's input.

One channel per part group, antialiased lines, uint8 (6, S, S) in [0, 255]
(the model sees them as float in [0, 1]). Training and animation draw with
the same function at the same size, so the model sees identical line styles.
"""

from __future__ import annotations

import functools

import numpy as np

PARTS = ("face_oval", "brows", "eyes", "irises", "nose", "lips")
# Display colours per part (RGB) for previews and side-by-side videos.
PART_COLORS = ((255, 255, 255), (255, 170, 0), (0, 200, 255), (0, 255, 120), (255, 80, 200), (255, 60, 60))


@functools.lru_cache(maxsize=1)
def part_connections() -> dict[str, np.ndarray]:
    """{part: (K, 2) int array of landmark index pairs} (MediaPipe's connection sets, see face_parts)."""
    from puppet.face.parts import CONNECTIONS

    return {k: np.array(CONNECTIONS[k], dtype=np.int64) for k in PARTS}


SUBPIXEL_SHIFT = 4  # lines and fills are drawn from coordinates in 1/16 px (cv2's ``shift``)


def draw_edges(lm: np.ndarray, size: int, line_width: int = 1) -> np.ndarray:
    """Draw landmarks (478, 2) given in crop pixels into a (6, size, size) uint8 edge map."""
    import cv2

    pts = np.round(lm * (1 << SUBPIXEL_SHIFT)).astype(np.int32)
    out = np.zeros((len(PARTS), size, size), dtype=np.uint8)
    for ch, part in enumerate(PARTS):
        pairs = part_connections()[part]
        lines = np.stack([pts[pairs[:, 0]], pts[pairs[:, 1]]], axis=1)  # (K, 2, 2)
        cv2.polylines(out[ch], list(lines), False, 255, line_width, cv2.LINE_AA, SUBPIXEL_SHIFT)
    return out


def distance_ramps(lm: np.ndarray, size: int, reach: float, grid: int = 32) -> np.ndarray:
    """Landmarks (478, 2) in crop pixels -> (6, size, size) uint8: per part, 255 on its lines falling
    linearly to 0 at ``reach`` px from them.

    A dense companion to :func:`draw_edges`: area-downsampled to the CRN's coarse grids a 1-px line
    keeps its position only to the grid cell, while a ramp's cell means move with every fraction of
    a pixel the part moves. Distances are exact (to the line segments) on a ``grid`` x ``grid``
    lattice of pixel centres and bilinearly resized to ``size``: ~8 ms a frame at 32.
    """
    import cv2

    grid = min(grid, size)
    g = (np.arange(grid, dtype=np.float32) + 0.5) * (size / grid) - 0.5
    yy, xx = np.meshgrid(g, g, indexing="ij")
    p = np.stack([xx.ravel(), yy.ravel()], axis=1)[:, None, :]  # (P, 1, 2)
    lm = lm.astype(np.float32)
    out = np.empty((len(PARTS), size, size), dtype=np.uint8)
    for ch, part in enumerate(PARTS):
        pairs = part_connections()[part]
        a, ab = lm[pairs[:, 0]], lm[pairs[:, 1]] - lm[pairs[:, 0]]  # segment starts and directions (K, 2)
        ap = p - a
        t = np.clip((ap * ab).sum(-1) / np.maximum((ab ** 2).sum(-1), 1e-12), 0.0, 1.0)  # nearest point's place
        d = np.sqrt(((ap - t[..., None] * ab) ** 2).sum(-1).min(axis=1)).reshape(grid, grid)
        ramp = cv2.resize(np.clip(1.0 - d / reach, 0.0, 1.0), (size, size), interpolation=cv2.INTER_LINEAR)
        out[ch] = np.round(255.0 * ramp)
    return out


def mouth_fill(lm: np.ndarray, size: int) -> np.ndarray:
    """Landmarks (478, 2) in crop pixels -> (1, size, size) uint8: 255 inside the inner lip contour
    (the mouth's opening, antialiased), 0 elsewhere.

    The lines tell the generator where the lips are; this tells it, as an area that survives any
    downsampling, how much of the mouth is open and so dark: with lines alone, a target who seldom
    opens the mouth got pink closed lips where the driver's open mouth was drawn (docs/experiments.md, "The
    mouth's opening").
    """
    import cv2

    from puppet.face.parts import INNER_LIPS

    out = np.zeros((1, size, size), dtype=np.uint8)
    pts = np.round(lm[list(INNER_LIPS)] * (1 << SUBPIXEL_SHIFT)).astype(np.int32)
    cv2.fillPoly(out[0], [pts], 255, cv2.LINE_AA, SUBPIXEL_SHIFT)
    return out


def part_points(n_points: int = 478) -> dict[str, np.ndarray]:
    """Face-mesh landmark indices of each drawn part (:data:`PARTS` order), then ``"rest"``: every
    other point (the face's surface). The MediaPipe parts share no point (tested), so each point
    is in exactly one entry."""
    out = {part: np.unique(pairs) for part, pairs in part_connections().items()}
    out["rest"] = np.setdiff1d(np.arange(n_points), np.concatenate(list(out.values())))
    return out


@functools.lru_cache(maxsize=1)
def _region_indices() -> tuple[np.ndarray, ...]:
    """Landmark indices of the expressive regions: each eye with its brow, and the lips."""
    pts = part_points()
    eyes_brows = np.union1d(pts["eyes"], pts["brows"])
    # MediaPipe numbers the image-left eye and brow below 249 and the image-right ones from 249 up.
    return eyes_brows[eyes_brows < 249], eyes_brows[eyes_brows >= 249], pts["lips"]


def part_mask(lm: np.ndarray, size: int, margin: int = 2) -> np.ndarray:
    """Landmarks (478, 2) in crop pixels -> (size, size) uint8 mask, 255 on the eyes with their
    brows and on the lips (their convex hulls grown by ``margin`` px), 0 elsewhere."""
    import cv2

    out = np.zeros((size, size), dtype=np.uint8)
    for idx in _region_indices():
        cv2.fillConvexPoly(out, cv2.convexHull(np.round(lm[idx]).astype(np.int32)), 255)
    if margin > 0:
        out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1)))
    return out


def edges_to_rgb(edges: np.ndarray) -> np.ndarray:
    """(6, S, S) uint8 edge map -> (S, S, 3) uint8 picture, one colour per part (channels after the
    sixth, a model input's warped reference, are not drawn)."""
    colors = np.array(PART_COLORS, dtype=np.float32) / 255.0  # (6, 3)
    img = np.einsum("khw,kc->hwc", edges[:len(PARTS)].astype(np.float32), colors)
    return np.clip(img, 0, 255).astype(np.uint8)
