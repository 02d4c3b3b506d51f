"""The recipes in pipelines/ that have logic of their own beside the CLI calls they make."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "pipelines" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def quality():
    return _load("quality")


def _report(lips: float, real_lips: float) -> dict:
    return {"self_reenactment": {"landmark_error_parts_iod": {"brows": 0.0147, "lips": lips},
                                 "landmark_error_parts_real_iod": {"brows": 0.0130, "lips": real_lips}}}


def test_parts_table_one_row_per_target(quality, capsys):
    summary = {"glasses_man / talking_man": _report(0.0140, 0.0111),
               "glasses_man / smile_man_short": _report(0.0999, 0.0999),  # same frames: the first report counts
               "singer_woman / talking_man": _report(0.0201, 0.0190)}
    quality.print_parts_table(summary)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1] == "| target | brows | lips |"
    rows = [ln for ln in lines if ln.startswith("| glasses_man") or ln.startswith("| singer_woman")]
    assert rows == ["| glasses_man | 0.0147 / 0.0130 | 0.0140 / 0.0111 |",
                    "| singer_woman | 0.0147 / 0.0130 | 0.0201 / 0.0190 |"]


def test_parts_table_silent_without_parts(quality, capsys):
    quality.print_parts_table({"glasses_man / talking_man": {"self_reenactment": {"psnr": 27.5}}})
    assert capsys.readouterr().out == ""


def test_rows_of_scales_each_row_to_the_width(quality):
    images = [np.full((192, 576, 3), 40 * (i + 1), np.uint8) for i in range(4)]
    rows = quality.rows_of(images, 2, 512)
    assert [r.shape for r in rows] == [(85, 512, 3), (85, 512, 3)]
    assert rows[1][0, 0, 0] == 120 and rows[1][0, -1, 0] == 160  # third and fourth image, in order


def test_sheets_fill_the_width_of_the_eval_sheet(quality, tmp_path, monkeypatch):
    """Nothing padded black: the moments of each driver are scaled to the held-out frames' width."""
    from puppet.utils import write_image

    size, panel = 32, quality.PANEL
    rng = np.random.default_rng(0)
    top = rng.integers(1, 255, (4 * size, 4 * size, 3), dtype=np.uint8)  # 2 rows of generated over real
    write_image(tmp_path / "eval_sheet.png", top)
    moment = np.full((panel, 3 * panel, 3), 200, np.uint8)  # driver | edge map | puppet
    monkeypatch.setattr(quality, "moments", lambda video, frames=None: [moment] * 4)
    full, generated = quality.sheets(tmp_path / "eval_sheet.png", [Path("a.mp4"), Path("b.mp4")], size)
    assert full.shape[1] == generated.shape[1] == 4 * size
    assert full.min() > 0 and generated.min() > 0
    np.testing.assert_array_equal(full[:4 * size], top)
    np.testing.assert_array_equal(generated[:size], top[:size])  # the worst row's generated frames
    np.testing.assert_array_equal(generated[size:2 * size], top[2 * size:3 * size])  # the best row's
    assert generated.shape[0] == 2 * size + 2 * size  # two rows of two (edge map | puppet), panels of `size`
