"""What every command shares: option types, one-line errors, the progress bar, the training helper.

Heavy modules (torch, OpenCV, MediaPipe) are imported inside the commands, so that ``puppet --help``
is instant.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from puppet.errors import PuppetError

# Options that several commands share, declared once.
DeviceOpt = Annotated[str, typer.Option(help="auto | cpu | cuda")]
ModelOpt = Annotated[Path, typer.Option("--model", "-m", help="Run folder (or its checkpoint.pt).")]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Write the report as JSON here.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override: section.key=value (repeatable).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file.")]
FaceOpt = Annotated[Optional[int], typer.Option("--face", help="Person to train on, as numbered by puppet faces "
                                                                 "(default: the one in most frames; data.face).")]
StartOpt = Annotated[Optional[float], typer.Option("--start", help="Use the video from this second (data.start).")]
EndOpt = Annotated[Optional[float], typer.Option("--end", help="... up to this second (data.end).")]


def footage_options(face: Optional[int], start: Optional[float], end: Optional[float]) -> dict:
    """--face/--start/--end as config overrides of the data section."""
    return {k: v for k, v in (("face", face), ("start", start), ("end", end)) if v is not None}


WeightsOpt = Annotated[str, typer.Option(help="VGG weights: auto | vgg19 | vgg16-hed | PATH.")]
# How driver motion becomes target motion (puppet.face.drive.RenderOptions), for animate, live and eval.
SmoothOpt = Annotated[float, typer.Option(help="Landmark smoothing strength (0 = off, 2 = twice as smooth).")]
NeutralOpt = Annotated[Optional[int], typer.Option(help="Driver frame with a resting face (default: first "
                                                        "frames; live: the first face, or key c).")]
ExpressionOpt = Annotated[float, typer.Option(help="Scale of the driver's expressions.")]
PoseOpt = Annotated[float, typer.Option(help="Share of the driver's head motion applied (0-1).")]
LimitOpt = Annotated[bool, typer.Option("--limit-expression/--free-expression",
                                        help="Keep expressions within the range the target clip shows.")]
MapOpt = Annotated[bool, typer.Option("--map-expression/--no-map-expression",
                                      help="Scale the driver's mouth/eye/brow range onto the target's.")]


def render_options(smooth: float, neutral: Optional[int], expression: float, pose: float,
                   limit_expression: bool, map_expression: bool):
    from puppet.face.drive import RenderOptions

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


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


def handle_errors(fn):
    """Turn PuppetError into one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PuppetError as e:
            console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except OSError as e:  # a path we could not read or write: say which, and why, in one line
            where = f"{e.filename}: " if e.filename else ""
            console(stderr=True).print(f"[bold red]error:[/] {where}{e.strerror or e}", highlight=False,
                                        soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


class Bar:
    """A rich progress bar with ETA fed by (done, total, stage) callbacks."""

    def __init__(self, enabled: bool = True):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[info]}"), console=console(stderr=True),
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


def own_config(run_dir: Path, config: Optional[Path], resume: bool) -> Optional[Path]:
    """The config a training command reads: ``--config``, or for ``--resume`` without one the run's own
    ``config.yaml`` (a resumed run keeps its settings)."""
    if resume and config is None and (run_dir / "config.yaml").is_file():
        return run_dir / "config.yaml"
    return config


def run_training(train: Callable, label: str, again: str):
    """Run ``train(on_step, on_extract)`` under a progress bar and return its result. Ctrl-C (which saves
    a checkpoint first) ends the command with exit code 130 and ``again`` + ``--resume``, the command
    that continues the run. Under torchrun only rank 0 shows progress."""
    from puppet.train.loop import TrainingInterrupted

    with Bar(enabled=os.environ.get("RANK", "0") == "0") as bar:
        def on_step(step: int, total: int, terms: dict) -> None:
            bar(step, total, label, " ".join(f"{k} {v:.3f}" for k, v in terms.items()))

        def on_extract(done: int, total: int, stage: str) -> None:
            bar(done, total, f"extract: {stage}")

        try:
            return train(on_step, on_extract)
        except TrainingInterrupted as e:
            bar.progress.stop()
            console(stderr=True).print(f"{e}; continue with: {again} --resume", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
