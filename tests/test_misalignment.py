"""The paper's Fig. 6 demo: warps, and CX beating L1 against a misaligned clean image."""

import numpy as np
import torch

from puppet.paper.misalignment import run_misalignment, strip, warp


def _img(size=32):
    """A smooth picture with structure: colour gradients and a bright disc."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([xx, yy, 0.5 + 0.5 * np.sin(6 * xx)], axis=-1)
    img[(xx - 0.5) ** 2 + (yy - 0.45) ** 2 < 0.05] = (1.0, 0.9, 0.2)
    return (img * 255).astype(np.uint8)


def test_warp_identity_and_shift():
    img = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(warp(img, 0.0, (0.0, 0.0)), img, atol=1e-5, rtol=0)
    assert (warp(img, 0.0, (0.25, 0.0)) - img).abs().mean() > 0.05


def test_cx_beats_l1_against_one_misaligned_target():
    res = run_misalignment(_img(), size=32, steps=60, lr=0.03, layers={"rgb5_d1": 1.0}, degrees=6.0,
                           shift=0.08, weights="random")
    s = res.scores
    assert set(s) == {"noisy input", "misaligned target", "L1 result", "CX result"}
    # L1 copies the misaligned image; CX keeps the input's geometry and removes noise.
    assert s["L1 result"]["psnr"] < s["noisy input"]["psnr"] + 1.0
    assert s["CX result"]["psnr"] > s["L1 result"]["psnr"] + 1.0
    assert s["CX result"]["psnr"] > s["noisy input"]["psnr"]
    sheet = strip(res.images, ["noisy input", "CX result"], scale=2)
    assert sheet.shape == (64, 128, 3)
