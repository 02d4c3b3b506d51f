"""Benchmarks: ``puppet bench loss | train | render | all``.

* loss: naive vs lean contextual loss, forward+backward, time and peak memory.
* train: training steps/s and peak memory of the default (128^2) and large (256^2,
  configs/gpu.yaml widths) CRN with the default losses, on random data.
* render: CRN frames/s at 128, 256 and 512 (batch 1 as in live mode, batch 8
  as in ``animate``), channels-last, inference mode.
* extract: a long 720p clip (the shared targets one after another, looped) through
  ``extract``: time, frames/s and the process's peak resident memory.

Each case runs in a fresh child process so that its peak memory is its own.
Times are the median of the timed repetitions (after one warm-up). Memory is
measured on one more repetition: on CPU the peak resident set (VmHWM, reset
through /proc/self/clear_refs) minus the resident set just before it, with
glibc switched to returning large blocks to the OS at once (mallopt) so that
memory freed earlier is not reused invisibly; on CUDA
``torch.cuda.max_memory_allocated`` minus what was allocated before.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

IMPLS = ("naive", "lean")


def _proc_field(path: str, key: str) -> int:
    """A 'Key:  N kB' field of a /proc file, in bytes (0 if absent)."""
    with open(path) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _run_case(impl: str, n: int, c: int, reps: int, device: str) -> dict:
    """Time forward+backward of one implementation at N positions; runs in the child."""
    import torch

    from puppet.losses.contextual import contextual_loss, contextual_loss_reference

    fn = contextual_loss if impl == "lean" else contextual_loss_reference
    dev = torch.device(device)
    side = int(round(n**0.5))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, c, side, side, generator=g).to(dev).requires_grad_(True)
    y = torch.randn(1, c, side, side, generator=g).to(dev)

    def step():
        loss = fn(x, y)
        loss.backward()
        x.grad = None
        if dev.type == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    base = _peak_reset(dev)
    step()
    return {"impl": impl, "n": n, "c": c, "device": device, "reps": reps,
            "seconds": times[len(times) // 2], "peak_mb": _peak_mb(dev, base)}


def _available_bytes(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info()
        return free
    return _proc_field("/proc/meminfo", "MemAvailable")


def machine_info(device: str) -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "device": device}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def bench_loss(sizes: list[int], channels: int = 256, device: str = "cpu", reps: int = 3) -> dict:
    """Run every (impl, N) case in a child process; naive is skipped where it would not fit."""
    results = []
    avail = _available_bytes(device)
    for n in sizes:
        for impl in IMPLS:
            # The naive loss holds ~8 N x N float32 matrices at its peak.
            if impl == "naive" and 8 * n * n * 4 > 0.6 * avail:
                results.append({"impl": impl, "n": n, "c": channels, "device": device,
                                "skipped": f"needs ~{8 * n * n * 4 / 2**30:.1f} GiB"})
                continue
            r = reps if n <= 4096 else 1
            cmd = [sys.executable, "-m", "puppet.measure.bench", impl, str(n), str(channels), str(r), device]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                results.append({"impl": impl, "n": n, "c": channels, "device": device,
                                "skipped": f"failed: {out.stderr.strip().splitlines()[-1:]}"})
                continue
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for n in sizes:
        naive = next((r for r in results if r["n"] == n and r["impl"] == "naive" and "seconds" in r), None)
        lean = next((r for r in results if r["n"] == n and r["impl"] == "lean" and "seconds" in r), None)
        if naive and lean:
            lean["time_ratio"] = lean["seconds"] / naive["seconds"]
            lean["memory_ratio"] = naive["peak_mb"] / max(lean["peak_mb"], 1e-9)
    return {"benchmark": "contextual_loss_forward_backward",
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(device), "results": results}


def loss_table(report: dict):
    """A rich Table of a ``bench_loss`` report."""
    from rich.table import Table

    m = report["machine"]
    title = f"contextual loss fwd+bwd, C={report['results'][0]['c']}, {m.get('gpu', m['cpu'])} ({m['device']})"
    t = Table(title=title)
    for col in ("N", "impl", "time (s)", "peak mem (MB)", "time vs naive", "memory vs naive"):
        t.add_column(col, justify="right")
    for r in report["results"]:
        if "skipped" in r:
            t.add_row(str(r["n"]), r["impl"], "-", "-", r["skipped"], "")
            continue
        t.add_row(str(r["n"]), r["impl"], f"{r['seconds']:.3f}", f"{r['peak_mb']:.0f}",
                  f"{r['time_ratio']:.2f}x" if "time_ratio" in r else "",
                  f"{r['memory_ratio']:.1f}x less" if "memory_ratio" in r else "")
    return t


# Model sizes for train/render benchmarks: (name, size, widths, batch).
MODELS = {
    "default-128": (128, [256, 256, 256, 128, 64, 32], 2),
    "large-256": (256, [512, 512, 512, 512, 256, 128, 64], 4),
    "large-512": (512, [512, 512, 512, 512, 256, 128, 64, 32], 1),
}


def _peak_reset(dev) -> int:
    """Start a peak-memory measurement; returns the baseline for :func:`_peak_mb`."""
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 1 << 17)  # M_MMAP_THRESHOLD: big blocks come from / go back to the OS
    libc.mallopt(-1, 1 << 17)  # M_TRIM_THRESHOLD
    libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    return _proc_field("/proc/self/status", "VmRSS")


def _peak_mb(dev, base: int) -> float:
    """Peak memory above ``base`` since :func:`_peak_reset`, in MiB."""
    import torch

    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else _proc_field("/proc/self/status", "VmHWM")
    return max(peak - base, 0) / 2**20


def _train_case(name: str, device: str, steps: int, loss: str = "hybrid") -> dict:
    """Time the trainer's own step (puppet.train.loop.train_step) in the child: the ``loss`` preset after
    its warm-up, random inputs and targets, the targets' features cached as training caches them."""
    import torch

    from puppet.config import load_config
    from puppet.losses.features import build_features
    from puppet.losses.objective import Objective, feature_layers
    from puppet.models import build_model
    from puppet.train.loop import Dist, Parts, Task, train_step

    size, widths, batch = MODELS[name]
    cfg = load_config(overrides=[f"data.size={size}", f"model.widths={widths}", f"train.batch_size={batch}",
                                 "loss.cx_warmup_steps=0"], loss_preset=loss)
    dev = torch.device(device)
    model = build_model(cfg).to(dev)
    try:
        feats = build_features(feature_layers(cfg.loss), weights="auto").to(dev)
    except Exception:  # noqa: BLE001 - speed does not depend on the weights' values
        feats = build_features(feature_layers(cfg.loss), weights="random").to(dev)
    parts = Parts(model, model, Objective(cfg.loss, feats, cache=True), torch.optim.Adam(model.parameters(), lr=1e-4))
    e = torch.rand(batch, model.in_channels + model.dense_channels, size, size, device=dev)
    r = torch.rand(batch, 3, size, size, device=dev)
    # A part mask of a typical share (eyes, brows and lips cover ~7 % of a crop) for the parts term.
    mask = (torch.rand(batch, 1, size, size, device=dev) < 0.07).float()
    # One fixed batch keyed 0..B-1: the first step fills the feature cache, the timed ones are the steady state.
    task = Task("puppet", batch, lambda idx: (e, r, None, list(range(batch)), mask), lambda *a: {}, {})

    def step(i):
        train_step(parts, cfg, dev, task, i, Dist())
        if dev.type == "cuda":
            torch.cuda.synchronize()

    step(0)
    base = _peak_reset(dev)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i + 1)
    dt = (time.perf_counter() - t0) / steps
    return {"model": name, "loss": loss, "size": size, "batch": batch, "device": device, "amp": dev.type == "cuda",
            "seconds_per_step": dt, "steps_per_s": 1 / dt, "peak_mb": _peak_mb(dev, base), "cached_targets": True}


def _render_case(name: str, device: str, frames: int) -> dict:
    """CRN frames/s at batch 1 (live) and batch 8 (animate) in the child (the default model config)."""
    import torch

    from puppet.config import load_config
    from puppet.models import build_model
    from puppet.tensors import autocast_for

    size, widths, _ = MODELS[name]
    dev = torch.device(device)
    cfg = load_config(overrides=[f"data.size={size}", f"model.widths={widths}"])
    model = build_model(cfg).to(dev).eval().to(memory_format=torch.channels_last)
    out = {"model": name, "size": size, "device": device}
    for batch in (1, 8):
        x = torch.rand(batch, model.in_channels + model.dense_channels, size, size, device=dev)
        x = x.contiguous(memory_format=torch.channels_last)
        n = max(1, frames // batch)
        with torch.inference_mode(), autocast_for(dev):
            model(x)
            base = _peak_reset(dev)
            t0 = time.perf_counter()
            for _ in range(n):
                model(x)
            if dev.type == "cuda":
                torch.cuda.synchronize()
        out[f"fps_batch{batch}"] = n * batch / (time.perf_counter() - t0)
        out[f"peak_mb_batch{batch}"] = _peak_mb(dev, base)
    return out


def _child(kind: str, *args: str) -> dict:
    cmd = [sys.executable, "-m", "puppet.measure.bench", kind, *args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"skipped": f"failed: {out.stderr.strip().splitlines()[-1:] }"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_train(device: str, models: list[str], steps: int = 3, losses: tuple[str, ...] = ("hybrid",)) -> dict:
    return {"benchmark": "train_steps", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(device),
            "results": [{"model": m, "loss": loss, **_child("train", m, device, str(steps), loss)}
                        for m in models for loss in losses]}


def bench_render(device: str, models: list[str], frames: int = 32) -> dict:
    return {"benchmark": "render_fps", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(device),
            "results": [{"model": m, **_child("render", m, device, str(frames))} for m in models]}


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def simple_table(report: dict, columns: list[str]):
    """A rich Table of a train/render report with the given result keys."""
    from rich.table import Table

    m = report["machine"]
    t = Table(title=f"{report['benchmark']} on {m.get('gpu', m['cpu'])} ({m['device']}), {report['date'][:10]}")
    for col in columns:
        t.add_column(col, justify="right")
    for r in report["results"]:
        t.add_row(*[r.get("skipped", "") if c != "model" and "skipped" in r else
                    (_fmt(r[c]) if isinstance(r.get(c), float) else str(r.get(c, ""))) for c in columns])
    return t


def looped_clip(out: Path, minutes: float, clips: list[Path], width: int = 1280, height: int = 720) -> Path:
    """A long test clip: ``clips`` scaled into ``width`` x ``height`` (letterboxed), one after another,
    looped to ``minutes``; H.264 at 30 frames/s. Each clip becomes a shot, each its own person."""
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    once = out.with_name(out.stem + "_once.mp4")
    chains = "".join(f"[{i}:v]scale={width}:{height}:force_original_aspect_ratio=decrease,"
                     f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=30[v{i}];" for i in range(len(clips)))
    graph = chains + "".join(f"[v{i}]" for i in range(len(clips))) + f"concat=n={len(clips)}:v=1:a=0[v]"
    inputs = [a for c in clips for a in ("-i", str(c))]
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", *inputs, "-filter_complex", graph, "-map", "[v]",
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(once)], check=True)
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-stream_loop", "-1", "-i", str(once), "-t",
                    str(minutes * 60), "-c", "copy", str(out)], check=True)
    once.unlink()
    return out


def _extract_case(video: str, out: str) -> dict:
    """Extract ``video`` with the default data settings; time and this process's peak resident set."""
    import resource

    from puppet.config import DataConfig
    from puppet.data.dataset import extract
    from puppet.data.video import probe

    info = probe(video, audio=False)
    t0 = time.perf_counter()
    ex = extract(video, out, DataConfig(crop_mode="fixed"), force=True)
    dt = time.perf_counter() - t0
    m = ex.manifest
    return {"clip": Path(video).name, "minutes": info.frame_count / info.fps / 60,
            "resolution": f"{info.width}x{info.height}", "frames_read": m["frames_read"],
            "frames_kept": m["frames_kept"], "rejected": m["rejected"], "shots": len(m["shots"]),
            "people": len(m["people"]), "seconds": dt, "frames_per_s": m["frames_read"] / dt,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def bench_extract(video: Path | None, minutes: float, clips: list[Path], keep: Path | None = None) -> dict:
    """Extraction of ``video``, or of a looped 720p clip of ``minutes`` built from ``clips``."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        if video is None:
            video = looped_clip(keep or Path(tmp) / "long.mp4", minutes, clips)
        result = _child("extract", str(video), str(Path(tmp) / "data"))
    return {"benchmark": "extract", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info("cpu"), "results": [result]}


if __name__ == "__main__":  # child processes of the benchmarks
    kind = sys.argv[1]
    if kind == "train":
        print(json.dumps(_train_case(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])))
    elif kind == "render":
        print(json.dumps(_render_case(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    elif kind == "extract":
        print(json.dumps(_extract_case(sys.argv[2], sys.argv[3])))
    else:
        impl, n, c, reps, device = kind, int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        print(json.dumps(_run_case(impl, n, c, reps, device)))
