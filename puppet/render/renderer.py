"""The renderer shared by ``puppet animate``, ``puppet live`` and ``puppet eval``.

driver landmarks -> retarget to the target -> smooth -> edge map -> CRN -> RGB,
plus optional paste-back into the target's full frame. Frame sources and
sinks (files, cameras, windows) live in animate.py and live.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from puppet.config import config_from_dict
from puppet.data.checkpoint import load_checkpoint
from puppet.data.meta import TargetMeta
from puppet.errors import PuppetError
from puppet.face.drive import DriverToEdges, RenderOptions
from puppet.face.inputs import InputLayout
from puppet.face.landmarks import CropBox
from puppet.models import build_model
from puppet.tensors import autocast_for, to_tensor_edges, to_uint8_images
from puppet.utils import pick_device


class Renderer:
    """Turns driver landmarks into target frames.

    Args:
        state: a loaded checkpoint (see puppet.data.checkpoint).
        device: torch device name (``auto`` picks CUDA when present).
        options: :class:`~puppet.face.drive.RenderOptions` (smoothing, expression and pose handling).
    """

    def __init__(self, state: dict, device: str = "auto", options: RenderOptions | None = None):
        if state.get("kind") == "transfer":
            raise PuppetError("this is a domain-transfer model (image to image); apply it with puppet transfer")
        if state.get("kind") == "prior":
            raise PuppetError("this is a prior (trained on several people, it renders no one); fine-tune it "
                              "on a target first: puppet train --target VIDEO --init PRIOR")
        self.cfg = config_from_dict(state["config"])
        self.meta = TargetMeta.from_dict(state["meta"])
        self.options = options or RenderOptions()
        self.device = pick_device(device)
        self.size = self.meta.size
        self.layout = InputLayout.from_dict(state["layout"])
        model = build_model(self.cfg, layout=self.layout)
        model.load_state_dict(state["model"])
        self.model = model.to(self.device).eval().to(memory_format=torch.channels_last)
        self.driver = DriverToEdges(self.meta.neutral_landmarks, self.size, self.meta.line_width, self.options,
                                    self.meta.pose_limits(), self.meta.expression_range,
                                    self.meta.expression_amplitude, self.layout)

    @classmethod
    def from_path(cls, path: str | Path, **kwargs) -> "Renderer":
        return cls(load_checkpoint(path), **kwargs)

    def calibrate(self, driver_neutral: np.ndarray) -> None:
        """Take driver landmarks (478, 2) as the driver's resting face; restart smoothing."""
        self.driver.calibrate(driver_neutral)

    def target_landmarks(self, driver: np.ndarray, t: float) -> np.ndarray:
        """Driver landmarks (478, 2) at time t (seconds) -> smoothed target landmarks in crop pixels."""
        return self.driver.landmarks(driver, t)

    def edges(self, driver: np.ndarray, t: float) -> np.ndarray:
        """Driver landmarks -> the model's input (C, S, S) uint8 (puppet.face.inputs)."""
        return self.driver(driver, t)

    @torch.inference_mode()
    def generate(self, edges: np.ndarray) -> np.ndarray:
        """Model inputs (B, C, S, S) uint8 (see :meth:`edges`) -> frames (B, S, S, 3) uint8."""
        x = to_tensor_edges(edges, self.device).contiguous(memory_format=torch.channels_last)
        with autocast_for(self.device, True):
            return to_uint8_images(self.model(x))

    @property
    def can_paste(self) -> bool:
        return self.meta.neutral_frame is not None

    def draw(self, target_landmarks: np.ndarray) -> np.ndarray:
        """Target landmarks (478, 2) in crop pixels -> model input (C, S, S) uint8."""
        return self.driver.draw(target_landmarks)

    def paste(self, face: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """Blend a generated crop (S, S, 3) into the target's neutral full frame, without a seam.

        The mask is the hull of the face's landmarks (``landmarks``: the target landmarks the crop
        was drawn from, in crop pixels; default the neutral's), feathered; the face is shifted in
        colour so that along the mask's rim it matches the frame it is blended into.
        """
        import cv2

        frame = self.meta.neutral_frame.astype(np.float32)
        lm = self.meta.neutral_landmarks if landmarks is None else landmarks
        box = CropBox(*self.meta.crop_box)
        h, w = frame.shape[:2]
        s = self.size
        inv = cv2.invertAffineTransform(box.affine(s))
        mask = np.zeros((s, s), np.float32)
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(lm).astype(np.int32)), 1.0)
        mask = cv2.GaussianBlur(mask, (0, 0), s * 0.03)
        mask = cv2.warpAffine(mask, inv, (w, h), flags=cv2.INTER_LINEAR)
        warped = cv2.warpAffine(face, inv, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32)
        rim = (mask > 0.05) & (mask < 0.6)
        if rim.any():  # a generated face is never exactly the frame's colour: remove the step at the seam
            warped += frame[rim].mean(axis=0) - warped[rim].mean(axis=0)
        out = warped * mask[..., None] + frame * (1 - mask[..., None])
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
