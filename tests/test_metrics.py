"""PSNR and SSIM known answers."""

import math

import pytest
import torch

from puppet.metrics import psnr, ssim


def test_psnr_known_answer():
    x = torch.zeros(2, 3, 8, 8)
    y = torch.full((2, 3, 8, 8), 0.1)  # MSE 0.01 -> 20 dB
    torch.testing.assert_close(psnr(x, y), torch.tensor([20.0, 20.0]))
    assert math.isinf(psnr(x, x)[0].item())


def test_ssim_identical_is_one_and_noise_lowers_it():
    x = torch.rand(1, 3, 32, 32)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    noisy = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    assert ssim(x, noisy).item() < 0.9
    # symmetric
    assert ssim(x, noisy).item() == pytest.approx(ssim(noisy, x).item(), abs=1e-6)
