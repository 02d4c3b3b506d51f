"""Animation: frame count, fps, audio, side-by-side, paste-back, lost faces, bad inputs."""

import imageio_ffmpeg
import numpy as np
import pytest
from typer.testing import CliRunner

from puppet.cli import app
from puppet.data.video import probe, read_frames
from puppet.render.animate import animate, fill_lost
from tests.conftest import MEDIA, add_sine_audio, make_video, need_shared

runner = CliRunner()


def _audio_codec(path):
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    gen.close()
    return meta.get("audio_codec")


def test_animate_frame_count_fps_and_audio(tmp_path, tiny_run, media):
    src = need_shared(MEDIA / "drivers" / "smile_man_short.mp4")
    driver = add_sine_audio(src, tmp_path / "driver.mp4", seconds=1.0)
    n = len(list(read_frames(driver)))
    stats = animate(driver, tiny_run, tmp_path / "out.mp4", panel=64)
    info = probe(tmp_path / "out.mp4")
    assert stats.frames == n == len(list(read_frames(tmp_path / "out.mp4")))
    assert info.fps == pytest.approx(25.0)
    assert (info.width, info.height) == (64, 64)
    assert info.audio_codec == "aac" and stats.audio
    animate(driver, tiny_run, tmp_path / "silent.mp4", panel=64, audio=False)
    assert _audio_codec(tmp_path / "silent.mp4") is None


def test_side_by_side_and_paste_back(tmp_path, tiny_run, media):
    driver = need_shared(MEDIA / "drivers" / "smile_man_short.mp4")
    animate(driver, tiny_run, tmp_path / "sbs.mp4", side_by_side=True, panel=64, max_frames=5)
    info = probe(tmp_path / "sbs.mp4")
    assert (info.width, info.height) == (192, 64)
    animate(driver, tiny_run, tmp_path / "paste.mp4", paste_back=True, max_frames=5)
    info = probe(tmp_path / "paste.mp4")
    assert (info.width, info.height) == (480, 480)  # the target's full frame


def test_lost_faces_reuse_last_good(tmp_path, tiny_run, media):
    real = list(read_frames(need_shared(MEDIA / "drivers" / "smile_man_short.mp4"), 6))
    frames = real[:3] + [np.zeros_like(real[0])] * 2 + real[3:]
    driver = make_video(tmp_path / "gaps.mp4", frames)
    stats = animate(driver, tiny_run, tmp_path / "out.mp4", panel=64)
    assert stats.frames == 8 and stats.lost == 2


def test_fill_lost():
    a, b = np.zeros((2, 2)), np.ones((2, 2))
    out = fill_lost([None, a, None, b, None])
    assert [o.sum() for o in out] == [0, 0, 0, 4, 4]


def test_cli_bad_inputs(tmp_path, tiny_run, media):
    driver = str(MEDIA / "drivers" / "smile_man_short.mp4")
    cases = [
        (["--driver", str(tmp_path / "none.mp4"), "--model", str(tiny_run)], "none.mp4: video not found"),
        (["--driver", driver, "--model", str(tmp_path / "nomodel")], "nomodel: model not found"),
        (["--driver", driver, "--model", str(tiny_run), "--out", "/proc/forbidden/x.mp4"], "/proc/forbidden"),
    ]
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    cases.append((["--driver", str(bad), "--model", str(tiny_run)], "bad.mp4"))
    black = make_video(tmp_path / "black.mp4", [np.zeros((64, 64, 3), np.uint8)] * 4)
    cases.append((["--driver", str(black), "--model", str(tiny_run), "--out", str(tmp_path / "o.mp4")],
                  "no face found in any of its 4 frames"))
    for args, msg in cases:
        res = runner.invoke(app, ["animate", *args])
        assert res.exit_code == 1, (args, res.output)
        assert msg in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_cli_train_and_animate(tmp_path, media):
    target = str(MEDIA / "targets" / "glasses_man.mp4")
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", "--target", target, "--out", str(run), "--config", "configs/tiny.yaml",
                              "--steps", "2", "--set", "train.vgg_weights=random"])
    assert res.exit_code == 0, res.output
    assert "trained to step 2" in res.output
    out = tmp_path / "o.mp4"
    res = runner.invoke(app, ["animate", "--driver", str(MEDIA / "drivers" / "smile_man_short.mp4"),
                              "--model", str(run), "--out", str(out), "--max-frames", "4", "--size", "64"])
    assert res.exit_code == 0, res.output
    assert len(list(read_frames(out))) == 4
    res = runner.invoke(app, ["train", "--target", target, "--out", str(run), "--set", "train.stpes=3"])
    assert res.exit_code == 1 and "unknown config key 'train.stpes'" in res.output
