"""Generators."""

from __future__ import annotations

from typing import TYPE_CHECKING

from puppet.models.crn import CRN

if TYPE_CHECKING:
    from puppet.config import Config


def build_model(cfg: "Config", in_channels: int | None = None) -> CRN:
    """The CRN for a config. ``in_channels``: None for the face input (6 edge-map channels, 6 more
    with ``model.ramps``, 1 more with ``model.mouth``), 3 for RGB-to-RGB domain transfer; plus the 3
    channels of the warped neutral frame with ``model.reference``. The finest
    ``model.no_input_levels`` modules take the warped frame, the mouth's opening, and with
    ``model.fine_ramps`` the ramps, but never the lines."""
    dense = 3 if cfg.model.reference else 0
    if in_channels is None:
        from puppet.edges import PARTS

        in_channels = len(PARTS)
        if cfg.model.ramps:
            if cfg.model.fine_ramps:
                dense += len(PARTS)
            else:
                in_channels += len(PARTS)
        dense += 1 if cfg.model.mouth else 0
    return CRN(in_channels=in_channels, size=cfg.data.size, widths=cfg.model.widths,
               no_input_levels=cfg.model.no_input_levels, dense_channels=dense)


__all__ = ["CRN", "build_model"]
