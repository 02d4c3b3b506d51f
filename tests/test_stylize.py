"""Style transfer: a few optimisation steps lower the loss; files and errors."""

import numpy as np
import pytest
from typer.testing import CliRunner

from puppet.cli import app
from puppet.paper.stylize import stylize

runner = CliRunner()


def _img(seed, h=40, w=48):
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3), np.float32)
    return np.clip(base + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("baseline", [None, "gram"])
def test_stylize_lowers_loss_and_keeps_aspect(baseline):
    out, hist = stylize(_img(0), _img(1, 64, 64), size=48, steps=8, lr=0.05, baseline=baseline, weights="random")
    assert out.shape == (40, 48, 3) and out.dtype == np.uint8
    assert hist[-1] < hist[0]


def test_stylize_cli_writes_result_and_strip(tmp_path):
    from puppet.utils import write_image

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    write_image(a, _img(0))
    write_image(b, _img(1))
    res = runner.invoke(app, ["stylize", "--content", str(a), "--style", str(b), "--out", str(tmp_path / "r.png"),
                              "--size", "32", "--steps", "2", "--weights", "random"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.png").is_file() and (tmp_path / "r_strip.png").is_file()
    res = runner.invoke(app, ["stylize", "--content", str(tmp_path / "none.png"), "--style", str(b)])
    assert res.exit_code == 1 and "none.png: image not found" in res.output
    res = runner.invoke(app, ["stylize", "--content", str(a), "--style", str(b), "--baseline", "adain"])
    assert res.exit_code == 1 and "only baseline is 'gram'" in res.output
