"""Landmarks, One Euro smoothing and crop boxes."""

import numpy as np
import pytest

from puppet.data.video import read_frames
from puppet.face.landmarks import (
    N_LANDMARKS,
    CropBox,
    FaceMesh,
    OneEuroFilter,
    crop,
    to_crop,
)
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


def test_facemesh_puts_pixel_centres_at_integers(media):
    """to_crop (a cv2 affine) and evaluate._detect_generated (a cv2 resize) assume MediaPipe's points
    are in the same convention as OpenCV's: pixel i's centre at i, not i + 0.5. Each pixel tripled
    moves a point at x to 3x + 1 in that convention, to 3x in the other: read back and divided by 3,
    a third of a pixel right of and below where it was, or nowhere else."""
    import cv2

    offsets = []
    with FaceMesh(video=False) as mesh:
        for k, frame in enumerate(read_frames(MEDIA / "targets" / "office_woman.mp4", 120)):
            if k % 12 == 0:  # 10 frames; one frame's mean over its 478 points moves by ~0.1 px
                h, w = frame.shape[:2]
                big = cv2.resize(frame, (3 * w, 3 * h), interpolation=cv2.INTER_NEAREST)
                offsets.append((mesh.detect(big) / 3 - mesh.detect(frame)).mean(axis=0))
    np.testing.assert_allclose(np.mean(offsets, axis=0), [1 / 3, 1 / 3], atol=0.1)
