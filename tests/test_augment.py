"""puppet.train.augment: pairs warped alike, around the face only."""
import numpy as np
import pytest
import torch

from puppet.train.augment import augment_batch, face_circles, face_warp_grids, warp_pairs

S = 64


def smooth_images(b: int, seed: int = 0) -> torch.Tensor:
    """(b, 3, S, S) smooth random images (low-frequency noise, upsampled)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(b, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(small, size=(S, S), mode="bicubic", align_corners=False).clamp(0, 1)


CIRCLES = torch.tensor([[32.0, 32.0, 14.0], [28.0, 36.0, 12.0]])


def test_face_circles_centre_and_radius():
    lm = np.array([[[10, 20], [30, 60], [20, 40]]], dtype=np.float32)
    assert face_circles(lm).tolist() == [[20.0, 40.0, 20.0]]


def test_frame_and_input_map_get_the_same_transform():
    frame = smooth_images(2)
    input_map = frame[:, :1].clone()  # an input map that is a function of the frame
    mask = (frame[:, 1:2] > 0.5).float()
    warped, (e, r, m) = augment_batch(1.0, CIRCLES, S, torch.Generator().manual_seed(1), input_map, frame, mask)
    assert warped
    assert torch.allclose(e, r[:, :1], atol=1e-6)
    assert m.shape == mask.shape
    # a dot drawn into both lands at the same place in both
    dot = torch.zeros(2, 1, S, S)
    dot[:, :, 30:33, 30:33] = 1
    a, b = warp_pairs(face_warp_grids(CIRCLES, S, torch.Generator().manual_seed(2)), dot, dot.repeat(1, 3, 1, 1))
    assert torch.equal(a, b[:, :1])


def test_warp_moves_the_face_and_leaves_the_background():
    frame = smooth_images(2, seed=3)
    _, (r,) = augment_batch(1.0, CIRCLES, S, torch.Generator().manual_seed(4), frame)
    inside = (slice(None), slice(None), slice(24, 40), slice(24, 40))
    assert (r[inside] - frame[inside]).abs().mean() > 0.005
    corners = [(slice(None), slice(None), slice(0, 4), slice(0, 4)),
               (slice(None), slice(None), slice(-4, None), slice(-4, None))]
    for c in corners:
        assert torch.allclose(r[c], frame[c], atol=2e-3)


def test_share_zero_warps_nothing_and_draws_are_reproducible():
    frame = smooth_images(2)
    warped, (r,) = augment_batch(0.0, CIRCLES, S, torch.Generator().manual_seed(0), frame)
    assert not warped and r is frame
    one = augment_batch(1.0, CIRCLES, S, torch.Generator().manual_seed(5), frame)[1][0]
    two = augment_batch(1.0, CIRCLES, S, torch.Generator().manual_seed(5), frame)[1][0]
    assert torch.equal(one, two)


def test_items_not_chosen_are_left_exactly():
    frame = smooth_images(64)
    circles = CIRCLES[:1].repeat(64, 1)
    _, (r,) = augment_batch(0.5, circles, S, torch.Generator().manual_seed(6), frame)
    same = [(r[i] - frame[i]).abs().max().item() < 1e-5 for i in range(64)]
    assert 10 < sum(same) < 54  # about half warped


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identity_grid_at_zero_strength_reproduces_the_image(dtype, monkeypatch):
    import puppet.train.augment as aug

    for name in ("ROTATION_DEG", "SCALE", "SHIFT", "BUMP_SHIFT"):
        monkeypatch.setattr(aug, name, 0.0)
    frame = smooth_images(2).to(dtype)
    (r,) = warp_pairs(face_warp_grids(CIRCLES, S, torch.Generator().manual_seed(0)), frame)
    assert torch.allclose(r, frame, atol=1e-5)


def test_each_process_warps_its_slice_as_one_process_would():
    """Under torchrun each rank warps its rows of the global batch exactly as a single process does,
    and the step's generator ends in the same state (it samples the contextual loss next)."""
    frame = smooth_images(4, seed=7)
    circles = CIRCLES.repeat(2, 1)
    g_one = torch.Generator().manual_seed(9)
    _, (whole,) = augment_batch(0.5, circles, S, g_one, frame)
    for rank in range(2):
        g = torch.Generator().manual_seed(9)
        _, (mine,) = augment_batch(0.5, circles[2 * rank:2 * rank + 2], S, g, frame[2 * rank:2 * rank + 2],
                                   part=(rank, 2))
        assert torch.equal(mine, whole[2 * rank:2 * rank + 2])
        assert torch.equal(g.get_state(), g_one.get_state())
