"""Target extraction (video -> cropped frames, landmarks, edge maps) and its cache.

``extract`` reads the video twice (faces and shots first, puppet.data.footage; then crops), so
memory stays at one frame, the landmarks and the outputs. The result is a folder::

    manifest.json   source, fps, settings, crop box(es), kept frames, rejected counts, shots, people
    frames.npy      (K, S, S, 3) uint8 RGB crops
    landmarks.npy   (K, 478, 2) float32, crop pixels (smoothed)
    edges.npy       (K, 6, S, S) uint8 edge maps
    preview.png     a few (edge map | frame) pairs, to check the crop at a glance
    report.png      one row per shot (kept or dropped, and why) and examples of rejected frames

A later ``extract``/``train`` with the same video (path, size, mtime) and
settings reuses it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from puppet.config import DataConfig
from puppet.data.report import FootageReport
from puppet.data.video import probe, read_frames
from puppet.errors import PuppetError
from puppet.face.edges import draw_edges, edges_to_rgb
from puppet.face.landmarks import (
    OneEuroFilter,
    crop,
    fixed_crop_box,
    smooth_crop_boxes,
    to_crop,
)
from puppet.utils import atomic_path, tile, write_image

if TYPE_CHECKING:
    from puppet.data.footage import Selection

log = logging.getLogger("puppet")
EXTRACT_VERSION = 2  # 2: frames chosen by puppet.data.footage (person, shots, rejects)
Progress = Callable[[int, int, str], None]  # (done, total, stage)


# The target track's One Euro filter at rest, Hz. A less filtered track (30 Hz, or none) brings the
# edge maps nearer to each frame's detection but gave a worse landmark score and mouth
# (docs/experiments.md, "The mouth's opening"). Recorded in the manifest, as before.
TRACK_MIN_CUTOFF = 3.0


@dataclass
class Extraction:
    manifest: dict
    frames: np.ndarray  # (K, S, S, 3) uint8
    landmarks: np.ndarray  # (K, 478, 2) float32 crop pixels
    edges: np.ndarray  # (K, 6, S, S) uint8

    @property
    def size(self) -> int:
        return int(self.manifest["settings"]["size"])

    def __len__(self) -> int:
        return len(self.frames)


def _settings(cfg: DataConfig) -> dict:
    return {"size": cfg.size, "crop_scale": cfg.crop_scale, "crop_mode": cfg.crop_mode,
            "max_frames": cfg.max_frames, "smooth_min_cutoff": TRACK_MIN_CUTOFF,
            "smooth_beta": cfg.smooth_beta, "line_width": cfg.line_width, "start": cfg.start, "end": cfg.end,
            "face": cfg.face, "max_turn": cfg.max_turn, "max_kept": cfg.max_kept}


def _concrete(cfg: DataConfig) -> DataConfig:
    """crop_mode auto is resolved by puppet train (puppet.train.target), which extracts each crop itself;
    anything else that extracts a clip (a prior's clips, a single-image driver, puppet extract) gets
    the fixed crop."""
    return dataclasses.replace(cfg, crop_mode="fixed") if cfg.crop_mode == "auto" else cfg


def _source_key(video: Path) -> dict:
    st = video.stat()
    return {"path": str(video.resolve()), "bytes": st.st_size, "mtime": int(st.st_mtime)}


def is_cached(video: Path, out_dir: Path, cfg: DataConfig) -> bool:
    m = out_dir / "manifest.json"
    if not m.is_file():
        return False
    try:
        man = json.loads(m.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (man.get("version") == EXTRACT_VERSION and man.get("source") == _source_key(video)
            and man.get("settings") == _settings(_concrete(cfg))
            and all((out_dir / f).is_file() for f in ("frames.npy", "landmarks.npy", "edges.npy")))


def smooth_track(landmarks: list[np.ndarray], fps: float, min_cutoff: float, beta: float) -> list[np.ndarray]:
    """One Euro filter over a landmark track; positions are scaled by the face size so beta is unitless."""
    if not landmarks:
        return []
    scale = float(np.median([np.ptp(lm, axis=0).max() for lm in landmarks]))
    f = OneEuroFilter(min_cutoff, beta)
    return [f(lm / scale, i / fps) * scale for i, lm in enumerate(landmarks)]


def extract(video: str | Path, out_dir: str | Path, cfg: DataConfig, progress: Progress | None = None,
            force: bool = False, selection: Selection | None = None) -> Extraction:
    """Extract (or reuse) a target video's training data into ``out_dir``.

    The frames come from :func:`puppet.data.footage.select` (one person, per shot, clean frames);
    ``selection``: one made before (:meth:`Selection.load`), for example on a machine with
    MediaPipe and dlib, so that this one needs neither. Writes ``report.png`` beside the arrays.
    """
    from puppet.data.footage import select_frames

    video = Path(video)
    out_dir = Path(out_dir)
    cfg = _concrete(cfg)
    info = probe(video, audio=False)
    if not force and is_cached(video, out_dir, cfg):
        log.info("reusing extraction in %s", out_dir)
        return load_extraction(out_dir)
    if selection is None:
        selection = select_frames(video, cfg, progress)
    sel = selection
    kept = [int(f) for f in sel.frames]
    lms: list[np.ndarray] = []
    boxes = []
    for seg in np.unique(sel.segments):
        rows = np.flatnonzero(sel.segments == seg)
        # smoothed and cropped per segment: neither the filter nor a box spans a cut or a gap
        part = smooth_track(list(sel.landmarks[rows]), info.fps, TRACK_MIN_CUTOFF, cfg.smooth_beta)
        lms += part
        boxes += ([fixed_crop_box(part, cfg.crop_scale)] * len(part) if cfg.crop_mode == "fixed"
                  else smooth_crop_boxes(part, cfg.crop_scale))
    s = cfg.size
    frames = np.empty((len(kept), s, s, 3), dtype=np.uint8)
    crop_lms = np.empty((len(kept), lms[0].shape[0], 2), dtype=np.float32)
    edges = np.empty((len(kept), 6, s, s), dtype=np.uint8)
    pos = {f: k for k, f in enumerate(kept)}
    first = int(sel.info["first"])
    n_read = int(sel.info["frames_read"])
    report = FootageReport(sel)
    for i, frame in enumerate(read_frames(video, n_read, info, start=first)):
        k = pos.get(first + i)
        if k is not None:
            frames[k] = crop(frame, boxes[k], s)
            crop_lms[k] = to_crop(lms[k], boxes[k], s)
            edges[k] = draw_edges(crop_lms[k], s, cfg.line_width)
        report.see(first + i, frame)
        if progress:
            progress(i + 1, n_read, "crops")
    unique = {tuple(b.to_list()) for b in boxes}
    manifest = {
        "version": EXTRACT_VERSION, "source": _source_key(video), "fps": info.fps,
        "source_size": [info.width, info.height], "frames_read": n_read, "frames_kept": len(kept),
        "kept": kept, "rejected": sel.counts(), "settings": _settings(cfg),
        "crop_boxes": [boxes[0].to_list()] if len(unique) == 1 else [b.to_list() for b in boxes],
        "segments": [int(v) for v in sel.segments], "shots": sel.info["shots"], "people": sel.info["people"],
        "person": sel.info["target"],
        "landmarks_source": "mediapipe face_mesh refine_landmarks=True (478 points)",
    }
    _write(out_dir, manifest, frames, crop_lms, edges)
    write_image(out_dir / "report.png", report.image())
    return Extraction(manifest, frames, crop_lms, edges)


def summary(manifest: dict) -> str:
    """One line: frames kept and rejected by reason, people and shots found."""
    rejected = ", ".join(f"{n} {why}" for why, n in manifest.get("rejected", {}).items())
    people = manifest.get("people", [])
    shots = manifest.get("shots", [])
    return (f"kept {manifest['frames_kept']} of {manifest['frames_read']} frames"
            + (f" (rejected: {rejected})" if rejected else "")
            + f"; {len(people)} {'person' if len(people) == 1 else 'people'} found, training on person "
              f"{manifest.get('person', 1)}; {len(shots)} shot{'s' if len(shots) != 1 else ''}")


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, arr)


def _write(out_dir: Path, manifest: dict, frames, lms, edges) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    # The manifest goes last: a folder without one (or with an old one) is never reused.
    (out_dir / "manifest.json").unlink(missing_ok=True)
    _save_npy(out_dir / "frames.npy", frames)
    _save_npy(out_dir / "landmarks.npy", lms)
    _save_npy(out_dir / "edges.npy", edges)
    write_image(out_dir / "preview.png", preview(frames, edges))
    with atomic_path(out_dir / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))


def preview(frames: np.ndarray, edges: np.ndarray, n: int = 4) -> np.ndarray:
    """Up to n (edge map | frame) pairs stacked vertically, RGB uint8."""
    idx = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)
    return tile([[edges_to_rgb(edges[i]), frames[i]] for i in idx])


def load_extraction(out_dir: str | Path) -> Extraction:
    d = Path(out_dir)
    try:
        manifest = json.loads((d / "manifest.json").read_text())
        return Extraction(manifest, np.load(d / "frames.npy"), np.load(d / "landmarks.npy"),
                          np.load(d / "edges.npy"))
    except (OSError, ValueError) as e:
        raise PuppetError(f"{d}: not a complete extraction ({e})") from None


def split(n: int, val_fraction: float, segments=None) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): the last ``val_fraction`` of the clip is held out (at least 1 frame if any).

    ``segments`` (n,): the manifest's segment of each frame (runs within one shot). Where a segment
    starts at a held-out share between half and one and a half ``val_fraction``, the split moves
    there, so that held-out frames do not continue a shot the model trained on.
    """
    n_val = int(round(n * val_fraction))
    if val_fraction > 0:
        n_val = max(1, min(n_val, n - 1))
    cut = n - n_val
    if segments is not None and n_val > 0 and len(segments) == n:
        starts = np.flatnonzero(np.diff(np.asarray(segments)) != 0) + 1
        near = [int(b) for b in starts if 0.5 * n_val <= n - b <= 1.5 * n_val]
        if near:
            cut = min(near, key=lambda b: abs(b - cut))
    return np.arange(cut), np.arange(cut, n)
