"""Video input (OpenCV, frame by frame) and mp4 output (imageio-ffmpeg, H.264 + audio).

Frames are RGB uint8 arrays (H, W, 3). Videos with non-square pixels (a
sample aspect ratio other than 1:1) are resized to their display shape on
read, so faces are not stretched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from puppet.errors import PuppetError
from puppet.utils import atomic_path, require_file

log = logging.getLogger("puppet")


@dataclass
class VideoInfo:
    path: Path
    fps: float
    frame_count: int  # as the container reports it (may be approximate)
    width: int  # display size, after the pixel aspect ratio is applied
    height: int
    sar: float  # sample (pixel) aspect ratio, width/height of one pixel
    audio_codec: str | None  # None when the file has no audio track

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def _audio_codec(path: Path) -> str | None:
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(gen)
    except Exception:  # noqa: BLE001 - ffmpeg could not probe: treat as no audio
        return None
    finally:
        gen.close()
    return meta.get("audio_codec")


def _open(path: Path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise PuppetError(f"{path}: cannot open as a video (not a format OpenCV/FFmpeg can decode)")
    return cap


def probe(path: str | Path, audio: bool = True) -> VideoInfo:
    """Read a video's properties; PuppetError if it is missing or not a decodable video."""
    import cv2

    p = require_file(path, "video")
    cap = _open(p)
    try:
        ok, frame = cap.read()
        if not ok or frame is None:
            raise PuppetError(f"{p}: not a video (no frame could be decoded)")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        num, den = cap.get(cv2.CAP_PROP_SAR_NUM), cap.get(cv2.CAP_PROP_SAR_DEN)
    finally:
        cap.release()
    if not (0 < fps < 1000):
        log.warning("%s: frame rate unknown, assuming 25 fps", p)
        fps = 25.0
    sar = num / den if num > 0 and den > 0 else 1.0
    h, w = frame.shape[:2]
    width = int(round(w * sar / 2)) * 2 if abs(sar - 1.0) > 1e-3 else w
    return VideoInfo(p, float(fps), count, width, h, sar, _audio_codec(p) if audio else None)


def read_frames(path: str | Path, max_frames: int = 0, info: VideoInfo | None = None,
                start: int = 0) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames (H, W, 3) at display shape, one at a time (constant memory), from frame
    number ``start`` on."""
    import cv2

    info = info or probe(path, audio=False)
    cap = _open(info.path)
    try:
        if start > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)  # FFmpeg seeks to a key frame and decodes forward
        n = 0
        while not max_frames or n < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            if bgr.shape[1] != info.width:
                bgr = cv2.resize(bgr, (info.width, info.height), interpolation=cv2.INTER_AREA)
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            n += 1
    finally:
        cap.release()


class VideoWriter:
    """Write RGB frames to an mp4 (H.264, yuv420p) atomically, optionally muxing an audio track.

    Use as a context manager; the file appears under its final name only when
    the block exits without an exception. ``audio_from`` is a media file
    whose first audio track is copied in (re-encoded to AAC).
    """

    def __init__(self, path: str | Path, fps: float, audio_from: str | Path | None = None,
                 duration: float | None = None, quality: float = 7.0):
        self.path = Path(path)
        self.duration = duration  # seconds; trims a longer audio track
        self.fps = fps
        self.audio_from = audio_from
        self.quality = quality
        self.frames_written = 0
        self._ctx = None
        self._gen = None

    def __enter__(self) -> "VideoWriter":
        if self.path.suffix.lower() not in (".mp4", ".mov", ".mkv"):
            raise PuppetError(f"{self.path}: output must be .mp4 (or .mov/.mkv)")
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame (H, W, 3); every frame must have the first one's size."""
        import imageio_ffmpeg

        if self._gen is None:
            h, w = frame.shape[:2]
            if h % 2 or w % 2:
                raise ValueError(f"frame size {w}x{h} must be even for yuv420p")
            self._size = (w, h)
            self._gen = imageio_ffmpeg.write_frames(
                str(self._tmp), (w, h), fps=Fraction(self.fps).limit_denominator(1001), codec="libx264",
                pix_fmt_out="yuv420p", quality=self.quality, macro_block_size=2,
                audio_path=str(self.audio_from) if self.audio_from else None,
                audio_codec="aac" if self.audio_from else None,
                output_params=["-t", f"{self.duration:.3f}"] if self.audio_from and self.duration else None,
                ffmpeg_log_level="error")
            self._gen.send(None)
        elif (frame.shape[1], frame.shape[0]) != self._size:
            raise ValueError(f"frame size {frame.shape[1]}x{frame.shape[0]} differs from {self._size}")
        self._gen.send(np.ascontiguousarray(frame, dtype=np.uint8))
        self.frames_written += 1

    def __exit__(self, exc_type, exc, tb):
        try:
            if self._gen is not None:
                self._gen.close()  # flushes and waits for ffmpeg
            if exc_type is None and self.frames_written == 0:
                raise PuppetError(f"{self.path}: no frames to write")
        except BaseException as e:
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        return self._ctx.__exit__(exc_type, exc, tb)
