"""Named VGG feature activations, with offline-first weight resolution.

``VGGFeatures(layers, weights=...)`` returns ``{name: activation}`` for the
requested layers only and stops after the deepest one. Names follow the paper's
convention: ``conv3_2`` is the *post-ReLU* activation of the second conv of
block 3 (what the authors' VGG exposes), ``preconv3_2`` the raw convolution
output, ``pool3`` the pooled map. ``relu3_2`` is an alias of ``conv3_2``.

Weights, in the order ``auto`` tries them (nothing is ever downloaded):

1. ``vgg19``: torchvision's ImageNet VGG19 (``vgg19-dcbb9e9d.pth``) from the
   local torch hub cache (``$TORCH_HOME/hub/checkpoints``), as the paper uses.
2. ``vgg16-hed``: the offline VGG16 (HED backbone) from ``$PUPPET_VGG16_WEIGHTS``
   or ``shared/weights/vgg16_hed_bsds500.pth`` beside the project.
3. ``random``: only when asked for explicitly (tests of shapes and plumbing).

A path to a ``.pth`` file is also accepted (VGG19 or VGG16 layout, with or
without the ``features.`` prefix).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from puppet.errors import PuppetError

log = logging.getLogger("puppet")

# Convolutions per block.
_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG16_HED_FILE = "vgg16_hed_bsds500.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(arch: str) -> list[str]:
    """Names of the modules of ``torchvision.models.<arch>().features`` in order.

    Each conv is named ``preconvB_K`` and its ReLU ``convB_K`` (post-activation,
    the paper's convention), each max-pool ``poolB``.
    """
    names = []
    for b, n in enumerate(_BLOCKS[arch], start=1):
        for k in range(1, n + 1):
            names += [f"preconv{b}_{k}", f"conv{b}_{k}"]
        names.append(f"pool{b}")
    return names


def layer_index(arch: str, name: str) -> int:
    """Index in ``features`` of a named layer (``relu`` is an alias of post-ReLU ``conv``)."""
    if name.startswith("relu"):
        name = "conv" + name[4:]
    names = layer_names(arch)
    if name not in names:
        raise PuppetError(f"layer {name!r} does not exist in {arch} (e.g. conv3_2, conv4_2, conv5_2)")
    return names.index(name)


def _hub_vgg19() -> Path | None:
    p = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    return p if p.is_file() else None


def _offline_vgg16() -> Path | None:
    env = os.environ.get("PUPPET_VGG16_WEIGHTS")
    if env:
        return Path(env) if Path(env).is_file() else None
    here = Path(__file__).resolve().parents[2]  # project root when run from a checkout
    for root in (here, Path.cwd()):
        p = root.parent / "shared" / "weights" / VGG16_HED_FILE
        if p.is_file():
            return p
    return None


def resolve_weights(weights: str) -> tuple[str, Path | None]:
    """Map a weights choice to ``(arch, file)``; ``file`` is None for random init."""
    if weights == "random":
        return "vgg19", None
    if weights in ("auto", "vgg19"):
        p = _hub_vgg19()
        if p is not None:
            return "vgg19", p
        if weights == "vgg19":
            raise PuppetError(
                f"VGG19 weights not found: put torchvision's {VGG19_FILE} in "
                f"{Path(torch.hub.get_dir()) / 'checkpoints'} (puppet never downloads)")
    if weights in ("auto", "vgg16-hed"):
        p = _offline_vgg16()
        if p is not None:
            return "vgg16", p
        raise PuppetError(
            f"no pretrained VGG weights found: put torchvision's {VGG19_FILE} in the torch hub cache, "
            f"set PUPPET_VGG16_WEIGHTS to {VGG16_HED_FILE}, or pass a .pth path")
    p = Path(weights)
    if not p.is_file():
        raise PuppetError(f"{p}: VGG weights file not found (or use auto, vgg19, vgg16-hed, random)")
    return "path", p


def _load_features_state(path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
        raise PuppetError(f"{path}: cannot load VGG weights ({type(e).__name__}: {e})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PuppetError(f"{path}: not a state dict")
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    feats = feats or {k: v for k, v in state.items() if k.split(".")[0].isdigit()}
    n_conv = sum(1 for k in feats if k.endswith(".weight"))
    arch = {13: "vgg16", 16: "vgg19"}.get(n_conv)
    if arch is None:
        raise PuppetError(f"{path}: expected VGG16 (13 convs) or VGG19 (16 convs) weights, found {n_conv} convs")
    return arch, feats


class VGGFeatures(nn.Module):
    """Frozen VGG trunk returning named activations.

    Args:
        layers: names to return, e.g. ``["conv3_2", "conv4_2"]``.
        weights: ``auto`` | ``vgg19`` | ``vgg16-hed`` | ``random`` | path to a ``.pth``.

    ``forward(x)`` takes RGB images (B, 3, H, W) in [0, 1] and returns a dict
    of (B, C_l, H_l, W_l) float tensors. Parameters never require grad; the
    input's gradient flows through, which is what losses need.
    """

    def __init__(self, layers: list[str] | tuple[str, ...], weights: str = "auto"):
        super().__init__()
        from torchvision.models import vgg16, vgg19

        arch, path = resolve_weights(weights)
        state = None
        if path is not None:
            arch, state = _load_features_state(path)
        self.arch = arch
        self.weights_name = "random init" if path is None else f"{arch} from {path}"
        idx = {name: layer_index(arch, name) for name in layers}
        self.layers = list(layers)
        self._idx = idx
        deepest = max(idx.values()) if idx else -1
        full = (vgg19 if arch == "vgg19" else vgg16)(weights=None).features
        if state is not None:
            full.load_state_dict(state)
        self.features = full[: deepest + 1]
        # torchvision's ReLUs are in-place, which would overwrite a returned
        # pre-activation (preconvB_K) tensor and break autograd through it.
        for m in self.features:
            if isinstance(m, nn.ReLU):
                m.inplace = False
        self.requires_grad_(False)
        self.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        log.info("VGG features: %s (layers %s)", self.weights_name, ", ".join(layers))

    def train(self, mode: bool = True):  # noqa: D102 - always frozen
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: dict[str, torch.Tensor] = {}
        wanted = {i: [n for n, j in self._idx.items() if j == i] for i in set(self._idx.values())}
        for i, module in enumerate(self.features):
            h = module(h)
            for name in wanted.get(i, ()):
                out[name] = h
        return out
