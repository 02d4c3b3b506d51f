"""Who a face is: dlib's ResNet face descriptor (128-D), offline.

The descriptor network and its 5-point aligner come with ``face-recognition-models``
(dlib's own files, no download); ``dlib-bin`` runs them. Descriptors of one person are
about 0.2-0.35 apart (Euclidean), of different people 0.55-0.8; dlib's usual threshold
for "same person" is 0.6.

A puppet crop is small (128^2 on a CPU), smaller than the face size dlib's HOG detector
and aligner were made for (about 150 px across the face). Each image is therefore enlarged
to :data:`WORK_SIDE` pixels with bicubic interpolation (cv2.INTER_CUBIC) before anything
else. The face box is the detector's where it finds one, else the centre square a puppet
crop places the face in (the crop is 1.5x the landmark box, so the face fills its central
2/3).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from puppet.errors import PuppetError

WORK_SIDE = 320  # images are enlarged (or reduced) to this side before detection and alignment
FACE_SHARE = 1 / 1.5  # a puppet crop's face box, as a share of its side (data.crop_scale 1.5)
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
ALIGNER_FILE = "shape_predictor_5_face_landmarks.dat"


def _model_dir() -> Path:
    # face_recognition_models' __init__ imports pkg_resources only to find these files: find them
    # without importing it, so setuptools need not be installed.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise PuppetError("the identity score needs face-recognition-models, one of puppet's dependencies: "
                          "reinstall puppet (make setup)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class FaceDescriber:
    """RGB uint8 images (H, W, 3) of one face each -> 128-D descriptors (float64).

    ``describe(rgb)`` returns the descriptor, or None when no face could be aligned.
    """

    def __init__(self):
        try:
            import dlib
        except ImportError:
            raise PuppetError("the identity score needs dlib-bin, one of puppet's dependencies: reinstall puppet "
                              "(make setup)") from None
        models = _model_dir()
        for name in (DESCRIPTOR_FILE, ALIGNER_FILE):
            if not (models / name).is_file():
                raise PuppetError(f"{models / name}: face-recognition-models is installed without its model file")
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.aligner = dlib.shape_predictor(str(models / ALIGNER_FILE))
        self.net = dlib.face_recognition_model_v1(str(models / DESCRIPTOR_FILE))

    def describe(self, rgb: np.ndarray) -> np.ndarray | None:
        import cv2

        h, w = rgb.shape[:2]
        k = WORK_SIDE / max(h, w)
        img = np.ascontiguousarray(cv2.resize(rgb, (round(w * k), round(h * k)), interpolation=cv2.INTER_CUBIC))
        found = self.detector(img, 0)
        if len(found):
            box = max(found, key=lambda r: r.width() * r.height())
        elif h == w:  # a puppet crop: the face sits in its centre square
            side = img.shape[0] * FACE_SHARE
            lo = round((img.shape[0] - side) / 2)
            box = self._dlib.rectangle(lo, lo, round(lo + side), round(lo + side))
        else:
            return None
        shape = self.aligner(img, box)
        return np.asarray(self.net.compute_face_descriptor(img, shape), dtype=np.float64)

    def describe_box(self, rgb: np.ndarray, box: tuple[float, float, float]) -> np.ndarray:
        """The descriptor of the face in ``box`` (centre x, centre y, side in pixels, for example a
        landmark box) of a whole frame (H, W, 3): the region around it is cut out and enlarged
        (bicubic) so that the face is about 150 px across, dlib's working size, then aligned."""
        import cv2

        from puppet.face.landmarks import CropBox

        cx, cy, side = box
        n = 300  # twice the face, which dlib wants about 150 px across: the aligner looks outside the box
        m = CropBox(cx, cy, 2 * max(side, 1.0)).affine(n)
        img = np.ascontiguousarray(cv2.warpAffine(rgb, m, (n, n), flags=cv2.INTER_CUBIC,
                                                  borderMode=cv2.BORDER_REPLICATE))
        lo = round(n / 4)
        shape = self.aligner(img, self._dlib.rectangle(lo, lo, n - lo, n - lo))
        return np.asarray(self.net.compute_face_descriptor(img, shape), dtype=np.float64)

    def describe_all(self, images) -> np.ndarray:
        """Images -> (K, 128) descriptors of those in which a face was aligned (K may be fewer)."""
        out = [d for d in (self.describe(im) for im in images) if d is not None]
        return np.stack(out) if out else np.empty((0, 128))


def identity_distance(descriptors: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(K, 128) descriptors, (128,) reference (for example the mean of a person's real frames) ->
    (K,) Euclidean distances, dlib's measure (same person < 0.6)."""
    return np.linalg.norm(np.asarray(descriptors, dtype=np.float64) - reference, axis=1)
