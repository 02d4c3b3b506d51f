"""The renderer shared by ``puppet animate`` and ``puppet live``.

driver landmarks -> retarget to the target -> smooth -> edge map -> CRN -> RGB,
plus optional paste-back into the target's full frame. Frame sources and
sinks (files, cameras, windows) live in animate.py and live.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from puppet.checkpoint import load_checkpoint
from puppet.config import config_from_dict
from puppet.edges import draw_edges
from puppet.errors import PuppetError
from puppet.landmarks import CropBox, OneEuroFilter
from puppet.retarget import PoseLimits, Retargeter
from puppet.train import build_model, to_tensor_edges, to_uint8_images
from puppet.utils import pick_device


class Renderer:
    """Turns driver landmarks into target frames.

    Args:
        state: a loaded checkpoint (see puppet.checkpoint).
        device: torch device name (``auto`` picks CUDA when present).
        smooth: temporal smoothing strength (0 = off, 1 = default, 2 = twice as smooth).
        expression_scale: multiplies the driver's expression (e.g. 1.3 exaggerates).
        pose_scale: how much of the driver's head motion is applied (0 = none, 1 = all).
        limit_expression: keep expressions within the range the target clip shows
            (wider ones are outside what the model learned and smear).
    """

    def __init__(self, state: dict, device: str = "auto", smooth: float = 1.0, expression_scale: float = 1.0,
                 pose_scale: float = 1.0, limit_expression: bool = True):
        if state.get("kind") == "transfer":
            raise PuppetError("this is a domain-transfer model (image to image); apply it with puppet transfer")
        self.cfg = config_from_dict(state["config"])
        self.meta = state["meta"]
        self.device = pick_device(device)
        self.size = int(self.meta["size"])
        self.line_width = int(self.meta.get("line_width", 1))
        model = build_model(self.cfg)
        model.load_state_dict(state["model"])
        self.model = model.to(self.device).eval().to(memory_format=torch.channels_last)
        limits = PoseLimits(**self.meta.get("pose_range", {}))  # the head motion the target clip contains
        limits.scale = pose_scale
        expr = self.meta.get("expression_range")
        self.retargeter = Retargeter(self.meta["neutral_landmarks"].numpy(), expression_scale, limits,
                                     None if expr is None or not limit_expression else expr.numpy())
        # One Euro on crop-normalised coordinates: ~1.5 Hz cutoff at rest removes tracker
        # jitter; beta lets the cutoff rise with speed so mouth motion is not lagged.
        self.filter = OneEuroFilter(1.5 / smooth, 10.0 / smooth) if smooth > 0 else None

    @classmethod
    def from_path(cls, path: str | Path, **kwargs) -> "Renderer":
        return cls(load_checkpoint(path), **kwargs)

    def calibrate(self, driver_neutral: np.ndarray) -> None:
        """Take driver landmarks (478, 2) as the driver's resting face; restart smoothing."""
        self.retargeter.calibrate(driver_neutral)
        if self.filter is not None:
            self.filter.reset()

    def target_landmarks(self, driver: np.ndarray, t: float) -> np.ndarray:
        """Driver landmarks (478, 2) at time t (seconds) -> smoothed target landmarks in crop pixels."""
        lm = self.retargeter(driver)
        if self.filter is not None:
            lm = self.filter(lm / self.size, t) * self.size
        return lm

    def edges(self, driver: np.ndarray, t: float) -> np.ndarray:
        """Driver landmarks -> target edge map (6, S, S) uint8."""
        return draw_edges(self.target_landmarks(driver, t), self.size, self.line_width)

    @torch.inference_mode()
    def generate(self, edges: np.ndarray) -> np.ndarray:
        """Edge maps (B, 6, S, S) uint8 -> frames (B, S, S, 3) uint8."""
        x = to_tensor_edges(edges, self.device).contiguous(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return to_uint8_images(self.model(x))
        return to_uint8_images(self.model(x))

    @property
    def can_paste(self) -> bool:
        return "neutral_frame" in self.meta

    def paste(self, face: np.ndarray) -> np.ndarray:
        """Blend a generated crop (S, S, 3) into the target's neutral full frame with a feathered oval mask."""
        import cv2

        frame = self.meta["neutral_frame"].numpy()
        box = CropBox(*self.meta["crop_box"])
        h, w = frame.shape[:2]
        inv = cv2.invertAffineTransform(box.affine(self.size))
        warped = cv2.warpAffine(face, inv, (w, h), flags=cv2.INTER_LINEAR)
        mask = np.zeros((self.size, self.size), np.float32)
        s = self.size
        cv2.ellipse(mask, (s // 2, int(s * 0.52)), (int(s * 0.36), int(s * 0.44)), 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), s * 0.05)
        mask = cv2.warpAffine(mask, inv, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        return (warped * mask + frame * (1 - mask)).astype(np.uint8)
