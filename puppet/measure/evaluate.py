"""``puppet eval``: how good is a trained puppet, in numbers.

* **Self-reenactment** on the held-out end of the target clip (never trained
  on): the model is driven by the target's own edge maps and compared with the
  real frames: L1, PSNR, SSIM, and landmark error (MediaPipe landmarks of the
  generated frame vs those of the real frame, mean distance in pixels and as
  a fraction of the inter-ocular distance; the real frames' own landmarks, detected
  the same way, give the score of a perfect copy; both also by face part), and sharpness (variance of the
  Laplacian of the generated frames over that of the real ones: 1 = as much
  fine detail as the real frames, lower = blurrier), and placement: the shift (pixels) that best
  moves each generated frame onto the real one, and the PSNR the frames would have so moved (how
  much of the error is where things are drawn rather than what is drawn).
* **Cross-reenactment** with a driver clip: expression fidelity as the
  correlation of mouth-opening and eye-opening signals of driver and output
  over time, and identity keeping as the distance of the output's normalised
  landmark shape from the target's neutral shape (and, for scale, the
  driver's own distance from it).
* **Driven likeness** (with the target's real training frames as reference,
  puppet.measure.reference): the face descriptor's distance from the target's mean
  (``identity_*``: median and 90th percentile) for held-out generated frames, the
  real held-out frames (their own spread), the driven output and the driver itself;
  a kernel distance (``kid_*``) of held-out and driven outputs to the real frames,
  and their ratio; and how far each driven landmark configuration is from the
  nearest training one (``novelty_*``), with the frames where it is largest
  (``hardest_frames``), beside the same for the held-out frames.
* **Temporal stability**: mean absolute frame-to-frame change of the output in
  still stretches of the driver, beside the same measure on the real target,
  and the landmark motion in those stretches (driver's and target's), since a
  driver that moves more while "still" rightly moves the output more.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from puppet.data.dataset import load_extraction, split
from puppet.data.video import probe
from puppet.errors import PuppetError
from puppet.face.drive import RenderOptions
from puppet.face.edges import part_points
from puppet.face.identity import FaceDescriber, identity_distance
from puppet.face.inputs import model_inputs
from puppet.face.landmarks import N_LANDMARKS, FaceMesh
from puppet.face.retarget import canonical_template, iod, normalise, openings
from puppet.measure.metrics import (
    kernel_distance,
    laplacian_variance,
    placement_shift,
    psnr,
    shift_images,
    ssim,
)
from puppet.measure.reference import (
    TargetReference,
    hardest,
    novelty,
    realism_extractor,
    realism_features,
    target_reference,
)
from puppet.render.renderer import Renderer
from puppet.tensors import to_tensor_images

log = logging.getLogger("puppet")
DETECT_SIDE = 256  # generated crops are upscaled to this before landmark detection
STILL_MOTION = 0.01  # a "still" pair of frames: mean landmark motion below this many IODs


@dataclass
class EvalReport:
    model: str
    self_reenactment: dict = field(default_factory=dict)
    cross_reenactment: dict = field(default_factory=dict)
    stability: dict = field(default_factory=dict)
    contact_sheet: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _corr(a: list[float], b: list[float]) -> float:
    a, b = np.asarray(a), np.asarray(b)
    if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _detect_generated(mesh: FaceMesh, rgb: np.ndarray) -> np.ndarray | None:
    """Landmarks (478, 2) of a crop (S, S, 3) uint8, in its own pixel coordinates (pixel centres at
    integers, as the track's); None if no face is found."""
    import cv2

    s = rgb.shape[0]
    big = cv2.resize(rgb, (DETECT_SIDE, DETECT_SIDE), interpolation=cv2.INTER_CUBIC)
    lm = mesh.detect(big)
    if lm is None:
        return None
    # MediaPipe puts pixel centres at integers (tests/test_landmarks.py measures it), and so does
    # cv2.resize, which maps x to (x + 0.5) * k - 0.5. Scaling by 1/k alone would read every point
    # (1 - 1/k) / 2 px right of and below where it is: a quarter pixel at 128² (docs/experiments.md, "The
    # landmark score's quarter pixel").
    k = DETECT_SIDE / s
    return (lm + 0.5) / k - 0.5


def _stack(per_frame: list[np.ndarray]) -> np.ndarray:
    """Per-frame landmark errors (478,) -> (frames, 478); (0, 478) if none."""
    return np.stack(per_frame) if per_frame else np.empty((0, N_LANDMARKS))


def _mean_of(errors: np.ndarray, points: np.ndarray | None = None) -> float:
    """Mean over frames and ``points`` (default: all) of landmark errors (frames, 478); NaN if no frame."""
    if len(errors) == 0:
        return float("nan")
    return float((errors if points is None else errors[:, points]).mean())


@dataclass
class Judges:
    """What scores likeness: the target's references and the tools that read images against them (either
    tool None where its models are missing; its scores are then left out)."""

    ref: TargetReference
    describer: FaceDescriber | None = None
    extractor: object | None = None


def _judges(renderer: Renderer, data, train_idx: np.ndarray) -> Judges:
    describer = None
    try:
        describer = FaceDescriber()
    except PuppetError as e:
        log.warning("no identity score: %s", e)
    extractor = realism_extractor()
    ref = target_reference(data.frames[train_idx], data.landmarks[train_idx], renderer.meta.neutral_landmarks,
                           describer, extractor)
    return Judges(ref, describer, extractor)


def likeness(images: np.ndarray, judges: Judges, name: str) -> dict:
    """``identity_<name>`` (median distance of the images' face descriptors from the target's mean),
    ``identity_<name>_p90`` and ``kid_<name>`` (kernel distance to the real frames' features) of RGB
    uint8 images (K, S, S, 3); what cannot be measured is left out."""
    out = {}
    if judges.describer is not None and judges.ref.identity is not None:
        d = identity_distance(judges.describer.describe_all(images), judges.ref.identity)
        if len(d):
            out[f"identity_{name}"] = float(np.median(d))
            out[f"identity_{name}_p90"] = float(np.percentile(d, 90))
    if judges.extractor is not None and judges.ref.features is not None and len(images) >= 2:
        out[f"kid_{name}"] = kernel_distance(realism_features(images, judges.extractor), judges.ref.features)
    return out


def _evenly(n: int, k: int = 64) -> np.ndarray:
    return np.linspace(0, n - 1, min(k, n)).round().astype(int)


def self_reenactment(renderer: Renderer, run_dir: Path, max_frames: int = 64, data=None,
                     judges: Judges | None = None):
    """Metrics on held-out target frames; also returns per-frame PSNR and images for the contact sheet."""
    data = data if data is not None else load_extraction(run_dir / "data")
    _, val_idx = split(len(data), renderer.cfg.data.val_fraction, data.manifest.get("segments"))
    if len(val_idx) == 0:
        raise PuppetError(f"{run_dir}: no held-out frames (data.val_fraction is 0)")
    idx = val_idx[np.linspace(0, len(val_idx) - 1, min(max_frames, len(val_idx))).round().astype(int)]
    inputs = model_inputs(data.edges[idx], data.landmarks[idx], renderer.layout)
    gen = np.concatenate([renderer.generate(inputs[i:i + 16]) for i in range(0, len(idx), 16)])
    real = data.frames[idx]
    g, r = to_tensor_images(gen, "cpu"), to_tensor_images(real, "cpu")
    p = psnr(g, r)
    out = {"frames": int(len(idx)), "l1": float((g - r).abs().mean()), "psnr": float(p.mean()),
           "ssim": float(ssim(g, r).mean())}
    sharp_g, sharp_r = float(laplacian_variance(g).mean()), float(laplacian_variance(r).mean())
    out.update(sharpness_generated=sharp_g, sharpness_real=sharp_r, sharpness_ratio=sharp_g / max(sharp_r, 1e-12))
    shifts = placement_shift(g, r)
    out.update(placement_px=float(shifts.norm(dim=1).mean()),
               psnr_placed=float(psnr(shift_images(g, shifts), r).mean()))
    # per frame, each landmark's distance (478,) from the track: the generated frame's in pixels and in
    # inter-ocular distances, the real frame's in inter-ocular distances
    point_px, point_iod, point_real, missed = [], [], [], 0
    with FaceMesh(video=False) as mesh:
        for k, i in enumerate(idx):
            ref = data.landmarks[i]
            # The real frame through the same detector: the score a perfect copy of it would get
            # (the track it is compared with is filtered over time; one crop is not).
            lm_real = _detect_generated(mesh, real[k])
            if lm_real is not None:
                point_real.append(np.linalg.norm(lm_real - ref, axis=1) / iod(ref))
            lm = _detect_generated(mesh, gen[k])
            if lm is None:
                missed += 1
                continue
            d = np.linalg.norm(lm - ref, axis=1)
            point_px.append(d)
            point_iod.append(d / iod(ref))
    err_px, err_iod, err_real = _stack(point_px), _stack(point_iod), _stack(point_real)  # (frames, 478) each
    out["landmark_error_px"] = _mean_of(err_px)
    out["landmark_error_iod"] = _mean_of(err_iod)
    out["landmark_error_real_iod"] = _mean_of(err_real)
    # Where the error sits: by the part each point is drawn in (edges.part_points), generated and real.
    parts = part_points()
    out["landmark_error_parts_iod"] = {k: _mean_of(err_iod, v) for k, v in parts.items()}
    out["landmark_error_parts_real_iod"] = {k: _mean_of(err_real, v) for k, v in parts.items()}
    out["no_face_in_output"] = missed
    if judges is not None:
        out.update(likeness(gen, judges, "generated"))
        out.update(likeness(real, judges, "real"))
        out["novelty_median"] = float(np.median(novelty(data.landmarks[idx], judges.ref)))
    return out, p.numpy(), gen, real, data


def cross_reenactment(renderer: Renderer, driver: Path, max_frames: int = 0, judges: Judges | None = None):
    """Expression fidelity, identity keeping and output frames for a driver clip (driven as animate does)."""
    from puppet.data.video import read_frames
    from puppet.render.animate import prepare_driver

    info = probe(driver, audio=False)
    filled, _ = prepare_driver(renderer.driver, driver, max_frames, info=info)
    fps = info.fps
    targets = np.stack([renderer.target_landmarks(lm, i / fps) for i, lm in enumerate(filled)])
    edges = np.stack([renderer.draw(lm) for lm in targets])
    gen = np.concatenate([renderer.generate(edges[i:i + 16]) for i in range(0, len(edges), 16)])
    neutral = renderer.meta.neutral_landmarks
    template = canonical_template(neutral)
    n_neutral = normalise(neutral, template)
    d_mouth, d_eyes, o_mouth, o_eyes, id_out, id_drv = [], [], [], [], [], []
    with FaceMesh(video=False) as mesh:
        for k, lm_d in enumerate(filled):
            lm_o = _detect_generated(mesh, gen[k])
            if lm_o is None:
                continue
            dm, de = openings(lm_d)
            om, oe = openings(lm_o)
            d_mouth.append(dm)
            d_eyes.append(de)
            o_mouth.append(om)
            o_eyes.append(oe)
            id_out.append(float(np.linalg.norm(normalise(lm_o, template) - n_neutral, axis=1).mean()))
            id_drv.append(float(np.linalg.norm(normalise(lm_d, template) - n_neutral, axis=1).mean()))
    out = {"frames": len(filled), "frames_measured": len(o_mouth),
           "mouth_opening_correlation": _corr(d_mouth, o_mouth), "eye_opening_correlation": _corr(d_eyes, o_eyes),
           "identity_shape_distance_output": float(np.mean(id_out)) if id_out else float("nan"),
           "identity_shape_distance_driver": float(np.mean(id_drv)) if id_drv else float("nan")}
    if judges is not None:
        out.update(likeness(gen[_evenly(len(gen))], judges, "driven"))
        if judges.describer is not None and judges.ref.identity is not None:
            frames = list(read_frames(driver, len(filled), info))
            d = identity_distance(judges.describer.describe_all([frames[i] for i in _evenly(len(frames), 16)]),
                                  judges.ref.identity)
            if len(d):
                out["identity_driver"] = float(np.median(d))
        far = novelty(targets, judges.ref)
        out.update(novelty_median=float(np.median(far)), novelty_p90=float(np.percentile(far, 90)),
                   novelty_max=float(far.max()), hardest_frames=hardest(far, apart=max(1, round(fps / 2))))
    return out, filled, gen


def _frame_change(frames: np.ndarray) -> np.ndarray:
    f = frames.astype(np.float32) / 255.0
    return np.abs(np.diff(f, axis=0)).mean(axis=(1, 2, 3))


def landmark_motion(lms: list[np.ndarray]) -> np.ndarray:
    """For consecutive pairs: mean landmark displacement in units of the inter-ocular distance."""
    return np.asarray([np.linalg.norm(b - a, axis=1).mean() / iod(a) for a, b in zip(lms[:-1], lms[1:])])


def stability(driver_lms: list[np.ndarray], output: np.ndarray, data) -> dict:
    def mean(x, m):
        return float(x[m].mean()) if m.any() else float("nan")

    drv_motion, tgt_motion = landmark_motion(driver_lms), landmark_motion(list(data.landmarks))
    drv_still, tgt_still = drv_motion < STILL_MOTION, tgt_motion < STILL_MOTION
    return {"still_pairs_driver": int(drv_still.sum()),
            "jitter_output": mean(_frame_change(output), drv_still),
            "motion_driver_still": mean(drv_motion, drv_still),
            "still_pairs_target": int(tgt_still.sum()),
            "jitter_real_target": mean(_frame_change(data.frames), tgt_still),
            "motion_target_still": mean(tgt_motion, tgt_still)}


def contact_sheet(gen: np.ndarray, real: np.ndarray, scores: np.ndarray, n: int = 4) -> np.ndarray:
    """Two rows of (generated over real) pairs: worst n frames by PSNR, then best n."""
    from puppet.utils import tile

    order = np.argsort(scores)
    return tile([[np.concatenate([gen[i], real[i]], axis=0) for i in pick] for pick in (order[:n], order[::-1][:n])])


def evaluate(model: str | Path, driver: str | Path | None = None, sheet: str | Path | None = None,
             device: str = "auto", max_frames: int = 64, driver_frames: int = 0,
             options: RenderOptions | None = None) -> EvalReport:
    """Run every evaluation that applies; ``driver`` adds cross-reenactment and stability."""
    from puppet.data.checkpoint import resolve_checkpoint
    from puppet.utils import write_image

    ckpt = resolve_checkpoint(model)
    run_dir = ckpt.parent
    renderer = Renderer.from_path(ckpt, device=device, options=options)
    report = EvalReport(str(model))
    with torch.inference_mode():
        scores = gen = real = data = judges = None
        if (run_dir / "data" / "manifest.json").is_file():
            data = load_extraction(run_dir / "data")
            train_idx = split(len(data), renderer.cfg.data.val_fraction, data.manifest.get("segments"))[0]
            judges = _judges(renderer, data, train_idx)
            report.self_reenactment, scores, gen, real, data = self_reenactment(renderer, run_dir, max_frames, data,
                                                                                judges)
        else:
            log.warning("%s: no target extraction beside the checkpoint; skipping self-reenactment", run_dir)
        if driver is not None:
            report.cross_reenactment, dlms, out = cross_reenactment(renderer, Path(driver), driver_frames, judges)
            held, driven = report.self_reenactment.get("kid_generated"), report.cross_reenactment.get("kid_driven")
            if held is not None and driven is not None:
                # How much further the driven frames are from real ones than the held-out frames are
                # (KID estimates can come out slightly negative: the floor keeps the ratio finite).
                report.cross_reenactment["kid_driven_over_held_out"] = driven / max(held, 1e-6)
            if data is not None:
                report.stability = stability(dlms, out, data)
    if sheet is not None and scores is not None:
        write_image(sheet, contact_sheet(gen, real, scores))
        report.contact_sheet = str(sheet)
    return report
