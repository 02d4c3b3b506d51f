"""CLI: help lists commands, is fast to import, errors are one line with exit 1."""

import json
import re
import subprocess
import sys

from typer.testing import CliRunner

from puppet.cli import app

runner = CliRunner()


def _commands(output: str) -> set[str]:
    """Command names from the rows of a rich help table ("│ name   description │")."""
    return {m.group(1) for m in re.finditer(r"^│ ([a-z][a-z-]*)\s", output, re.MULTILINE)}


def test_help_lists_every_command():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    assert {"extract", "faces", "train", "pretrain", "train-transfer", "transfer", "animate", "live", "eval", "bench",
            "demo", "stylize"} <= _commands(res.output)
    res = runner.invoke(app, ["bench", "--help"])
    assert {"loss", "train", "render", "extract", "all"} <= _commands(res.output)
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
    res = runner.invoke(app, ["bench", "loss", "--sizes", "64,1024", "--channels", "16", "--reps", "1",
                              "--device", "cpu", "--json", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    rows = {(r["impl"], r["n"]): r for r in report["results"]}
    assert set(rows) == {("naive", 64), ("lean", 64), ("naive", 1024), ("lean", 1024)}
    for r in rows.values():
        assert r["seconds"] > 0
    # the naive loss holds N x N float32 similarities (4 MiB at N = 1024); the lean one only blocks of them
    naive, lean = rows[("naive", 1024)]["peak_mb"], rows[("lean", 1024)]["peak_mb"]
    assert naive > 4 and lean < naive / 2
    assert "time_ratio" in rows[("lean", 1024)]
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
    assert t["batch"] == 2 and t["steps_per_s"] > 0 and t["peak_mb"] > 1  # a step's activations are measured
    res = runner.invoke(app, ["bench", "render", "--models", "huge-9000"])
    assert res.exit_code == 1 and "unknown huge-9000" in res.output


def test_bench_extract_loops_the_shared_targets(tmp_path, media):
    out = tmp_path / "x.json"
    res = runner.invoke(app, ["bench", "extract", "--minutes", "0.05", "--shared", str(media / "targets"),
                              "--keep", str(tmp_path / "long.mp4"), "--json", str(out)])
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())["results"][0]
    # 3 s at 30 frames/s, cut at a packet boundary (stream copy); glasses_man's first seconds, all kept
    assert r["resolution"] == "1280x720" and 85 <= r["frames_read"] <= 95 and r["frames_kept"] == r["frames_read"]
    assert r["seconds"] > 0 and r["peak_mb"] > 100
    assert (tmp_path / "long.mp4").is_file()
    res = runner.invoke(app, ["bench", "extract", "--shared", str(tmp_path / "none")])
    assert res.exit_code == 1 and "no .mp4 clips to loop" in res.output


def test_faces_lists_people_and_extract_takes_face(tmp_path, media):
    """puppet faces numbers the people of a two-person clip; extract --face 2 trains on the second."""
    import numpy as np

    from puppet.data.video import read_frames
    from tests.conftest import make_video

    a = list(read_frames(media / "targets" / "glasses_man.mp4", 10))
    b = list(read_frames(media / "targets" / "office_woman.mp4", 10))
    video = make_video(tmp_path / "two.mp4", [np.concatenate([x[:480, :480], y[:480, :480]], axis=1)
                                              for x, y in zip(a, b)])
    sheet = tmp_path / "faces.png"
    res = runner.invoke(app, ["faces", str(video), "--sheet", str(sheet)])
    assert res.exit_code == 0, res.output
    rows = re.findall(r"^│\s+(\d)\s+│\s+(\d+)\s+│", res.output, re.MULTILINE)
    assert rows == [("1", "10"), ("2", "10")]
    assert sheet.is_file()
    res = runner.invoke(app, ["extract", str(video), "--out", str(tmp_path / "ex"), "--face", "2",
                              "--set", "data.size=32"])
    assert res.exit_code == 0, res.output
    assert "training on person 2" in res.output and (tmp_path / "ex" / "report.png").is_file()
    manifest = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    assert manifest["person"] == 2 and manifest["crop_boxes"][0][0] > 480
    res = runner.invoke(app, ["extract", str(video), "--out", str(tmp_path / "ex3"), "--face", "3"])
    assert res.exit_code == 1 and "data.face 3, but 2 people were found" in res.output


def test_output_paths_that_cannot_be_written_are_one_line_errors(tmp_path, tiny_run, media):
    from tests.conftest import MEDIA

    driver = str(MEDIA / "drivers" / "smile_man_short.mp4")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        (["extract", driver, "--out", str(a_file / "x")], f"{a_file / 'x'}: cannot create folder"),
        (["animate", "--driver", driver, "--model", str(tiny_run), "--out", str(a_file / "x.mp4")],
         f"{a_file / 'x.mp4'}: cannot create folder"),
        (["train", "--target", driver, "--out", str(a_file / "run")], f"{a_file / 'run'}: cannot create folder"),
        (["train", "--target", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "run")], "video not found"),
    ]
    for args, message in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 1, res.output
        assert message in res.output and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "run").exists()  # a bad input leaves no run folder behind


def test_unwritable_folder_reports_the_output_path(tmp_path, monkeypatch):
    import tempfile

    import pytest

    from puppet.errors import PuppetError
    from puppet.utils import atomic_path

    def refuse(*a, **k):
        raise OSError(2, "No such file or directory")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(PuppetError, match=r"out\.mp4: cannot write here \(No such file or directory\)"):
        with atomic_path(tmp_path / "out.mp4"):
            pass
