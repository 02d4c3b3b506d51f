"""The paper's other applications: stylize, train-transfer, transfer, demo misalignment."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from puppet.cli.common import (
    Bar,
    ConfigOpt,
    DeviceOpt,
    SetOpt,
    WeightsOpt,
    app,
    console,
    demo_app,
    handle_errors,
    run_training,
)
from puppet.errors import PuppetError


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
    from puppet.paper.stylize import side_by_side
    from puppet.paper.stylize import stylize as do_stylize
    from puppet.utils import ensure_writable_dir, pick_device, read_image, write_image

    if baseline not in (None, "gram"):
        raise PuppetError(f"--baseline {baseline!r}: the only baseline is 'gram'")
    a, b = read_image(content), read_image(style)
    ensure_writable_dir(out)
    with Bar() as bar:
        result, history = do_stylize(a, b, size=size, steps=steps, content_weight=content_weight,
                                     baseline=baseline, weights=weights, device=str(pick_device(device)),
                                     progress=lambda d, t: bar(d, t, "stylizing"))
    write_image(out, result)
    strip = out.with_name(out.stem + "_strip" + out.suffix)
    write_image(strip, side_by_side([a, b, result]))
    console().print(f"wrote {out} and {strip} (loss {history[0]:.3f} -> {history[-1]:.3f})")


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
    from puppet.paper.transfer import train_transfer

    extra = {"data": {"size": size}, "train": {"steps": steps}}
    if minutes is not None:
        extra["train"]["max_minutes"] = minutes
    cfg = load_config(config, set_, loss_preset="transfer", extra=extra)
    res = run_training(lambda on_step, on_extract: train_transfer(source, target, out, cfg, resume=resume,
                                                                  on_step=on_step),
                       "training", f"puppet train-transfer --source {source} --target {target} --out {out}")
    console().print(f"trained to step {res.step} in {res.seconds / 60:.1f} min; samples: {out / 'samples'}")
    console().print(f"next:  puppet transfer --model {out} IMAGE")


@app.command()
@handle_errors
def transfer(
    image: Path = typer.Argument(..., help="A domain-A image."),
    model: Path = typer.Option(..., "--model", "-m", help="A train-transfer run folder (or checkpoint)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output image (default out/<image>_transfer.png)."),
    device: DeviceOpt = "auto",
):
    """Apply a domain-transfer model to an image; writes the result and an input | output strip."""
    from puppet.paper.stylize import side_by_side
    from puppet.paper.transfer import apply_transfer
    from puppet.utils import read_image, write_image

    rgb = read_image(image)
    out = out or Path("out") / f"{image.stem}_transfer.png"
    result = apply_transfer(model, rgb, device)
    write_image(out, result)
    strip = out.with_name(out.stem + "_strip" + out.suffix)
    write_image(strip, side_by_side([rgb, result]))
    console().print(f"wrote {out} and {strip}")


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

    from puppet.paper.misalignment import run_misalignment, strip
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
    console().print(table)
    console().print(f"wrote {out}")
    if json_path is not None:
        write_json(json_path, res.scores)
