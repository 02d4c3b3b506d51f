"""Pixel, perceptual and Gram losses: known answers and module wrappers."""

import pytest
import torch

from puppet.losses import (
    DetailLoss,
    GramLoss,
    L1Loss,
    PerceptualLoss,
    detail_loss,
    gram_loss,
    gram_matrix,
    l1_loss,
    perceptual_loss,
)


def test_l1_known_answer():
    x = torch.zeros(1, 3, 2, 2)
    y = torch.full((1, 3, 2, 2), 0.5)
    assert l1_loss(x, y).item() == pytest.approx(0.5)
    assert L1Loss()(x, y).item() == pytest.approx(0.5)


def test_perceptual_known_answer_and_normalisation():
    fy = {"a": torch.full((1, 2, 2, 2), 2.0)}
    fx = {"a": torch.full((1, 2, 2, 2), 3.0)}
    assert perceptual_loss(fx, fy, {"a": 1.0}, normalize=False).item() == pytest.approx(1.0)
    # normalised by mean|target| = 2
    assert perceptual_loss(fx, fy, {"a": 3.0}, normalize=True).item() == pytest.approx(1.5)


def test_gram_known_answer():
    f = torch.tensor([[1.0, 2.0], [0.0, 1.0]]).reshape(1, 2, 1, 2)  # C=2, H*W=2
    g = gram_matrix(f)
    torch.testing.assert_close(g, torch.tensor([[[2.5, 1.0], [1.0, 0.5]]]))
    zero = torch.zeros(1, 2, 1, 2)
    # ||G(f) - 0||_F^2 = 2.5^2 + 1 + 1 + 0.5^2
    assert gram_loss({"a": f}, {"a": zero}, {"a": 1.0}).item() == pytest.approx(8.5)


def test_gram_ignores_positions():
    f = torch.randn(1, 4, 5, 5)
    perm = f.flatten(2)[:, :, torch.randperm(25)].reshape_as(f)
    assert gram_loss({"a": f}, {"a": perm}, {"a": 1.0}).item() == pytest.approx(0.0, abs=1e-6)


def test_feature_modules_use_the_given_extractor():
    calls = []

    def extractor(img):
        calls.append(img.shape)
        return {"a": img * 2}

    x, y = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    p = PerceptualLoss(extractor, {"a": 1.0}, normalize=False)(x, y)
    assert p.item() == pytest.approx((2 * x - 2 * y).abs().mean().item())
    gl = GramLoss(extractor, {"a": 1.0})(x, y)
    assert gl.item() == pytest.approx(gram_loss({"a": 2 * x}, {"a": 2 * y}, {"a": 1.0}).item())
    assert len(calls) == 4


def test_empty_layers_is_an_error():
    with pytest.raises(ValueError):
        perceptual_loss({}, {}, {})


def test_detail_loss_known_answer():
    flat = torch.zeros(1, 3, 10, 10)
    board = ((torch.arange(10)[:, None] + torch.arange(10)[None, :]) % 2).float().expand(1, 3, 10, 10)
    assert detail_loss(board, board).item() == 0.0
    # the checkerboard's Laplacian is +-4 everywhere inside: RMS 4 in its one 8x8 tile, the flat image's ~0
    assert detail_loss(flat, board, window=8).item() == pytest.approx(4.0, abs=1e-2)
    assert detail_loss(board, flat, window=8).item() == pytest.approx(4.0, abs=1e-2)
    assert DetailLoss(window=8)(flat, board).item() == detail_loss(flat, board, window=8).item()


def test_detail_loss_forgives_a_shift_inside_a_tile_and_punishes_blur():
    a, b = torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16)
    a[..., 3, 3] = 1.0
    b[..., 5, 5] = 1.0  # the same dot 2 px away, in the same 8x8 tile of the Laplacian
    assert detail_loss(a, b, window=8).item() == pytest.approx(0.0, abs=1e-6)
    assert l1_loss(a, b).item() > 0
    blurred = torch.nn.functional.avg_pool2d(b, 3, stride=1, padding=1)
    assert detail_loss(blurred, b, window=8).item() > 0.1


def test_detail_loss_gradcheck():
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: detail_loss(t, y, window=3), (x,))


def test_masked_l1_known_answers():
    from puppet.losses.pixel import masked_l1_loss

    x, y = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    y[..., :2, :] = 1.0  # the top half differs by 1, the bottom half not at all
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1.0
    assert masked_l1_loss(x, y, mask).item() == pytest.approx(1.0)
    assert masked_l1_loss(x, y, 1 - mask).item() == pytest.approx(0.0)
    assert masked_l1_loss(x, y, torch.ones(1, 1, 4, 4)).item() == pytest.approx(0.5)  # plain L1
    assert masked_l1_loss(x, y, torch.zeros(1, 1, 4, 4)).item() == 0.0  # empty mask: no term, no NaN
    # per image: a one-pixel mask counts as much as a large one (pooled over the batch it would be 1/9)
    one = torch.zeros(1, 1, 4, 4)
    one[..., 0, 0] = 1.0  # a pixel where x and y differ by 1
    two = masked_l1_loss(torch.zeros(2, 3, 4, 4), torch.cat([y, torch.zeros(1, 3, 4, 4)]), torch.cat([one, mask]))
    assert two.item() == pytest.approx(0.5)
    from puppet.losses import MaskedL1Loss

    assert MaskedL1Loss()(x, y, mask).item() == pytest.approx(1.0)
