"""Generators."""

from __future__ import annotations

from typing import TYPE_CHECKING

from puppet.models.crn import CRN

if TYPE_CHECKING:
    from puppet.config import Config


def build_model(cfg: "Config", in_channels: int = 6) -> CRN:
    """The CRN for a config: 6 edge-map channels in (3 for RGB-to-RGB domain transfer), plus the
    3 channels of the warped neutral frame with ``model.reference``."""
    return CRN(in_channels=in_channels, size=cfg.data.size, widths=cfg.model.widths,
               no_input_levels=cfg.model.no_input_levels, ref_channels=3 if cfg.model.reference else 0)


__all__ = ["CRN", "build_model"]
