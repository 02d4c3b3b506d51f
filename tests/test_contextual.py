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
    grid_positions,
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


def test_lean_gradient_only_x_skips_y(monkeypatch):
    import puppet.losses.contextual as cx

    calls = []
    real = cx._softmax_rows
    monkeypatch.setattr(cx, "_softmax_rows", lambda *a: calls.append(1) or real(*a))
    x = torch.randn(1, 8, 6, 6, requires_grad=True)
    y = torch.randn(1, 8, 6, 6)
    loss = contextual_loss(x, y, block_size=8)
    forward_blocks = len(calls)
    assert forward_blocks == 5  # 36 rows in blocks of 8
    loss.backward()
    assert len(calls) == forward_blocks  # no similarity block recomputed: backward is O(N*C)
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    y.requires_grad_(True)
    contextual_loss(x, y, block_size=8).backward()
    assert len(calls) == 3 * forward_blocks  # y's gradient recomputes the blocks once


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


# --- CoBi: the spatial term -------------------------------------------------------------------


def straightforward_cobi(x, y, w_s, h=0.5, eps=1e-5):
    """CoBi from its definition, loops over i, positions from each map's own pixel centres."""
    def pos(hh, ww):
        return torch.tensor([[(r + 0.5) / hh, (c + 0.5) / ww] for r in range(hh) for c in range(ww)],
                            dtype=torch.float64)

    px, py = pos(*x.shape[2:]), pos(*y.shape[2:])
    X = x[0].flatten(1).t().double()
    Y = y[0].flatten(1).t().double()
    mu = Y.mean(0)
    Xc, Yc = X - mu, Y - mu
    rows = []
    for i in range(X.shape[0]):
        d = 1 - (Yc @ Xc[i]) / (Yc.norm(dim=1) * Xc[i].norm()) + w_s * ((py - px[i]) ** 2).sum(1)
        w = torch.exp((1 - d / (d.min() + eps)) / h)
        rows.append(w / w.sum())
    return torch.stack(rows).max(dim=0).values.mean()


def test_grid_positions():
    p = grid_positions(2, 4)
    assert p.shape == (8, 2)
    torch.testing.assert_close(p[0], torch.tensor([0.25, 0.125]))
    torch.testing.assert_close(p[-1], torch.tensor([0.75, 0.875]))


def test_cobi_reference_matches_definition():
    x = torch.randn(1, 5, 3, 4, dtype=torch.float64)
    y = torch.randn(1, 5, 4, 2, dtype=torch.float64)
    expected = straightforward_cobi(x, y, 0.7)
    torch.testing.assert_close(contextual_similarity_reference(x, y, spatial_weight=0.7)[0], expected)
    torch.testing.assert_close(contextual_similarity(x, y, spatial_weight=0.7, block_size=5)[0], expected)


@pytest.mark.parametrize("w_s", [0.1, 1.0, 5.0])
@pytest.mark.parametrize("shape_x,shape_y,block", [((1, 16, 8, 8), (1, 16, 8, 8), 7),
                                                   ((2, 8, 6, 10), (2, 8, 9, 5), None)])
def test_lean_cobi_equals_reference(w_s, shape_x, shape_y, block):
    x = torch.randn(*shape_x, requires_grad=True)
    y = torch.randn(*shape_y, requires_grad=True)
    ref = contextual_loss_reference(x, y, spatial_weight=w_s)
    gref = torch.autograd.grad(ref, (x, y))
    lean = contextual_loss(x, y, block_size=block, spatial_weight=w_s)
    glean = torch.autograd.grad(lean, (x, y))
    torch.testing.assert_close(lean, ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(glean, gref):
        scale = b.abs().max()
        torch.testing.assert_close(a / scale, b / scale, rtol=1e-5, atol=1e-5)


def test_gradcheck_float64_lean_cobi():
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 4, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: contextual_loss(a, b, block_size=4, spatial_weight=0.5), (x, y))


def test_cobi_zero_weight_is_cx_and_identical_is_zero():
    x, y = torch.randn(1, 8, 5, 5), torch.randn(1, 8, 5, 5)
    torch.testing.assert_close(contextual_loss(x, y, spatial_weight=0.0), contextual_loss(x, y))
    assert contextual_loss(x, x, spatial_weight=2.0).item() == pytest.approx(0.0, abs=1e-5)


def test_cobi_scores_a_shifted_copy_worse_than_an_exact_copy():
    x = torch.rand(1, 3, 16, 16)
    shifted = torch.roll(x, shifts=4, dims=3)  # the same features, moved: a permutation of positions
    assert contextual_loss(shifted, x).item() < 0.01  # CX barely tells (3 channels: near-ties)
    exact = contextual_loss(x, x, spatial_weight=1.0).item()
    moved = contextual_loss(shifted, x, spatial_weight=1.0).item()
    assert exact == pytest.approx(0.0, abs=1e-5) and moved > exact + 0.05


def test_layers_apply_spatial_weight_per_layer_and_sampled_positions():
    g = torch.Generator().manual_seed(0)
    fx = {"a": torch.randn(1, 4, 8, 8), "b": torch.randn(1, 4, 3, 3)}
    fy = {"a": torch.randn(1, 4, 8, 8), "b": torch.randn(1, 4, 3, 3)}
    total = contextual_loss_layers(fx, fy, {"a": 1.0, "b": 1.0}, max_side=5, generator=g, spatial={"a": 2.0})
    g = torch.Generator().manual_seed(0)
    xa, ya, pos = sample_positions(fx["a"], fy["a"], 5, g, with_positions=True)
    assert pos[0].shape == (25, 2)
    expected = (contextual_loss_reference(xa, ya, spatial_weight=2.0, positions=pos)
                + contextual_loss_reference(fx["b"], fy["b"]))
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-6)


def test_block_rows_from_a_budget():
    from puppet.losses.contextual import block_budget, block_rows

    assert block_rows(1, 4096, 4096, 1 << 20) == 256  # the CPU's cache-sized blocks
    assert block_rows(1, 1024, 1024, 1 << 30) == 1024  # it all fits: one block
    assert block_rows(4, 100, 100, 1) == 64  # never below 64 rows...
    assert block_rows(4, 10, 100, 1) == 10  # ...nor above n
    assert block_budget(torch.device("cpu")) == 1 << 20


def test_one_block_and_many_blocks_agree():
    x, y = torch.randn(2, 16, 12, 12), torch.randn(2, 16, 12, 12)
    one = contextual_loss(x, y, block_size=144)
    many = contextual_loss(x, y, block_size=64)
    torch.testing.assert_close(one, many)
