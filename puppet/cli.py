"""The ``puppet`` command line: parses options, calls the library, prints results.

Heavy modules (torch, OpenCV, MediaPipe) are imported inside the commands so
that ``puppet --help`` is instant.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from puppet.errors import PuppetError

# Options that several commands share, declared once.
DeviceOpt = Annotated[str, typer.Option(help="auto | cpu | cuda")]
ModelOpt = Annotated[Path, typer.Option("--model", "-m", help="Run folder (or its checkpoint.pt).")]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Write the report as JSON here.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override: section.key=value (repeatable).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file.")]
WeightsOpt = Annotated[str, typer.Option(help="VGG weights: auto | vgg19 | vgg16-hed | PATH.")]
# How driver motion becomes target motion (puppet.drive.RenderOptions), for animate, live and eval.
SmoothOpt = Annotated[float, typer.Option(help="Landmark smoothing strength (0 = off, 2 = twice as smooth).")]
NeutralOpt = Annotated[Optional[int], typer.Option(help="Driver frame with a resting face (default: first "
                                                        "frames; live: the first face, or key c).")]
ExpressionOpt = Annotated[float, typer.Option(help="Scale of the driver's expressions.")]
PoseOpt = Annotated[float, typer.Option(help="Share of the driver's head motion applied (0-1).")]
LimitOpt = Annotated[bool, typer.Option("--limit-expression/--free-expression",
                                        help="Keep expressions within the range the target clip shows.")]
MapOpt = Annotated[bool, typer.Option("--map-expression/--no-map-expression",
                                      help="Scale the driver's mouth/eye/brow range onto the target's.")]


def _render_options(smooth: float, neutral: Optional[int], expression: float, pose: float,
                    limit_expression: bool, map_expression: bool):
    from puppet.drive import RenderOptions

    return RenderOptions(smooth=smooth, expression_scale=expression, pose_scale=pose,
                         limit_expression=limit_expression, map_expression=map_expression, neutral=neutral)

app = typer.Typer(
    help="Make a video of one person (the puppet) move and talk like another (the driver).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Measure speed and memory (table + JSON).", no_args_is_help=True)
demo_app = typer.Typer(help="Small self-contained demonstrations.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(demo_app, name="demo")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


def handle_errors(fn):
    """Turn PuppetError into one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PuppetError as e:
            _console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except OSError as e:  # a path we could not read or write: say which, and why, in one line
            where = f"{e.filename}: " if e.filename else ""
            _console(stderr=True).print(f"[bold red]error:[/] {where}{e.strerror or e}", highlight=False,
                                        soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="More log output.")):
    from puppet.utils import setup_logging

    setup_logging(verbose)


class _Bar:
    """A rich progress bar with ETA fed by (done, total, stage) callbacks."""

    def __init__(self, enabled: bool = True):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[info]}"), console=_console(stderr=True),
                                 disable=not enabled)
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def __call__(self, done: int, total: int, stage: str, info: str = "") -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total, info="")
        self.progress.update(self.tasks[stage], completed=done, total=total, info=info)


@app.command()
@handle_errors
def extract(
    video: Path = typer.Argument(..., help="Target video (mp4, avi, mov, webm...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for frames, landmarks, edge maps, manifest."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config (data section is used)."),
    set_: SetOpt = None,
    force: bool = typer.Option(False, help="Re-extract even if a matching extraction exists."),
):
    """Extract cropped frames, landmarks and edge maps from a target video (cached)."""
    from puppet.config import load_config
    from puppet.dataset import extract as do_extract
    from puppet.utils import ensure_dir

    cfg = load_config(config, set_)
    ensure_dir(out)  # fail before the work, not after it
    with _Bar() as bar:
        ex = do_extract(video, out, cfg.data, progress=bar, force=force)
    m = ex.manifest
    _console().print(f"{len(ex)} of {m['frames_read']} frames kept ({len(m['skipped'])} without a face) "
                     f"-> {out} (preview: {out / 'preview.png'})")


@app.command()
@handle_errors
def train(
    target: Optional[Path] = typer.Option(None, "--target", "-t", help="Video of the person to animate."),
    image: Optional[Path] = typer.Option(None, "--image", help="Single-image mode: a portrait to animate "
                                                               "(with --driver)."),
    driver: Optional[Path] = typer.Option(None, "--driver", "-d", help="Single-image mode: driver video to "
                                                                       "learn from."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default runs/<target name>)."),
    config: ConfigOpt = None,
    loss: Optional[str] = typer.Option(None, help="Loss preset: hybrid (default), paper (CX + P), baseline "
                                                  "(L1 + P), single (default with --image)."),
    steps: Optional[int] = typer.Option(None, help="Training steps (train.steps)."),
    minutes: Optional[float] = typer.Option(None, help="Stop after this many minutes (train.max_minutes)."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda (train.device)."),
    set_: SetOpt = None,
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    init: Optional[Path] = typer.Option(None, help="Start from this model's weights (same architecture: a prior "
                                                   "from puppet pretrain, or a puppet of someone else; "
                                                   "train.init)."),
):
    """Train a CRN that renders the target from face edge maps (CX + perceptual losses).

    Video target: puppet train --target person.mp4.  Single portrait: puppet train --image face.jpg --driver me.mp4.
    """
    from puppet.config import load_config
    from puppet.single import train_single_image
    from puppet.train import train as do_train
    from puppet.trainer import TrainingInterrupted

    if (target is None) == (image is None):
        raise PuppetError("give either --target VIDEO, or --image PORTRAIT with --driver VIDEO")
    if image is not None and driver is None:
        raise PuppetError("--image needs --driver VIDEO (the motion the portrait learns from)")
    if image is not None and loss is None:
        loss = "single"
    source = target or image
    run_dir = out or Path("runs") / source.stem
    extra: dict = {"train": {}}
    for key, value in (("steps", steps), ("max_minutes", minutes), ("device", device),
                       ("init", str(init) if init else None)):
        if value is not None:
            extra["train"][key] = value
    if resume and config is None and (run_dir / "config.yaml").is_file():
        config = run_dir / "config.yaml"  # a resumed run keeps its own settings
    cfg = load_config(config, set_, loss_preset=loss, extra=extra)
    console = _console()
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 reports
    with _Bar(enabled=main_process) as bar:
        def on_step(step, total, terms):
            bar(step, total, "training", " ".join(f"{k} {v:.3f}" for k, v in terms.items()))
        try:
            on_extract = lambda d, t, s: bar(d, t, f"extract: {s}")  # noqa: E731
            if image is not None:
                res = train_single_image(image, driver, run_dir, cfg, resume=resume, on_step=on_step,
                                         on_extract=on_extract)
            else:
                res = do_train(target, run_dir, cfg, resume=resume, on_step=on_step, on_extract=on_extract)
        except TrainingInterrupted as e:
            bar.progress.stop()
            again = f"--image {image} --driver {driver}" if image is not None else f"--target {target}"
            _console(stderr=True).print(f"{e}; continue with: puppet train {again} --out {run_dir} --resume")
            raise typer.Exit(130) from None
    if not main_process:
        return
    held_out = f"; held-out PSNR {res.val['val_psnr']:.2f} dB" if "val_psnr" in res.val else ""
    console.print(f"trained to step {res.step} in {res.seconds / 60:.1f} min"
                  + (" (time limit)" if res.stopped_by_time else "") + held_out)
    console.print(f"model: {run_dir}   samples: {run_dir / 'samples' / 'latest.png'}")
    console.print(f"next:  puppet animate --model {run_dir} --driver DRIVER.mp4")


@app.command()
@handle_errors
def pretrain(
    clips: list[Path] = typer.Argument(..., help="Videos of several people; never the target the prior is "
                                                 "meant for."),
    out: Path = typer.Option(Path("runs/prior"), "--out", "-o", help="Run folder."),
    config: ConfigOpt = None,
    steps: Optional[int] = typer.Option(None, help="Training steps (train.steps)."),
    minutes: Optional[float] = typer.Option(None, help="Stop after this many minutes (train.max_minutes)."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda (train.device)."),
    set_: SetOpt = None,
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    export: Optional[Path] = typer.Option(None, help="Also write the weights alone, half precision, here."),
):
    """Train a prior on several people's clips; start a puppet from it with puppet train --init PRIOR.

    The loss is the default's pixel terms (L1, parts, detail: no VGG pass); the model and data settings
    are those of --config, so fine-tune with the same config.
    """
    from puppet.config import load_config
    from puppet.prior import export_prior, pretrain as do_pretrain
    from puppet.trainer import TrainingInterrupted

    extra: dict = {"train": {k: v for k, v in (("steps", steps), ("max_minutes", minutes), ("device", device))
                             if v is not None}}
    own = resume and config is None and (out / "config.yaml").is_file()  # a resumed run keeps its settings
    cfg = load_config(out / "config.yaml" if own else config, set_, loss_preset=None if own else "prior",
                      extra=extra)
    with _Bar() as bar:
        try:
            res = do_pretrain(clips, out, cfg, resume=resume,
                              on_step=lambda s, t, terms: bar(s, t, "pretraining", " ".join(
                                  f"{k} {v:.3f}" for k, v in terms.items())),
                              on_extract=lambda d, t, s: bar(d, t, f"extract: {s}"))
        except TrainingInterrupted as e:
            bar.progress.stop()
            again = " ".join(str(c) for c in clips)
            _console(stderr=True).print(f"{e}; continue with: puppet pretrain {again} --out {out} --resume")
            raise typer.Exit(130) from None
    console = _console()
    held_out = f"; held-out PSNR {res.val['val_psnr']:.2f} dB" if "val_psnr" in res.val else ""
    console.print(f"prior trained to step {res.step} in {res.seconds / 60:.1f} min" + held_out)
    target = out
    if export is not None:
        target = export_prior(out, export)
        console.print(f"weights: {target}")
    console.print(f"next:  puppet train --target VIDEO --init {target}")


@app.command()
@handle_errors
def animate(
    model: ModelOpt,
    driver: Path = typer.Option(..., "--driver", "-d", help="Video of the person driving the puppet."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output mp4 (default out/<model>_<driver>.mp4)."),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Write driver | edge map | output."),
    paste_back: bool = typer.Option(False, "--paste-back", help="Blend the face into the target's full frame."),
    smooth: SmoothOpt = 1.0,
    neutral: NeutralOpt = None,
    expression: ExpressionOpt = 1.0,
    pose: PoseOpt = 1.0,
    limit_expression: LimitOpt = True,
    map_expression: MapOpt = True,
    audio: bool = typer.Option(True, "--audio/--no-audio", help="Copy the driver's audio track."),
    size: int = typer.Option(256, help="Side of each video panel in pixels."),
    max_frames: int = typer.Option(0, help="Only the first N driver frames (0 = all)."),
    device: DeviceOpt = "auto",
):
    """Render the trained target following a driver video, with the driver's audio."""
    from puppet.animate import animate as do_animate
    from puppet.utils import ensure_writable_dir

    out = out or Path("out") / f"{Path(model).resolve().name}_{driver.stem}.mp4"
    ensure_writable_dir(out)
    with _Bar() as bar:
        options = _render_options(smooth, neutral, expression, pose, limit_expression, map_expression)
        stats = do_animate(driver, model, out, options, side_by_side=side_by_side, paste_back=paste_back,
                           audio=audio, device=device, max_frames=max_frames, panel=size, progress=bar)
    lost = f", {stats.lost} without a face (reused last good)" if stats.lost else ""
    _console().print(f"wrote {stats.out}: {stats.frames} frames at {stats.fps:.2f} fps"
                     f"{' with audio' if stats.audio else ''}{lost}, {stats.seconds:.1f} s")


@app.command(epilog="Keys in the window: c = recalibrate (your current face becomes neutral), "
                     "s = toggle side by side, e = toggle edge-map view, q or Esc = quit.")
@handle_errors
def live(
    model: ModelOpt,
    camera: int = typer.Option(0, help="Webcam index."),
    width: int = typer.Option(640, help="Requested camera width."),
    height: int = typer.Option(480, help="Requested camera height."),
    camera_fps: float = typer.Option(30.0, "--fps", help="Requested camera frame rate."),
    source: Optional[Path] = typer.Option(None, help="Read this video file as if it were the camera."),
    fast: bool = typer.Option(False, help="With --source: read as fast as possible (no drops) instead of "
                                          "at the file's frame rate."),
    window: bool = typer.Option(True, "--window/--no-window", help="Show a window (needs a display)."),
    record: Optional[Path] = typer.Option(None, help="Also write what is shown to this mp4."),
    virtual_cam: bool = typer.Option(False, "--virtual-cam", help="Send the output to a virtual camera "
                                                                  "(needs the pyvirtualcam extra)."),
    max_frames: int = typer.Option(0, help="Stop after N frames (0 = until the source ends or q)."),
    size: int = typer.Option(256, help="Side of each shown panel in pixels."),
    smooth: SmoothOpt = 1.0,
    expression: ExpressionOpt = 1.0,
    pose: PoseOpt = 1.0,
    limit_expression: LimitOpt = True,
    map_expression: MapOpt = True,
    device: DeviceOpt = "auto",
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the run's statistics as JSON here.")] = None,
):
    """Puppeteer the target live from a webcam (or a video file), with FPS and latency stats."""
    from puppet.live import file_frames, camera_frames, run_live
    from puppet.render import Renderer
    from puppet.utils import ensure_writable_dir, write_json

    for p in (record, json_path):
        if p is not None:
            ensure_writable_dir(p)
    options = _render_options(smooth, None, expression, pose, limit_expression, map_expression)
    renderer = Renderer.from_path(model, device=device, options=options)
    if source is not None:
        from puppet.video import probe

        fps_out = probe(source, audio=False).fps
        frames = file_frames(source, realtime=not fast)
    else:
        fps_out = camera_fps
        frames = camera_frames(camera, width, height, camera_fps)
    stats = run_live(renderer, frames, drop=not (source is not None and fast), window=window, record=record,
                     record_fps=fps_out, virtual_cam=virtual_cam, max_frames=max_frames, panel=size)
    stages = "  ".join(f"{k} {v:.1f}" for k, v in stats.stage_ms.items())
    _console().print(f"frames shown {stats.frames_shown}, dropped {stats.frames_dropped}, "
                     f"without face {stats.frames_without_face}; mean {stats.mean_fps:.1f} FPS, "
                     f"latency mean {stats.latency_ms_mean:.0f} ms, p95 {stats.latency_ms_p95:.0f} ms")
    _console().print(f"per frame (ms): {stages}")
    if json_path is not None:
        write_json(json_path, stats.to_dict())
    if record is not None:
        _console().print(f"recorded {record}")
    if stats.error:
        raise PuppetError(stats.error)


@app.command("eval")
@handle_errors
def eval_cmd(
    model: ModelOpt,
    driver: Optional[Path] = typer.Option(None, "--driver", "-d", help="Also measure cross-reenactment and "
                                                                       "stability with this driver clip."),
    json_path: JsonOpt = None,
    sheet: Optional[Path] = typer.Option(None, help="Contact sheet PNG of the worst and best held-out frames "
                                                    "(default: <run>/eval_sheet.png)."),
    frames: int = typer.Option(64, help="Held-out frames to score (evenly spaced)."),
    smooth: SmoothOpt = 1.0,
    expression: ExpressionOpt = 1.0,
    pose: PoseOpt = 1.0,
    limit_expression: LimitOpt = True,
    map_expression: MapOpt = True,
    device: DeviceOpt = "auto",
):
    """Score a trained model: self-reenactment on held-out frames, cross-reenactment, jitter."""
    from rich.table import Table

    from puppet.checkpoint import resolve_checkpoint
    from puppet.evaluate import evaluate
    from puppet.utils import write_json

    sheet = sheet or resolve_checkpoint(model).parent / "eval_sheet.png"
    options = _render_options(smooth, None, expression, pose, limit_expression, map_expression)
    report = evaluate(model, driver, sheet=sheet, device=device, max_frames=frames, options=options)
    table = Table(title=f"puppet eval {model}")
    table.add_column("part")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for part, values in (("self", report.self_reenactment), ("cross", report.cross_reenactment),
                         ("stability", report.stability)):
        for k, v in values.items():
            for name, x in ({f"{k}.{sub}": y for sub, y in v.items()} if isinstance(v, dict) else {k: v}).items():
                table.add_row(part, name, f"{x:.4g}" if isinstance(x, float) else str(x))
    _console().print(table)
    if report.contact_sheet:
        _console().print(f"contact sheet (worst row, best row; generated over real): {report.contact_sheet}")
    if json_path is not None:
        write_json(json_path, report.to_dict())


@app.command()
@handle_errors
def stylize(
    content: Path = typer.Option(..., help="Content image A (its layout is kept)."),
    style: Path = typer.Option(..., help="Style image B (its look is transferred)."),
    out: Path = typer.Option(Path("out/stylized.png"), "--out", "-o", help="Result image; an A | B | result "
                                                                           "strip is written beside it."),
    size: int = typer.Option(256, help="Longer side of the working resolution."),
    steps: int = typer.Option(200, help="Optimisation steps."),
    content_weight: float = typer.Option(1.0, help="Weight of the content term."),
    baseline: Optional[str] = typer.Option(None, help="'gram' for Gatys' Gram + perceptual baseline."),
    weights: WeightsOpt = "auto",
    device: DeviceOpt = "auto",
):
    """Semantic style transfer by optimisation: L_CX^t against B + L_CX^s against A."""
    from puppet.stylize import side_by_side, stylize as do_stylize
    from puppet.utils import ensure_writable_dir, pick_device, read_image, write_image

    if baseline not in (None, "gram"):
        raise PuppetError(f"--baseline {baseline!r}: the only baseline is 'gram'")
    a, b = read_image(content), read_image(style)
    ensure_writable_dir(out)
    with _Bar() as bar:
        result, history = do_stylize(a, b, size=size, steps=steps, content_weight=content_weight,
                                     baseline=baseline, weights=weights, device=str(pick_device(device)),
                                     progress=lambda d, t: bar(d, t, "stylizing"))
    write_image(out, result)
    strip = out.with_name(out.stem + "_strip" + out.suffix)
    write_image(strip, side_by_side([a, b, result]))
    _console().print(f"wrote {out} and {strip} (loss {history[0]:.3f} -> {history[-1]:.3f})")


@app.command("train-transfer")
@handle_errors
def train_transfer_cmd(
    source: Path = typer.Option(..., help="Folder of domain-A images (e.g. photos)."),
    target: Path = typer.Option(..., help="Folder of domain-B images (e.g. paintings)."),
    out: Path = typer.Option(Path("runs/transfer"), "--out", "-o", help="Run folder."),
    size: int = typer.Option(64, help="Working resolution (square)."),
    steps: int = typer.Option(500, help="Training steps."),
    minutes: Optional[float] = typer.Option(None, help="Stop after this many minutes."),
    config: ConfigOpt = None,
    set_: SetOpt = None,
    resume: bool = typer.Option(False, help="Continue the run in --out."),
):
    """Unpaired domain transfer: train a CRN from images of A to the look of B (L_CX^t + L_CX^s)."""
    from puppet.config import load_config
    from puppet.transfer import train_transfer

    extra = {"data": {"size": size}, "train": {"steps": steps}}
    if minutes is not None:
        extra["train"]["max_minutes"] = minutes
    cfg = load_config(config, set_, loss_preset="transfer", extra=extra)
    with _Bar() as bar:
        res = train_transfer(source, target, out, cfg, resume=resume,
                             on_step=lambda st, tot, terms: bar(st, tot, "training",
                                                                " ".join(f"{k} {v:.3f}" for k, v in terms.items())))
    _console().print(f"trained to step {res.step} in {res.seconds / 60:.1f} min; samples: {out / 'samples'}")
    _console().print(f"next:  puppet transfer --model {out} IMAGE")


@app.command()
@handle_errors
def transfer(
    image: Path = typer.Argument(..., help="A domain-A image."),
    model: Path = typer.Option(..., "--model", "-m", help="A train-transfer run folder (or checkpoint)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output image (default out/<image>_transfer.png)."),
    device: DeviceOpt = "auto",
):
    """Apply a domain-transfer model to an image; writes the result and an input | output strip."""
    from puppet.stylize import side_by_side
    from puppet.transfer import apply_transfer
    from puppet.utils import read_image, write_image

    rgb = read_image(image)
    out = out or Path("out") / f"{image.stem}_transfer.png"
    result = apply_transfer(model, rgb, device)
    write_image(out, result)
    strip = out.with_name(out.stem + "_strip" + out.suffix)
    write_image(strip, side_by_side([rgb, result]))
    _console().print(f"wrote {out} and {strip}")


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
    from puppet.bench import bench_loss, loss_table
    from puppet.utils import pick_device, write_json

    try:
        ns = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise PuppetError(f"--sizes {sizes!r}: expected comma-separated integers") from None
    dev = str(pick_device(device))
    report = bench_loss(ns, channels, dev, reps)
    _console().print(loss_table(report))
    if json_path is not None:
        write_json(json_path, report)
        _console().print(f"wrote {json_path}")


TRAIN_COLUMNS = ["model", "loss", "size", "batch", "seconds_per_step", "steps_per_s", "peak_mb"]
RENDER_COLUMNS = ["model", "size", "fps_batch1", "fps_batch8", "peak_mb_batch1"]


def _models(models: str) -> list[str]:
    from puppet.bench import MODELS

    names = [m.strip() for m in models.split(",") if m.strip()]
    bad = [m for m in names if m not in MODELS]
    if bad:
        raise PuppetError(f"--models: unknown {', '.join(bad)} (choose from {', '.join(MODELS)})")
    return names


def _show_report(report: dict, columns: list[str], json_path: Optional[Path]) -> None:
    from puppet.bench import simple_table
    from puppet.utils import write_json

    _console().print(simple_table(report, columns))
    if json_path is not None:
        write_json(json_path, report)
        _console().print(f"wrote {json_path}")


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
    from puppet.bench import bench_train
    from puppet.config import LOSS_PRESETS
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
    from puppet.bench import bench_render
    from puppet.utils import pick_device

    _show_report(bench_render(str(pick_device(device)), _models(models), frames), RENDER_COLUMNS, json_path)


@bench_app.command("all")
@handle_errors
def bench_all_cmd(
    device: DeviceOpt = "auto",
    json_path: Path = typer.Option(Path("out/bench.json"), "--json", help="Write all reports as JSON here."),
):
    """Loss, training and rendering benchmarks in one run, one JSON."""
    from puppet.bench import MODELS, bench_loss, bench_render, bench_train, loss_table, simple_table
    from puppet.utils import ensure_writable_dir, pick_device, write_json

    ensure_writable_dir(json_path)
    dev = str(pick_device(device))
    loss = bench_loss([1024, 4096, 16384], 256, dev, 3)
    _console().print(loss_table(loss))
    train = bench_train(dev, ["default-128", "large-256"], 3)
    _console().print(simple_table(train, TRAIN_COLUMNS))
    render = bench_render(dev, list(MODELS), 32)
    _console().print(simple_table(render, RENDER_COLUMNS))
    write_json(json_path, {"loss": loss, "train": train, "render": render})
    _console().print(f"wrote {json_path}")


@demo_app.command("misalignment")
@handle_errors
def demo_misalignment_cmd(
    image: Path = typer.Option(..., help="A clean photo or painting (e.g. ../shared/media/images/painted_woman.jpg)."),
    out: Path = typer.Option(Path("out/misalignment.png"), help="Where to write the side-by-side PNG."),
    size: int = typer.Option(128, help="Working resolution (square)."),
    noise: float = typer.Option(0.15, help="Gaussian noise std (0-1 intensity)."),
    targets: int = typer.Option(1, help="Number of misaligned clean copies (several: L1 averages them)."),
    steps: int = typer.Option(200, help="Gradient steps per loss."),
    layers: str = typer.Option("conv3_2,conv4_2,rgb5_d4,rgb3_d1", help="Comma-separated CX feature layers "
                                                                        "(VGG names, colour patches such as rgb5_d1)."),
    cobi: float = typer.Option(16.0, help="CoBi spatial weight w_s on every layer (0 = the paper's CX)."),
    weights: WeightsOpt = "auto",
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the scores as JSON here."),
):
    """The paper's Fig. 6: L1 vs contextual loss against misaligned clean images."""
    from rich.progress import Progress
    from rich.table import Table

    from puppet.misalignment import run_misalignment, strip
    from puppet.utils import ensure_writable_dir, read_image, write_image, write_json

    rgb = read_image(image)
    ensure_writable_dir(out)
    with Progress(*Progress.get_default_columns(), transient=True) as bar:
        task = bar.add_task("optimising (L1, then CX)", total=2 * steps)
        layer_names = [n.strip() for n in layers.split(",") if n.strip()]
        res = run_misalignment(rgb, size=size, noise=noise, n_targets=targets, steps=steps, weights=weights,
                               layers=dict.fromkeys(layer_names, 1.0),
                               spatial=dict.fromkeys(layer_names, cobi) if cobi else None,
                               progress=lambda done, total: bar.update(task, completed=done))
    names = ["noisy input", "misaligned target", "L1 result", "CX result"]
    write_image(out, strip(res.images, names))
    table = Table(title="against the aligned clean image")
    for col in ("image", "PSNR (dB)", "SSIM"):
        table.add_column(col, justify="right")
    for name in names:
        table.add_row(name, f"{res.scores[name]['psnr']:.2f}", f"{res.scores[name]['ssim']:.3f}")
    _console().print(table)
    _console().print(f"wrote {out}")
    if json_path is not None:
        write_json(json_path, res.scores)


def main() -> None:
    app(prog_name="puppet")


if __name__ == "__main__":
    sys.exit(main())
