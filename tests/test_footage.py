"""puppet.data.footage: who the target is, shots, rejected frames, built from the shared clips at test time."""

import json

import numpy as np
import pytest

from puppet.config import DataConfig
from puppet.data.dataset import extract
from puppet.data.footage import (
    REASONS,
    Selection,
    diverse_subset,
    frame_range,
    head_angles,
    scan,
    select,
)
from puppet.data.video import read_frames
from puppet.errors import PuppetError
from tests.conftest import MEDIA, make_video, need_shared

CFG = DataConfig(size=64, crop_mode="fixed")


@pytest.fixture(scope="module")
def people():
    """First frames of two shared people (glasses_man, office_woman), 480x480 each."""
    import cv2

    a = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    b = need_shared(MEDIA / "targets" / "office_woman.mp4")
    size = lambda f: cv2.resize(f, (480, 480), interpolation=cv2.INTER_AREA)  # noqa: E731
    return [size(f) for f in read_frames(a, 30)], [size(f) for f in read_frames(b, 30)]


def _landmarks_on_crop(ex) -> bool:
    return bool((ex.landmarks > 0).all() and (ex.landmarks < ex.size).all())


@pytest.fixture(scope="module")
def side_by_side(people, tmp_path_factory):
    """Both people side by side: glasses_man in all 24 frames, office_woman in the first 14 only."""
    a, b = people
    blank = np.zeros_like(b[0])
    frames = [np.concatenate([a[i], b[i] if i < 14 else blank], axis=1) for i in range(24)]
    return make_video(tmp_path_factory.mktemp("footage") / "two.mp4", frames)


def test_two_people_default_keeps_the_one_in_more_frames(side_by_side, tmp_path):
    s = scan(side_by_side, CFG)
    assert [(p.id, p.frames) for p in s.people] == [(1, 24), (2, 14)]
    ex = extract(side_by_side, tmp_path / "one", CFG, selection=select(s, CFG))
    assert len(ex) == 24 and ex.manifest["person"] == 1
    assert [(p["id"], p["frames"]) for p in ex.manifest["people"]] == [(1, 24), (2, 14)]
    cx = np.array(ex.manifest["crop_boxes"])[:, 0]
    assert (cx < 480).all()  # glasses_man is the left half
    assert _landmarks_on_crop(ex)
    assert (tmp_path / "one" / "report.png").is_file()


def test_face_picks_the_other_person(side_by_side, tmp_path):
    cfg = DataConfig(size=64, crop_mode="fixed", face=2)
    ex = extract(side_by_side, tmp_path / "two", cfg)
    assert len(ex) == 14 and ex.manifest["person"] == 2
    assert ex.manifest["kept"] == list(range(14))
    assert ex.manifest["rejected"] == {"someone else": 10}
    assert (np.array(ex.manifest["crop_boxes"])[:, 0] > 480).all()
    assert _landmarks_on_crop(ex)
    with pytest.raises(PuppetError, match="data.face 3, but 2 people were found"):
        extract(side_by_side, tmp_path / "three", DataConfig(size=64, face=3))


def test_a_cut_to_another_person_drops_that_shot(people, tmp_path):
    a, b = people
    video = make_video(tmp_path / "cut.mp4", a[:20] + b[:12])
    ex = extract(video, tmp_path / "ex", CFG)
    m = ex.manifest
    assert [(s["start"], s["end"]) for s in m["shots"]] == [(0, 20), (20, 32)]
    assert m["shots"][1]["kept"] == 0 and m["shots"][1]["rejected"] == {"someone else": 12}
    assert m["kept"] == list(range(20)) and m["person"] == 1
    assert _landmarks_on_crop(ex)


def test_black_gap_and_a_stretch_without_a_face(people, tmp_path):
    import cv2

    a, _ = people
    black = [np.zeros_like(a[0])] * 14  # over half a second (25 frames/s): a new crop segment after it
    # the camera on the wall beside him: the frames' top-left corner, enlarged
    wall = [cv2.resize(f[:120, :120], (480, 480), interpolation=cv2.INTER_LINEAR) for f in a[:14]]
    video = make_video(tmp_path / "gaps.mp4", a[:10] + black + a[10:20] + wall + a[20:28])
    ex = extract(video, tmp_path / "ex", CFG)
    m = ex.manifest
    assert m["rejected"] == {"no face": 28}
    assert m["kept"] == list(range(10)) + list(range(24, 34)) + list(range(48, 56))
    # a crop segment never spans a gap: three runs of kept frames, smoothed and cropped alone
    assert len(set(m["segments"])) == 3
    assert _landmarks_on_crop(ex)


def test_frames_of_the_target_turned_away(media, tmp_path):
    """glasses_man looks about 10 degrees aside in frames 150-157 and at the camera (under 3) in
    160-171. The shared clips never turn further than 16 degrees, so the limit is lowered to 6.5:
    the turned frames are rejected as turned away, the frontal ones kept."""
    frames = list(read_frames(media / "targets" / "glasses_man.mp4", 172))
    video = make_video(tmp_path / "turned.mp4", frames[160:172] + frames[150:158])
    s = scan(video, CFG)
    yaws = np.array([abs(f[0].yaw) for f in s.faces])
    assert (yaws[:12] < 4).all() and (yaws[12:] > 8).all()
    sel = select(s, DataConfig(size=64, max_turn=6.5))
    assert sel.frames.tolist() == list(range(12))
    assert sel.counts() == {"turned away": 8}


def test_every_frame_rejected_is_one_line_that_says_why(people, tmp_path):
    a, _ = people
    video = make_video(tmp_path / "small.mp4", a[:6])
    with pytest.raises(PuppetError) as e:
        extract(video, tmp_path / "ex", DataConfig(size=1024, crop_mode="fixed"))
    msg = str(e.value)
    assert "small.mp4" in msg and "every one of its 6 frames was rejected (6 too small)" in msg
    assert "\n" not in msg
    assert not (tmp_path / "ex" / "manifest.json").exists()


def test_time_range_and_a_saved_selection(people, tmp_path):
    """--start/--end read only that part; a selection saved here extracts the same frames elsewhere
    (the GPU machine has neither MediaPipe nor dlib)."""
    a, _ = people
    video = make_video(tmp_path / "clip.mp4", a[:25], fps=25.0)
    cfg = DataConfig(size=64, crop_mode="fixed", start=0.2, end=0.8)
    assert frame_range(cfg, 25.0, 25) == (5, 20)
    live = extract(video, tmp_path / "live", cfg)
    assert live.manifest["kept"] == list(range(5, 20)) and live.manifest["frames_read"] == 15
    sel = select(scan(video, cfg), cfg)
    sel.save(tmp_path / "sel.npz")
    again = Selection.load(tmp_path / "sel.npz")
    assert again.info == sel.info and np.array_equal(again.frames, sel.frames)
    replayed = extract(video, tmp_path / "replayed", cfg, selection=again)
    np.testing.assert_array_equal(replayed.frames, live.frames)
    np.testing.assert_allclose(replayed.landmarks, live.landmarks, atol=1e-4)
    with pytest.raises(PuppetError, match="not a saved frame selection"):
        Selection.load(tmp_path / "clip.mp4")


def test_head_angles_of_a_turned_mesh():
    """A flat 'face' rotated about the vertical axis by 30 degrees reads as yaw 30."""
    lm = np.zeros((478, 3), np.float32)
    t = np.radians(30)
    lm[234] = [-50 * np.cos(t), 0, 50 * np.sin(t)]
    lm[454] = [50 * np.cos(t), 0, -50 * np.sin(t)]
    lm[10] = [0, -60, 0]
    lm[152] = [0, 60, 0]
    yaw, pitch = head_angles(lm)
    assert yaw == pytest.approx(-30, abs=1e-3) and pitch == pytest.approx(0, abs=1e-6)


def test_diverse_subset_covers_the_spread():
    rng = np.random.default_rng(0)
    common = rng.normal(0, 0.1, (990, 2))
    rare = rng.normal(5, 0.1, (10, 2))  # a pose the clip shows rarely
    x = np.concatenate([common, rare])
    chosen = diverse_subset(x, 20)
    assert len(set(chosen.tolist())) == 20
    assert (chosen >= 990).any()  # the rare pose is in, which a uniform draw of 20 would likely miss
    assert np.array_equal(diverse_subset(x, 5000), np.arange(1000))


def test_max_kept_counts_the_rest(people, tmp_path):
    a, _ = people
    video = make_video(tmp_path / "clip.mp4", a[:20])
    sel = select(scan(video, CFG), DataConfig(size=64, max_kept=8))
    assert len(sel.frames) == 8 and sel.counts() == {REASONS[-1]: 12}


def test_report_and_manifest_name_shots_and_reasons(people, tmp_path):
    from puppet.utils import read_image

    a, b = people
    video = make_video(tmp_path / "cut.mp4", a[:12] + b[:12])
    extract(video, tmp_path / "ex", CFG)
    m = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    assert len(m["shots"]) == 2 and m["rejected"] == {"someone else": 12}
    img = read_image(tmp_path / "ex" / "report.png")
    # a header row, one row per shot, one row of examples of the one reason
    assert img.shape[0] == 4 * (72 + 30)


def _scan_of(faces_per_frame, shot_starts=(0,), fps=25.0):
    """A Scan built by hand: one track per position, person 1 (no video, no detector)."""
    from pathlib import Path

    from puppet.data.footage import Face, Person, Scan, Track

    tracks, faces = {}, []
    for i, found in enumerate(faces_per_frame):
        row = []
        for side, sharp, yaw in found:
            lm = np.full((478, 2), 100, np.float32)
            lm[1] = [100 + side, 100 + side]  # landmark box: (100, 100) to (100 + side, 100 + side)
            t = tracks.setdefault(side > 0, Track(len(tracks), 0))
            t.frames.append(i)
            row.append(Face(lm, yaw, 0.0, sharp, t.id))
        faces.append(row)
    s = Scan(Path("hand.mp4"), fps, 0, list(shot_starts), faces, list(tracks.values()), [])
    for t in s.tracks:
        t.person = 1
    s.people = [Person(1, [t.id for t in s.tracks], len(faces), 1, None)]
    return s


def test_select_rejects_small_turned_and_blurred_faces():
    """Each reason on its own frame: 10 good frames, one small face, one turned, one blurred."""
    good = [(200.0, 1.0, 0.0)]
    frames = [good] * 10 + [[(20.0, 1.0, 0.0)], [(200.0, 1.0, 50.0)], [(200.0, 0.1, 0.0)], []]
    sel = select(_scan_of(frames), DataConfig(size=128))
    assert sel.frames.tolist() == list(range(10))
    assert dict(zip(sel.rejected.tolist(), [REASONS[r] for r in sel.rejected_reason])) == {
        10: "too small", 11: "turned away", 12: "blurred", 13: "no face"}


def test_start_beyond_the_end_is_one_line(people, tmp_path):
    a, _ = people
    video = make_video(tmp_path / "short.mp4", a[:10])
    with pytest.raises(PuppetError, match=r"short.mp4: no frame could be decoded from 5 s"):
        extract(video, tmp_path / "ex", DataConfig(size=64, start=5.0))
