#!/usr/bin/env python3
"""The paper's claim on our data: the same CRN trained with L_CX + L_P and with L1 + L_P.

Trains two models on the same target for the same wall-clock budget (or steps)
through the public CLI (``puppet train --loss paper`` and ``--loss baseline``,
plus the default ``hybrid``), evaluates each with ``puppet eval`` and prints
one table; the JSON of every run is kept under --out.

Usage: python pipelines/compare_losses.py [--target V] [--driver V] [--minutes M] [--out runs/compare]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

METRICS = [("self_reenactment", "psnr"), ("self_reenactment", "ssim"), ("self_reenactment", "l1"),
           ("self_reenactment", "landmark_error_iod"), ("cross_reenactment", "mouth_opening_correlation"),
           ("cross_reenactment", "eye_opening_correlation"), ("stability", "jitter_output")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", type=Path, default=Path("../shared/media/targets/glasses_man.mp4"))
    ap.add_argument("--driver", type=Path, default=Path("../shared/media/drivers/talking_man.mp4"))
    ap.add_argument("--minutes", type=float, default=5.0, help="training budget per loss")
    ap.add_argument("--losses", default="paper,baseline,hybrid")
    ap.add_argument("--out", type=Path, default=Path("runs/compare"))
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
            subprocess.run([puppet, "train", "--target", str(args.target), "--out", str(run), "--loss", loss,
                            "--minutes", str(args.minutes), "--set", "loss.cx_warmup_steps=0"
                            if loss == "paper" else "train.seed=0"], check=True)
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
