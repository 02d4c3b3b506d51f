"""Colour features (patches, Lab) and the FeatureSet that puts them beside VGG layers."""

import pytest
import torch

from puppet.losses.contextual import contextual_loss, contextual_loss_layers
from puppet.losses.features import FeatureSet, build_features, split_layers
from puppet.losses.patches import (
    colour_patches,
    parse_patch_layer,
    patch_features,
    rgb_to_lab,
)


def test_parse_patch_layer():
    assert parse_patch_layer("rgb5_d4") == ("rgb", 5, 4)
    assert parse_patch_layer("lab3_d1") == ("lab", 3, 1)
    assert parse_patch_layer("conv3_2") is None
    with pytest.raises(ValueError, match="odd"):
        parse_patch_layer("rgb4_d2")
    assert split_layers(["conv3_2", "rgb5_d4", "conv4_2"]) == (["conv3_2", "conv4_2"], ["rgb5_d4"])


def test_patch_features_hold_the_neighbourhood():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    f = patch_features(x, 3)
    assert f.shape == (1, 9, 4, 4)
    torch.testing.assert_close(f[0, :, 1, 1], torch.tensor([0.0, 1, 2, 4, 5, 6, 8, 9, 10]))
    assert colour_patches(torch.rand(2, 3, 16, 16), k=5, down=4).shape == (2, 75, 4, 4)


def test_rgb_to_lab_known_answers():
    px = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]).t().reshape(1, 3, 3, 1)
    lab = rgb_to_lab(px)[0, :, :, 0].t()
    # white (100, 0, 0), black (0, 0, 0), sRGB red (53.24, 80.09, 67.20); scaled by (100, 110, 110)
    expected = torch.tensor([[1.0, 0, 0], [0, 0, 0], [0.5324, 80.09 / 110, 67.20 / 110]])
    torch.testing.assert_close(lab, expected, atol=2e-3, rtol=0)


def test_feature_set_mixes_vgg_and_patches():
    vgg = lambda x: {"conv3_2": x[:, :1] * 2}  # noqa: E731 - stands in for VGGFeatures
    fs = FeatureSet(["conv3_2", "rgb3_d2"], vgg)
    out = fs(torch.rand(1, 3, 8, 8))
    assert set(out) == {"conv3_2", "rgb3_d2"} and out["rgb3_d2"].shape == (1, 27, 4, 4)
    with pytest.raises(ValueError, match="need a VGG extractor"):
        FeatureSet(["conv3_2"], None)
    assert build_features(["lab5_d4"]).vgg is None  # no VGG weights loaded for patches alone


@pytest.mark.parametrize("name", ["rgb5_d4", "lab3_d1"])
def test_colour_cx_zero_for_identical_and_permutation_invariant(name):
    fs = build_features([name])
    img = torch.rand(1, 3, 32, 32)
    f = fs(img)[name]
    assert contextual_loss(f, f).item() == pytest.approx(0.0, abs=1e-5)
    other = fs(torch.rand(1, 3, 32, 32))[name]
    perm = torch.randperm(f.shape[2] * f.shape[3])
    fp = f.flatten(2)[:, :, perm].reshape_as(f)
    torch.testing.assert_close(contextual_loss(fp, other), contextual_loss(f, other))


def test_colour_shift_raises_colour_aware_cx_far_more(media):
    """A red shift of 0.2: the HED trunk hardly notices, the paper preset's colour features do."""
    from puppet.config import load_config
    from puppet.tensors import to_tensor_images
    from puppet.utils import center_square, read_image
    from tests.conftest import MEDIA, VGG16_HED, need_shared

    need_shared(VGG16_HED)
    img = to_tensor_images(center_square(read_image(MEDIA / "images" / "painted_woman.jpg"), 64)[None], "cpu")
    shifted = img.clone()
    shifted[:, 0] = (shifted[:, 0] + 0.2).clamp(0, 1)
    layers = load_config(loss_preset="paper").loss.cx_layers
    hed = {k: v for k, v in layers.items() if parse_patch_layer(k) is None}
    assert hed and len(hed) < len(layers)
    fs = build_features(list(layers), "vgg16-hed")
    fx, fy = fs(shifted), fs(img)
    rise_hed = contextual_loss_layers(fx, fy, hed).item()
    rise_colour = contextual_loss_layers(fx, fy, layers).item()
    assert rise_colour >= 5 * rise_hed
