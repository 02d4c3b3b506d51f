"""Landmarks, One Euro smoothing and crop boxes."""

import numpy as np
import pytest

from puppet.landmarks import N_LANDMARKS, CropBox, FaceMesh, OneEuroFilter, crop, to_crop
from puppet.video import read_frames
from tests.conftest import MEDIA


def test_one_euro_removes_jitter_but_follows_steps():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=5.0)
    still = [f(np.array([0.5]) + rng.normal(0, 0.01, 1), t / 30) for t in range(60)]
    assert np.std(np.diff(np.array(still)[30:, 0])) < 0.3 * np.std(rng.normal(0, 0.01, 1000)) * np.sqrt(2)
    out = [f(np.array([1.5]), (60 + t) / 30) for t in range(15)]
    assert out[-1][0] == pytest.approx(1.5, abs=0.05)  # a jump is followed within half a second


def test_crop_box_maps_centre_to_centre():
    box = CropBox(100.0, 80.0, 50.0)
    lm = np.array([[100.0, 80.0], [75.0, 55.0]], np.float32)
    out = to_crop(lm, box, 64)
    np.testing.assert_allclose(out, [[32, 32], [0, 0]], atol=1e-4)
    img = np.zeros((200, 200, 3), np.uint8)
    img[80, 100] = 255
    assert crop(img, box, 64).shape == (64, 64, 3)


def test_facemesh_finds_478_points_on_a_real_face(media):
    frame = next(read_frames(MEDIA / "drivers" / "smile_man_short.mp4", 1))
    with FaceMesh(video=False) as mesh:
        lm = mesh.detect(frame)
        assert lm.shape == (N_LANDMARKS, 2)
        assert (lm[:, 0] > 0).all() and (lm[:, 0] < frame.shape[1]).all()
        assert mesh.detect(np.zeros_like(frame)) is None
