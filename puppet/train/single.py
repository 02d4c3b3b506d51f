"""Single-image animation (the paper's Table 1, row 2): one portrait, one driver clip.

The CRN maps the driver's edge maps, retargeted onto the portrait's face shape
by the same :class:`~puppet.face.drive.DriverToEdges` that ``puppet animate`` uses
(so the model is trained on exactly the input it will be given), to images
with the portrait's appearance (L_CX^t against the portrait, plus the
configured pixel/perceptual terms against it: it is roughly aligned in
expression-neutral frames) and the driver's structure (L_CX^s against the
driver's cropped frame).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from puppet.config import Config, without_target_clip
from puppet.data.dataset import extract
from puppet.data.meta import TargetMeta
from puppet.data.video import probe
from puppet.errors import PuppetError
from puppet.face.drive import DriverToEdges, RenderOptions
from puppet.face.inputs import InputLayout
from puppet.face.retarget import PoseLimits
from puppet.tensors import to_tensor_edges, to_tensor_images, to_uint8_images
from puppet.train.loop import (
    StepCallback,
    Task,
    TrainResult,
    open_run,
    optimise,
    sample_grid,
    write_samples,
)
from puppet.utils import pick_device, read_image


def portrait_crop(rgb: np.ndarray, size: int, scale: float, path: Path):
    """Face crop of a portrait: (crop (S, S, 3), landmarks in crop pixels (478, 2), CropBox)."""
    from puppet.face.landmarks import FaceMesh, crop, fixed_crop_box, to_crop

    with FaceMesh(video=False) as mesh:
        lm = mesh.detect(rgb)
    if lm is None:
        raise PuppetError(f"{path}: no face found in the image")
    box = fixed_crop_box([lm], scale)
    return crop(rgb, box, size), to_crop(lm, box, size), box


def portrait_pose_limits(cfg: Config) -> PoseLimits:
    deg, shift, scale = cfg.data.portrait_pose
    return PoseLimits(max_degrees=deg, max_shift=shift, max_scale_change=scale)


def driver_edges(driver: Path, portrait_landmarks: np.ndarray, cfg: Config, layout: InputLayout,
                 progress=None) -> np.ndarray:
    """Every driver frame's model input (F, C, S, S) for ``layout``, retargeted onto the portrait, as
    ``animate`` draws it."""
    from puppet.render.animate import prepare_driver

    info = probe(driver, audio=False)
    drive = DriverToEdges(portrait_landmarks, cfg.data.size, cfg.data.line_width, RenderOptions(),
                          portrait_pose_limits(cfg), layout=layout)
    filled, _ = prepare_driver(drive, driver, cfg.data.max_frames, progress, info)
    return drive.clip(filled, info.fps)


def train_single_image(image: str | Path, driver: str | Path, run_dir: str | Path, cfg: Config,
                       resume: bool = False, on_step: StepCallback | None = None, on_extract=None) -> TrainResult:
    """Train (or resume) a single-image model in ``run_dir``; returns when done or time is up."""
    image, driver, run_dir = Path(image), Path(driver), Path(run_dir)
    cfg = without_target_clip(cfg)
    rgb = read_image(image)
    probe(driver, audio=False)
    size = cfg.data.size
    portrait, p_lm, box = portrait_crop(rgb, size, cfg.data.crop_scale, image)  # inputs checked: now the folder
    state = open_run(run_dir, cfg, resume)
    data = extract(driver, run_dir / "driver", cfg.data, progress=on_extract)  # driver crops, for L_CX^s
    layout = InputLayout.for_run(state)
    edges = driver_edges(driver, p_lm, cfg, layout, on_extract)[data.manifest["kept"]]
    device = pick_device(cfg.train.device)
    meta = state["meta"] if state else TargetMeta(
        source=str(image), driver=str(driver), fps=float(data.manifest["fps"]), size=size,
        neutral_landmarks=p_lm.copy(), neutral_crop=portrait.copy(), crop_box=box.to_list(),
        line_width=cfg.data.line_width, pose_range=vars(portrait_pose_limits(cfg)),
        neutral_frame=np.ascontiguousarray(rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2])).to_dict()
    portrait_t = to_tensor_images(portrait[None], device)
    sample_idx = np.linspace(0, len(edges) - 1, min(4, len(edges))).round().astype(int)

    def batch(idx: np.ndarray):
        return (to_tensor_edges(edges[idx], device), portrait_t.expand(len(idx), -1, -1, -1),
                to_tensor_images(data.frames[idx], device), [0] * len(idx), None)

    def evaluate(model: nn.Module, at_step: int, terms: dict) -> dict:
        g = to_uint8_images(model(to_tensor_edges(edges[sample_idx], device)))
        grid = sample_grid(edges[sample_idx], g, data.frames[sample_idx], scale=2 if size <= 128 else 1)
        write_samples(run_dir, at_step, grid, {"step": at_step, **terms})
        return {}

    return optimise(run_dir, cfg, device, Task("single-image", len(edges), batch, evaluate, meta, layout=layout), state,
                    on_step)
