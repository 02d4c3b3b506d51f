"""What a puppet's output is compared with: its target's real training frames, three ways.

* **Identity**: the mean dlib face descriptor of the real frames (puppet.face.identity); an
  output's distance from it says how much it still looks like the target.
* **Realism as a distribution**: features of the real frames, against which a set of outputs
  scores a kernel distance (KID, puppet.measure.metrics.kernel_distance). The features are the
  offline VGG16-HED's conv5_2 (or ImageNet VGG19's, when present), averaged over positions:
  512 numbers per image. HED was trained to find edges, so these features respond to streaks,
  doubled rims and smears, the faults of driven frames.
* **What the model has seen**: the training frames' landmark configurations, normalised for pose
  (puppet.face.retarget.normalise: eye distance 1). :func:`novelty` is how far a configuration is
  from the nearest of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from puppet.face.retarget import canonical_template, normalise

log = logging.getLogger("puppet")
REFERENCE_FRAMES = 64  # real training frames, evenly spaced, that the references are built from
REALISM_LAYER = "conv5_2"


def realism_features(images: np.ndarray, extractor) -> np.ndarray:
    """RGB uint8 images (K, S, S, 3) -> (K, C) features: the extractor's REALISM_LAYER averaged over
    positions, in batches of 16."""
    import torch

    from puppet.tensors import to_tensor_images

    out = []
    with torch.inference_mode():
        for i in range(0, len(images), 16):
            f = extractor(to_tensor_images(images[i:i + 16], "cpu"))[REALISM_LAYER]
            out.append(f.float().mean(dim=(2, 3)).numpy())
    return np.concatenate(out) if out else np.empty((0, 0))


def realism_extractor(weights: str = "auto"):
    """The feature extractor for :func:`realism_features`, or None (logged) where no VGG weights are found."""
    from puppet.errors import PuppetError
    from puppet.losses.features import build_features

    try:
        return build_features([REALISM_LAYER], weights=weights).eval()
    except PuppetError as e:
        log.warning("no kernel distance: %s", e)
        return None


@dataclass
class TargetReference:
    """A target's real training frames as references.

    Attributes:
        identity: (128,) mean face descriptor, or None without dlib's models.
        features: (K, C) realism features, or None without VGG weights.
        shapes: (T, 478, 2) the training frames' landmarks, normalised to ``template``.
        template: (n_stable, 2) the canonical stable points (puppet.face.retarget).
    """

    identity: np.ndarray | None
    features: np.ndarray | None
    shapes: np.ndarray
    template: np.ndarray


def target_reference(frames: np.ndarray, landmarks: np.ndarray, neutral: np.ndarray, describer=None,
                     extractor=None) -> TargetReference:
    """Real training frames (T, S, S, 3) uint8 and their landmarks (T, 478, 2) -> the references;
    ``neutral`` (478, 2) sets the template. Identity and features come from REFERENCE_FRAMES of the
    frames, evenly spaced; the shapes from all of them."""
    pick = np.linspace(0, len(frames) - 1, min(REFERENCE_FRAMES, len(frames))).round().astype(int)
    identity = None
    if describer is not None:
        d = describer.describe_all(frames[pick])
        identity = d.mean(axis=0) if len(d) else None
    features = realism_features(frames[pick], extractor) if extractor is not None else None
    template = canonical_template(neutral)
    shapes = np.stack([normalise(lm, template) for lm in landmarks])
    return TargetReference(identity, features, shapes, template)


def novelty(landmarks: np.ndarray, ref: TargetReference) -> np.ndarray:
    """Landmark configurations (K, 478, 2), any pose -> (K,) distance of each from the nearest training
    configuration: the mean distance over the 478 points after both are normalised for pose, in eye
    distances. 0: a configuration the model was trained on."""
    out = np.empty(len(landmarks))
    for k, lm in enumerate(landmarks):
        q = normalise(lm, ref.template)
        out[k] = np.linalg.norm(ref.shapes - q[None], axis=2).mean(axis=1).min()
    return out


def hardest(scores: np.ndarray, n: int = 4, apart: int = 12) -> list[int]:
    """Indices of the ``n`` largest ``scores``, each at least ``apart`` frames from the others (so a
    sheet shows n moments, not one moment n times), in time order."""
    chosen: list[int] = []
    for i in np.argsort(scores)[::-1]:
        if all(abs(int(i) - j) >= apart for j in chosen):
            chosen.append(int(i))
        if len(chosen) == n:
            break
    return sorted(chosen)
