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


def _face_inputs(size: int, n: int = 2):
    """(n, C, size, size) uint8 inputs drawn by the functions training and rendering draw with, from
    synthetic landmarks: a new input channel reaches these tests as it reaches training."""
    import numpy as np

    from puppet.face.edges import draw_edges
    from puppet.face.inputs import InputLayout, model_inputs
    from tests.test_drive import _face

    lms = np.stack([_face(seed) * size / 128 for seed in range(n)])
    return model_inputs(np.stack([draw_edges(lm, size) for lm in lms]), lms, InputLayout())


def test_training_step_under_autocast():
    """The trainer's own step (puppet.train.loop.train_step), bf16 autocast, the paper's loss, cached targets."""
    from puppet.config import load_config
    from puppet.losses.features import build_features
    from puppet.losses.objective import Objective, feature_layers
    from puppet.models import build_model
    from puppet.tensors import to_tensor_edges
    from puppet.train.loop import Dist, Parts, Task, train_step

    cfg = load_config(loss_preset="paper", overrides=["data.size=64", "model.widths=[32, 32, 16, 16]"])
    dev = torch.device("cuda")
    model = build_model(cfg).to(dev)
    parts = Parts(model, model, Objective(cfg.loss, build_features(feature_layers(cfg.loss), "random").to(dev),
                                          cache=True), torch.optim.Adam(model.parameters(), 1e-3))
    e, r = to_tensor_edges(_face_inputs(64), dev), torch.rand(2, 3, 64, 64, device=dev)
    task = Task("puppet", 2, lambda idx: (e, r, None, [0, 1], None), lambda *a: {}, {})
    losses = [sum(train_step(parts, cfg, dev, task, step, Dist()).values()) for step in range(5)]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


def test_rendering_on_gpu(tiny_run, media):
    import numpy as np

    from puppet.render.renderer import Renderer

    r = Renderer.from_path(tiny_run, device="cuda")
    out = r.generate(np.stack([r.draw(r.meta.neutral_landmarks)] * 4))  # the input it was trained on
    assert out.shape == (4, r.size, r.size, 3) and out.dtype == np.uint8
