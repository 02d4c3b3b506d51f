"""Which training frames a step draws: rare expressions more often.

A talking-head clip is mostly one expression: glasses_man's mouth is open
wider than 0.03 eye distances in 16 of 470 training frames. Drawn uniformly,
those frames are a few percent of the batches and the model renders a wide
mouth poorly, so the puppet's mouth hardly follows a driver who talks. Each
frame is drawn with a probability that falls with how common its expression is
(a kernel density over its mouth and eye openings), so rare expressions are
seen more often while every frame keeps some weight.
"""

from __future__ import annotations

import numpy as np

MAX_CENTRES = 4096  # kernel centres at most (a clip's frames, or a random subset of them)


def expression_features(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks (F, 478, 2) -> (F, 2) mouth and eye openings in inter-ocular distances."""
    from puppet.face.retarget import openings

    return np.asarray([openings(lm) for lm in landmarks], dtype=np.float64).reshape(-1, 2)


def balance_weights(features: np.ndarray, strength: float, max_ratio: float = 20.0) -> np.ndarray:
    """Sampling probabilities (F,) summing to 1 that flatten the distribution of ``features`` (F, D).

    Each frame's weight is density ** -strength, the density a Gaussian kernel
    estimate over standardised features (Scott's bandwidth). ``strength`` 0 is
    uniform; 1 makes every part of the expression space about equally likely.
    No frame gets more than ``max_ratio`` times the median weight, so one odd
    frame (a tracking glitch) cannot take over the batches.
    """
    f = np.asarray(features, dtype=np.float64)
    n = len(f)
    if n == 0:
        raise ValueError("no frames to weight")
    if strength <= 0 or n == 1:
        return np.full(n, 1.0 / n)
    f = f.reshape(n, -1)
    z = (f - f.mean(0)) / (f.std(0) + 1e-12)
    bw = n ** (-1.0 / (z.shape[1] + 4))
    # Long clips: the density from a fixed random subset of kernel centres; rows in chunks, so
    # memory stays at a few tens of MB whatever the clip's length.
    centres = z if n <= MAX_CENTRES else z[np.random.default_rng(0).choice(n, MAX_CENTRES, replace=False)]
    c2 = (centres**2).sum(1)
    density = np.empty(n)
    for a in range(0, n, 1024):
        rows = z[a:a + 1024]
        d2 = np.maximum((rows**2).sum(1)[:, None] + c2[None, :] - 2 * rows @ centres.T, 0.0)
        density[a:a + 1024] = np.exp(-0.5 * d2 / bw**2).mean(1)
    w = density ** -strength
    w = np.minimum(w, max_ratio * np.median(w))
    return w / w.sum()
