"""VGG feature extractor: layer-name mapping, truncation, weight resolution."""

import pytest
import torch

from puppet.errors import PuppetError
from puppet.losses.vgg import VGGFeatures, layer_index, layer_names, resolve_weights
from tests.conftest import VGG16_HED


@pytest.mark.parametrize("arch,name,index", [
    ("vgg16", "conv3_2", 13), ("vgg16", "preconv3_2", 12), ("vgg16", "conv4_2", 20), ("vgg16", "conv5_2", 27),
    ("vgg19", "preconv3_2", 12), ("vgg19", "preconv4_2", 21), ("vgg19", "preconv5_2", 30),
    ("vgg19", "relu5_4", 35), ("vgg16", "pool5", 30), ("vgg19", "pool5", 36),
])
def test_layer_index_matches_torchvision(arch, name, index):
    # The layer indices in torchvision: conv3_2/conv4_2/conv5_2 at 12/19/26 (VGG16) and 12/21/30 (VGG19), ReLUs at +1.
    assert layer_index(arch, name) == index


def test_layer_names_align_with_torchvision_modules():
    from torchvision.models import vgg16, vgg19

    for arch, ctor in (("vgg16", vgg16), ("vgg19", vgg19)):
        mods = list(ctor(weights=None).features)
        names = layer_names(arch)
        assert len(names) == len(mods)
        for name, mod in zip(names, mods):
            kind = type(mod).__name__
            assert kind == {"pre": "Conv2d", "con": "ReLU", "poo": "MaxPool2d"}[name[:3]]


def test_vgg19_only_layer_is_rejected_for_vgg16():
    with pytest.raises(PuppetError, match="conv3_4"):
        layer_index("vgg16", "conv3_4")


def test_random_features_shapes_and_truncation():
    f = VGGFeatures(["conv1_2", "conv3_2"], weights="random")
    out = f(torch.rand(2, 3, 32, 32))
    assert set(out) == {"conv1_2", "conv3_2"}
    assert out["conv1_2"].shape == (2, 64, 32, 32)
    assert out["conv3_2"].shape == (2, 256, 8, 8)
    assert (out["conv3_2"] >= 0).all()  # post-ReLU
    assert len(f.features) == layer_index("vgg19", "conv3_2") + 1
    assert not any(p.requires_grad for p in f.parameters())


def test_gradient_flows_to_input():
    f = VGGFeatures(["conv2_1"], weights="random")
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    f(x)["conv2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_offline_vgg16_is_found_and_loads(monkeypatch):
    if not VGG16_HED.exists():
        pytest.skip("../shared/weights not present")
    monkeypatch.delenv("PUPPET_VGG16_WEIGHTS", raising=False)
    arch, path = resolve_weights("auto")
    assert arch == "vgg16" and path == VGG16_HED  # TORCH_HOME is empty in tests: no VGG19
    f = VGGFeatures(["conv5_2"], weights="vgg16-hed")
    assert f.arch == "vgg16" and "vgg16_hed" in f.weights_name
    out = f(torch.rand(1, 3, 64, 64))["conv5_2"]
    assert out.shape == (1, 512, 4, 4) and out.abs().sum() > 0


def test_vgg19_from_hub_cache_is_preferred(tmp_path, monkeypatch):
    from torchvision.models import vgg19

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    ckpt = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(vgg19(weights=None).state_dict(), ckpt)
    torch.hub.set_dir(str(tmp_path / "hub"))
    arch, path = resolve_weights("auto")
    assert (arch, path) == ("vgg19", ckpt)
    f = VGGFeatures(["conv5_4"], weights="auto")
    assert f.arch == "vgg19"


@pytest.fixture(autouse=True)
def _restore_hub_dir():
    """Tests here point torch's hub folder elsewhere; put it back for every later test."""
    before = torch.hub.get_dir()
    yield
    torch.hub.set_dir(before)


def test_missing_weights_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PUPPET_VGG16_WEIGHTS", str(tmp_path / "nope.pth"))
    torch.hub.set_dir(str(tmp_path / "hub"))
    with pytest.raises(PuppetError, match="no pretrained VGG weights found"):
        resolve_weights("auto")
    with pytest.raises(PuppetError, match="not found"):
        resolve_weights(str(tmp_path / "x.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(PuppetError, match="cannot load VGG weights"):
        VGGFeatures(["conv1_1"], weights=str(bad))
