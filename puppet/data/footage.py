"""Which frames of a user's video to learn from: one person, shot by shot, clean frames.

A user's target is a lecture, an interview or a vlog, with cuts, other people, a moving camera, a
person who turns away. :func:`scan` reads the video once, streamed (it keeps landmarks and a few
small pictures, never the frames), and :func:`select` decides frame by frame:

1. **Shots**: cuts found by PySceneDetect's content detector on a reduced copy of each frame.
2. **Faces**: every face MediaPipe finds (up to :data:`MAX_FACES`), followed within a shot by
   position.
3. **People**: each face track is described by dlib's face descriptor (puppet.face.identity) at its
   start and every :data:`DESCRIBE_EVERY_S` seconds, and tracks whose mean descriptors lie within
   :data:`SAME_PERSON` of a person's are that person. People are numbered by how many frames they
   appear in (a tie left to right); person 1 is the target unless ``data.face`` names another.
4. **Frames**: a frame of the target is kept unless the face is too small for the model's size,
   turned beyond ``data.max_turn``, or blurred (sharpness under :data:`BLUR_SHARE` of the clip's
   median). Every rejected frame is counted by its reason.

Kept frames fall into **segments**: runs of kept frames within one shot, with gaps under half a
second. Extraction smooths the landmarks and places the crop per segment, so no crop box and no
filter spans a cut or a gap.

A long clip keeps at most ``data.max_kept`` frames, chosen for diversity: farthest-point sampling
over head pose and the mouth's and eyes' openings (:func:`diverse_subset`).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from puppet.config import DataConfig
from puppet.data.video import probe, read_frames
from puppet.errors import PuppetError
from puppet.face.landmarks import landmark_box

log = logging.getLogger("puppet")
Progress = Callable[[int, int, str], None]  # (done, total, stage)

MAX_FACES = 4  # faces looked for in each frame
SAME_PERSON = 0.5  # descriptor distance under which two tracks are one person (one person: 0.2-0.35)
DESCRIBE_EVERY_S = 2.0  # a track is described at its start and then this often
TRACK_GAP_S = 0.5  # a face unseen for longer starts a new track; a longer gap starts a new segment
MIN_CROP_SHARE = 0.5  # a crop smaller than this share of data.size would be enlarged too much
BLUR_SHARE = 0.3  # a face sharper than this share of the clip's median sharpness is kept
SHOT_WIDTH = 256  # frames are reduced to this width for the shot detector
THUMB = 72  # side of the face pictures kept for sheets

# Reasons a frame is not used, in the order they are checked; the report lists them in this order.
REASONS = ("no face", "someone else", "too small", "turned away", "blurred", "beyond data.max_kept")

# MediaPipe face-mesh indices of the points that give the head's turn.
_CHEEK_L, _CHEEK_R, _FOREHEAD, _CHIN = 234, 454, 10, 152


def head_angles(lm3: np.ndarray) -> tuple[float, float]:
    """(478, 3) face-mesh landmarks (x, y, z in pixels) -> (yaw, pitch) in degrees.

    Yaw is the turn of the line between the cheeks out of the image plane (0 = facing the camera);
    pitch the same for the line from forehead to chin. The face's own tilt makes pitch non-zero for
    a frontal face, so :func:`select` measures it from the clip's median."""
    d = lm3[_CHEEK_R] - lm3[_CHEEK_L]
    yaw = math.degrees(math.atan2(float(d[2]), math.hypot(float(d[0]), float(d[1]))))
    v = lm3[_CHIN] - lm3[_FOREHEAD]
    pitch = math.degrees(math.atan2(float(v[2]), math.hypot(float(v[0]), float(v[1]))))
    return yaw, pitch


def face_sharpness(rgb: np.ndarray, box: tuple[float, float, float]) -> float:
    """Variance of the luma Laplacian (puppet.measure.metrics) of the face ``box`` (cx, cy, side),
    resampled to 96 px: comparable between faces of different sizes in one clip."""
    import torch

    from puppet.face.landmarks import CropBox, crop
    from puppet.measure.metrics import laplacian_variance

    cx, cy, side = box
    face = crop(rgb, CropBox(cx, cy, max(side, 1.0)), 96)
    t = torch.from_numpy(face).permute(2, 0, 1)[None].float() / 255
    return float(laplacian_variance(t)[0])


def face_thumb(rgb: np.ndarray, box: tuple[float, float, float], side: int = THUMB) -> np.ndarray:
    """A (side, side, 3) uint8 picture of the face ``box`` with a margin."""
    import cv2

    from puppet.face.landmarks import CropBox

    cx, cy, s = box
    m = CropBox(cx, cy, 1.4 * max(s, 1.0)).affine(side)
    return cv2.warpAffine(rgb, m, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)


@dataclass
class Face:
    """One face in one frame."""

    landmarks: np.ndarray  # (478, 2) float32 source pixels
    yaw: float
    pitch: float
    sharpness: float
    track: int = -1

    @property
    def box(self) -> tuple[float, float, float]:
        return landmark_box(self.landmarks)


@dataclass
class Track:
    """One face followed through consecutive frames of one shot."""

    id: int
    shot: int
    frames: list[int] = field(default_factory=list)  # scan indices
    descriptors: list[np.ndarray] = field(default_factory=list)
    thumb: np.ndarray | None = None
    person: int = 0  # 0 until people are found

    @property
    def descriptor(self) -> np.ndarray | None:
        return np.mean(self.descriptors, axis=0) if self.descriptors else None


@dataclass
class Person:
    id: int  # 1 = the person in most frames
    tracks: list[int]
    frames: int
    shots: int
    thumb: np.ndarray | None


@dataclass
class Scan:
    """What one pass over a video found. Index i is the i-th frame read (frame ``first + i``)."""

    video: Path
    fps: float
    first: int  # frame number of index 0 (data.start)
    shot_starts: list[int]  # scan indices where each shot begins (0 first)
    faces: list[list[Face]]
    tracks: list[Track]
    people: list[Person]

    def __len__(self) -> int:
        return len(self.faces)

    def shot_of(self) -> np.ndarray:
        """(F,) shot number of every scan index."""
        out = np.zeros(len(self), dtype=np.int64)
        for k, s in enumerate(self.shot_starts):
            out[s:] = k
        return out

    def shot_bounds(self) -> list[tuple[int, int]]:
        """[(start, end)) scan indices of each shot."""
        ends = self.shot_starts[1:] + [len(self)]
        return list(zip(self.shot_starts, ends))


def frame_range(cfg: DataConfig, fps: float, frame_count: int) -> tuple[int, int]:
    """(first, stop) frame numbers of ``data.start`` / ``data.end`` (seconds; end 0 = the clip's end)
    and ``data.max_frames`` (0 = all)."""
    first = int(round(cfg.start * fps))
    stop = int(round(cfg.end * fps)) if cfg.end > 0 else frame_count
    if cfg.max_frames:
        stop = min(stop, first + cfg.max_frames)
    return first, max(first, stop)


class _ShotCuts:
    """PySceneDetect's content detector, fed one frame at a time."""

    def __init__(self, fps: float):
        from scenedetect.detectors import ContentDetector
        from scenedetect.scene_detector import FlashFilter

        # A cut closer than half a second to the last is a flash or a fast pan, not a new shot. The
        # suppressing filter reports each cut at the frame it happens; the merging one (the default)
        # may report it frames later, after faces of the new shot were already followed.
        self.detector = ContentDetector(min_scene_len=max(1, int(round(fps / 2))),
                                        filter_mode=FlashFilter.Mode.SUPPRESS)

    def __call__(self, i: int, rgb: np.ndarray) -> bool:
        import cv2

        h, w = rgb.shape[:2]
        small = cv2.resize(rgb, (SHOT_WIDTH, max(1, round(h * SHOT_WIDTH / w))), interpolation=cv2.INTER_AREA)
        return bool(self.detector.process_frame(i, cv2.cvtColor(small, cv2.COLOR_RGB2BGR)))


def scan(video: str | Path, cfg: DataConfig, progress: Progress | None = None, detector=None,
         describer=None) -> Scan:
    """One streamed pass over ``video`` (within ``data.start``/``end``): shots, faces, tracks, people.

    ``detector``: anything with ``detect_all(rgb) -> [(478, 3)]`` used as a context manager (default
    MediaPipe's face mesh in video mode, up to :data:`MAX_FACES` faces); ``describer``: anything with
    ``describe_box(rgb, box) -> (128,)`` (default dlib's descriptor)."""
    from puppet.face.identity import FaceDescriber
    from puppet.face.landmarks import FaceMesh

    video = Path(video)
    info = probe(video, audio=False)
    first, stop = frame_range(cfg, info.fps, info.frame_count)
    total = max(0, stop - first)
    describer = describer or FaceDescriber()
    cuts = _ShotCuts(info.fps)
    describe_every = max(1, int(round(DESCRIBE_EVERY_S * info.fps)))
    gap = max(1, int(round(TRACK_GAP_S * info.fps)))
    faces: list[list[Face]] = []
    shot_starts = [0]
    tracks: list[Track] = []
    live: list[Track] = []  # tracks of the current shot seen within the last ``gap`` frames
    with detector if detector is not None else FaceMesh(video=True, max_faces=MAX_FACES) as mesh:
        # without an end, read to the last frame: a container's frame count can be short by a few
        limit = stop - first if (cfg.end > 0 or cfg.max_frames) else 0
        for i, rgb in enumerate(read_frames(video, limit, info, start=first)):
            if cuts(i, rgb) and i > 0:
                shot_starts.append(i)
                live = []
            found = []
            for lm3 in mesh.detect_all(rgb):
                yaw, pitch = head_angles(lm3)
                lm = np.ascontiguousarray(lm3[:, :2])
                found.append(Face(lm, yaw, pitch, face_sharpness(rgb, landmark_box(lm))))
            live = [t for t in live if i - t.frames[-1] <= gap]
            _follow(found, live, i, len(shot_starts) - 1, tracks, faces)
            for f in found:
                t = tracks[f.track]
                if (i - t.frames[0]) % describe_every == 0:
                    t.descriptors.append(describer.describe_box(rgb, f.box))
                    if t.thumb is None:
                        t.thumb = face_thumb(rgb, f.box)
            faces.append(found)
            if progress:
                progress(i + 1, max(total, i + 1), "faces and shots")
    if not faces:
        raise PuppetError(f"{video}: no frame could be decoded" + (f" from {cfg.start:g} s" if first else ""))
    result = Scan(video, info.fps, first, shot_starts, faces, tracks, [])
    result.people = find_people(result)
    return result


def _follow(found: list[Face], live: list[Track], i: int, shot: int, tracks: list[Track],
            faces: list[list[Face]]) -> None:
    """Give each face of frame ``i`` a track: the nearest live track whose last face was within half
    a face of it, else a new one (greedy, nearest pairs first)."""
    pairs = []
    for a, f in enumerate(found):
        cx, cy, side = f.box
        for b, t in enumerate(live):
            tx, ty, ts = faces[t.frames[-1]][_face_of(faces[t.frames[-1]], t.id)].box
            d = math.hypot(cx - tx, cy - ty)
            if d < 0.5 * max(side, ts):
                pairs.append((d, a, b))
    taken_f, taken_t = set(), set()
    for _, a, b in sorted(pairs):
        if a in taken_f or b in taken_t:
            continue
        taken_f.add(a)
        taken_t.add(b)
        found[a].track = live[b].id
        live[b].frames.append(i)
    for f in found:
        if f.track < 0:
            t = Track(len(tracks), shot, [i])
            tracks.append(t)
            live.append(t)
            f.track = t.id


def _face_of(frame_faces: list[Face], track: int) -> int:
    return next(k for k, f in enumerate(frame_faces) if f.track == track)


def find_people(s: Scan) -> list[Person]:
    """Group tracks into people by their mean descriptors, longest tracks first: a track joins the
    first person whose mean is within :data:`SAME_PERSON`, else starts one. People are numbered by
    frames, most first; each track's ``person`` is set."""
    groups: list[dict] = []
    for t in sorted(s.tracks, key=lambda t: -len(t.frames)):
        d = t.descriptor
        if d is None:
            continue
        near = [(float(np.linalg.norm(d - g["sum"] / g["n"])), k) for k, g in enumerate(groups)]
        dist, k = min(near) if near else (math.inf, -1)
        if dist < SAME_PERSON:
            g = groups[k]
            g["sum"] += d * len(t.frames)
            g["n"] += len(t.frames)
            g["tracks"].append(t.id)
        else:
            groups.append({"sum": d * len(t.frames), "n": len(t.frames), "tracks": [t.id]})
    people = []
    for g in groups:
        ts = [s.tracks[k] for k in g["tracks"]]
        frames = len({i for t in ts for i in t.frames})
        thumb = max(ts, key=lambda t: len(t.frames)).thumb
        people.append(Person(0, g["tracks"], frames, len({t.shot for t in ts}), thumb))
    def left(p: Person) -> float:  # where the person first appears, across the frame
        t = min((s.tracks[k] for k in p.tracks), key=lambda t: t.frames[0])
        return s.faces[t.frames[0]][_face_of(s.faces[t.frames[0]], t.id)].box[0]

    people.sort(key=lambda p: (-p.frames, left(p)))  # most frames first; a tie, left to right
    for n, p in enumerate(people, start=1):
        p.id = n
        for k in p.tracks:
            s.tracks[k].person = n
    return people


@dataclass
class Selection:
    """The frames of a video to train on, and why the others are not (what extraction needs; saved
    with :meth:`save` it lets a machine without MediaPipe or dlib extract the same frames).

    Frame numbers are the video's. ``landmarks`` are the target's raw (unsmoothed) landmarks in
    source pixels; ``segments`` number the runs of kept frames that are cropped and smoothed alone.
    """

    frames: np.ndarray  # (K,) int64 frame numbers kept
    landmarks: np.ndarray  # (K, 478, 2) float32
    segments: np.ndarray  # (K,) int64
    rejected: np.ndarray  # (R,) int64 frame numbers not kept
    rejected_reason: np.ndarray  # (R,) int64 index into REASONS
    info: dict  # fps, first, frames_read, shots [...], people [...], target, counts {reason: n}

    def counts(self) -> dict[str, int]:
        return {r: int((self.rejected_reason == k).sum()) for k, r in enumerate(REASONS)
                if (self.rejected_reason == k).any()}

    def save(self, path: str | Path) -> None:
        from puppet.utils import atomic_path

        with atomic_path(Path(path)) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, frames=self.frames, landmarks=self.landmarks, segments=self.segments,
                         rejected=self.rejected, rejected_reason=self.rejected_reason,
                         info=np.array(json.dumps(self.info)))

    @staticmethod
    def load(path: str | Path) -> "Selection":
        try:
            z = np.load(path)
            return Selection(z["frames"], z["landmarks"], z["segments"], z["rejected"], z["rejected_reason"],
                             json.loads(str(z["info"])))
        except (OSError, KeyError, ValueError) as e:
            raise PuppetError(f"{path}: not a saved frame selection ({e})") from None


def select(s: Scan, cfg: DataConfig) -> Selection:
    """Decide which frames of a scan to train on (see the module's docstring)."""
    if not s.people:
        n = len(s)
        raise PuppetError(f"{s.video}: no face found in any of its {n} frames" if not any(s.faces) else
                          f"{s.video}: no face could be described (dlib's aligner failed on every face)")
    if cfg.face > len(s.people):
        raise PuppetError(f"{s.video}: data.face {cfg.face}, but {len(s.people)} "
                          f"{'person was' if len(s.people) == 1 else 'people were'} found "
                          "(see puppet faces VIDEO)")
    target = cfg.face or 1
    reason = np.full(len(s), -1, dtype=np.int64)
    mine: list[Face | None] = [None] * len(s)
    for i, found in enumerate(s.faces):
        ours = [f for f in found if s.tracks[f.track].person == target]
        if not found:
            reason[i] = REASONS.index("no face")
        elif not ours:
            reason[i] = REASONS.index("someone else")
        else:
            mine[i] = max(ours, key=lambda f: f.box[2])
    here = [i for i in range(len(s)) if mine[i] is not None]
    min_side = MIN_CROP_SHARE * cfg.size / cfg.crop_scale
    pitch0 = float(np.median([mine[i].pitch for i in here])) if here else 0.0
    sharp0 = float(np.median([mine[i].sharpness for i in here])) if here else 0.0
    for i in here:
        f = mine[i]
        if f.box[2] < min_side:
            reason[i] = REASONS.index("too small")
        elif abs(f.yaw) > cfg.max_turn or abs(f.pitch - pitch0) > cfg.max_turn:
            reason[i] = REASONS.index("turned away")
        elif f.sharpness < BLUR_SHARE * sharp0:
            reason[i] = REASONS.index("blurred")
    kept = np.flatnonzero(reason < 0)
    if len(kept) == 0:
        counts = ", ".join(f"{np.sum(reason == k)} {r}" for k, r in enumerate(REASONS) if np.any(reason == k))
        raise PuppetError(f"{s.video}: every one of its {len(s)} frames was rejected ({counts})")
    if cfg.max_kept and len(kept) > cfg.max_kept:
        lms = np.stack([mine[i].landmarks for i in kept])
        pose = np.array([[mine[i].yaw, mine[i].pitch] for i in kept])
        chosen = np.sort(diverse_subset(pose_expression_features(lms, pose), cfg.max_kept))
        reason[np.setdiff1d(kept, kept[chosen])] = REASONS.index("beyond data.max_kept")
        kept = kept[chosen]
    shot = s.shot_of()
    gap = max(1, int(round(TRACK_GAP_S * s.fps)))
    seg = np.zeros(len(kept), dtype=np.int64)
    for k in range(1, len(kept)):
        a, b = kept[k - 1], kept[k]
        seg[k] = seg[k - 1] + int(shot[a] != shot[b] or b - a > gap)
    rejected = np.flatnonzero(reason >= 0)
    info = {"fps": s.fps, "first": s.first, "frames_read": len(s), "target": target,
            "people": [{"id": p.id, "frames": p.frames, "shots": p.shots} for p in s.people],
            "shots": _shot_rows(s, reason),
            "counts": {r: int(np.sum(reason == k)) for k, r in enumerate(REASONS) if np.any(reason == k)}}
    return Selection(kept + s.first, np.stack([mine[i].landmarks for i in kept]).astype(np.float32), seg,
                     rejected + s.first, reason[rejected], info)


def _shot_rows(s: Scan, reason: np.ndarray) -> list[dict]:
    rows = []
    for k, (a, b) in enumerate(s.shot_bounds()):
        r = reason[a:b]
        why = {REASONS[c]: int(np.sum(r == c)) for c in range(len(REASONS)) if np.any(r == c)}
        rows.append({"shot": k + 1, "start": a + s.first, "end": b + s.first, "kept": int(np.sum(r < 0)),
                     "rejected": why})
    return rows


_SELECTED: dict[tuple, Selection] = {}  # this process's selections: crop trials reuse the first


def select_frames(video: str | Path, cfg: DataConfig, progress: Progress | None = None) -> Selection:
    """:func:`scan` then :func:`select`, once per video and setting in a process (``crop_mode`` auto
    extracts the same video three times)."""
    video = Path(video)
    st = video.stat()
    key = (str(video.resolve()), st.st_size, st.st_mtime_ns, cfg.size, cfg.crop_scale, cfg.max_frames,
           cfg.start, cfg.end, cfg.face, cfg.max_turn, cfg.max_kept)
    if key not in _SELECTED:
        _SELECTED.clear()  # one video at a time: a long clip's landmarks are large
        _SELECTED[key] = select(scan(video, cfg, progress), cfg)
    return _SELECTED[key]


def pose_expression_features(landmarks: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """(K, 478, 2) landmarks and (K, 2) yaw/pitch in degrees -> (K, 4) standardised features: yaw,
    pitch, mouth opening, eye opening."""
    from puppet.data.sampling import expression_features

    x = np.concatenate([pose, expression_features(landmarks)], axis=1)
    return (x - x.mean(0)) / (x.std(0) + 1e-9)


def diverse_subset(features: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` rows of ``features`` (K, D) by farthest-point sampling (the first row first,
    then always the row farthest from those chosen): the subset covers the spread of poses and
    expressions, not only the most common ones. Deterministic."""
    k = len(features)
    if n >= k:
        return np.arange(k)
    chosen = np.empty(n, dtype=np.int64)
    chosen[0] = 0
    dist = np.linalg.norm(features - features[0], axis=1)
    for j in range(1, n):
        chosen[j] = int(np.argmax(dist))
        dist = np.minimum(dist, np.linalg.norm(features - features[chosen[j]], axis=1))
    return chosen


def faces_sheet(s: Scan, per_person: int = 8) -> np.ndarray:
    """A contact sheet of the people of a scan (H, W, 3) uint8 RGB: one row each, numbered as
    ``--face`` takes them, with faces from their longest tracks (different moments and shots)."""
    import cv2

    label_w, pad = 230, 4
    width = label_w + per_person * (THUMB + pad)
    rows = []
    for p in s.people:
        row = np.full((THUMB + 2 * pad, width, 3), 250, np.uint8)
        cv2.putText(row, f"face {p.id}", (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (20, 20, 20), 2, cv2.LINE_AA)
        cv2.putText(row, f"{p.frames} frames ({p.frames / len(s):.0%})", (8, 50), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (20, 20, 20), 1, cv2.LINE_AA)
        cv2.putText(row, f"{p.shots} shot{'s' if p.shots != 1 else ''}", (8, 68), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (20, 20, 20), 1, cv2.LINE_AA)
        thumbs = [s.tracks[k].thumb for k in sorted(p.tracks, key=lambda k: -len(s.tracks[k].frames))]
        for j, t in enumerate([t for t in thumbs if t is not None][:per_person]):
            x = label_w + j * (THUMB + pad)
            row[pad:pad + THUMB, x:x + THUMB] = t
        rows.append(row)
    if not rows:
        return np.full((THUMB, width, 3), 250, np.uint8)
    return np.concatenate(rows, axis=0)
