"""PSNR and SSIM known answers."""

import math

import pytest
import torch

from puppet.measure.metrics import placement_shift, psnr, shift_images, ssim


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
    from puppet.measure.metrics import laplacian_variance

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
    from puppet.measure.metrics import laplacian

    x = torch.zeros(2, 3, 6, 7)
    x[1, :, 2, 3] = 1.0  # a white dot: -4 on it, +1 on its four neighbours
    lap = laplacian(x)
    assert lap.shape == (2, 1, 4, 5)
    assert lap[0].abs().max().item() == 0.0
    assert lap[1, 0, 1, 2].item() == pytest.approx(-4.0)
    assert lap[1, 0, 0, 2].item() == pytest.approx(1.0) and lap[1, 0, 1, 1].item() == pytest.approx(1.0)
    assert lap[1].sum().item() == pytest.approx(0.0, abs=1e-6)


def _texture(seed=0, size=64):
    """Smooth random RGB images (1, 3, size, size) in [0, 1]: features at several scales, no flat areas."""
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, size // 8, size // 8, generator=g), size=size,
                                        mode="bicubic", align_corners=False)
    return (x + 0.1 * torch.rand(1, 3, size, size, generator=g)).clamp(0, 1)


def test_shift_images_moves_content_by_whole_pixels():
    x = _texture()
    y = shift_images(x, torch.tensor([[3.0, -2.0]]))
    # content at (row, col) moves to (row - 2, col + 3); away from the replicated border it is exact
    torch.testing.assert_close(y[..., 4:-4, 4:-4], x[..., 6:-2, 1:-7], atol=1e-5, rtol=0)
    torch.testing.assert_close(shift_images(x, torch.zeros(1, 2)), x, atol=1e-6, rtol=0)


@pytest.mark.parametrize("d", [(1.5, -0.75), (-2.0, 0.5), (0.0, 0.0)])
def test_placement_shift_recovers_a_known_shift(d):
    x = _texture(1)
    y = shift_images(x, torch.tensor([d]))
    s = placement_shift(x, y)
    assert s.shape == (1, 2)
    assert s[0].tolist() == pytest.approx(list(d), abs=0.07)
    # aligned by the found shift, the moved copy scores far higher than as it is
    if d != (0.0, 0.0):
        assert psnr(shift_images(x, s), y) > psnr(x, y) + 10


def test_placement_shift_per_image_of_a_batch():
    x = torch.cat([_texture(2), _texture(3)])
    y = shift_images(x, torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    s = placement_shift(x, y)
    assert s.shape == (2, 2)
    assert s.tolist() == [pytest.approx([1.0, 0.0], abs=0.07), pytest.approx([0.0, -1.0], abs=0.07)]
