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


def test_laplacian_variance_known_answers():
    from puppet.metrics import laplacian_variance

    flat = torch.full((1, 3, 16, 16), 0.4)
    assert laplacian_variance(flat).item() == pytest.approx(0.0, abs=1e-10)
    board = ((torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2).float()  # 1-px checkerboard
    checker = board.expand(1, 3, 16, 16)
    assert laplacian_variance(checker).item() == pytest.approx(16.0, rel=1e-5)  # Laplacian is +-4 everywhere
    ramp = torch.linspace(0, 1, 16).expand(1, 3, 16, 16)  # linear: Laplacian 0 inside
    assert laplacian_variance(ramp).item() == pytest.approx(0.0, abs=1e-10)
    blurred = torch.nn.functional.avg_pool2d(checker, 3, stride=1, padding=1)
    assert laplacian_variance(blurred).item() < 16.0 * 0.2  # blur removes detail


def test_laplacian_shape_and_values():
    from puppet.metrics import laplacian

    x = torch.zeros(2, 3, 6, 7)
    x[1, :, 2, 3] = 1.0  # a white dot: -4 on it, +1 on its four neighbours
    lap = laplacian(x)
    assert lap.shape == (2, 1, 4, 5)
    assert lap[0].abs().max().item() == 0.0
    assert lap[1, 0, 1, 2].item() == pytest.approx(-4.0)
    assert lap[1, 0, 0, 2].item() == pytest.approx(1.0) and lap[1, 0, 1, 1].item() == pytest.approx(1.0)
    assert lap[1].sum().item() == pytest.approx(0.0, abs=1e-6)
