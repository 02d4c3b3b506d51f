"""The CUDA path: lean CX on the GPU, a training step under bf16 autocast, rendering (skipped without a GPU)."""

import pytest
import torch

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_lean_equals_reference_on_gpu():
    from puppet.losses.contextual import contextual_loss, contextual_loss_reference

    x = torch.randn(2, 64, 24, 24, device="cuda", requires_grad=True)
    y = torch.randn(2, 64, 24, 24, device="cuda")
    for w_s in (0.0, 4.0):
        ref = contextual_loss_reference(x, y, spatial_weight=w_s)
        (g_ref,) = torch.autograd.grad(ref, x)
        lean = contextual_loss(x, y, spatial_weight=w_s)
        (g,) = torch.autograd.grad(lean, x)
        torch.testing.assert_close(lean, ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(g / g_ref.abs().max(), g_ref / g_ref.abs().max(), rtol=1e-3, atol=1e-4)


def test_training_step_under_autocast():
    from puppet.config import load_config
    from puppet.losses.features import build_features
    from puppet.losses.objective import Objective, feature_layers
    from puppet.models import build_model
    from puppet.tensors import autocast_for

    cfg = load_config(loss_preset="paper", overrides=["data.size=64", "model.widths=[32, 32, 16, 16]"])
    dev = torch.device("cuda")
    model = build_model(cfg).to(dev)
    obj = Objective(cfg.loss, build_features(feature_layers(cfg.loss), "random").to(dev), cache=True)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    e, r = torch.rand(2, 6, 64, 64, device=dev), torch.rand(2, 3, 64, 64, device=dev)
    losses = []
    for step in range(5):
        with autocast_for(dev, True):
            loss, _ = obj(model(e), r, step, target_keys=[0, 1])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


def test_rendering_on_gpu(tiny_run, media):
    import numpy as np

    from puppet.render import Renderer

    r = Renderer.from_path(tiny_run, device="cuda")
    out = r.generate(np.zeros((4, 6, r.size, r.size), np.uint8))
    assert out.shape == (4, r.size, r.size, 3) and out.dtype == np.uint8
