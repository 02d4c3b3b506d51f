"""Warping the neutral frame to new landmarks: identity, translation, pinned border, one input path."""

import numpy as np
import pytest

from puppet.drive import DriverToEdges, model_input, model_inputs
from puppet.edges import draw_edges
from puppet.warp import Warper, border_points, triangulate

S = 64


def _face():
    """A smooth random picture and 478 distinct landmarks in its middle."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:S, 0:S] / S
    img = np.stack([128 + 100 * np.sin(6 * xx + c) * np.cos(5 * yy - c) for c in (0.0, 1.0, 2.0)], -1)
    lm = rng.uniform(20, 44, (478, 2))
    return img.astype(np.uint8), lm


def test_border_points_cover_the_border():
    b = border_points(S, per_side=4)
    assert b.shape == (16, 2)
    assert {(0.0, 0.0), (S - 1.0, 0.0), (S - 1.0, S - 1.0), (0.0, S - 1.0)} <= {tuple(p) for p in b}
    assert ((b == 0) | (b == S - 1)).any(1).all()


def test_triangulation_uses_every_point():
    _, lm = _face()
    pts = np.concatenate([lm, border_points(S)])
    tri = triangulate(pts, S)
    assert tri.ndim == 2 and tri.shape[1] == 3
    assert set(np.unique(tri)) == set(range(len(pts)))


def test_same_landmarks_give_the_reference():
    img, lm = _face()
    out = Warper(img, lm)(lm)
    assert out.shape == (3, S, S) and out.dtype == np.uint8
    np.testing.assert_array_equal(out.transpose(1, 2, 0), img)


def test_moved_landmarks_move_the_face_and_pin_the_border():
    img, lm = _face()
    w = Warper(img, lm)
    out = w(lm + np.array([3.0, 0.0])).transpose(1, 2, 0).astype(int)
    # inside the landmark cloud everything moved 3 px to the right
    np.testing.assert_allclose(out[26:38, 26:38], img[26:38, 23:35].astype(int), atol=2)
    for y, x in ((0, 0), (0, S - 1), (S - 1, 0), (S - 1, S - 1)):
        np.testing.assert_array_equal(out[y, x], img[y, x])


def test_model_input_appends_the_warp_and_the_driver_draws_it():
    img, lm = _face()
    w = Warper(img, lm)
    edges = draw_edges(lm, S)
    np.testing.assert_array_equal(model_input(edges, lm, None), edges)
    x = model_input(edges, lm, w)
    assert x.shape == (9, S, S)
    np.testing.assert_array_equal(x[:6], edges)
    np.testing.assert_array_equal(x[6:], w(lm))
    batch = model_inputs(np.stack([edges, edges]), np.stack([lm, lm + 2.0]), w)
    np.testing.assert_array_equal(batch, np.stack([x, model_input(edges, lm + 2.0, w)]))
    np.testing.assert_array_equal(model_inputs(edges[None], lm[None], None), edges[None])
    d = DriverToEdges(lm, S, reference=w)
    np.testing.assert_array_equal(d.draw(lm), x)
    assert DriverToEdges(lm, S).draw(lm).shape == (6, S, S)


def test_landmarks_off_the_crop_still_warp():
    img, lm = _face()
    w = Warper(img, lm)
    out = w(lm * 3.0 - 60)  # most points far outside the image
    assert out.shape == (3, S, S)
    with pytest.raises(ValueError):
        Warper(img[:, :10], lm)
