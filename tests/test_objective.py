"""The training objective: terms, warm-up, weights, and the cache of target features."""

import pytest
import torch

from puppet.config import load_config
from puppet.errors import PuppetError
from puppet.losses.objective import Objective, TargetFeatureCache, feature_layers
from puppet.losses.pixel import detail_loss
from tests.conftest import ROOT


def _ident(x):
    return {k: x for k in ("conv3_2", "conv4_2", "conv5_2")}


def test_objective_terms_and_warmup():
    # warm-up with the main pixel and perceptual weights (empty warmup_weights; the default's is L1 alone)
    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["loss.cx_weight=1", "loss.l1_weight=10",
                                                        "loss.warmup_weights={}", "loss.detail_weight=0",
                                                        "loss.parts_weight=0",
                                                        "loss.cx_layers={conv3_2: 1.0, conv4_2: 1.0}"]).loss
    obj = Objective(cfg, _ident)
    x, y = torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8)
    _, terms = obj(x, y, step=0)
    assert set(terms) == {"l1", "p"}  # CX is off during warm-up
    total, terms = obj(x, y, step=cfg.cx_warmup_steps)
    assert set(terms) == {"l1", "p", "cx"}
    assert total.item() == pytest.approx(sum(terms.values()), rel=1e-5)
    assert terms["l1"] == pytest.approx(10 * (x - y).abs().mean().item(), rel=1e-5)
    total.backward()
    assert x.grad is not None


def test_detail_term_in_the_warmup_and_after():
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    cfg = load_config(overrides=["loss.detail_weight=3", "loss.detail_window=4", "loss.cx_weight=0",
                                 "loss.p_weight=0", "loss.warmup_weights={l1: 10, detail: 2}",
                                 "loss.parts_weight=0"]).loss
    obj = Objective(cfg, None)
    _, warm = obj(x, y, step=0)
    _, main = obj(x, y, step=cfg.cx_warmup_steps)
    assert set(warm) == set(main) == {"l1", "detail"}
    assert warm["detail"] == pytest.approx(2 * detail_loss(x, y, 4).item(), rel=1e-5)
    assert main["detail"] == pytest.approx(3 * detail_loss(x, y, 4).item(), rel=1e-5)
    with pytest.raises(PuppetError, match="loss.detail_window"):
        load_config(overrides=["loss.detail_window=0"])


def test_parts_term_weights_l1_inside_the_mask_in_the_warmup_and_after():
    from puppet.losses.pixel import masked_l1_loss

    x, y = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    mask = (torch.rand(2, 1, 8, 8) > 0.7).float()
    cfg = load_config(overrides=["loss.parts_weight=3", "loss.cx_weight=0", "loss.p_weight=0",
                                 "loss.detail_weight=0", "loss.warmup_weights={l1: 10, parts: 2}"]).loss
    obj = Objective(cfg, None)
    _, warm = obj(x, y, step=0, mask=mask)
    _, main = obj(x, y, step=cfg.cx_warmup_steps, mask=mask)
    assert warm["parts"] == pytest.approx(2 * masked_l1_loss(x, y, mask).item(), rel=1e-5)
    assert main["parts"] == pytest.approx(3 * masked_l1_loss(x, y, mask).item(), rel=1e-5)
    with pytest.raises(PuppetError, match="loss.parts_weight"):
        obj(x, y, step=0)
    with pytest.raises(PuppetError, match="warm-up terms are"):
        load_config(overrides=["loss.warmup_weights={cx: 1}"])


def test_feature_layers_skip_zero_weights():
    cfg = load_config(overrides=["loss.cx_layers={conv3_2: 1.0, rgb5_d4: 0.0}"]).loss
    assert feature_layers(cfg) == ["conv3_2", "conv5_2"]


def test_cached_target_features_equal_fresh_ones_and_are_computed_once():
    calls = []

    def features(img):
        calls.append(len(img))
        return {"conv3_2": img * 2}

    cache = TargetFeatureCache(features)
    imgs = torch.rand(3, 3, 4, 4)
    a = cache(imgs[[0, 1]], [10, 11])
    b = cache(imgs[[1, 2, 0]], [11, 12, 10])
    # one image at a time (a frame's features must not depend on the batch it first came in: exact
    # resume), and only image 12 was new the second time
    assert calls == [1, 1, 1]
    torch.testing.assert_close(a["conv3_2"], imgs[[0, 1]] * 2)
    torch.testing.assert_close(b["conv3_2"], imgs[[1, 2, 0]] * 2)


def test_all_zero_weights_is_an_error():
    with pytest.raises(PuppetError, match="every loss weight is 0"):  # found when the config loads
        load_config(overrides=["loss.cx_weight=0", "loss.p_weight=0", "loss.l1_weight=0", "loss.detail_weight=0",
                               "loss.parts_weight=0"])
    # a warm-up with nothing in it
    cfg = load_config(overrides=["loss.cx_weight=0", "loss.p_weight=0", "loss.warmup_weights={l1: 0.0}"]).loss
    with pytest.raises(PuppetError, match="every loss weight is 0"):
        Objective(cfg, None)(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), step=0)


def test_spatial_weight_for_unknown_layer_is_a_config_error():
    with pytest.raises(PuppetError, match="loss.cx_spatial.conv9_9"):
        load_config(overrides=["loss.cx_spatial={conv9_9: 1.0}"])


def test_pixel_only_warmup_skips_features_then_switches_to_main_weights():
    cfg = load_config(overrides=["loss.cx_warmup_steps=5", "loss.warmup_weights={l1: 3.0}", "loss.l1_weight=0",
                                 "loss.p_weight=0.1", "loss.cx_weight=1", "loss.parts_weight=0",
                                 "loss.cx_layers={conv3_2: 1.0, conv4_2: 1.0}"]).loss
    calls = []

    def features(img):
        calls.append(1)
        return _ident(img)

    obj = Objective(cfg, features)
    x, y = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    _, terms = obj(x, y, step=4)
    assert set(terms) == {"l1"} and not calls  # no feature pass during a pixel-only warm-up
    assert terms["l1"] == pytest.approx(3 * (x - y).abs().mean().item(), rel=1e-5)
    _, terms = obj(x, y, step=5)
    assert set(terms) == {"detail", "p", "cx"} and calls  # the default's detail term joins the main phase
    with pytest.raises(PuppetError, match="warmup_weights.cx"):
        load_config(overrides=["loss.warmup_weights={cx: 1.0}"])


def test_term_used_reads_the_warmup_and_the_main_weights():
    from puppet.losses.objective import term_used

    def used(*overrides):
        return term_used(load_config(overrides=list(overrides)).loss, "parts")

    assert used()  # the default: in the warm-up and after
    assert used("loss.parts_weight=0", "loss.warmup_weights={l1: 10, parts: 2}")  # warm-up only
    assert used("loss.warmup_weights={}")  # an empty warm-up runs the main weights
    assert not used("loss.parts_weight=0", "loss.warmup_weights={l1: 10}")
