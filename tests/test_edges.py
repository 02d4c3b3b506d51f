"""Edge maps: channels per part, drawn where the landmarks are, identical for identical input."""

import numpy as np

from puppet.edges import PARTS, draw_edges, edges_to_rgb, part_connections


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
    code = ("import sys; sys.modules['mediapipe'] = None; import numpy as np; from puppet.edges import draw_edges; "
            "lm = np.random.default_rng(0).uniform(8, 56, (478, 2)); print(int(draw_edges(lm, 64).max()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "255"


def test_part_mask_covers_eyes_brows_and_lips_only():
    from puppet.edges import part_mask

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
