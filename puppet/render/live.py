"""``puppet live``: webcam (or a video file acting as one) -> puppet, in real time.

A capture thread keeps only the newest frame (older unread frames are
dropped and counted), so latency stays bounded when inference is slower than
the camera. The main thread runs landmarks -> retarget -> edge map -> CRN
through the same :class:`~puppet.render.renderer.Renderer` as ``puppet animate``, then
shows, records and/or streams the result.

Keys (window mode): ``c`` recalibrate (current face = neutral), ``s`` toggle
side by side, ``e`` toggle edge-map view, ``q``/Esc quit.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from puppet.errors import PuppetError
from puppet.face.edges import edges_to_rgb
from puppet.face.landmarks import FaceMesh
from puppet.render.renderer import Renderer
from puppet.utils import center_square

log = logging.getLogger("puppet")
KEYS_HELP = "c: recalibrate   s: side by side   e: edge map   q/Esc: quit"


class LatestFrame:
    """A one-slot mailbox between the capture thread and the renderer.

    ``put`` replaces an unread frame (counted in ``dropped``) when ``drop`` is
    True; with ``drop=False`` it waits until the slot is free (a file read as
    fast as possible: every frame is processed, none dropped).
    """

    def __init__(self, drop: bool = True):
        self.drop = drop
        self.dropped = 0
        self._item = None
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item) -> None:
        with self._cond:
            if self._item is not None:
                if self.drop:
                    self.dropped += 1
                else:
                    while self._item is not None and not self._closed:
                        self._cond.wait()
            self._item = item
            self._cond.notify_all()

    def get(self, timeout: float | None = None):
        """The newest item, or None once closed and empty (or on timeout)."""
        with self._cond:
            end = None if timeout is None else time.monotonic() + timeout
            while self._item is None and not self._closed:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            item, self._item = self._item, None
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def camera_frames(index: int, width: int = 0, height: int = 0, fps: float = 0) -> Iterator[np.ndarray]:
    """Open a webcam now (PuppetError if there is none) and return an iterator of its RGB frames.

    The iterator raises PuppetError if the camera stops delivering frames.
    """
    import cv2

    level = cv2.getLogLevel()
    cv2.setLogLevel(0)  # silent: our own one-line message says it better than OpenCV's warnings
    try:
        cap = cv2.VideoCapture(index)
    finally:
        cv2.setLogLevel(level)
    if not cap.isOpened():
        raise PuppetError(f"camera {index}: cannot open (no webcam found?); use --source VIDEO to run from a file")
    for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                        (cv2.CAP_PROP_FPS, fps)):
        if value:
            cap.set(prop, value)

    def frames():
        n = 0
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    raise PuppetError(f"camera {index}: stopped delivering frames after {n} frames")
                n += 1
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()

    return frames()


def file_frames(path: str | Path, realtime: bool) -> Iterator[np.ndarray]:
    """A video file as a camera: paced at its frame rate when ``realtime``, else as fast as read."""
    from puppet.data.video import probe, read_frames

    info = probe(path, audio=False)
    t0 = time.perf_counter()
    for i, frame in enumerate(read_frames(path, info=info)):
        if realtime:
            wait = t0 + i / info.fps - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        yield frame


class Capture(threading.Thread):
    """Reads frames from an iterator into a :class:`LatestFrame`, stamping capture times."""

    def __init__(self, frames: Iterator[np.ndarray], drop: bool):
        super().__init__(daemon=True)
        self.frames = frames
        self.box = LatestFrame(drop)
        self.error: BaseException | None = None
        self.captured = 0
        self.read_seconds = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            it = iter(self.frames)
            while not self._halt.is_set():
                t = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                self.read_seconds += time.perf_counter() - t
                self.captured += 1
                self.box.put((frame, time.perf_counter()))
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            self.error = e
        finally:
            self.box.close()

    def stop(self) -> None:
        self._halt.set()
        self.box.close()


@dataclass
class LiveStats:
    frames_shown: int = 0
    frames_captured: int = 0
    frames_dropped: int = 0
    frames_without_face: int = 0
    seconds: float = 0.0
    mean_fps: float = 0.0
    latency_ms_mean: float = 0.0
    latency_ms_p95: float = 0.0
    stage_ms: dict = field(default_factory=dict)  # mean ms per frame: capture, landmarks, edges, crn, output
    calibrations: int = 0
    error: str | None = None  # why the source stopped early, if it failed

    def to_dict(self) -> dict:
        return asdict(self)


class LiveSession:
    """State of a live run: view toggles and calibration; ``handle_key`` applies a key press."""

    def __init__(self, side_by_side: bool = True, show_edges: bool = False):
        self.side_by_side = side_by_side
        self.show_edges = show_edges
        self.calibrate_next = True  # the first face seen is the neutral pose
        self.quit = False

    def handle_key(self, key: str) -> None:
        if key == "c":
            self.calibrate_next = True
        elif key == "s":
            self.side_by_side = not self.side_by_side
        elif key == "e":
            self.show_edges = not self.show_edges
        elif key in ("q", "\x1b"):
            self.quit = True


def _overlay(img: np.ndarray, lines: list[str]) -> np.ndarray:
    import cv2

    img = np.ascontiguousarray(img)
    for i, text in enumerate(lines):
        y = 16 + 16 * i
        cv2.putText(img, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def _letterbox(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Centre ``img`` on a black canvas of size ``hw`` (cropping if it is larger)."""
    if img.shape[:2] == tuple(hw):
        return img
    canvas = np.zeros((*hw, 3), np.uint8)
    h, w = min(img.shape[0], hw[0]), min(img.shape[1], hw[1])
    y, x = (hw[0] - h) // 2, (hw[1] - w) // 2
    canvas[y:y + h, x:x + w] = img[:h, :w]
    return canvas


def check_display() -> None:
    """PuppetError when no window can be opened (headless server)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise PuppetError("no display found (DISPLAY is not set); run with --no-window "
                          "(add --record out.mp4 or --json stats.json to keep the result)")


class _Sinks:
    """Where shown frames go: an mp4, a virtual camera, a window (which also yields key presses)."""

    def __init__(self, stack, window: bool, record, fps: float, virtual_cam: bool):
        from puppet.data.video import VideoWriter

        self.stack, self.window, self.fps = stack, window, fps
        self.writer = stack.enter_context(VideoWriter(record, fps)) if record else None
        self.vcam_wanted = virtual_cam
        self.vcam = None
        self.rec_size = None  # the recording keeps its first frame's size when the view is toggled
        self.recent: deque[float] = deque(maxlen=30)  # display times of the last frames, for the FPS overlay

    def emit(self, out: np.ndarray, t_cap: float, dropped: int) -> str | None:
        """Send one frame everywhere; return the key pressed in the window, if any."""
        import cv2

        if self.writer is not None:
            self.writer.write(_letterbox(out, self.rec_size) if self.rec_size else out)
            self.rec_size = self.rec_size or out.shape[:2]
        if self.vcam_wanted:
            if self.vcam is None:
                import pyvirtualcam

                self.vcam = self.stack.enter_context(pyvirtualcam.Camera(width=out.shape[1], height=out.shape[0],
                                                                         fps=self.fps))
            self.vcam.send(out)
        if not self.window:
            return None
        self.recent.append(time.perf_counter())
        fps = (len(self.recent) - 1) / (self.recent[-1] - self.recent[0]) if len(self.recent) > 1 else 0.0
        lines = [f"{fps:4.1f} fps  latency {1000 * (time.perf_counter() - t_cap):3.0f} ms  dropped {dropped}",
                 KEYS_HELP]
        cv2.imshow("puppet live", cv2.cvtColor(_overlay(out, lines), cv2.COLOR_RGB2BGR))
        k = cv2.waitKey(1) & 0xFF
        return chr(k) if k != 255 else None


def _puppet_view(renderer: Renderer, session: LiveSession, lm: np.ndarray | None, t: float, stats: LiveStats,
                 stage: dict) -> np.ndarray:
    """Landmarks -> (calibrate if asked) -> edge map -> CRN; the image to show (black until a face is seen)."""
    if lm is None:
        return np.zeros((renderer.size, renderer.size, 3), np.uint8)
    if session.calibrate_next:
        renderer.calibrate(lm)
        session.calibrate_next = False
        stats.calibrations += 1
    t0 = time.perf_counter()
    edges = renderer.edges(lm, t)
    t1 = time.perf_counter()
    face = renderer.generate(edges[None])[0]
    stage["edges"] += t1 - t0
    stage["crn"] += time.perf_counter() - t1
    return edges_to_rgb(edges) if session.show_edges else face


def _summarise(stats: LiveStats, cap: Capture, stage: dict, latencies: list[float], seconds: float) -> LiveStats:
    stats.error = str(cap.error) if cap.error is not None else None
    stats.seconds = seconds
    stats.frames_captured = cap.captured
    stats.frames_dropped = cap.box.dropped
    n = max(stats.frames_shown, 1)
    stats.mean_fps = stats.frames_shown / seconds if seconds > 0 else 0.0
    stats.stage_ms = {"capture": 1000 * cap.read_seconds / max(cap.captured, 1),
                      **{k: 1000 * v / n for k, v in stage.items()}}
    if latencies:
        stats.latency_ms_mean = 1000 * float(np.mean(latencies))
        stats.latency_ms_p95 = 1000 * float(np.percentile(latencies, 95))
    return stats


def run_live(renderer: Renderer, frames: Iterator[np.ndarray], *, drop: bool = True, window: bool = True,
             record: str | Path | None = None, record_fps: float = 25.0, virtual_cam: bool = False,
             max_frames: int = 0, panel: int = 256, side_by_side: bool = True,
             keys: dict[int, str] | None = None) -> LiveStats:
    """Run the live loop until the source ends, ``max_frames`` are shown, or the user quits.

    ``keys`` injects key presses by frame number (tests, scripted demos). A
    source that fails mid-run ends the loop; its message is in ``stats.error``
    and what was recorded until then is kept.
    """
    import contextlib

    import cv2

    if window:
        check_display()
    if virtual_cam:
        import importlib.util

        if importlib.util.find_spec("pyvirtualcam") is None:
            raise PuppetError("--virtual-cam needs pyvirtualcam: pip install 'puppet[virtualcam]'")
    session = LiveSession(side_by_side=side_by_side)
    stats = LiveStats()
    stage = dict.fromkeys(("landmarks", "edges", "crn", "output"), 0.0)
    latencies: list[float] = []
    last_lm = None
    cap = Capture(frames, drop)
    with contextlib.ExitStack() as stack:
        mesh = stack.enter_context(FaceMesh(video=True))
        sinks = _Sinks(stack, window, record, record_fps, virtual_cam)
        stack.callback(cap.stop)
        if window:
            stack.callback(cv2.destroyAllWindows)
        t_start = time.perf_counter()
        cap.start()
        while not session.quit and (not max_frames or stats.frames_shown < max_frames):
            item = cap.box.get()
            if item is None:
                break
            frame, t_cap = item
            t0 = time.perf_counter()
            lm = mesh.detect(frame)
            stage["landmarks"] += time.perf_counter() - t0
            if lm is None:
                stats.frames_without_face += 1
            last_lm = lm if lm is not None else last_lm
            shown = _puppet_view(renderer, session, last_lm, t_cap - t_start, stats, stage)
            t3 = time.perf_counter()
            out = center_square(shown, panel)
            if session.side_by_side:
                out = np.concatenate([center_square(frame, panel), out], axis=1)
            key = sinks.emit(out, t_cap, cap.box.dropped) or (keys or {}).get(stats.frames_shown)
            if key:
                session.handle_key(key)
            stage["output"] += time.perf_counter() - t3
            latencies.append(time.perf_counter() - t_cap)
            stats.frames_shown += 1
    cap.join(timeout=2.0)
    if cap.error is not None and not isinstance(cap.error, PuppetError):
        raise cap.error
    return _summarise(stats, cap, stage, latencies, time.perf_counter() - t_start)
