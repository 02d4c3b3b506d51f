"""The driver side: expression mapping per region, smoothing, one path for every command."""

import numpy as np
import pytest

from puppet.face.drive import DriverToEdges, RenderOptions
from puppet.face.retarget import (
    NOSE_TIP,
    Retargeter,
    canonical_template,
    expression_amplitude,
    expression_regions,
    normalise,
)


def _face(seed=0):
    rng = np.random.default_rng(seed)
    lm = rng.uniform(20, 100, size=(478, 2)).astype(np.float32)
    lm[NOSE_TIP] = (60, 60)
    return lm


def _mouth_motion(neutral, scale):
    """A mouth-opening displacement field: the mouth region moves down by ``scale`` pixels."""
    d = np.zeros_like(neutral)
    d[expression_regions(neutral)["mouth"], 1] = scale
    return d


def _mouth_amplitude(lms, neutral):
    template = canonical_template(neutral)
    n0 = normalise(neutral, template)
    idx = expression_regions(neutral)["mouth"]
    return np.array([np.linalg.norm(normalise(lm, template)[idx] - n0[idx], axis=1).mean() for lm in lms])


def _clips(target, driver_neutral, frames=40):
    a = np.linspace(0, 1, frames)[:, None, None]
    target_clip = target + a * _mouth_motion(target, 4.0)
    # The driver is another framing of the same layout (2x larger, shifted) opening twice as wide.
    driver_clip = driver_neutral + a * 2 * _mouth_motion(driver_neutral, 8.0)
    return target_clip, driver_clip


def test_regions_split_the_face():
    n = _face()
    r = expression_regions(n)
    assert set(r) == {"mouth", "eyes", "brows"}
    assert not set(r["mouth"]) & set(r["eyes"]) and len(r["mouth"]) > 40


def test_driver_with_twice_the_mouth_range_gives_the_targets_full_range_not_more():
    target = _face()
    driver0 = target * 2 + 30
    target_clip, driver_clip = _clips(target, driver0)
    amp = expression_amplitude(target_clip, target)
    full = _mouth_amplitude(target_clip, target).max()

    mapped = Retargeter(target, target_amplitude=amp)
    mapped.calibrate(driver0)
    mapped.observe(list(driver_clip))
    assert mapped.gains()["mouth"] == pytest.approx(0.5, rel=0.05)
    out = _mouth_amplitude([mapped(lm) for lm in driver_clip], target)
    assert out.max() == pytest.approx(full, rel=0.05)  # the target's whole range, and no more
    assert np.corrcoef(out, _mouth_amplitude(target_clip, target))[0, 1] > 0.99  # timing kept

    plain = Retargeter(target)  # no mapping, no clamp: the driver's range, twice the target's
    plain.calibrate(driver0)
    assert _mouth_amplitude([plain(lm) for lm in driver_clip], target).max() == pytest.approx(2 * full, rel=0.05)


def test_live_range_grows_as_it_is_seen():
    target = _face()
    driver0 = target * 2 + 30
    target_clip, driver_clip = _clips(target, driver0)
    rt = Retargeter(target, target_amplitude=expression_amplitude(target_clip, target))
    rt.calibrate(driver0)
    assert rt.gains()["mouth"] == 1.0  # nothing seen yet
    out = _mouth_amplitude([rt(lm) for lm in driver_clip], target)
    assert rt.gains()["mouth"] == pytest.approx(0.5, rel=0.05)  # after the widest opening
    assert out.max() <= _mouth_amplitude(target_clip, target).max() * 1.05


def test_driver_to_edges_clip_equals_frame_by_frame():
    target = _face()
    driver0 = target * 2 + 30
    target_clip, driver_clip = _clips(target, driver0, frames=8)
    amp = expression_amplitude(target_clip, target)
    a = DriverToEdges(target, 128, options=RenderOptions(), target_amplitude=amp)
    a.calibrate(driver0)
    a.observe(list(driver_clip))
    edges = a.clip(list(driver_clip), fps=25.0)
    b = DriverToEdges(target, 128, options=RenderOptions(), target_amplitude=amp)
    b.calibrate(driver0)
    b.observe(list(driver_clip))
    assert edges.shape == (8, 13, 128, 128) and edges.dtype == np.uint8  # the current layout by default
    np.testing.assert_array_equal(edges, np.stack([b(lm, i / 25.0) for i, lm in enumerate(driver_clip)]))


def test_smoothing_damps_jitter_and_options_switch_it_off():
    target = _face()
    rng = np.random.default_rng(1)
    shaky = [target + rng.normal(0, 0.5, target.shape).astype(np.float32) for _ in range(30)]

    def jitter(options):
        d = DriverToEdges(target, 128, options=options)
        d.calibrate(target)
        return np.mean(np.abs(np.diff([d.landmarks(lm, i / 25) for i, lm in enumerate(shaky)], axis=0)))

    raw, default, steadier = (jitter(RenderOptions(smooth=s)) for s in (0.0, 1.0, 2.0))
    # The default (beta 160) follows motion at once and so lets some landmark noise through
    # (0.52x here); --smooth 2 halves cutoff and beta for a shaky webcam.
    assert default < 0.6 * raw
    assert steadier < 0.8 * default


def test_default_smoothing_follows_motion_with_little_lag():
    """The default filter (beta 160) keeps up with a moving face where the old one (beta 10) trailed,
    so a puppet does not keep moving after its driver stopped (docs/experiments.md: jitter in still stretches)."""
    target = _face()
    moving = [target + np.float32(1.5 * min(i, 12)) for i in range(20)]  # 1.5 px/frame, then still

    def track(options):
        d = DriverToEdges(target, 128, options=options)
        d.calibrate(target)
        return [d.landmarks(lm, i / 25) for i, lm in enumerate(moving)]

    raw = track(RenderOptions(smooth=0.0))

    def lag(options):
        out = track(options)
        return float(np.abs(out[12] - raw[12]).mean()), float(np.abs(out[-1] - raw[-1]).mean())

    new_stop, new_end = lag(RenderOptions())
    old_stop, _ = lag(RenderOptions(smooth_beta=10.0))
    assert new_stop < 0.5 * old_stop
    assert new_end < 0.5  # settled within half a pixel a few frames after the stop
