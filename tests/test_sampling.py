"""Expression-balanced frame sampling: weights, their limits, and how training draws with them."""

import numpy as np
import pytest

from puppet.config import Config
from puppet.data.sampling import balance_weights, expression_features
from puppet.train.loop import Dist, draw_indices


def _clip(n_common=95, n_rare=5):
    """Mouth openings: most frames closed (about 0), a few wide open (about 0.3)."""
    rng = np.random.default_rng(0)
    closed = rng.normal(0.0, 0.005, n_common)
    open_ = rng.normal(0.3, 0.005, n_rare)
    return np.concatenate([closed, open_])[:, None]


def test_strength_zero_is_uniform():
    w = balance_weights(_clip(), 0.0)
    assert w == pytest.approx(np.full(100, 0.01))


def test_rare_frames_are_drawn_more_often():
    f = _clip()
    rare = np.arange(100) >= 95
    masses = [balance_weights(f, s)[rare].sum() for s in (0.0, 0.5, 1.0)]
    assert masses[0] == pytest.approx(0.05)
    assert masses[0] < masses[1] < masses[2]
    # strength 1: both clusters about equally likely, whatever their frame counts
    assert 0.4 < masses[2] < 0.6
    w = balance_weights(f, 1.0)
    assert (w > 0).all() and w.sum() == pytest.approx(1.0)


def test_no_frame_beyond_max_ratio_of_the_median():
    f = np.concatenate([np.zeros(99), [10.0]])[:, None]  # one glitch frame far from the rest
    w = balance_weights(f, 1.0, max_ratio=4.0)
    assert w.max() / np.median(w) == pytest.approx(4.0)


def test_expression_features_are_mouth_and_eye_openings():
    lm = np.zeros((3, 478, 2))
    lm[:, 33] = (0.0, 0.0)  # outer eye corners one unit apart
    lm[:, 263] = (1.0, 0.0)
    lm[:, 14, 1] = [0.0, 0.1, 0.5]  # lower inner lip moves down
    for a, b in ((159, 145), (386, 374)):
        lm[:, b, 1] = 0.2
    f = expression_features(lm)
    assert f.shape == (3, 2)
    assert f[:, 0] == pytest.approx([0.0, 0.1, 0.5], abs=1e-5)
    assert f[:, 1] == pytest.approx([0.2, 0.2, 0.2], abs=1e-5)


def test_draw_indices_follows_the_weights():
    cfg = Config()
    cfg.train.batch_size = 64
    w = np.zeros(10)
    w[[2, 7]] = [0.25, 0.75]
    a, _ = draw_indices(cfg, 5, 10, Dist(), w)
    b, _ = draw_indices(cfg, 5, 10, Dist(), w)
    assert set(a) <= {2, 7} and (a == b).all()  # only weighted frames, same draw for the same step
    assert (a == 7).sum() > (a == 2).sum()
    u, _ = draw_indices(cfg, 5, 10, Dist())
    assert len(set(u)) > 2


def test_negative_balance_is_a_config_error():
    from puppet.config import load_config
    from puppet.errors import PuppetError

    with pytest.raises(PuppetError, match="train.balance"):
        load_config(None, ["train.balance=-1"])


def test_long_clips_use_a_subset_of_centres_and_agree():
    from puppet.data import sampling

    rng = np.random.default_rng(1)
    f = np.concatenate([rng.normal(0, 0.01, (5700, 1)), rng.normal(0.3, 0.01, (300, 1))])
    w = balance_weights(f, 1.0)
    assert w.shape == (6000,) and w.sum() == pytest.approx(1.0)
    assert 0.4 < w[5700:].sum() < 0.6  # the same flattening as with every frame a centre
    assert sampling.MAX_CENTRES < 6000
