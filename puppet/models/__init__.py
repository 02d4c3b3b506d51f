"""Generators."""

from __future__ import annotations

from typing import TYPE_CHECKING

from puppet.models.crn import CRN

if TYPE_CHECKING:
    from puppet.config import Config
    from puppet.face.inputs import InputLayout


def build_model(cfg: "Config", in_channels: int | None = None, layout: "InputLayout | None" = None) -> CRN:
    """The CRN for a config. Face models (``in_channels`` None) take the channels of ``layout``
    (default: today's, see puppet.face.inputs); the finest ``layout.lineless_levels`` modules take
    the ramps and the mouth's opening but never the lines. ``in_channels`` 3: an RGB-to-RGB
    domain-transfer model, whose finest ``layout.lineless_levels`` modules do not take the image."""
    from puppet.face.inputs import InputLayout

    layout = layout or InputLayout()
    if in_channels is not None:
        return CRN(in_channels=in_channels, size=cfg.data.size, widths=cfg.model.widths,
                   no_input_levels=layout.lineless_levels)
    leading, dense = layout.channels()
    return CRN(in_channels=leading, size=cfg.data.size, widths=cfg.model.widths,
               no_input_levels=layout.lineless_levels, dense_channels=dense)


__all__ = ["CRN", "build_model"]
