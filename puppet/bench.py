"""Benchmarks: ``puppet bench loss`` (naive vs lean contextual loss).

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


def _proc_status(key: str) -> int:
    with open("/proc/self/status") as f:
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
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 17)  # M_MMAP_THRESHOLD: big blocks come from / go back to the OS
        libc.mallopt(-1, 1 << 17)  # M_TRIM_THRESHOLD
        libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        base = _proc_status("VmRSS")
    step()
    peak = (torch.cuda.max_memory_allocated() if dev.type == "cuda" else _proc_status("VmHWM")) - base
    return {"impl": impl, "n": n, "c": c, "device": device, "reps": reps,
            "seconds": times[len(times) // 2], "peak_mb": max(peak, 0) / 2**20}


def _available_bytes(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info()
        return free
    return _proc_meminfo("MemAvailable")


def _proc_meminfo(key: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


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
            cmd = [sys.executable, "-m", "puppet.bench", impl, str(n), str(channels), str(r), device]
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


def write_json(report: dict, path: str | Path) -> None:
    from puppet.utils import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":  # child process of bench_loss
    impl, n, c, reps, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    print(json.dumps(_run_case(impl, n, c, reps, device)))
