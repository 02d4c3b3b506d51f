#!/usr/bin/env python3
"""One target driven by someone else, two models side by side: the driven moments that are hardest.

Through the public CLI: ``puppet animate --side-by-side`` renders the driver with each model, and the
``hardest_frames`` of ``puppet eval --driver`` (the driven inputs furthest from every training frame)
choose the moments. The picture holds generated frames and drawings only (the driver's own frames
stay out, so it may be committed): per moment, the driven edge map, then each model's puppet.

Usage: python pipelines/before_after.py --models runs/a,runs/b --labels before,after
           --driver ../shared/media/drivers/talking_man.mp4 --out media/driven.jpg [--moments 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def label(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    band = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True, help="run folders, comma-separated")
    ap.add_argument("--labels", required=True, help="a label per model, comma-separated")
    ap.add_argument("--driver", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--moments", type=int, default=4)
    ap.add_argument("--report", type=Path, help="a puppet eval --json report whose hardest_frames to show "
                                                "(default: evaluate the last model)")
    a = ap.parse_args()
    from puppet.data.video import read_frames
    from puppet.utils import tile, write_image

    models = [Path(m) for m in a.models.split(",")]
    labels = a.labels.split(",")
    puppet = str(Path(sys.executable).with_name("puppet"))
    with tempfile.TemporaryDirectory() as tmp:
        report = a.report
        if report is None:
            report = Path(tmp) / "eval.json"
            subprocess.run([puppet, "eval", "--model", str(models[-1]), "--driver", str(a.driver), "--json",
                            str(report), "--sheet", str(Path(tmp) / "sheet.png")], check=True)
        hardest = json.loads(report.read_text())["cross_reenactment"]["hardest_frames"][:a.moments]
        want = sorted(hardest)
        panels = []
        for m in models:
            video = Path(tmp) / f"{m.name}.mp4"
            subprocess.run([puppet, "animate", "--model", str(m), "--driver", str(a.driver), "--out", str(video),
                            "--side-by-side"], check=True, stdout=subprocess.DEVNULL)
            panels.append({i: f for i, f in enumerate(read_frames(video, max(want) + 1)) if i in want})
    w = panels[0][want[0]].shape[1] // 3  # puppet animate --side-by-side: driver | edge map | puppet

    def drawing(i: int) -> np.ndarray:
        return panels[0][i][:, w:2 * w]

    head = [label(drawing(want[0]), "driven input")]
    head += [label(p[want[0]][:, 2 * w:3 * w], t) for p, t in zip(panels, labels)]
    rows = [head] + [[drawing(i)] + [p[i][:, 2 * w:3 * w] for p in panels] for i in want[1:]]
    write_image(a.out, tile(rows))
    print(f"{a.out}: frames {want} of {a.driver.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
