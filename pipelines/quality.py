#!/usr/bin/env python3
"""How good is the default puppet, on every shared target: one table, one contact sheet per target.

For each target video (default: every clip in <shared>/targets), through the public CLI:

1. ``puppet train`` with the default config (or --config / --loss / --set) for a fixed
   wall-clock budget (--minutes, default 10);
2. ``puppet eval`` with each driver (default: talking_man, smile_man_short): held-out PSNR,
   SSIM, sharpness, landmark error, mouth/eye correlation with the driver, jitter
   (also per unit of landmark motion in the still stretches), and the driven likeness: identity
   distances, kernel distances and the novelty of the driven input;
3. ``puppet animate --side-by-side`` with each driver, for the sheet.

It prints one table (a row per target and driver), a second with the driven likeness, then the
held-out landmark error by face part,
generated / real frames (a row per target), and writes, under --out,
``summary.json`` and ``<target>_sheet.png``: the held-out frames (worst row and best row,
generated over real, from ``puppet eval``), then for each driver its four hardest moments (the
driven frames whose input is furthest from every training frame) of
driver | edge map | puppet, two to a row; ``<target>_generated.png`` holds the generated frames
alone (the moments without the driver). A run with a checkpoint is reused (delete it to retrain).

Usage: python pipelines/quality.py [--shared ../shared/media] [--minutes 10] [--targets a.mp4,b.mp4]
       [--drivers x.mp4,y.mp4] [--out runs/quality] [--loss NAME] [--config FILE] [--set k=v ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

COLUMNS = [("self_reenactment", "psnr", "PSNR dB", "{:.2f}"), ("self_reenactment", "ssim", "SSIM", "{:.3f}"),
           ("self_reenactment", "sharpness_ratio", "sharpness", "{:.2f}"),
           ("self_reenactment", "placement_px", "placement px", "{:.2f}"),
           ("self_reenactment", "psnr_placed", "PSNR placed", "{:.2f}"),
           ("self_reenactment", "landmark_error_iod", "lmk IOD", "{:.4f}"),
           ("self_reenactment", "landmark_error_real_iod", "lmk real", "{:.4f}"),
           ("cross_reenactment", "mouth_opening_correlation", "mouth r", "{:.2f}"),
           ("cross_reenactment", "eye_opening_correlation", "eye r", "{:.2f}"),
           ("cross_reenactment", "identity_shape_distance_output", "shape out", "{:.3f}"),
           ("cross_reenactment", "identity_shape_distance_driver", "shape drv", "{:.3f}"),
           ("stability", "jitter_ratio", "jitter/real", "{:.2f}"),
           ("stability", "jitter_ratio_per_motion", "per motion", "{:.2f}")]
# Driven likeness (puppet eval, "Driven likeness"): identity distances from the target's real frames,
# kernel distances to them, and how far the driven input is from what training saw.
DRIVEN_COLUMNS = [("self_reenactment", "identity_real", "id real", "{:.2f}"),
                  ("self_reenactment", "identity_real_p90", "id real p90", "{:.2f}"),
                  ("self_reenactment", "identity_generated", "id held-out", "{:.2f}"),
                  ("cross_reenactment", "identity_driven", "id driven", "{:.2f}"),
                  ("cross_reenactment", "identity_driven_p90", "id driven p90", "{:.2f}"),
                  ("cross_reenactment", "identity_driver", "id driver", "{:.2f}"),
                  ("self_reenactment", "kid_generated", "KID held-out", "{:.1f}"),
                  ("cross_reenactment", "kid_driven", "KID driven", "{:.1f}"),
                  ("cross_reenactment", "kid_driven_over_held_out", "KID ratio", "{:.2f}"),
                  ("self_reenactment", "novelty_median", "novelty held-out", "{:.3f}"),
                  ("cross_reenactment", "novelty_median", "novelty driven", "{:.3f}"),
                  ("cross_reenactment", "novelty_max", "novelty max", "{:.3f}")]


def run(cmd: list[str], quiet: bool = False) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if quiet else None)


PANEL = 192  # side of each panel of the side-by-side videos


def moments(video: Path, frames: list[int] | None = None, n_moments: int = 4) -> list[np.ndarray]:
    """The given ``frames`` of a video (``puppet eval``'s hardest driven frames: where the driven input
    is furthest from every training frame), or ``n_moments`` evenly spaced ones (10 % to 90 %)."""
    from puppet.data.video import probe, read_frames

    if frames is None:
        n = probe(video, audio=False).frame_count
        frames = np.linspace(n * 0.1, n * 0.9, n_moments).round().astype(int).tolist()
    want = set(frames)
    return [f for i, f in enumerate(read_frames(video, max(want) + 1)) if i in want]


def rows_of(images: list[np.ndarray], columns: int, width: int) -> list[np.ndarray]:
    """Images of one size side by side, ``columns`` to a row, scaled so a full row is ``width`` px wide."""
    import cv2

    h, w = images[0].shape[:2]
    side = (round(width / columns), round(h * width / (columns * w)))
    interp = cv2.INTER_AREA if side[0] < w else cv2.INTER_LINEAR
    scaled = [cv2.resize(im, side, interpolation=interp) for im in images]
    return [np.concatenate(scaled[i:i + columns], axis=1) for i in range(0, len(scaled), columns)]


def sheets(eval_sheet: Path, videos: list[Path], size: int,
           picks: list[list[int] | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(sheet with real frames, generated-only sheet) for one target; ``size``: the model's output side.

    Both are as wide as ``puppet eval``'s sheet (four held-out frames): each driver's four moments
    (driver | edge map | puppet; the generated-only sheet leaves the driver out) go two to a row,
    scaled to that width. ``picks``: per video, the frames to show (default: evenly spaced).
    """
    from puppet.utils import read_image, tile

    top = read_image(eval_sheet)  # rows of (generated over real) pairs: worst row, best row
    width = top.shape[1]
    frames = [moments(v, pick) for v, pick in zip(videos, picks or [None] * len(videos))]
    full = tile([[top]] + [[row] for fs in frames for row in rows_of(fs, 2, width)])
    generated = [top[0:size], top[2 * size:3 * size]]  # the generated halves of both rows
    drive = rows_of([f[:, PANEL:] for f in frames[0]], 2, width)  # edge map | puppet
    return full, tile([[g] for g in generated + drive])


def write_sheets(out: Path, name: str, model: Path, videos: list[Path], reports: list[Path]) -> None:
    """The sheets of one target, each driver's moments the hardest driven frames its eval report names."""
    from puppet.utils import write_image

    size = json.loads((model / "data" / "manifest.json").read_text())["settings"]["size"]
    picks = [json.loads(r.read_text()).get("cross_reenactment", {}).get("hardest_frames") if r.is_file() else None
             for r in reports]
    full, generated = sheets(model / "eval_sheet.png", videos, size, picks)
    write_image(out / f"{name}_sheet.png", full)
    write_image(out / f"{name}_generated.png", generated)


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """A markdown table: the header, its separator, one line per row of cells."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def print_parts_table(summary: dict[str, dict]) -> None:
    """Landmark error (IOD) by face part, generated / real frames, one row per target.

    The held-out frames do not depend on the driver, so the first report of each target is used.
    """
    rows: dict[str, dict] = {}
    for key, rep in summary.items():
        rows.setdefault(key.split(" / ")[0], rep.get("self_reenactment", {}))
    parts = next((list(sr["landmark_error_parts_iod"]) for sr in rows.values()
                  if sr.get("landmark_error_parts_iod")), None)
    if not parts:
        return
    print("\nlandmark error by part (IOD), generated / real frames")
    lines = []
    for name, sr in rows.items():
        gen, real = sr.get("landmark_error_parts_iod", {}), sr.get("landmark_error_parts_real_iod", {})
        lines.append([name] + [f"{gen[p]:.4f} / {real[p]:.4f}" if p in gen and p in real else "-" for p in parts])
    print_table(["target"] + parts, lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path("../shared/media"), help="folder with targets/ and drivers/")
    ap.add_argument("--targets", help="comma-separated target videos (default: every <shared>/targets/*.mp4)")
    ap.add_argument("--drivers", help="comma-separated driver videos (default: talking_man, smile_man_short)")
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget per target (wall clock)")
    ap.add_argument("--out", type=Path, default=Path("runs/quality"))
    ap.add_argument("--loss", help="loss preset passed to puppet train")
    ap.add_argument("--config", help="YAML config passed to puppet train")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="section.key=value for puppet train")
    ap.add_argument("--sheets-only", action="store_true", help="only rebuild the sheets from existing runs")
    args = ap.parse_args()

    targets = ([Path(t) for t in args.targets.split(",")] if args.targets
               else sorted((args.shared / "targets").glob("*.mp4")))
    drivers = ([Path(d) for d in args.drivers.split(",")] if args.drivers
               else [args.shared / "drivers" / n for n in ("talking_man.mp4", "smile_man_short.mp4")])
    missing = [p for p in [*targets, *drivers] if not p.is_file()]
    if not targets or missing:
        print(f"quality: {missing[0] if missing else 'no target videos'} not found; pass --targets/--drivers, "
              f"or put the project's shared media at {args.shared}", file=sys.stderr)
        return 2
    puppet = shutil.which("puppet") or str(Path(sys.executable).parent / "puppet")
    from puppet.utils import write_json

    summary: dict[str, dict] = {}
    for target in targets:
        name = target.stem
        model = args.out / name
        videos = [args.out / f"{name}_{driver.stem}.mp4" for driver in drivers]
        reports = [args.out / f"{name}_{driver.stem}_eval.json" for driver in drivers]
        if args.sheets_only:
            write_sheets(args.out, name, model, videos, reports)
            continue
        if not (model / "checkpoint.pt").is_file():
            cmd = [puppet, "train", "--target", str(target), "--out", str(model), "--minutes", str(args.minutes)]
            cmd += (["--loss", args.loss] if args.loss else []) + (["--config", args.config] if args.config else [])
            for s in args.sets:
                cmd += ["--set", s]
            run(cmd)
        metrics = [json.loads(x) for x in (model / "metrics.jsonl").read_text().splitlines()]
        for driver, video, report in zip(drivers, videos, reports):
            key = f"{name} / {driver.stem}"
            run([puppet, "eval", "--model", str(model), "--driver", str(driver), "--json", str(report)], quiet=True)
            rep = json.loads(report.read_text())
            st = rep.get("stability", {})
            if st.get("jitter_real_target"):
                st["jitter_ratio"] = st["jitter_output"] / st["jitter_real_target"]
                # the same ratio per unit of landmark motion in the still stretches (driver's, target's)
                if st.get("motion_driver_still") and st.get("motion_target_still"):
                    motion = st["motion_driver_still"] / st["motion_target_still"]
                    st["jitter_ratio_per_motion"] = st["jitter_ratio"] / motion
            rep["steps"] = metrics[-1]["step"]
            summary[key] = rep
            run([puppet, "animate", "--model", str(model), "--driver", str(driver), "--out", str(video),
                 "--side-by-side", "--no-audio", "--size", str(PANEL)], quiet=True)
        write_sheets(args.out, name, model, videos, reports)
    if args.sheets_only:
        print(f"sheets rebuilt in {args.out}")
        return 0
    write_json(args.out / "summary.json", summary)
    lines = []
    for key, rep in summary.items():
        vals = [rep.get(part, {}).get(k) for part, k, _, _ in COLUMNS]
        lines.append([key, str(rep["steps"])] + ["-" if v is None else fmt.format(v)
                                                 for v, (_, _, _, fmt) in zip(vals, COLUMNS)])
    print_table(["target / driver", "steps"] + [c[2] for c in COLUMNS], lines)
    print("\ndriven likeness: identity (face descriptor distance from the target's real frames), kernel "
          "distance to them, novelty of the input (eye distances from the nearest training frame)")
    print_table(["target / driver"] + [c[2] for c in DRIVEN_COLUMNS], [
        [key] + ["-" if v is None else fmt.format(v) for v, fmt in
                 ((rep.get(part, {}).get(k), fmt) for part, k, _, fmt in DRIVEN_COLUMNS)]
        for key, rep in summary.items()])
    print_parts_table(summary)
    print(f"sheets and summary.json in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
