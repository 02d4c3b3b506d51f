"""``puppet animate``: drive a trained target with a driver video, write an mp4."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from puppet.data.video import VideoWriter, probe, read_frames
from puppet.errors import PuppetError
from puppet.face.drive import DriverToEdges, RenderOptions
from puppet.face.edges import edges_to_rgb
from puppet.face.landmarks import FaceMesh, crop, smooth_crop_boxes
from puppet.render.renderer import Renderer
from puppet.utils import center_square

log = logging.getLogger("puppet")
Progress = Callable[[int, int, str], None]


@dataclass
class AnimateStats:
    frames: int
    lost: int  # frames with no driver face (last good landmarks reused)
    fps: float  # of the output video (= the driver's)
    seconds: float
    audio: bool
    out: Path


def driver_landmarks(driver: Path, max_frames: int = 0, progress: Progress | None = None, info=None):
    """Landmarks of every driver frame: list of (478, 2) arrays or None where no face was found."""
    info = info or probe(driver, audio=False)
    total = min(info.frame_count, max_frames) if max_frames else info.frame_count
    out = []
    with FaceMesh(video=True) as mesh:
        for i, frame in enumerate(read_frames(driver, max_frames, info)):
            out.append(mesh.detect(frame))
            if progress:
                progress(i + 1, max(total, i + 1), "driver landmarks")
    return out


def fill_lost(lms: list[np.ndarray | None]) -> list[np.ndarray]:
    """Replace missing landmarks with the last good ones (leading gaps: the first good ones)."""
    first = next((lm for lm in lms if lm is not None), None)
    if first is None:
        raise ValueError("no landmarks at all")
    out, last = [], first
    for lm in lms:
        last = lm if lm is not None else last
        out.append(last)
    return out


def pick_neutral(lms: list[np.ndarray | None], neutral: int | None, driver: Path, n_first: int = 5) -> np.ndarray:
    """The driver's resting face: frame ``neutral``, or the mean of the first few frames with a face."""
    if neutral is not None:
        if not 0 <= neutral < len(lms):
            raise PuppetError(f"--neutral {neutral}: {driver} has frames 0..{len(lms) - 1}")
        if lms[neutral] is None:
            raise PuppetError(f"--neutral {neutral}: no face found in that frame of {driver}")
        return lms[neutral]
    good = [lm for lm in lms if lm is not None][:n_first]
    return np.mean(good, axis=0).astype(np.float32)


def _fit_height(img: np.ndarray, height: int) -> np.ndarray:
    import cv2

    w = int(round(img.shape[1] * height / img.shape[0] / 2)) * 2
    return cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA)


def compose(output: np.ndarray, panel: int, driver_crop: np.ndarray | None = None,
            edges: np.ndarray | None = None) -> np.ndarray:
    """The output frame, or (driver | edge map | output) side by side when driver_crop is given."""
    if driver_crop is None:
        return output[: output.shape[0] // 2 * 2, : output.shape[1] // 2 * 2]  # yuv420p needs even sizes
    h = panel
    tiles = [center_square(driver_crop, h), center_square(edges_to_rgb(edges), h), _fit_height(output, h)]
    return np.concatenate(tiles, axis=1)


def prepare_driver(drive: DriverToEdges, driver: Path, max_frames: int = 0, progress: Progress | None = None,
                   info=None) -> tuple[list[np.ndarray], int]:
    """Landmarks of a whole driver clip, gaps filled, with ``drive`` calibrated on its neutral
    (``drive.options.neutral`` or its first frames) and its expression range measured.

    Returns (landmarks per frame, number of frames without a face). Used by animate, eval and
    single-image training, so a file is always driven the same way.
    """
    lms = driver_landmarks(driver, max_frames, progress, info)
    lost = sum(lm is None for lm in lms)
    if lost == len(lms):
        raise PuppetError(f"{driver}: no face found in any of its {len(lms)} frames")
    filled = fill_lost(lms)
    drive.calibrate(pick_neutral(lms, drive.options.neutral, driver))
    drive.observe(filled)
    return filled, lost


def animate(driver: str | Path, model: str | Path, out: str | Path, options: RenderOptions | None = None, *,
            side_by_side: bool = False, paste_back: bool = False, audio: bool = True, device: str = "auto",
            max_frames: int = 0, panel: int = 256, batch_size: int = 8, crop_scale: float = 1.6,
            progress: Progress | None = None) -> AnimateStats:
    """Render ``model``'s target following ``driver`` into ``out`` (mp4, driver's fps and audio).

    ``options`` set how the driver's motion is transferred; ``crop_scale`` sizes the driver panel of
    ``side_by_side`` videos (face box side times this).
    """
    driver, out = Path(driver), Path(out)
    renderer = Renderer.from_path(model, device=device, options=options)
    if paste_back and not renderer.can_paste:
        raise PuppetError(f"{model}: checkpoint has no target frame to paste into; retrain to use --paste-back")
    info = probe(driver)
    t0 = time.perf_counter()
    filled, lost = prepare_driver(renderer.driver, driver, max_frames, progress, info)
    boxes = smooth_crop_boxes(filled, scale=crop_scale) if side_by_side else None
    n = len(filled)
    use_audio = audio and info.has_audio
    writer = VideoWriter(out, info.fps, audio_from=driver if use_audio else None, duration=n / info.fps)
    pending: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []  # (index, frame, landmarks, edges)

    def flush():
        rgb = renderer.generate(np.stack([e for *_, e in pending]))
        for (i, frame, lm, e), face in zip(pending, rgb):
            img = renderer.paste(face, lm) if paste_back else center_square(face, panel)
            dcrop = crop(frame, boxes[i], panel) if side_by_side else None
            writer.write(compose(img, panel, dcrop, e))
        pending.clear()

    with writer:
        for i, frame in enumerate(read_frames(driver, n, info)):
            lm = renderer.target_landmarks(filled[i], i / info.fps)
            pending.append((i, frame, lm, renderer.draw(lm)))
            if len(pending) == batch_size:
                flush()
            if progress:
                progress(i + 1, n, "rendering")
        if pending:
            flush()
    if lost:
        log.warning("%s: no face in %d of %d frames; reused the last good landmarks there", driver, lost, n)
    return AnimateStats(writer.frames_written, lost, info.fps, time.perf_counter() - t0, use_audio, out)
