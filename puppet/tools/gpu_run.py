"""Train on a lent GPU machine that has no MediaPipe: record here, replay there.

A GPU server of this project's workplace has PyTorch but no MediaPipe and no
``../shared``. This recipe splits a real training run in two:

    # here (MediaPipe, dlib, ../shared): the frames to train on (puppet.data.footage), the clip and fp16
    # VGG weights into a job folder
    python -m puppet.tools.gpu_run prepare --target ../shared/media/targets/glasses_man.mp4 --job out/gpujob
    # there (PYTHONPATH=.): extract the chosen frames, train each variant for --minutes, then write into --out
    # summary.json (each variant's metrics, config and log tail), samples.png (each variant's last
    # sample grid, in order) and the best variant's model (by held-out PSNR) as a half-precision
    # checkpoint in pieces of < 16 MiB: at most 8 files, as the device tool brings back. Variants
    # train at the same time and share the GPU (each gets fewer steps): give one variant for a
    # figure that stands for a solo run.
    PYTHONPATH=. python3 -m puppet.tools.gpu_run train --job out/gpujob --out $OUT --minutes 5 --variant default=
    PYTHONPATH=. python3 -m puppet.tools.gpu_run train --job out/gpujob --out $OUT --minutes 5 \
        --variant default= --variant baseline=--loss,baseline --variant lr2e-4=--set,train.lr=0.0002
    # here again: join the pieces, extract the clip beside them, evaluate (landmark metrics need MediaPipe)
    python -m puppet.tools.gpu_run join --parts DIR --out runs/gpu/checkpoint.pt --target glasses_man.mp4
    puppet eval --model runs/gpu --driver ../shared/media/drivers/talking_man.mp4

Only puppet's public API (extraction from a saved frame selection, checkpoints) and CLI are used.
Every variant is extracted with the --config's data settings: a variant that changes them would
need MediaPipe there, and so would data.crop_mode auto (its trials extract each crop), so the config
must name the crop (configs/gpu.yaml: fixed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from puppet.config import config_from_dict, load_config
from puppet.data.checkpoint import load_checkpoint
from puppet.data.dataset import extract
from puppet.data.footage import Selection, select_frames
from puppet.losses.vgg import resolve_weights
from puppet.utils import atomic_path, read_image, tile, write_image, write_json

PART = 15 * 2**20  # the device tool returns files of at most 16 MiB


def prepare(target: Path, job: Path, config: str = "configs/gpu.yaml") -> None:
    job.mkdir(parents=True, exist_ok=True)
    sel = select_frames(target, load_config(config).data)
    sel.save(job / f"{target.stem}.selection.npz")
    shutil.copy(target, job / target.name)
    _, vgg = resolve_weights("vgg16-hed")
    state = torch.load(vgg, map_location="cpu", weights_only=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, job / "vgg16_fp16.pth")
    print(f"{job}: {len(sel.frames)} of {sel.info['frames_read']} frames chosen, clip, fp16 VGG")


def train(job: Path, out: Path, minutes: float, config: str, variants: list[str], runs: Path,
          device: str = "cuda") -> None:
    video = next(p for p in job.iterdir() if p.suffix in (".mp4", ".avi", ".mov"))
    if load_config(config).data.crop_mode == "auto":
        raise SystemExit(f"{config}: data.crop_mode auto extracts in its trials, which needs MediaPipe; "
                         "set data.crop_mode to fixed or smooth")
    selection = Selection.load(job / f"{video.stem}.selection.npz")
    env = dict(os.environ, PUPPET_VGG16_WEIGHTS=str((job / "vgg16_fp16.pth").resolve()))
    procs = {}
    for spec in variants:
        name, _, args = spec.partition("=")
        run = runs / name
        cfg = load_config(config)
        extract(video, run / "data", cfg.data, selection=selection)
        cmd = [sys.executable, "-m", "puppet", "train", "--target", str(video), "--out", str(run),
               "--config", config, "--minutes", str(minutes), "--device", device] + [a for a in args.split(",") if a]
        with open(out / f"{name}.log", "w") as log:  # the child keeps its own copy of the handle
            procs[name] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), run, time.time())
    summary, grids = {}, []
    for name, (proc, run, t0) in procs.items():
        rc = proc.wait()
        metrics = run / "metrics.jsonl"
        rows = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.is_file() else []
        cfg_file = run / "config.yaml"
        summary[name] = {"rc": rc, "wall_s": round(time.time() - t0, 1), "last": rows[-1] if rows else {},
                         "best_val_psnr": max((r.get("val_psnr", 0) for r in rows), default=None),
                         "metrics": rows, "config": cfg_file.read_text() if cfg_file.is_file() else None,
                         "log_tail": (out / f"{name}.log").read_text().splitlines()[-40:]}
        (out / f"{name}.log").unlink()
        samples = sorted((run / "samples").glob("step_*.png"))
        if samples:
            grids.append(read_image(samples[-1]))
    # The device tool brings back at most 8 files: one summary, one picture and the model's pieces.
    if grids:
        write_image(out / "samples.png", tile([[g] for g in grids]))
    write_json(out / "summary.json", summary)
    for name, r in summary.items():
        print(f"{name}: rc {r['rc']}, {r['wall_s']} s, step {r['last'].get('step')}, "
              f"held-out PSNR {r['last'].get('val_psnr', float('nan')):.2f} dB (best {r['best_val_psnr']})")
    scored = [(r["last"].get("val_psnr", -1.0), n) for n, r in summary.items()]
    best = max(scored)[1] if scored else variants[0].partition("=")[0]
    print(f"exporting {best}")
    _export_half(runs / best / "checkpoint.pt", out / "parts")


def _export_half(ckpt: Path, parts: Path) -> None:
    """Model-only, half-precision copy of a checkpoint, split into pieces under 16 MiB."""
    if not ckpt.is_file():
        print(f"{ckpt}: no checkpoint to export")
        return
    state = load_checkpoint(ckpt)
    state["optimizer"] = None
    state["model"] = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    parts.mkdir(parents=True, exist_ok=True)
    tmp = parts / "model.pt"
    torch.save(state, tmp)
    data = tmp.read_bytes()
    tmp.unlink()
    for i in range(0, len(data), PART):
        (parts / f"model.pt.{i // PART:02d}").write_bytes(data[i:i + PART])


def join(parts: Path, out: Path, target: Path | None = None) -> None:
    """Join the pieces into ``out``; with ``target``, extract it beside the checkpoint (as the run was
    trained) so that ``puppet eval`` scores the held-out frames too."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"".join(p.read_bytes() for p in sorted(parts.glob("model.pt.*"))))
    state = load_checkpoint(out)
    print(f"{out}: step {state['step']}, {sum(v.numel() for v in state['model'].values()) / 1e6:.1f}M parameters")
    if target is not None:
        extract(target, out.parent / "data", config_from_dict(state["config"]).data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--target", type=Path, required=True)
    p.add_argument("--job", type=Path, required=True)
    p.add_argument("--config", default="configs/gpu.yaml", help="the config whose data settings train will use")
    t = sub.add_parser("train")
    t.add_argument("--job", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--runs", type=Path, default=Path("/tmp/puppet_runs"))
    t.add_argument("--minutes", type=float, default=5.0)
    t.add_argument("--config", default="configs/gpu.yaml")
    t.add_argument("--device", default="cuda")
    t.add_argument("--variant", action="append", required=True,
                   help="NAME=ARGS: extra puppet-train options, comma-separated (e.g. baseline=--loss,baseline)")
    j = sub.add_parser("join")
    j.add_argument("--parts", type=Path, required=True)
    j.add_argument("--out", type=Path, required=True)
    j.add_argument("--target", type=Path, help="the trained clip, extracted beside the checkpoint for puppet eval")
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a.target, a.job, a.config)
    elif a.cmd == "train":
        a.out.mkdir(parents=True, exist_ok=True)
        train(a.job, a.out, a.minutes, a.config, a.variant, a.runs, a.device)
    else:
        join(a.parts, a.out, a.target)


if __name__ == "__main__":
    main()
