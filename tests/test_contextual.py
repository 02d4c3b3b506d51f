"""Contextual loss: known values, invariances, lean == reference, gradcheck."""

import pytest
import torch

from puppet.losses.contextual import (
    ContextualLoss,
    VGGContextualLoss,
    contextual_loss,
    contextual_loss_layers,
    contextual_loss_reference,
    contextual_similarity,
    contextual_similarity_reference,
    sample_positions,
)


def straightforward_cx(x, y, h=0.5, eps=1e-5):
    """The paper's formula with explicit per-element loops over i; independent of the library code."""
    out = []
    for b in range(x.shape[0]):
        X = x[b].flatten(1).t().double()  # (N, C)
        Y = y[b].flatten(1).t().double()  # (M, C)
        mu = Y.mean(0)
        Xc, Yc = X - mu, Y - mu
        rows = []
        for i in range(X.shape[0]):
            cos = (Yc @ Xc[i]) / (Yc.norm(dim=1) * Xc[i].norm())
            d = 1 - cos
            dt = d / (d.min() + eps)
            w = torch.exp((1 - dt) / h)
            rows.append(w / w.sum())
        cx = torch.stack(rows)  # (N, M)
        out.append(cx.max(dim=0).values.mean())
    return torch.stack(out)


@pytest.mark.parametrize("impl", [contextual_loss, contextual_loss_reference])
def test_identical_inputs_give_zero_loss(impl):
    x = torch.randn(2, 16, 6, 6)
    assert impl(x, x).item() == pytest.approx(0.0, abs=1e-5)


def test_unrelated_inputs_give_cx_of_order_one_over_n():
    n_side = 16
    x = torch.randn(1, 64, n_side, n_side)
    y = torch.randn(1, 64, n_side, n_side)
    cx = contextual_similarity(x, y).item()
    n = n_side * n_side
    assert 0.3 / n < cx < 10.0 / n


def test_matches_straightforward_formula():
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    y = torch.randn(2, 5, 4, 2, dtype=torch.float64)
    expected = straightforward_cx(x, y)
    torch.testing.assert_close(contextual_similarity_reference(x, y), expected)
    torch.testing.assert_close(contextual_similarity(x, y, block_size=3), expected)


def test_known_answer_two_points():
    # One x and two y: the x matches y_0 exactly (d=0), y_1 is opposite (d=2 after centring).
    # d~ = (0, 2/eps); w = (e^{1/h}, ~0) -> CX row = (1, 0); max over i: (1, 0); CX = 1/2.
    y = torch.tensor([[1.0, 0.0], [-1.0, 0.0]]).t().reshape(1, 2, 2, 1)
    x = torch.tensor([[1.0, 0.0]]).t().reshape(1, 2, 1, 1)
    assert contextual_similarity(x, y).item() == pytest.approx(0.5, abs=1e-6)
    assert contextual_loss(x, y).item() == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=1e-6)


def test_invariant_to_permuting_positions():
    x = torch.randn(1, 8, 5, 5)
    y = torch.randn(1, 8, 5, 5)
    px = torch.randperm(25)
    py = torch.randperm(25)
    xp = x.flatten(2)[:, :, px].reshape_as(x)
    yp = y.flatten(2)[:, :, py].reshape_as(y)
    torch.testing.assert_close(contextual_loss(xp, yp), contextual_loss(x, y))
    torch.testing.assert_close(contextual_loss_reference(xp, yp), contextual_loss_reference(x, y))


@pytest.mark.parametrize("shape_x,shape_y,block", [
    ((1, 32, 8, 8), (1, 32, 8, 8), 7),
    ((2, 16, 10, 6), (2, 16, 5, 9), 16),
    ((3, 64, 16, 16), (3, 64, 16, 16), None),
    ((1, 256, 24, 24), (1, 256, 24, 24), 100),
])
def test_lean_equals_reference_value_and_gradient(shape_x, shape_y, block):
    x = torch.randn(*shape_x, requires_grad=True)
    y = torch.randn(*shape_y, requires_grad=True)
    ref = contextual_loss_reference(x, y)
    gx_ref, gy_ref = torch.autograd.grad(ref, (x, y))
    lean = contextual_loss(x, y, block_size=block)
    gx, gy = torch.autograd.grad(lean, (x, y))
    torch.testing.assert_close(lean, ref, rtol=1e-5, atol=1e-6)
    scale = gx_ref.abs().max()
    torch.testing.assert_close(gx / scale, gx_ref / scale, rtol=1e-5, atol=1e-5)
    scale = gy_ref.abs().max()
    torch.testing.assert_close(gy / scale, gy_ref / scale, rtol=1e-5, atol=1e-5)


def test_lean_gradient_only_x_skips_y():
    x = torch.randn(1, 8, 6, 6, requires_grad=True)
    y = torch.randn(1, 8, 6, 6)
    contextual_loss(x, y).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_gradcheck_float64_lean():
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 4, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: contextual_loss(a, b, block_size=4), (x, y))


def test_float64_stays_float64_and_bf16_is_computed_in_float32():
    x = torch.randn(1, 8, 4, 4, dtype=torch.float64)
    assert contextual_loss(x, x.flip(2)).dtype == torch.float64
    xb = torch.randn(1, 8, 4, 4).bfloat16()
    yb = torch.randn(1, 8, 4, 4).bfloat16()
    assert contextual_loss(xb, yb).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = contextual_loss(xb.float(), yb.float())
    assert v.dtype == torch.float32
    torch.testing.assert_close(v, contextual_loss_reference(xb.float(), yb.float()))


def test_rejects_mismatched_channels():
    with pytest.raises(ValueError, match="equal B and C"):
        contextual_loss(torch.randn(1, 3, 4, 4), torch.randn(1, 4, 4, 4))


def test_sample_positions_keeps_same_positions_and_limit():
    x = torch.arange(2 * 10 * 10, dtype=torch.float32).reshape(1, 2, 10, 10)
    a, b = sample_positions(x, x + 1000, max_side=5, generator=torch.Generator().manual_seed(0))
    assert a.shape == (1, 2, 25, 1)
    torch.testing.assert_close(b, a + 1000)  # same positions in both
    assert len(set(a[0, 0, :, 0].tolist())) == 25  # without repetition
    small = torch.randn(1, 2, 4, 4)
    a2, _ = sample_positions(small, small, max_side=5)
    assert a2 is small


def test_layer_weights_are_applied():
    fx = {"a": torch.randn(1, 4, 3, 3), "b": torch.randn(1, 4, 3, 3)}
    fy = {"a": torch.randn(1, 4, 3, 3), "b": torch.randn(1, 4, 3, 3)}
    la = contextual_loss(fx["a"], fy["a"])
    lb = contextual_loss(fx["b"], fy["b"])
    total = contextual_loss_layers(fx, fy, {"a": 2.0, "b": 0.5})
    torch.testing.assert_close(total, 2.0 * la + 0.5 * lb)


def test_modules_wrap_functions():
    x, y = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3)
    torch.testing.assert_close(ContextualLoss(h=0.3)(x, y), contextual_loss(x, y, h=0.3))

    def extractor(img):
        return {"id": img}

    imgs = torch.rand(2, 3, 5, 5), torch.rand(2, 3, 5, 5)
    mod = VGGContextualLoss(extractor, {"id": 1.0})
    torch.testing.assert_close(mod(*imgs), contextual_loss(*imgs))
