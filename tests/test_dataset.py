"""Target extraction: cached frames, landmarks, edge maps; skipped frames; the held-out split."""

import json

import numpy as np
import pytest

from puppet.config import DataConfig
from puppet.data.dataset import extract, is_cached, split
from puppet.data.video import read_frames
from puppet.errors import PuppetError
from puppet.face.landmarks import N_LANDMARKS
from tests.conftest import MEDIA, make_video, need_shared


def test_extraction_on_real_clip(tmp_path, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    cfg = DataConfig(size=64, max_frames=20)
    ex = extract(video, tmp_path / "ex", cfg)
    assert len(ex) == 20 and ex.manifest["rejected"] == {}
    assert ex.frames.shape == (20, 64, 64, 3)
    assert ex.landmarks.shape == (20, N_LANDMARKS, 2)
    assert ex.edges.shape == (20, 6, 64, 64)
    for ch in range(6):  # every part channel has lines in every frame
        assert (ex.edges[:, ch].reshape(20, -1).max(axis=1) > 100).all()
    # one stable box for the clip; landmarks inside the crop
    assert len(ex.manifest["crop_boxes"]) == 1
    assert (ex.landmarks > 0).all() and (ex.landmarks < 64).all()
    assert (tmp_path / "ex" / "preview.png").is_file() and (tmp_path / "ex" / "report.png").is_file()
    assert is_cached(video, tmp_path / "ex", cfg)
    assert not is_cached(video, tmp_path / "ex", DataConfig(size=32, max_frames=20))


def test_smooth_crop_mode_moves_slowly(tmp_path, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    ex = extract(video, tmp_path / "ex", DataConfig(size=32, max_frames=30, crop_mode="smooth"))
    boxes = np.array(ex.manifest["crop_boxes"])
    assert boxes.shape == (30, 3)
    assert np.abs(np.diff(boxes[:, :2], axis=0)).max() < 0.05 * boxes[0, 2]


def test_auto_crop_mode_extracts_one_fixed_crop(tmp_path, media):
    """puppet train chooses for crop_mode auto; any other extraction (a prior's clips, a driver) is fixed."""
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    auto = extract(video, tmp_path / "auto", DataConfig(size=32, max_frames=10, crop_mode="auto"))
    fixed = extract(video, tmp_path / "fixed", DataConfig(size=32, max_frames=10, crop_mode="fixed"))
    assert auto.manifest["crop_boxes"] == fixed.manifest["crop_boxes"] and len(auto.manifest["crop_boxes"]) == 1
    np.testing.assert_array_equal(auto.frames, fixed.frames)
    assert is_cached(video, tmp_path / "fixed", DataConfig(size=32, max_frames=10, crop_mode="auto"))


def test_black_clip_has_no_face(tmp_path):
    video = make_video(tmp_path / "black.mp4", [np.zeros((64, 64, 3), np.uint8)] * 8)
    with pytest.raises(PuppetError, match="no face found in any of its 8 frames") as e:
        extract(video, tmp_path / "ex", DataConfig(size=32))
    assert "black.mp4" in str(e.value)
    assert not (tmp_path / "ex" / "manifest.json").exists()


def test_frames_without_a_face_are_accounted(tmp_path, media):
    real = list(read_frames(need_shared(MEDIA / "drivers" / "smile_man_short.mp4"), 6))
    frames = real[:3] + [np.zeros_like(real[0])] * 2 + real[3:]
    video = make_video(tmp_path / "mixed.mp4", frames)
    ex = extract(video, tmp_path / "ex", DataConfig(size=32))
    man = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    assert man["frames_read"] == 8 and man["frames_kept"] == 6 == len(ex)
    assert man["rejected"] == {"no face": 2}
    assert man["kept"] == [0, 1, 2, 5, 6, 7]


def test_split_holds_out_the_end():
    tr, va = split(10, 0.2)
    assert list(tr) == list(range(8)) and list(va) == [8, 9]
    tr, va = split(3, 0.0)
    assert len(va) == 0 and len(tr) == 3


def test_split_moves_to_a_segment_start_near_it():
    """Held-out frames start where a shot (segment) starts, if one is near the planned split."""
    segments = [0] * 70 + [1] * 30
    tr, va = split(100, 0.2, segments)
    assert len(va) == 30 and va[0] == 70
    tr, va = split(100, 0.2, [0] * 95 + [1] * 5)  # too far from 20 % held out: the plain split
    assert len(va) == 20
    assert len(split(100, 0.2, [0] * 100)[1]) == 20
