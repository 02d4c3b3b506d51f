"""puppet bench: speed and memory of the loss, training and rendering, as a table and JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from puppet.cli.common import DeviceOpt, JsonOpt, bench_app, console, handle_errors
from puppet.errors import PuppetError


@bench_app.command("loss")
@handle_errors
def bench_loss_cmd(
    sizes: str = typer.Option("1024,4096,16384", help="Comma-separated N (positions), square numbers."),
    channels: int = typer.Option(256, help="Feature channels C."),
    device: DeviceOpt = "auto",
    reps: int = typer.Option(3, help="Timed repetitions per case (median); 1 above N=4096."),
    json_path: JsonOpt = None,
):
    """Contextual loss forward+backward: naive reference vs lean, time and peak memory."""
    from puppet.measure.bench import bench_loss, loss_table
    from puppet.utils import pick_device, write_json

    try:
        ns = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise PuppetError(f"--sizes {sizes!r}: expected comma-separated integers") from None
    dev = str(pick_device(device))
    report = bench_loss(ns, channels, dev, reps)
    console().print(loss_table(report))
    if json_path is not None:
        write_json(json_path, report)
        console().print(f"wrote {json_path}")


TRAIN_COLUMNS = ["model", "loss", "size", "batch", "seconds_per_step", "steps_per_s", "peak_mb"]
RENDER_COLUMNS = ["model", "size", "fps_batch1", "fps_batch8", "peak_mb_batch1"]


def _models(models: str) -> list[str]:
    from puppet.measure.bench import MODELS

    names = [m.strip() for m in models.split(",") if m.strip()]
    bad = [m for m in names if m not in MODELS]
    if bad:
        raise PuppetError(f"--models: unknown {', '.join(bad)} (choose from {', '.join(MODELS)})")
    return names


def _show_report(report: dict, columns: list[str], json_path: Optional[Path]) -> None:
    from puppet.measure.bench import simple_table
    from puppet.utils import write_json

    console().print(simple_table(report, columns))
    if json_path is not None:
        write_json(json_path, report)
        console().print(f"wrote {json_path}")


@bench_app.command("train")
@handle_errors
def bench_train_cmd(
    models: str = typer.Option("default-128,large-256", help="Comma-separated: default-128, large-256, large-512."),
    steps: int = typer.Option(3, help="Timed steps per model (after one warm-up)."),
    losses: str = typer.Option("hybrid", "--loss", help="Comma-separated loss presets to time (e.g. "
                                                         "hybrid,paper,paper-vgg,baseline)."),
    device: DeviceOpt = "auto",
    json_path: JsonOpt = None,
):
    """Training steps/s and peak memory (loss presets after warm-up, random data)."""
    from puppet.config import LOSS_PRESETS
    from puppet.measure.bench import bench_train
    from puppet.utils import pick_device

    names = tuple(n.strip() for n in losses.split(",") if n.strip())
    bad = [n for n in names if n not in LOSS_PRESETS]
    if bad:
        raise PuppetError(f"--loss: unknown {', '.join(bad)} (choose from {', '.join(LOSS_PRESETS)})")
    _show_report(bench_train(str(pick_device(device)), _models(models), steps, names), TRAIN_COLUMNS, json_path)


@bench_app.command("render")
@handle_errors
def bench_render_cmd(
    models: str = typer.Option("default-128,large-256,large-512", help="Comma-separated model names."),
    frames: int = typer.Option(32, help="Frames per measurement."),
    device: DeviceOpt = "auto",
    json_path: JsonOpt = None,
):
    """CRN rendering frames/s at 128/256/512 (batch 1 = live, batch 8 = animate)."""
    from puppet.measure.bench import bench_render
    from puppet.utils import pick_device

    _show_report(bench_render(str(pick_device(device)), _models(models), frames), RENDER_COLUMNS, json_path)


EXTRACT_COLUMNS = ["clip", "resolution", "minutes", "frames_read", "frames_kept", "shots", "people", "seconds",
                   "frames_per_s", "peak_mb"]


@bench_app.command("extract")
@handle_errors
def bench_extract_cmd(
    video: Optional[Path] = typer.Option(None, "--video", help="A clip to extract (default: a looped 720p clip "
                                                               "built from the shared targets)."),
    minutes: float = typer.Option(20.0, help="Length of the looped clip."),
    shared: Path = typer.Option(Path("../shared/media/targets"), help="Folder of clips to loop."),
    keep: Optional[Path] = typer.Option(None, help="Keep the looped clip here."),
    json_path: JsonOpt = None,
):
    """Extraction of a long clip: time, frames/s and peak memory (the target of a 30-minute lecture)."""
    from puppet.measure.bench import bench_extract

    clips = sorted(shared.glob("*.mp4")) if video is None else []
    if video is None and not clips:
        raise PuppetError(f"{shared}: no .mp4 clips to loop (give --video or --shared)")
    _show_report(bench_extract(video, minutes, clips, keep), EXTRACT_COLUMNS, json_path)


@bench_app.command("all")
@handle_errors
def bench_all_cmd(
    device: DeviceOpt = "auto",
    json_path: Path = typer.Option(Path("out/bench.json"), "--json", help="Write all reports as JSON here."),
):
    """Loss, training and rendering benchmarks in one run, one JSON."""
    from puppet.measure.bench import (
        MODELS,
        bench_loss,
        bench_render,
        bench_train,
        loss_table,
        simple_table,
    )
    from puppet.utils import ensure_writable_dir, pick_device, write_json

    ensure_writable_dir(json_path)
    dev = str(pick_device(device))
    loss = bench_loss([1024, 4096, 16384], 256, dev, 3)
    console().print(loss_table(loss))
    train = bench_train(dev, ["default-128", "large-256"], 3)
    console().print(simple_table(train, TRAIN_COLUMNS))
    render = bench_render(dev, list(MODELS), 32)
    console().print(simple_table(render, RENDER_COLUMNS))
    write_json(json_path, {"loss": loss, "train": train, "render": render})
    console().print(f"wrote {json_path}")
