#!/usr/bin/env python3
"""The README's footage report, made from generated faces only (the shared clips are not ours to show).

Two trained puppets are each driven by a shared driver (``puppet animate``); their outputs are cut
together as a user's footage might be: person A, a cut to person B, A again, a black gap, A. Then
``puppet extract`` decides what to keep and writes ``report.png``, and ``puppet faces`` numbers the
people. Nothing of the drivers' own frames is in the pictures.

Usage: python pipelines/footage_figure.py --a runs/glasses --b runs/office
           --driver-a ../shared/media/drivers/talking_man.mp4 --driver-b ../shared/media/drivers/girl.mp4
           --out media/footage_report.jpg
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SIDE = 384  # the puppets' frames are enlarged to this, a typical small video


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", type=Path, required=True, help="run folder of person A")
    ap.add_argument("--b", type=Path, required=True, help="run folder of person B")
    ap.add_argument("--driver-a", type=Path, required=True)
    ap.add_argument("--driver-b", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    import cv2

    from puppet.data.video import VideoWriter, read_frames
    from puppet.utils import read_image

    puppet = str(Path(sys.executable).with_name("puppet"))
    with tempfile.TemporaryDirectory() as tmp:
        clips = []
        for model, driver in ((a.a, a.driver_a), (a.b, a.driver_b)):
            video = Path(tmp) / f"{model.name}.mp4"
            subprocess.run([puppet, "animate", "--model", str(model), "--driver", str(driver), "--out", str(video),
                            "--no-audio"], check=True, stdout=subprocess.DEVNULL)
            clips.append([cv2.resize(f, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC) for f in read_frames(video)])
        pa, pb = clips
        black = [np.zeros_like(pa[0])] * 20
        frames = pa[:75] + pb[:60] + pa[75:125] + black + pa[125:160]
        footage = Path(tmp) / "footage.mp4"
        with VideoWriter(footage, 25.0) as w:
            for f in frames:
                w.write(f)
        subprocess.run([puppet, "faces", str(footage), "--sheet", str(Path(tmp) / "faces.png")], check=True)
        subprocess.run([puppet, "extract", str(footage), "--out", str(Path(tmp) / "data"), "--set",
                        "data.crop_mode=fixed"], check=True)
        report = read_image(Path(tmp) / "data" / "report.png")
    cv2.imwrite(str(a.out), cv2.cvtColor(report, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"{a.out}: {len(frames)} frames of generated footage")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
