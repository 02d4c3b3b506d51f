"""Edge maps: channels per part, drawn where the landmarks are, identical for identical input."""

import numpy as np

from puppet.face.edges import (
    PARTS,
    distance_ramps,
    draw_edges,
    edges_to_rgb,
    mouth_fill,
    part_connections,
)


def _synthetic_landmarks(size):
    rng = np.random.default_rng(0)
    return (rng.random((478, 2)) * 0.6 + 0.2).astype(np.float32) * size


def test_connections_cover_parts():
    conn = part_connections()
    assert tuple(conn) == PARTS
    assert all(len(v) > 0 and v.max() < 478 for v in conn.values())
    assert conn["irises"].min() >= 468  # refined iris points


def test_draw_shape_dtype_and_determinism():
    lm = _synthetic_landmarks(64)
    a = draw_edges(lm, 64)
    assert a.shape == (6, 64, 64) and a.dtype == np.uint8
    assert (a.reshape(6, -1).max(axis=1) > 0).all()
    np.testing.assert_array_equal(a, draw_edges(lm, 64))


def test_lines_follow_landmarks():
    lm = np.zeros((478, 2), np.float32) + 5
    i, j = part_connections()["lips"][0]
    lm[i] = (10, 20)
    lm[j] = (50, 20)
    e = draw_edges(lm, 64)
    assert e[5, 20, 30] > 200  # on the segment
    assert e[5, 40, 30] == 0


def _one_lip_segment(y, size=64):
    """Landmarks whose lips are one horizontal segment (8, y)-(56, y); every other point far off-grid."""
    lm = np.full((478, 2), -1000.0, np.float32)
    lm[part_connections()["lips"].ravel()] = (8.0, y)
    i, j = part_connections()["lips"][0]
    lm[j] = (56.0, y)
    return lm


def test_distance_ramps_known_values():
    """255 x (1 - distance / reach) on a line lying on the 32-lattice (its points at 0.5 + 2k px), where
    the bilinear resize is exact; 0 from ``reach`` px on; one channel per part."""
    r = distance_ramps(_one_lip_segment(32.5), 64, reach=16.0)
    assert r.shape == (6, 64, 64) and r.dtype == np.uint8
    lips = PARTS.index("lips")
    assert (np.delete(r, lips, axis=0) == 0).all()  # the other parts lie far outside the crop
    col = r[lips, :, 32].astype(float)
    expected = 255 * np.clip(1 - np.abs(np.arange(64) - 32.5) / 16, 0, 1)
    np.testing.assert_allclose(col, expected, atol=0.51)
    assert col[:17].max() == 0 and col[49:].max() == 0
    assert r[lips, 32, 1] < r[lips, 32, 6] < r[lips, 32, 12] == 247  # beyond the segment's end it falls again


def test_distance_ramps_see_a_fraction_of_a_pixel_on_a_coarse_grid():
    """Area-pooled to an 8x8 grid (8-px cells), as the CRN's coarse modules see it: a line moved by a
    pixel inside its cell looks the same, while the ramps' cells change with every quarter pixel."""
    def pooled(a):
        return a.astype(float).reshape(8, 8, 8, 8).mean(axis=(1, 3))

    lips = PARTS.index("lips")
    ys = [28.0, 28.25, 28.5, 28.75, 29.0]
    line_cell = [pooled(draw_edges(_one_lip_segment(y), 64)[lips])[3, 4] for y in ys]
    assert line_cell[0] > 0 and abs(line_cell[0] - line_cell[-1]) < 0.5
    below = np.array([pooled(distance_ramps(_one_lip_segment(y), 64, reach=16.0)[lips])[4:6, 4] for y in ys])
    assert (np.diff(below, axis=0) > 0).all()  # nearer with every quarter pixel: brighter


def test_inner_lips_are_one_closed_loop_of_lip_connections():
    from puppet.face.parts import INNER_LIPS

    pairs = {frozenset(map(int, p)) for p in part_connections()["lips"]}
    loop = list(INNER_LIPS) + [INNER_LIPS[0]]
    assert len(set(INNER_LIPS)) == len(INNER_LIPS) == 20
    assert all(frozenset((a, b)) in pairs for a, b in zip(loop[:-1], loop[1:]))


def _mouth(open_px: float, centre=(32.0, 40.0), half_width: float = 12.0) -> np.ndarray:
    """Landmarks with the inner lip contour on an ellipse of the given half-height (0: a closed mouth,
    all its points on one horizontal line), everything else far outside the crop."""
    from puppet.face.parts import INNER_LIPS

    lm = np.full((478, 2), -1000.0, np.float32)
    t = np.linspace(0, 2 * np.pi, len(INNER_LIPS), endpoint=False)
    lm[list(INNER_LIPS)] = np.stack([centre[0] + half_width * np.cos(t), centre[1] + open_px * np.sin(t)], 1)
    return lm


def test_mouth_fill_known_areas():
    """255 inside the mouth's opening, 0 outside; its area that of the contour's polygon, growing with
    the opening; a closed mouth leaves only the antialiased seam between the lips."""
    import cv2

    from puppet.face.parts import INNER_LIPS

    closed = mouth_fill(_mouth(0.0), 64)[0]  # every point on one line
    assert np.nonzero(closed.any(axis=1))[0].tolist() == [39, 40, 41] and closed.sum() / 255 < 2 * 25
    m = mouth_fill(_mouth(6.0), 64)
    assert m.shape == (1, 64, 64) and m.dtype == np.uint8
    assert m[0, 40, 32] == 255 and m[0, 40, 20:45].min() > 0  # the opening's centre and width
    assert m[0, 30, 32] == 0 and m[0, 50, 32] == 0 and m[0, 40, 50] == 0  # outside
    contour = _mouth(6.0)[list(INNER_LIPS)]
    polygon, perimeter = cv2.contourArea(contour), cv2.arcLength(contour, True)
    assert polygon < m.sum() / 255 < polygon + perimeter  # the polygon, and at most a pixel's band around it
    areas = [mouth_fill(_mouth(h), 64).sum() / 255 for h in (2.0, 4.0, 8.0)]
    assert areas[0] < areas[1] < areas[2]


def test_rgb_preview():
    img = edges_to_rgb(draw_edges(_synthetic_landmarks(32), 32))
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and img.max() > 0


def test_connections_are_mediapipes_and_need_no_mediapipe():
    """The copied index pairs equal MediaPipe's sets, and drawing works where MediaPipe is absent."""
    import subprocess
    import sys

    from mediapipe.python.solutions import face_mesh_connections as c

    groups = {"face_oval": [c.FACEMESH_FACE_OVAL], "brows": [c.FACEMESH_LEFT_EYEBROW, c.FACEMESH_RIGHT_EYEBROW],
              "eyes": [c.FACEMESH_LEFT_EYE, c.FACEMESH_RIGHT_EYE],
              "irises": [c.FACEMESH_LEFT_IRIS, c.FACEMESH_RIGHT_IRIS],
              "nose": [c.FACEMESH_NOSE], "lips": [c.FACEMESH_LIPS]}
    conn = part_connections()
    for part, sets in groups.items():
        assert sorted(map(tuple, conn[part].tolist())) == sorted(set().union(*sets)), part
    code = ("import sys; sys.modules['mediapipe'] = None; import numpy as np; from puppet.face.edges import draw_edges; "
            "lm = np.random.default_rng(0).uniform(8, 56, (478, 2)); print(int(draw_edges(lm, 64).max()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "255"


def test_part_mask_covers_eyes_brows_and_lips_only():
    from puppet.face.edges import part_mask

    rng = np.random.default_rng(0)
    lm = np.zeros((478, 2), np.float32) + 2  # every point in the corner ...
    c = part_connections()
    lips = np.unique(c["lips"])
    lm[lips] = rng.uniform(36, 44, (len(lips), 2))  # ... but the lips (around 40, 40)
    eye_r = np.unique(np.concatenate([c["eyes"].ravel(), c["brows"].ravel()]))
    eye_r = eye_r[eye_r >= 249]  # and the image-right eye with its brow (around 15, 15)
    lm[eye_r] = rng.uniform(10, 20, (len(eye_r), 2))
    m = part_mask(lm, 64, margin=0)
    assert m.shape == (64, 64) and m.dtype == np.uint8
    assert m[40, 40] == 255 and m[15, 15] == 255  # inside the lips' and the eye's hulls
    assert m[30, 50] == 0 and m[60, 5] == 0  # outside every region
    grown = part_mask(lm, 64, margin=2)
    assert (grown >= m).all() and (grown > 0).sum() > (m > 0).sum()


def test_part_points_split_the_mesh_into_the_drawn_parts_and_the_rest():
    from puppet.face.edges import part_connections, part_points

    pts = part_points()
    assert list(pts) == [*PARTS, "rest"]
    every = np.concatenate(list(pts.values()))
    np.testing.assert_array_equal(np.sort(every), np.arange(478))  # each point once
    for part, pairs in part_connections().items():
        np.testing.assert_array_equal(pts[part], np.unique(pairs))
    assert {k: len(v) for k, v in pts.items()} == {"face_oval": 36, "brows": 20, "eyes": 32, "irises": 8,
                                                   "nose": 24, "lips": 40, "rest": 318}
