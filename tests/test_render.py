"""The shared renderer: meta round trip, generation, paste-back."""

import numpy as np

from puppet.data.checkpoint import load_checkpoint
from puppet.data.meta import TargetMeta
from puppet.face.landmarks import CropBox
from puppet.render.renderer import Renderer


def test_meta_round_trip(tiny_run, media):
    d = load_checkpoint(tiny_run)["meta"]
    meta = TargetMeta.from_dict(d)
    assert meta.neutral_landmarks.shape == (478, 2) and meta.expression_amplitude.keys() == {"mouth", "eyes", "brows"}
    back = meta.to_dict()
    np.testing.assert_array_equal(back["neutral_landmarks"].numpy(), meta.neutral_landmarks)
    assert TargetMeta.from_dict({**back, "in_channels": 6}).size == meta.size  # old keys are ignored


def test_generate_shapes(tiny_run, media):
    r = Renderer.from_path(tiny_run, device="cpu")
    out = r.generate(np.stack([r.draw(r.meta.neutral_landmarks)] * 3))
    assert out.shape == (3, r.size, r.size, 3) and out.dtype == np.uint8


def test_paste_puts_the_face_in_the_crop_and_leaves_the_rest(tiny_run, media):
    r = Renderer.from_path(tiny_run, device="cpu")
    frame = r.meta.neutral_frame
    face = r.meta.neutral_crop.copy()
    c = r.size // 2
    face[c - 3:c + 3, c - 3:c + 3] = 0  # a black mark in the middle of the face
    out = r.paste(face)
    assert out.shape == frame.shape and out.dtype == np.uint8
    box = CropBox(*r.meta.crop_box)
    far = (0, 0) if box.cx > frame.shape[1] / 2 else (0, frame.shape[1] - 1)
    np.testing.assert_array_equal(out[far], frame[far])  # outside the crop: the frame, untouched
    centre = (int(round(box.cy)), int(round(box.cx)))
    assert out[centre].astype(int).sum() < 0.5 * frame[centre].astype(int).sum()  # inside: the face


def test_paste_of_the_frame_itself_leaves_no_seam(tiny_run, media):
    """Pasting the neutral crop back (shifted in colour) gives the frame back: no step at the rim."""
    r = Renderer.from_path(tiny_run, device="cpu")
    frame = r.meta.neutral_frame.astype(int)
    face = np.clip(r.meta.neutral_crop.astype(int) + 40, 0, 255).astype(np.uint8)  # too bright by 40
    out = r.paste(face).astype(int)
    box = CropBox(*r.meta.crop_box)
    y0, y1 = int(box.cy - box.side / 2), int(box.cy + box.side / 2)
    x0, x1 = int(box.cx - box.side / 2), int(box.cx + box.side / 2)
    region = (slice(max(y0, 0), y1), slice(max(x0, 0), x1))
    # the 40-level offset is removed; what remains is resampling blur of a 32 px crop
    assert abs(np.mean(out[region] - frame[region])) < 5
