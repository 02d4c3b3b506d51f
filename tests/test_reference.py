"""The references a puppet's output is compared with: kernel distance, novelty, the hardest moments."""

import numpy as np
import pytest

from puppet.face.retarget import canonical_template, normalise
from puppet.measure.metrics import kernel_distance
from puppet.measure.reference import TargetReference, hardest, novelty
from tests.test_drive import _face


def test_kernel_distance_is_small_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    same = kernel_distance(a, b)
    assert abs(same) < 0.05
    assert kernel_distance(a, b + 0.5) > 10 * abs(same) + 0.1
    assert kernel_distance(a, b + 1.0) > kernel_distance(a, b + 0.5)  # further apart, larger
    assert kernel_distance(a, b + 0.5) == pytest.approx(kernel_distance(b + 0.5, a))  # symmetric
    with pytest.raises(ValueError):
        kernel_distance(a[:1], b)


def _reference(shapes):
    template = canonical_template(shapes[0])
    return TargetReference(None, None, np.stack([normalise(s, template) for s in shapes]), template)


def test_novelty_is_zero_on_training_shapes_whatever_the_pose():
    faces = [_face(seed) for seed in range(3)]
    ref = _reference(faces)
    a = np.deg2rad(12)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = (faces[1] - 60) @ rot.T * 1.3 + 75  # the same configuration, turned, larger and shifted
    assert novelty(np.stack([faces[0], moved]), ref) == pytest.approx([0, 0], abs=1e-6)


def test_novelty_grows_with_an_expression_the_training_frames_lack():
    face = _face(0)
    ref = _reference([face])
    far = face.copy()
    far[:100, 1] += 5.0  # 100 of 478 points move (none of the stable points' share matters here)
    near = face.copy()
    near[:100, 1] += 1.0
    d_near, d_far = novelty(np.stack([near, far]), ref)
    assert 0 < d_near < d_far


def test_hardest_picks_the_largest_scores_apart_in_time_order():
    scores = np.zeros(100)
    scores[[10, 11, 12, 50, 80]] = [5, 6, 4, 3, 2]
    assert hardest(scores, n=3, apart=5) == [11, 50, 80]  # 10 and 12 are the same moment as 11
    assert hardest(scores, n=2, apart=1) == [10, 11]
