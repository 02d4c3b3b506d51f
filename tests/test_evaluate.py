"""puppet eval: signal helpers with known answers, and a full report on a tiny model."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from puppet.cli import app
from puppet.face.edges import PARTS, part_points
from puppet.face.landmarks import FaceMesh
from puppet.measure.evaluate import (
    STILL_MOTION,
    _detect_generated,
    contact_sheet,
    evaluate,
    iod,
    landmark_motion,
    openings,
)
from tests.conftest import MEDIA

runner = CliRunner()


def _face():
    lm = np.zeros((478, 2), np.float32)
    lm[33], lm[263] = (0, 0), (10, 0)  # eye distance 10
    lm[13], lm[14] = (5, 10), (5, 13)  # mouth open by 3
    lm[159], lm[145], lm[386], lm[374] = (2, 0), (2, 1), (8, 0), (8, 2)  # eyes open 1 and 2
    return lm


def test_openings_known_answer():
    lm = _face()
    assert iod(lm) == 10
    mouth, eyes = openings(lm)
    assert abs(mouth - 0.3) < 1e-5 and abs(eyes - 0.15) < 1e-5


def test_landmark_motion_and_still_threshold():
    a = _face()
    b = a + 0.01  # tiny motion
    c = a + 5.0  # big motion
    assert (landmark_motion([a, b, c]) < STILL_MOTION).tolist() == [True, False]
    d = a.copy()
    d[:, 0] += 0.5 * iod(a)  # every landmark moves half an inter-ocular distance
    np.testing.assert_allclose(landmark_motion([a, d, d]), [0.5, 0.0], atol=1e-6)


class _CentroidMesh:
    """A stand-in detector: every landmark at the image's brightness centroid, pixel centres at
    integers (MediaPipe's convention, measured in tests/test_landmarks.py)."""

    def detect(self, rgb):
        w = rgb[..., 0].astype(np.float64)
        ys, xs = np.mgrid[:w.shape[0], :w.shape[1]]
        c = [(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()]
        return np.tile(np.array(c, np.float32), (478, 1))


@pytest.mark.parametrize("side", [128, 64, 256])
def test_detect_generated_reads_points_where_they_are(side):
    # a smooth blob centred off the pixel grid: read through the upscaled copy, it is where it was drawn
    ys, xs = np.mgrid[:side, :side]
    cx, cy = 0.31 * side + 0.3, 0.17 * side + 0.7
    blob = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * (side / 32) ** 2))
    rgb = np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    lm = _detect_generated(_CentroidMesh(), rgb)
    assert lm.shape == (478, 2)
    np.testing.assert_allclose(lm[0], [cx, cy], atol=0.03)


def test_contact_sheet_orders_worst_then_best():
    gen = np.stack([np.full((4, 4, 3), i, np.uint8) for i in range(5)])
    sheet = contact_sheet(gen, gen, np.array([3.0, 1.0, 5.0, 2.0, 4.0]), n=2)
    assert sheet.shape == (16, 8, 3)
    assert sheet[0, 0, 0] == 1 and sheet[0, 4, 0] == 3  # worst: frames 1, 3
    assert sheet[8, 0, 0] == 2 and sheet[8, 4, 0] == 4  # best: frames 2, 4


def test_evaluate_tiny_model(tmp_path, tiny_run, media):
    from puppet.data.dataset import load_extraction, split
    from puppet.measure.metrics import (
        laplacian_variance,
        placement_shift,
        psnr,
        shift_images,
    )
    from puppet.render.renderer import Renderer
    from puppet.tensors import to_tensor_images

    rep = evaluate(tiny_run, MEDIA / "drivers" / "smile_man_short.mp4", sheet=tmp_path / "sheet.png",
                   driver_frames=10)
    s = rep.self_reenactment
    # The same scores, recomputed here from the held-out frames and the model's output for them.
    data = load_extraction(tiny_run / "data")
    _, val = split(len(data), 0.2)
    r = Renderer.from_path(tiny_run, device="cpu")
    inputs = np.stack([r.draw(lm) for lm in data.landmarks[val]])  # the edge maps and ramps of the held-out frames
    np.testing.assert_array_equal(inputs[:, :6], data.edges[val])
    gen = to_tensor_images(r.generate(inputs), "cpu")
    real = to_tensor_images(data.frames[val], "cpu")
    assert s["frames"] == len(val) == 5
    assert s["psnr"] == pytest.approx(float(psnr(gen, real).mean()), rel=1e-5)
    assert s["l1"] == pytest.approx(float((gen - real).abs().mean()), rel=1e-5)
    ratio = float(laplacian_variance(gen).mean() / laplacian_variance(real).mean())
    assert s["sharpness_ratio"] == pytest.approx(ratio, rel=1e-5)
    shifts = placement_shift(gen, real)
    assert s["placement_px"] == pytest.approx(float(shifts.norm(dim=1).mean()), rel=1e-5)
    assert s["psnr_placed"] == pytest.approx(float(psnr(shift_images(gen, shifts), real).mean()), rel=1e-5)
    assert s["psnr_placed"] >= s["psnr"] - 1e-6  # the zero shift is among those searched
    # the real frames through the same detector: the score of a perfect copy
    errs = []
    with FaceMesh(video=False) as mesh:
        for i in val:
            lm = _detect_generated(mesh, data.frames[i])
            errs.append(np.linalg.norm(lm - data.landmarks[i], axis=1) / iod(data.landmarks[i]))
    assert s["landmark_error_real_iod"] == pytest.approx(float(np.mean(errs)), rel=1e-5)
    assert 0 < s["landmark_error_real_iod"] < 0.1
    # the same by face part: each part's own points, and the parts weighted by their points give the whole
    parts = part_points()
    real_parts = s["landmark_error_parts_real_iod"]
    assert set(real_parts) == {*PARTS, "rest"} == set(s["landmark_error_parts_iod"])
    assert real_parts["lips"] == pytest.approx(float(np.stack(errs)[:, parts["lips"]].mean()), rel=1e-5)
    assert sum(len(parts[k]) * v for k, v in real_parts.items()) / 478 == pytest.approx(
        s["landmark_error_real_iod"], rel=1e-5)
    if s["no_face_in_output"] < s["frames"]:  # the tiny model's output may hold no face at all
        assert sum(len(parts[k]) * v for k, v in s["landmark_error_parts_iod"].items()) / 478 == pytest.approx(
            s["landmark_error_iod"], rel=1e-5)
    c = rep.cross_reenactment
    assert c["frames"] == 10
    # Driven likeness. The real held-out frames are the target (near its mean descriptor); the driver is
    # someone else; the tiny model's 32^2 blur is no one.
    assert s["identity_real"] < 0.45 < c["identity_driver"]
    assert s["identity_real_p90"] >= s["identity_real"]
    assert {"identity_generated", "identity_driven", "kid_generated", "kid_real", "kid_driven"} <= set(s) | set(c)
    assert s["kid_real"] < s["kid_generated"]  # real held-out frames are nearer the real training frames
    assert c["kid_driven_over_held_out"] == pytest.approx(c["kid_driven"] / max(s["kid_generated"], 1e-6))
    assert 0 <= c["novelty_median"] <= c["novelty_p90"] <= c["novelty_max"] and s["novelty_median"] >= 0
    assert 1 <= len(c["hardest_frames"]) <= 4 and all(0 <= i < 10 for i in c["hardest_frames"])
    st = rep.stability
    assert {"jitter_output", "jitter_real_target", "motion_driver_still", "motion_target_still"} <= set(st)
    assert st["still_pairs_target"] == 0 or 0 <= st["motion_target_still"] < STILL_MOTION
    assert (tmp_path / "sheet.png").is_file()


def test_cli_eval_json(tmp_path, tiny_run, media):
    out = tmp_path / "e.json"
    res = runner.invoke(app, ["eval", "--model", str(tiny_run), "--json", str(out), "--sheet", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["self_reenactment"]["frames"] == 5
    # a nested figure prints one row per entry, as plain numbers (rich may wrap the table, not a row)
    assert "landmark_error_parts_real_iod.lips" in res.output and "{'face_oval'" not in res.output
    res = runner.invoke(app, ["eval", "--model", str(tmp_path / "missing")])
    assert res.exit_code == 1 and "model not found" in res.output
