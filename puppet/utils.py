"""Small shared helpers: atomic file writes, input checks, device choice, logging."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterator

from puppet.errors import PuppetError

log = logging.getLogger("puppet")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name keeps the suffix so tools that pick a format from the
    extension (ffmpeg, cv2.imwrite) behave. On any exception the temporary file
    is removed and ``path`` is left untouched, so a reader never sees a
    half-written file under the final name.
    """
    path = Path(path)
    ensure_writable_dir(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as e:
        raise PuppetError(f"{path}: cannot write here ({e.strerror or e})") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files; give the usual umask-based mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def ensure_dir(path: str | os.PathLike, for_path: str | os.PathLike | None = None) -> Path:
    """Create folder ``path`` (and parents) if needed; PuppetError if that is impossible.

    The message names ``for_path`` (the file the caller wants to write there) when given.
    """
    p = Path(path)
    prefix = f"{for_path}: " if for_path is not None else f"{p}: "
    folder = f" {p}" if for_path is not None else ""
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PuppetError(f"{prefix}cannot create folder{folder} ({e.strerror or e})") from None
    if not os.access(p, os.W_OK):
        raise PuppetError(f"{prefix}folder{folder} is not writable")
    return p


def ensure_writable_dir(path: str | os.PathLike) -> None:
    """Create ``path``'s parent folder if needed; raise PuppetError if it cannot be written."""
    ensure_dir(Path(path).parent, for_path=path)


def write_json(path: str | os.PathLike, data) -> None:
    """Write ``data`` as indented JSON, atomically."""
    import json

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))


def require_file(path: str | os.PathLike, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise PuppetError if it is not an existing file."""
    p = Path(path)
    if not p.exists():
        raise PuppetError(f"{p}: {what} not found")
    if not p.is_file():
        raise PuppetError(f"{p}: not a file")
    return p


def write_image(path: str | os.PathLike, rgb) -> None:
    """Write an RGB uint8 array (H, W, 3) atomically as PNG/JPEG (by suffix)."""
    import cv2

    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), rgb[..., ::-1]):
            raise PuppetError(f"{path}: could not encode image")


def read_image(path: str | os.PathLike):
    """Read an image file as RGB uint8 (H, W, 3); PuppetError if it is not an image."""
    import cv2

    p = require_file(path, "image")
    bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if bgr is None:
        raise PuppetError(f"{p}: not an image OpenCV can read")
    return bgr[..., ::-1].copy()


def center_square(img, side: int | None = None):
    """The largest centred square of an image (H, W, C), resized to ``side`` if given."""
    h, w = img.shape[:2]
    s = min(h, w)
    sq = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    if side is None or side == s:
        return sq
    import cv2

    return cv2.resize(sq, (side, side), interpolation=cv2.INTER_AREA if s > side else cv2.INTER_CUBIC)


def tile(rows, scale: int = 1, pad_value: int = 0):
    """A grid image from rows of images (lists of (h, w, 3) uint8); short rows are padded on the right.

    Images in a row must share their height. ``scale`` enlarges the result (nearest neighbour).
    """
    import numpy as np

    strips = [np.concatenate(list(r), axis=1) for r in rows]
    width = max(r.shape[1] for r in strips)
    strips = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=pad_value) for r in strips]
    grid = np.concatenate(strips, axis=0)
    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    return grid


def pick_device(name: str = "auto"):
    """Return a torch.device: ``auto`` picks CUDA when present, else CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PuppetError(f"device {name!r} requested but CUDA is not available")
    return dev


def setup_logging(verbose: bool = False) -> None:
    """Route the ``puppet`` logger through rich, once."""
    from rich.logging import RichHandler

    if any(isinstance(h, RichHandler) for h in log.handlers):
        return
    handler = RichHandler(show_path=False, show_time=False, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
