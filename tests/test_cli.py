"""CLI: help lists commands, is fast to import, errors are one line with exit 1."""

import json
import subprocess
import sys

from typer.testing import CliRunner

from puppet.cli import app

runner = CliRunner()


def test_help_lists_every_command():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("extract", "train", "animate", "live", "eval", "bench", "demo"):
        assert cmd in res.output
    res = runner.invoke(app, ["bench", "--help"])
    for cmd in ("loss", "train", "render", "all"):
        assert cmd in res.output
    res = runner.invoke(app, ["demo", "--help"])
    assert "misalignment" in res.output


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from puppet.cli import app; "
            "from typer.testing import CliRunner; CliRunner().invoke(app, ['--help']); "
            "print(sorted(m for m in ('torch', 'cv2', 'mediapipe', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_image_is_one_line_error(tmp_path):
    res = runner.invoke(app, ["demo", "misalignment", "--image", str(tmp_path / "nope.jpg")])
    assert res.exit_code == 1
    assert "nope.jpg: image not found" in res.output
    assert "Traceback" not in res.output


def test_non_image_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("hello")
    res = runner.invoke(app, ["demo", "misalignment", "--image", str(bad)])
    assert res.exit_code == 1 and "not an image" in res.output


def test_bench_loss_writes_json_and_table(tmp_path):
    out = tmp_path / "bench.json"
    res = runner.invoke(app, ["bench", "loss", "--sizes", "64,256", "--channels", "16", "--reps", "1",
                              "--device", "cpu", "--json", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    rows = {(r["impl"], r["n"]): r for r in report["results"]}
    assert set(rows) == {("naive", 64), ("lean", 64), ("naive", 256), ("lean", 256)}
    for r in rows.values():
        assert r["seconds"] > 0 and r["peak_mb"] >= 0
    assert "time_ratio" in rows[("lean", 256)]
    assert report["machine"]["device"] == "cpu"
    assert "lean" in res.output and "naive" in res.output


def test_bench_train_and_render_json(tmp_path):
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["bench", "render", "--models", "default-128", "--frames", "8", "--device", "cpu",
                              "--json", str(out)])
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())["results"][0]
    assert r["size"] == 128 and r["fps_batch1"] > 0 and r["fps_batch8"] > 0
    out = tmp_path / "t.json"
    res = runner.invoke(app, ["bench", "train", "--models", "default-128", "--steps", "1", "--device", "cpu",
                              "--json", str(out)])
    assert res.exit_code == 0, res.output
    t = json.loads(out.read_text())["results"][0]
    assert t["batch"] == 2 and t["steps_per_s"] > 0 and t["peak_mb"] >= 0
    res = runner.invoke(app, ["bench", "render", "--models", "huge-9000"])
    assert res.exit_code == 1 and "unknown huge-9000" in res.output
