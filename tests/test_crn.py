"""CRN: output shapes and range at each size, gradient flow, size checks."""

import pytest
import torch

from puppet.models.crn import CRN


@pytest.mark.parametrize("size,widths", [(32, [8, 8, 4]), (128, [16, 16, 8, 8, 4, 4]), (256, [8, 8, 8, 8, 4, 4, 4]),
                                         (512, [4, 4, 4, 4, 4, 4, 4])])
def test_output_shape_and_range(size, widths):
    m = CRN(6, size, widths)
    y = m(torch.rand(2, 6, size, size))
    assert y.shape == (2, 3, size, size)
    assert y.min() >= 0 and y.max() <= 1
    assert m.sizes[0] == size // 2 ** (len(widths) - 1) and m.sizes[-1] == size


def test_default_cpu_model_size():
    m = CRN()
    n = sum(p.numel() for p in m.parameters())
    assert 3.0e6 < n < 4.0e6  # the 128^2 CPU model has 3.65 M parameters (docs/method.md)


def test_gradients_reach_every_module():
    m = CRN(6, 32, [8, 8, 4])
    m(torch.rand(1, 6, 32, 32)).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_input_drives_output():
    m = CRN(6, 32, [8, 8, 4]).eval()
    a, b = torch.zeros(1, 6, 32, 32), torch.zeros(1, 6, 32, 32)
    b[:, :, 10:20, 10:20] = 1
    assert (m(a) - m(b)).abs().max() > 1e-4


def test_bad_size():
    with pytest.raises(ValueError, match="divisible"):
        CRN(6, 100, [8, 8, 8, 8])


def test_dense_channels_reach_the_finest_module_edges_do_not():
    """The trailing ``dense_channels`` (ramps, warped reference) go to every module; the lines skip the finest."""
    m = CRN(6, 32, [8, 8, 4], no_input_levels=1, dense_channels=3).eval()
    assert m.refine[-1].block[0].in_channels == 3 + 8  # dense channels + upsampled features, no edge map
    assert m.refine[0].block[0].in_channels == 9
    x = torch.rand(1, 9, 32, 32)
    assert m(x).shape == (1, 3, 32, 32)
    # a one-pixel change of a dense channel reaches the output at full resolution through the finest module
    y = x.clone()
    y[:, 6:, 16, 16] += 0.5
    diff = (m(y) - m(x)).abs()[0].sum(0)
    assert diff[16, 16] > 0
    m.refine[-1].block[0].weight.data[:, :3] = 0  # cut the finest module's dense input
    diff2 = (m(y) - m(x)).abs()[0].sum(0)
    assert diff2[16, 16] < diff[16, 16]
