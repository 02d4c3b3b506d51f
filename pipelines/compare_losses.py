#!/usr/bin/env python3
"""The paper's claim on our data: the same CRN trained with each loss for the same wall-clock budget.

Trains one model per loss preset on the same target through the public CLI
(``puppet train --loss NAME``; default: ``paper`` = L_CX^t + L_P^t with colour
features, ``baseline`` = L1 + L_P, and the default ``hybrid``), evaluates each
with ``puppet eval`` and prints one table; every run's JSON is kept under --out.
Runs are trained one after another, so each has the machine to itself.

Usage: python pipelines/compare_losses.py [--target V] [--driver V] [--minutes M] [--losses a,b]
       [--out runs/compare] [--set section.key=value ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

METRICS = [("self_reenactment", "psnr"), ("self_reenactment", "ssim"), ("self_reenactment", "l1"),
           ("self_reenactment", "sharpness_ratio"), ("self_reenactment", "landmark_error_iod"),
           ("cross_reenactment", "mouth_opening_correlation"), ("cross_reenactment", "eye_opening_correlation"),
           ("stability", "jitter_output")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", type=Path, default=Path("../shared/media/targets/glasses_man.mp4"))
    ap.add_argument("--driver", type=Path, default=Path("../shared/media/drivers/talking_man.mp4"))
    ap.add_argument("--minutes", type=float, default=4.0, help="training budget per loss (wall clock)")
    ap.add_argument("--losses", default="paper,baseline,hybrid", help="comma-separated loss presets")
    ap.add_argument("--out", type=Path, default=Path("runs/compare"))
    ap.add_argument("--set", dest="sets", action="append", default=[], help="section.key=value for every run")
    args = ap.parse_args()
    for p in (args.target, args.driver):
        if not p.is_file():
            print(f"compare_losses: {p} not found; pass --target/--driver", file=sys.stderr)
            return 2
    puppet = shutil.which("puppet") or str(Path(sys.executable).parent / "puppet")
    rows = {}
    for loss in args.losses.split(","):
        run = args.out / loss
        if not (run / "checkpoint.pt").is_file():
            cmd = [puppet, "train", "--target", str(args.target), "--out", str(run), "--loss", loss,
                   "--minutes", str(args.minutes)]
            for s in args.sets:
                cmd += ["--set", s]
            subprocess.run(cmd, check=True)
        subprocess.run([puppet, "eval", "--model", str(run), "--driver", str(args.driver),
                        "--json", str(run / "eval.json")], check=True, stdout=subprocess.DEVNULL)
        rows[loss] = json.loads((run / "eval.json").read_text())
        metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        rows[loss]["steps"] = metrics[-1]["step"]
    header = ["metric"] + list(rows)
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    print("| steps | " + " | ".join(str(r["steps"]) for r in rows.values()) + " |")
    for part, key in METRICS:
        vals = [r.get(part, {}).get(key) for r in rows.values()]
        print(f"| {key} | " + " | ".join("-" if v is None else f"{v:.4g}" for v in vals) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
