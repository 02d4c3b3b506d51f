"""Video I/O: probing, frame reading, atomic mp4 writing, audio passthrough."""

import imageio_ffmpeg
import numpy as np
import pytest

from puppet.data.video import VideoWriter, probe, read_frames
from puppet.errors import PuppetError
from tests.conftest import MEDIA, add_sine_audio, make_video, need_shared


def test_write_then_read_back(tmp_path):
    frames = [np.full((48, 64, 3), i * 20, np.uint8) for i in range(10)]
    p = make_video(tmp_path / "x.mp4", frames, fps=12.5)
    info = probe(p)
    assert (info.width, info.height) == (64, 48)
    assert info.fps == pytest.approx(12.5)
    assert info.audio_codec is None
    back = list(read_frames(p))
    assert len(back) == 10
    assert abs(int(back[5].mean()) - 100) <= 3


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "x.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 25) as w:
            w.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_non_square_pixels_are_corrected(media):
    info = probe(MEDIA / "targets" / "glasses_man.mp4", audio=False)
    assert info.sar == pytest.approx(15 / 16)
    assert (info.width, info.height) == (480, 480)
    frame = next(read_frames(info.path, 1))
    assert frame.shape == (480, 480, 3)


def test_avi_with_ac3_audio(media):
    info = probe(MEDIA / "drivers" / "megamind_cartoon.avi")
    assert info.fps == pytest.approx(23.976, abs=0.01)
    assert info.audio_codec == "ac3"


def test_audio_passthrough(tmp_path, media):
    src = need_shared(MEDIA / "drivers" / "smile_man_short.mp4")
    with_audio = add_sine_audio(src, tmp_path / "tone.mp4", seconds=1.0)
    assert probe(with_audio).audio_codec == "aac"
    frames = list(read_frames(with_audio, 10))
    out = make_video(tmp_path / "out.mp4", [f[:256, :256] for f in frames], fps=25, audio_from=with_audio)
    gen = imageio_ffmpeg.read_frames(str(out))
    meta = next(gen)
    gen.close()
    assert meta.get("audio_codec") == "aac"


@pytest.mark.parametrize("content,msg", [(None, "video not found"), (b"hello", "cannot open as a video|not a video")])
def test_bad_inputs(tmp_path, content, msg):
    p = tmp_path / "clip.mp4"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(PuppetError, match=msg) as e:
        probe(p)
    assert str(p) in str(e.value)


def test_bad_output_suffix(tmp_path):
    with pytest.raises(PuppetError, match="must be .mp4"):
        with VideoWriter(tmp_path / "x.gif", 25):
            pass
