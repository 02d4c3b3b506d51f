"""Commands that learn a puppet: extract, train, pretrain."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from puppet.cli.common import (
    Bar,
    ConfigOpt,
    EndOpt,
    FaceOpt,
    SetOpt,
    StartOpt,
    app,
    console,
    footage_options,
    handle_errors,
    own_config,
    run_training,
)
from puppet.errors import PuppetError


@app.command()
@handle_errors
def extract(
    video: Path = typer.Argument(..., help="Target video (mp4, avi, mov, webm...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for frames, landmarks, edge maps, manifest."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config (data section is used)."),
    set_: SetOpt = None,
    face: FaceOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    force: bool = typer.Option(False, help="Re-extract even if a matching extraction exists."),
):
    """Extract cropped frames, landmarks and edge maps from a target video (cached).

    Keeps the frames of one person (the one in most frames, or --face N), shot by shot, and drops
    frames too small, turned away or blurred; report.png shows what was kept and why."""
    from puppet.config import load_config
    from puppet.data.dataset import extract as do_extract
    from puppet.data.dataset import summary
    from puppet.utils import ensure_dir

    cfg = load_config(config, set_, extra={"data": footage_options(face, start, end)})
    ensure_dir(out)  # fail before the work, not after it
    with Bar() as bar:
        ex = do_extract(video, out, cfg.data, progress=bar, force=force)
    console().print(f"{summary(ex.manifest)} -> {out}")
    console().print(f"report: {out / 'report.png'}   preview: {out / 'preview.png'}")


@app.command()
@handle_errors
def faces(
    video: Path = typer.Argument(..., help="A video to look for people in."),
    sheet: Optional[Path] = typer.Option(None, "--sheet", help="Contact sheet PNG (default: <video name>_faces.png)."),
    config: ConfigOpt = None,
    set_: SetOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
):
    """List the people in a video, numbered for --face: frames and shots each appears in, and a sheet."""
    from rich.table import Table

    from puppet.config import load_config
    from puppet.data.footage import faces_sheet, scan
    from puppet.utils import write_image

    cfg = load_config(config, set_, extra={"data": footage_options(None, start, end)})
    with Bar() as bar:
        found = scan(video, cfg.data, progress=bar)
    n = len(found)
    table = Table(title=f"people in {video} ({n} frames, {len(found.shot_starts)} shots)")
    for col in ("face", "frames", "share", "shots"):
        table.add_column(col, justify="right")
    for p in found.people:
        table.add_row(str(p.id), str(p.frames), f"{p.frames / n:.0%}", str(p.shots))
    console().print(table)
    if not found.people:
        raise PuppetError(f"{video}: no face found in any of its {n} frames")
    out = sheet or Path(f"{video.stem}_faces.png")
    write_image(out, faces_sheet(found))
    console().print(f"sheet: {out}   train on one: puppet train --target {video} --face N")


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
    face: FaceOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
):
    """Train a CRN that renders the target from face edge maps (CX + perceptual losses).

    Video target: puppet train --target person.mp4.  Single portrait: puppet train --image face.jpg --driver me.mp4.
    """
    from puppet.config import load_config
    from puppet.train.single import train_single_image
    from puppet.train.target import train as do_train

    if (target is None) == (image is None):
        raise PuppetError("give either --target VIDEO, or --image PORTRAIT with --driver VIDEO")
    if image is not None and driver is None:
        raise PuppetError("--image needs --driver VIDEO (the motion the portrait learns from)")
    if image is not None and loss is None:
        loss = "single"
    source = target or image
    run_dir = out or Path("runs") / source.stem
    extra: dict = {"train": {}, "data": footage_options(face, start, end)}
    for key, value in (("steps", steps), ("max_minutes", minutes), ("device", device),
                       ("init", str(init) if init else None)):
        if value is not None:
            extra["train"][key] = value
    cfg = load_config(own_config(run_dir, config, resume), set_, loss_preset=loss, extra=extra)
    again = f"--image {image} --driver {driver}" if image is not None else f"--target {target}"

    def run(on_step, on_extract):
        if image is not None:
            return train_single_image(image, driver, run_dir, cfg, resume=resume, on_step=on_step,
                                      on_extract=on_extract)
        return do_train(target, run_dir, cfg, resume=resume, on_step=on_step, on_extract=on_extract)

    res = run_training(run, "training", f"puppet train {again} --out {run_dir}")
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    held_out = f"; held-out PSNR {res.val['val_psnr']:.2f} dB" if "val_psnr" in res.val else ""
    console().print(f"trained to step {res.step} in {res.seconds / 60:.1f} min"
                    + (" (time limit)" if res.stopped_by_time else "") + held_out)
    console().print(f"model: {run_dir}   samples: {run_dir / 'samples' / 'latest.png'}")
    console().print(f"next:  puppet animate --model {run_dir} --driver DRIVER.mp4")


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
    from puppet.train.prior import export_prior
    from puppet.train.prior import pretrain as do_pretrain

    extra: dict = {"train": {k: v for k, v in (("steps", steps), ("max_minutes", minutes), ("device", device))
                             if v is not None}}
    path = own_config(out, config, resume)
    cfg = load_config(path, set_, loss_preset=None if path != config else "prior", extra=extra)
    res = run_training(lambda on_step, on_extract: do_pretrain(clips, out, cfg, resume=resume, on_step=on_step,
                                                               on_extract=on_extract),
                       "pretraining", f"puppet pretrain {' '.join(str(c) for c in clips)} --out {out}")
    held_out = f"; held-out PSNR {res.val['val_psnr']:.2f} dB" if "val_psnr" in res.val else ""
    console().print(f"prior trained to step {res.step} in {res.seconds / 60:.1f} min" + held_out)
    target = out
    if export is not None:
        target = export_prior(out, export)
        console().print(f"weights: {target}")
    console().print(f"next:  puppet train --target VIDEO --init {target}")
