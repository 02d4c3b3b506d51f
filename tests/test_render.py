"""The shared renderer: meta round trip, generation, paste-back."""

import numpy as np

from puppet.checkpoint import load_checkpoint
from puppet.landmarks import CropBox
from puppet.meta import TargetMeta
from puppet.render import Renderer


def test_meta_round_trip(tiny_run, media):
    d = load_checkpoint(tiny_run)["meta"]
    meta = TargetMeta.from_dict(d)
    assert meta.neutral_landmarks.shape == (478, 2) and meta.expression_amplitude.keys() == {"mouth", "eyes", "brows"}
    back = meta.to_dict()
    np.testing.assert_array_equal(back["neutral_landmarks"].numpy(), meta.neutral_landmarks)
    assert TargetMeta.from_dict({**back, "in_channels": 6}).size == meta.size  # old keys are ignored


def test_generate_shapes(tiny_run, media):
    r = Renderer.from_path(tiny_run, device="cpu")
    out = r.generate(np.zeros((3, 6, r.size, r.size), np.uint8))
    assert out.shape == (3, r.size, r.size, 3) and out.dtype == np.uint8


def test_paste_puts_the_face_in_the_crop_and_leaves_the_rest(tiny_run, media):
    r = Renderer.from_path(tiny_run, device="cpu")
    frame = r.meta.neutral_frame
    out = r.paste(np.full((r.size, r.size, 3), 255, np.uint8))  # a white face
    assert out.shape == frame.shape and out.dtype == np.uint8
    box = CropBox(*r.meta.crop_box)
    assert (out[int(box.cy), int(box.cx)] >= 250).all()  # crop centre: the face
    far = (0, 0) if box.cx > frame.shape[1] / 2 else (0, frame.shape[1] - 1)
    np.testing.assert_array_equal(out[far], frame[far])  # outside the crop: the frame, untouched
    # On the mask's oval (0.36 of the side from the centre) the blend is about half face, half frame.
    edge = (int(box.cy + 0.04 * box.side), int(box.cx + 0.36 * box.side))
    f, o = frame[edge].astype(int).sum(), out[edge].astype(int).sum()
    assert f + 0.3 * (765 - f) < o < f + 0.7 * (765 - f)
