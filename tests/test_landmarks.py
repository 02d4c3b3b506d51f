"""Landmarks, One Euro smoothing, crop boxes, and extraction on real and synthetic clips."""

import json

import numpy as np
import pytest

from puppet.config import DataConfig
from puppet.dataset import extract, is_cached, split
from puppet.errors import PuppetError
from puppet.landmarks import N_LANDMARKS, CropBox, FaceMesh, OneEuroFilter, crop, to_crop
from puppet.video import read_frames
from tests.conftest import MEDIA, make_video, need_shared


def test_one_euro_removes_jitter_but_follows_steps():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=5.0)
    still = [f(np.array([0.5]) + rng.normal(0, 0.01, 1), t / 30) for t in range(60)]
    assert np.std(np.diff(np.array(still)[30:, 0])) < 0.3 * np.std(rng.normal(0, 0.01, 1000)) * np.sqrt(2)
    out = [f(np.array([1.5]), (60 + t) / 30) for t in range(15)]
    assert out[-1][0] == pytest.approx(1.5, abs=0.05)  # a jump is followed within half a second


def test_crop_box_maps_centre_to_centre():
    box = CropBox(100.0, 80.0, 50.0)
    lm = np.array([[100.0, 80.0], [75.0, 55.0]], np.float32)
    out = to_crop(lm, box, 64)
    np.testing.assert_allclose(out, [[32, 32], [0, 0]], atol=1e-4)
    img = np.zeros((200, 200, 3), np.uint8)
    img[80, 100] = 255
    assert crop(img, box, 64).shape == (64, 64, 3)


def test_facemesh_finds_478_points_on_a_real_face(media):
    frame = next(read_frames(MEDIA / "drivers" / "smile_man_short.mp4", 1))
    with FaceMesh(video=False) as mesh:
        lm = mesh.detect(frame)
        assert lm.shape == (N_LANDMARKS, 2)
        assert (lm[:, 0] > 0).all() and (lm[:, 0] < frame.shape[1]).all()
        assert mesh.detect(np.zeros_like(frame)) is None


def test_extraction_on_real_clip(tmp_path, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    cfg = DataConfig(size=64, max_frames=20)
    ex = extract(video, tmp_path / "ex", cfg)
    assert len(ex) == 20 and ex.manifest["skipped"] == []
    assert ex.frames.shape == (20, 64, 64, 3)
    assert ex.landmarks.shape == (20, N_LANDMARKS, 2)
    assert ex.edges.shape == (20, 6, 64, 64)
    for ch in range(6):  # every part channel has lines in every frame
        assert (ex.edges[:, ch].reshape(20, -1).max(axis=1) > 100).all()
    # one stable box for the clip; landmarks inside the crop
    assert len(ex.manifest["crop_boxes"]) == 1
    assert (ex.landmarks > 0).all() and (ex.landmarks < 64).all()
    assert (tmp_path / "ex" / "preview.png").is_file()
    assert is_cached(video, tmp_path / "ex", cfg)
    assert not is_cached(video, tmp_path / "ex", DataConfig(size=32, max_frames=20))


def test_smooth_crop_mode_moves_slowly(tmp_path, media):
    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    ex = extract(video, tmp_path / "ex", DataConfig(size=32, max_frames=30, crop_mode="smooth"))
    boxes = np.array(ex.manifest["crop_boxes"])
    assert boxes.shape == (30, 3)
    assert np.abs(np.diff(boxes[:, :2], axis=0)).max() < 0.05 * boxes[0, 2]


def test_black_clip_has_no_face(tmp_path):
    video = make_video(tmp_path / "black.mp4", [np.zeros((64, 64, 3), np.uint8)] * 8)
    with pytest.raises(PuppetError, match="no face found in any of its 8 frames") as e:
        extract(video, tmp_path / "ex", DataConfig(size=32))
    assert "black.mp4" in str(e.value)
    assert not (tmp_path / "ex" / "manifest.json").exists()


def test_skipped_frames_are_accounted(tmp_path, media):
    real = list(read_frames(need_shared(MEDIA / "drivers" / "smile_man_short.mp4"), 6))
    frames = real[:3] + [np.zeros_like(real[0])] * 2 + real[3:]
    video = make_video(tmp_path / "mixed.mp4", frames)
    ex = extract(video, tmp_path / "ex", DataConfig(size=32))
    man = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    assert man["frames_read"] == 8 and man["frames_kept"] == 6 == len(ex)
    assert [s["frame"] for s in man["skipped"]] == [3, 4]
    assert all(s["reason"] == "no face found" for s in man["skipped"])
    assert man["kept"] == [0, 1, 2, 5, 6, 7]


def test_split_holds_out_the_end():
    tr, va = split(10, 0.2)
    assert list(tr) == list(range(8)) and list(va) == [8, 9]
    tr, va = split(3, 0.0)
    assert len(va) == 0 and len(tr) == 3
