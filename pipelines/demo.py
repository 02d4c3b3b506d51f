#!/usr/bin/env python3
"""The main demo, end to end through the public CLI only.

1. ``puppet train`` on a real talking-head clip (extraction is part of it),
   with a wall-clock budget so it fits a laptop CPU;
2. ``puppet animate`` the trained puppet with a driver clip, side by side
   (driver | edge map | puppet) with the driver's audio.

Usage: python pipelines/demo.py [--shared ../shared/media] [--target V] [--driver V] [--minutes M]
A run that already has a checkpoint is reused (delete runs/demo to retrain).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path("../shared/media"), help="folder with targets/ and drivers/")
    ap.add_argument("--target", type=Path, help="target video (default: <shared>/targets/glasses_man.mp4)")
    ap.add_argument("--driver", type=Path, help="driver video (default: <shared>/drivers/talking_man.mp4)")
    ap.add_argument("--run", type=Path, default=Path("runs/demo"))
    ap.add_argument("--out", type=Path, default=Path("out/demo.mp4"))
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget (wall clock)")
    args = ap.parse_args()

    target = args.target or args.shared / "targets" / "glasses_man.mp4"
    driver = args.driver or args.shared / "drivers" / "talking_man.mp4"
    for what, p in (("target", target), ("driver", driver)):
        if not p.is_file():
            print(f"demo: {what} video {p} not found; pass --{what} VIDEO (a talking-head clip), "
                  f"or put the project's shared media at {args.shared}", file=sys.stderr)
            return 2
    puppet = shutil.which("puppet") or str(Path(sys.executable).parent / "puppet")
    if (args.run / "checkpoint.pt").is_file():
        print(f"demo: reusing the model in {args.run} (delete it to train again)", flush=True)
    else:
        run([puppet, "train", "--target", str(target), "--out", str(args.run), "--minutes", str(args.minutes)])
    run([puppet, "animate", "--driver", str(driver), "--model", str(args.run), "--out", str(args.out),
         "--side-by-side"])
    print(f"demo: open {args.out} (driver | edge map | puppet); training samples in {args.run}/samples/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
