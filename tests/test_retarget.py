"""Retargeting keeps the target's face shape and transfers expression and pose."""

import math

import numpy as np
import pytest

from puppet.face.retarget import (
    STABLE,
    Retargeter,
    apply,
    fit_similarity,
    neutral_index,
)


def _face(seed=0):
    """Random points with an upright, level eye line (33 left of 263) like a real face."""
    rng = np.random.default_rng(seed)
    lm = rng.random((478, 2)) * 40 + 40
    lm[[33, 133, 362, 263, 168, 6]] = [(45, 50), (55, 50), (65, 50), (75, 50), (60, 52), (60, 58)]
    lm[[33, 133, 362, 263, 168, 6]] += rng.normal(0, 0.5, (6, 2))
    return lm.astype(np.float32)


def _similarity(deg, scale, tx, ty):
    a = math.radians(deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def test_fit_similarity_recovers_transform():
    src = _face()
    m = _similarity(12, 1.7, 5, -3)
    np.testing.assert_allclose(fit_similarity(src, apply(m, src)), m, atol=1e-6)


def test_neutral_driver_gives_target_neutral():
    target = _face(1)
    r = Retargeter(target)
    driver = _face(2) * 3 + 100  # another face, other scale and place
    r.calibrate(driver)
    np.testing.assert_allclose(r(driver), target, atol=1e-3)


def test_expression_transfers_not_face_shape():
    target, driver = _face(1), _face(2)
    r = Retargeter(target)
    r.calibrate(driver)
    moved = driver.copy()
    moved[13] += (0, 4)  # driver opens the mouth a bit (lip point 13)
    out = r(moved)
    delta = out - target
    assert np.abs(np.delete(delta, 13, axis=0)).max() < 1e-3
    assert delta[13, 1] > 0  # the target's lip moves down too


def test_head_rotation_is_transferred_and_limited():
    target, driver = _face(1), _face(2)
    r = Retargeter(target)
    r.calibrate(driver)
    c = driver[STABLE].mean(0)
    for deg, expect in ((10, 10), (60, 25)):
        m = _similarity(deg, 1.0, 0, 0)
        rot = apply(m, driver - c) + c
        out = r(rot)
        got = fit_similarity(target, out)
        ang = math.degrees(math.atan2(got[1, 0], got[0, 0]))
        assert ang == pytest.approx(expect, abs=0.5)


def test_neutral_index_picks_the_typical_frame():
    base = _face(3)
    frames = np.stack([base + np.random.default_rng(i).normal(0, 2 if i != 4 else 0.01, base.shape) for i in range(9)])
    assert neutral_index(frames.astype(np.float32)) == 4


def test_pose_range_measures_target_motion_and_clamps_driver():
    from puppet.face.retarget import pose_range

    base = _face(5)
    c = base[STABLE].mean(0)
    frames = np.stack([apply(_similarity(d, 1.0, 0, 0), base - c) + c for d in np.linspace(-4, 4, 9)])
    lim = pose_range(frames.astype(np.float32), base)
    assert lim.max_degrees == pytest.approx(4, abs=0.3)
    assert lim.max_shift < 0.05
    r = Retargeter(base, limits=lim)
    driver = _face(6)
    r.calibrate(driver)
    dc = driver[STABLE].mean(0)
    out = r(apply(_similarity(30, 1.0, 0, 0), driver - dc) + dc)
    got = fit_similarity(base, out)
    assert math.degrees(math.atan2(got[1, 0], got[0, 0])) == pytest.approx(lim.max_degrees, abs=0.3)


def test_expression_range_bounds_the_clip_offsets_with_margin():
    from puppet.face.retarget import canonical_template, expression_range, normalise

    base = _face(7)
    mouth = np.zeros_like(base)
    mouth[13:20, 1] = 1.0
    frames = np.stack([base + a * mouth for a in np.linspace(0, 3, 50)]).astype(np.float32)
    rng = expression_range(frames, base, percentile=100.0, margin=0.25)
    assert rng.shape == (2, 478, 2)
    template = canonical_template(base)
    top = normalise(frames[-1], template) - normalise(base, template)
    np.testing.assert_allclose(rng[1, 13:20, 1], 1.25 * top[13:20, 1], rtol=1e-4)  # range + 25 % of its width
    np.testing.assert_allclose(rng[0, 13:20, 1], -0.25 * top[13:20, 1], rtol=1e-4, atol=1e-6)
    still = [i for i in range(478) if i not in range(13, 20) and i not in STABLE]
    assert np.abs(rng[:, still]).max() < 1e-4  # landmarks that never move keep a zero range
