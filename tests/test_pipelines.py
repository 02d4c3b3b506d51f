"""The recipes in pipelines/ that have logic of their own beside the CLI calls they make."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality", ROOT / "pipelines" / "quality.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
