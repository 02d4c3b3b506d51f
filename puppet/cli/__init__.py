"""The ``puppet`` command line: parses options, calls the library, prints results.

One module per command group (``train``, ``render``, ``paper``, ``bench``) over what they share
(``common``). Heavy modules (torch, OpenCV, MediaPipe) are imported inside the commands, so that
``puppet --help`` is instant.
"""

from __future__ import annotations

import importlib

import typer

from puppet.cli.common import app

# Each module registers its commands on import; this order is the order of `puppet --help`.
for _group in ("train", "render", "paper", "bench"):
    importlib.import_module(f"puppet.cli.{_group}")


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="More log output.")):
    from puppet.utils import setup_logging

    setup_logging(verbose)


def main() -> None:
    app(prog_name="puppet")
