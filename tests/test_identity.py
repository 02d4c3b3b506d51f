"""The identity score: dlib's face descriptor on puppet crops, with known answers from the shared clips."""

import numpy as np
import pytest

from puppet.face.identity import FaceDescriber, identity_distance
from tests.conftest import MEDIA, need_shared


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    """128^2 crops of the first frames of two shared targets, a man and a woman."""
    from puppet.config import load_config
    from puppet.data.dataset import extract

    cfg = load_config(overrides=["data.crop_mode=fixed", "data.max_frames=8"]).data
    out = {}
    for name in ("glasses_man", "office_woman"):
        video = need_shared(MEDIA / "targets" / f"{name}.mp4")
        out[name] = extract(video, tmp_path_factory.mktemp("identity") / name, cfg).frames
    return out


@pytest.fixture(scope="module")
def describer():
    return FaceDescriber()


def test_the_same_image_is_at_distance_zero(crops, describer):
    a = describer.describe(crops["glasses_man"][0])
    assert a.shape == (128,)
    assert identity_distance(describer.describe(crops["glasses_man"][0])[None], a)[0] == pytest.approx(0, abs=1e-6)


def test_two_shared_people_are_far_apart_and_one_person_near(crops, describer):
    man = describer.describe_all(crops["glasses_man"])
    woman = describer.describe_all(crops["office_woman"])
    assert len(man) == len(woman) == 8  # every crop aligned
    assert identity_distance(woman, man.mean(0)).min() > 0.5  # dlib: different people 0.55-0.8
    assert identity_distance(man[4:], man[:4].mean(0)).max() < 0.4  # the same man, other frames


def test_a_face_too_small_for_the_detector_is_read_from_the_crops_centre(crops, describer):
    """A 48^2 crop has no face dlib's detector finds; its centre square is described instead, and it
    stays much nearer its own person than the other."""
    import cv2

    small = cv2.resize(crops["glasses_man"][0], (48, 48), interpolation=cv2.INTER_AREA)
    d = describer.describe(small)
    assert d is not None
    man, woman = describer.describe_all(crops["glasses_man"]), describer.describe_all(crops["office_woman"])
    assert identity_distance(d[None], man.mean(0))[0] < identity_distance(d[None], woman.mean(0))[0]


def test_an_image_without_a_face_that_is_not_square_gives_none(describer):
    assert describer.describe(np.zeros((60, 90, 3), np.uint8)) is None
    assert describer.describe_all([np.zeros((60, 90, 3), np.uint8)]).shape == (0, 128)
