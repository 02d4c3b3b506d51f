"""``report.png``: what extraction kept of a video, shot by shot, and examples of what it rejected.

One row per shot: its time, how many frames were kept, the reasons for the others, and six frames
spread over it, each framed green (kept) or red (rejected, with the reason under it). Below, up to
five examples of every reason. Pictures are gathered while extraction reads the video for its
crops, so the report costs no extra pass.
"""

from __future__ import annotations

import numpy as np

from puppet.data.footage import REASONS, Selection

THUMB_H = 72
PER_SHOT = 6
EXAMPLES = 5
MAX_SHOTS = 30  # a longer list would make a picture nobody reads; manifest.json has every shot
LABEL_W = 300
GREEN, RED, INK, PAPER = (40, 160, 60), (200, 40, 40), (20, 20, 20), (250, 250, 250)
SHORT = {"no face": "no face", "someone else": "other", "too small": "small", "turned away": "turned",
         "blurred": "blurred", "beyond data.max_kept": "not chosen"}


def _clock(frame: int, fps: float) -> str:
    t = frame / fps
    return f"{int(t // 60)}:{t % 60:04.1f}"


class FootageReport:
    """Collect thumbnails with :meth:`see` (every frame read, in order), then draw with :meth:`image`."""

    def __init__(self, sel: Selection):
        self.sel = sel
        self.fps = float(sel.info["fps"])
        self.kept = {int(f) for f in sel.frames}
        self.reason = {int(f): REASONS[int(r)] for f, r in zip(sel.rejected, sel.rejected_reason)}
        shots = sel.info["shots"]
        if len(shots) > MAX_SHOTS:
            shots = [shots[int(k)] for k in np.linspace(0, len(shots) - 1, MAX_SHOTS).round()]
        self.shots = shots
        self.hidden = len(sel.info["shots"]) - len(shots)
        self.wanted: dict[int, tuple] = {}  # frame number -> ("shot", row) or ("example", reason)
        for row, sh in enumerate(shots):
            n = sh["end"] - sh["start"]
            for f in np.linspace(sh["start"], sh["end"] - 1, min(PER_SHOT, n)).round().astype(int):
                self.wanted[int(f)] = ("shot", row)
        self.examples: dict[str, list[int]] = {}
        for k, why in enumerate(REASONS):
            frames = sel.rejected[sel.rejected_reason == k]
            if len(frames):
                pick = frames[np.linspace(0, len(frames) - 1, min(EXAMPLES, len(frames))).round().astype(int)]
                self.examples[why] = [int(f) for f in pick]
                for f in pick:
                    self.wanted.setdefault(int(f), ("example", why))
        self.thumbs: dict[int, np.ndarray] = {}

    def see(self, frame_number: int, rgb: np.ndarray) -> None:
        if frame_number in self.wanted:
            import cv2

            h, w = rgb.shape[:2]
            self.thumbs[frame_number] = cv2.resize(rgb, (max(1, round(w * THUMB_H / h)), THUMB_H),
                                                   interpolation=cv2.INTER_AREA)

    def _framed(self, f: int) -> np.ndarray:
        import cv2

        im = self.thumbs.get(f)
        if im is None:
            im = np.zeros((THUMB_H, THUMB_H, 3), np.uint8)
        ok = f in self.kept
        colour = GREEN if ok else RED
        out = np.full((THUMB_H + 22, im.shape[1] + 6, 3), PAPER, np.uint8)
        out[:THUMB_H + 6] = colour
        out[3:THUMB_H + 3, 3:-3] = im
        label = "kept" if ok else SHORT.get(self.reason.get(f, ""), "")
        cv2.putText(out, label, (3, THUMB_H + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
        return out

    def _row(self, lines: list[str], pics: list[np.ndarray], width: int) -> np.ndarray:
        import cv2

        h = THUMB_H + 30
        row = np.full((h, width, 3), PAPER, np.uint8)
        for k, text in enumerate(lines):
            cv2.putText(row, text, (6, 20 + 18 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, INK, 1, cv2.LINE_AA)
        x = LABEL_W
        for p in pics:
            if x + p.shape[1] > width:
                break
            row[4:4 + p.shape[0], x:x + p.shape[1]] = p
            x += p.shape[1] + 4
        return row

    def image(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        width = LABEL_W + PER_SHOT * (max((t.shape[1] for t in self.thumbs.values()), default=THUMB_H) + 10)
        counts = self.sel.counts()
        n_read = int(self.sel.info["frames_read"])
        people = self.sel.info["people"]
        n_shots = len(self.sel.info["shots"])
        head = [f"kept {len(self.sel.frames)} of {n_read} frames; person {self.sel.info['target']} of "
                f"{len(people)} found; {n_shots} shot{'s' if n_shots != 1 else ''}",
                "rejected: " + (", ".join(f"{n} {why}" for why, n in counts.items()) or "none")]
        rows = [self._row(head, [], width)]
        for row, sh in enumerate(self.shots):
            frames = [f for f, (kind, r) in sorted(self.wanted.items()) if kind == "shot" and r == row]
            why = ", ".join(f"{n} {r}" for r, n in sh["rejected"].items())
            state = "kept" if sh["kept"] else "dropped"
            lines = [f"shot {sh['shot']}  {_clock(sh['start'], self.fps)}-{_clock(sh['end'], self.fps)}",
                     f"{state}: {sh['kept']} of {sh['end'] - sh['start']} frames",
                     why[:40], why[40:80]]
            rows.append(self._row(lines, [self._framed(f) for f in frames], width))
        if self.hidden:
            rows.append(self._row([f"... {self.hidden} more shots (manifest.json lists them all)"], [], width)[:30])
        for why, frames in self.examples.items():
            rows.append(self._row([f"rejected: {why}", f"{counts.get(why, 0)} frames"],
                                  [self._framed(f) for f in frames], width))
        return np.concatenate(rows, axis=0)
