"""The target's neutral frame, warped to other landmarks: a dense input the CRN can copy texture from.

Edge lines tell the generator where the face parts are but nothing of what
they look like, so in a few CPU minutes it learns colour and shape and hardly
any texture (hair, glasses rims, the room behind). A piecewise-affine warp of
the target's own neutral crop to the frame's landmarks puts that texture,
roughly in place, into the input; the network only has to correct it (open
the mouth, shade a turned cheek). The image border is pinned, so the
background stays where it is and only the face moves.

Triangles come from a Delaunay triangulation of the neutral landmarks plus
border points, computed once per :class:`Warper`; warping a frame rasterises
the triangles at the new landmarks and maps every pixel back with its
triangle's affine map (``cv2.remap``), a few milliseconds at 128².
"""

from __future__ import annotations

import numpy as np


_IDENTITY = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # the affine map [x, y, 1] -> [x, y]


def border_points(size: int, per_side: int = 4) -> np.ndarray:
    """(4 * per_side, 2) points evenly spaced along the border of a size x size image, corners included."""
    t = np.linspace(0, size - 1, per_side + 1)[:-1]
    e = float(size - 1)
    return np.concatenate([np.stack([t, np.zeros_like(t)], 1), np.stack([np.full_like(t, e), t], 1),
                           np.stack([e - t, np.full_like(t, e)], 1), np.stack([np.zeros_like(t), e - t], 1)])


def triangulate(points: np.ndarray, size: int) -> np.ndarray:
    """Delaunay triangles (T, 3) of vertex indices into ``points`` (N, 2), all inside [0, size)²."""
    import cv2

    sub = cv2.Subdiv2D((-1, -1, size + 2, size + 2))
    pts = np.clip(points, 0, size - 1).astype(np.float32)
    for p in pts:
        sub.insert((float(p[0]), float(p[1])))
    tri = sub.getTriangleList().reshape(-1, 3, 2)
    # Subdiv2D returns coordinates; map them back to indices (points are distinct up to rounding).
    d = np.linalg.norm(tri[:, :, None, :] - pts[None, None, :, :], axis=-1)  # (T, 3, N)
    idx = d.argmin(-1)
    ok = (d.min(-1) < 1e-3).all(1) & (idx[:, 0] != idx[:, 1]) & (idx[:, 1] != idx[:, 2]) & (idx[:, 0] != idx[:, 2])
    return idx[ok].astype(np.int64)


class Warper:
    """Warp a reference crop (S, S, 3) with landmarks (478, 2) to new landmarks, borders fixed.

    Args:
        reference: (S, S, 3) uint8 image (the target's neutral crop).
        landmarks: (478, 2) float crop pixels of the reference.
    """

    def __init__(self, reference: np.ndarray, landmarks: np.ndarray):
        if reference.ndim != 3 or reference.shape[0] != reference.shape[1] or reference.shape[2] != 3:
            raise ValueError(f"reference must be a square (S, S, 3) image, got shape {reference.shape}")
        self.reference = np.ascontiguousarray(reference, dtype=np.uint8)
        self.size = int(reference.shape[0])
        self.border = border_points(self.size)
        # Landmarks outside the crop are pulled onto its border, so triangles stay inside the image.
        self.src = np.concatenate([np.clip(landmarks, 0, self.size - 1), self.border]).astype(np.float64)
        self.tri = triangulate(self.src, self.size)
        ys, xs = np.mgrid[0:self.size, 0:self.size].astype(np.float32)
        self._grid = (xs, ys)

    def maps(self, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks (478, 2) -> (map_x, map_y) (S, S) float32: where each output pixel reads the reference."""
        import cv2

        dst = np.concatenate([np.clip(landmarks, 0, self.size - 1), self.border]).astype(np.float64)
        ids = np.zeros((self.size, self.size), np.int32)
        shift = 4
        for k, t in enumerate(self.tri):
            cv2.fillConvexPoly(ids, np.round(dst[t] * (1 << shift)).astype(np.int32), k + 1, cv2.LINE_8, shift)
        # Affine map dst -> src per triangle: [x_src, y_src] = M @ [x, y, 1].
        d = np.concatenate([dst[self.tri], np.ones((len(self.tri), 3, 1))], axis=2)  # (T, 3, 3)
        s = self.src[self.tri]  # (T, 3, 2)
        det = np.linalg.det(d)
        good = np.abs(det) > 1e-9  # a collapsed triangle keeps the identity
        m = np.zeros((len(self.tri), 3, 2))
        m[good] = np.linalg.solve(d[good], s[good])
        m[~good] = _IDENTITY
        m = np.concatenate([_IDENTITY[None], m]).astype(np.float32)  # id 0 (no triangle): identity
        xs, ys = self._grid
        mm = m[ids]  # (S, S, 3, 2)
        map_x = xs * mm[..., 0, 0] + ys * mm[..., 1, 0] + mm[..., 2, 0]
        map_y = xs * mm[..., 0, 1] + ys * mm[..., 1, 1] + mm[..., 2, 1]
        return map_x, map_y

    def __call__(self, landmarks: np.ndarray) -> np.ndarray:
        """Landmarks (478, 2) in crop pixels -> the reference warped onto them, (3, S, S) uint8."""
        import cv2

        mx, my = self.maps(landmarks)
        out = cv2.remap(self.reference, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return np.ascontiguousarray(out.transpose(2, 0, 1))
