"""The generator's input: channel order, layouts of earlier versions, which modules take what."""

import numpy as np
import pytest

from puppet.face.drive import DriverToEdges
from puppet.face.inputs import InputLayout, model_input, model_inputs
from tests.test_drive import _face


def test_model_input_order_edges_ramps_mouth():
    """The one input builder of training and rendering: edge map, then ramps, then the mouth's opening;
    an older layout draws only what its model takes."""
    from puppet.face.edges import distance_ramps, draw_edges, mouth_fill

    lm = _face()
    edges = draw_edges(lm, 128)
    x = model_input(edges, lm, InputLayout())
    assert x.shape == (13, 128, 128) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:6], edges)
    np.testing.assert_array_equal(x[6:12], distance_ramps(lm, 128, 32.0))
    np.testing.assert_array_equal(x[12:13], mouth_fill(lm, 128))
    assert model_input(edges, lm, InputLayout(ramps=0.0, mouth=False)) is edges
    np.testing.assert_array_equal(model_input(edges, lm, InputLayout(ramps=0.0))[6:], mouth_fill(lm, 128))
    many = model_inputs(np.stack([edges, edges]), np.stack([lm, lm + 3]), InputLayout(mouth=False))
    assert many.shape == (2, 12, 128, 128) and not np.array_equal(many[0, 6:], many[1, 6:])
    assert model_inputs(np.stack([edges]), np.stack([lm]), InputLayout(ramps=0.0)).shape == (1, 7, 128, 128)
    np.testing.assert_array_equal(DriverToEdges(lm, 128).draw(lm), x)


@pytest.mark.parametrize("layout, channels", [
    ({}, (6, 7)),  # lines to the coarse modules; ramps and mouth to every module
    ({"fine_ramps": False}, (12, 1)),
    ({"ramps": 0.0}, (6, 1)),
    ({"ramps": 0.0, "mouth": False}, (6, 0)),
])
def test_layout_channels_split_what_only_the_coarse_modules_take(layout, channels):
    assert InputLayout(**layout).channels() == channels
