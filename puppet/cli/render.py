"""Commands that drive a trained puppet: animate, live, eval."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from puppet.cli.common import (
    Bar,
    DeviceOpt,
    ExpressionOpt,
    JsonOpt,
    LimitOpt,
    MapOpt,
    ModelOpt,
    NeutralOpt,
    PoseOpt,
    SmoothOpt,
    app,
    console,
    handle_errors,
    render_options,
)
from puppet.errors import PuppetError


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
    from puppet.render.animate import animate as do_animate
    from puppet.utils import ensure_writable_dir

    out = out or Path("out") / f"{Path(model).resolve().name}_{driver.stem}.mp4"
    ensure_writable_dir(out)
    with Bar() as bar:
        options = render_options(smooth, neutral, expression, pose, limit_expression, map_expression)
        stats = do_animate(driver, model, out, options, side_by_side=side_by_side, paste_back=paste_back,
                           audio=audio, device=device, max_frames=max_frames, panel=size, progress=bar)
    lost = f", {stats.lost} without a face (reused last good)" if stats.lost else ""
    console().print(f"wrote {stats.out}: {stats.frames} frames at {stats.fps:.2f} fps"
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
    from puppet.render.live import camera_frames, file_frames, run_live
    from puppet.render.renderer import Renderer
    from puppet.utils import ensure_writable_dir, write_json

    for p in (record, json_path):
        if p is not None:
            ensure_writable_dir(p)
    options = render_options(smooth, None, expression, pose, limit_expression, map_expression)
    renderer = Renderer.from_path(model, device=device, options=options)
    if source is not None:
        from puppet.data.video import probe

        fps_out = probe(source, audio=False).fps
        frames = file_frames(source, realtime=not fast)
    else:
        fps_out = camera_fps
        frames = camera_frames(camera, width, height, camera_fps)
    stats = run_live(renderer, frames, drop=not (source is not None and fast), window=window, record=record,
                     record_fps=fps_out, virtual_cam=virtual_cam, max_frames=max_frames, panel=size)
    stages = "  ".join(f"{k} {v:.1f}" for k, v in stats.stage_ms.items())
    console().print(f"frames shown {stats.frames_shown}, dropped {stats.frames_dropped}, "
                     f"without face {stats.frames_without_face}; mean {stats.mean_fps:.1f} FPS, "
                     f"latency mean {stats.latency_ms_mean:.0f} ms, p95 {stats.latency_ms_p95:.0f} ms")
    console().print(f"per frame (ms): {stages}")
    if json_path is not None:
        write_json(json_path, stats.to_dict())
    if record is not None:
        console().print(f"recorded {record}")
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

    from puppet.data.checkpoint import resolve_checkpoint
    from puppet.measure.evaluate import evaluate
    from puppet.utils import write_json

    sheet = sheet or resolve_checkpoint(model).parent / "eval_sheet.png"
    options = render_options(smooth, None, expression, pose, limit_expression, map_expression)
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
    console().print(table)
    if report.contact_sheet:
        console().print(f"contact sheet (worst row, best row; generated over real): {report.contact_sheet}")
    if json_path is not None:
        write_json(json_path, report.to_dict())
