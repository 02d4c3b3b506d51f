"""Typed configuration: defaults < YAML file < command-line options.

Every section is a dataclass; unknown keys and values of the wrong type are
errors that name the key. ``Config.to_dict`` / ``config_from_dict`` round-trip
through plain dicts, which is what checkpoints and ``config.yaml`` in a run
folder hold.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from puppet.errors import PuppetError


@dataclass
class DataConfig:
    """How a target video becomes training pairs (edge map, cropped frame)."""

    size: int = 128  # square training/output resolution in pixels
    crop_scale: float = 1.5  # crop side = crop_scale x median landmark-box side
    # fixed: one box per clip; smooth: an EMA-smoothed box that follows the head (docs/experiments.md "A crop that
    # follows the head": +0.6 to +1.3 dB on singer_woman, a head moving before a plain wall; 1.7 to 5.4 dB
    # worse on four other clips); auto: puppet train tries both for crop_probe_steps steps and goes on
    # with the one that renders the held-out end better (docs/experiments.md "Choosing the crop").
    crop_mode: str = "auto"
    # The length of each crop_mode auto trial, in steps (at most 10 % of train.max_minutes each). At
    # 300-500 steps the held-out scores of eight run pairs (five clips) already ranked the crops as the
    # finished 10-minute runs did.
    crop_probe_steps: int = 500
    val_fraction: float = 0.2  # last part of the clip held out for validation
    max_frames: int = 0  # 0 = every frame
    start: float = 0.0  # seconds into the video where the part to use begins
    end: float = 0.0  # seconds into the video where it ends (0 = the end)
    # Which person to train on, as numbered by `puppet faces` (0 = the one in most frames).
    face: int = 0
    # Frames with the head turned further than this (yaw, or pitch from the clip's median; degrees)
    # are not trained on: the shared targets turn at most 25 degrees, a profile is 60 or more.
    max_turn: float = 40.0
    # A long clip keeps at most this many frames, chosen to cover its poses and expressions
    # (about 150 KB each at 128^2: 4000 frames are 0.6 GB).
    max_kept: int = 4000
    # Raises the cutoff with speed (face sizes/s) so edges do not lag the mouth: at 10 the edge maps
    # trailed fast mouth motion, so frame and edge map disagreed (80: +0.5 dB, docs/experiments.md).
    smooth_beta: float = 80.0
    line_width: int = 1  # edge-map line thickness in pixels at `size`
    # Single-image mode: head motion a portrait may follow (max degrees, max shift in eye
    # distances, max scale change); one photo cannot show more.
    portrait_pose: list[float] = field(default_factory=lambda: [10.0, 0.15, 0.1])


@dataclass
class ModelConfig:
    """CRN widths, coarsest module first; the output size comes from data.size."""

    # Channels per refinement module, coarsest first (the coarsest grid is data.size / 2^(len - 1)).
    widths: list[int] = field(default_factory=lambda: [256, 256, 256, 128, 64, 32])


# The contextual term of the default and `paper` presets (docs/method.md, "Loss presets").
COLOUR_CX_LAYERS = {"conv3_2": 1.0, "conv4_2": 1.0, "rgb5_d4": 1.0, "rgb3_d1": 1.0}
COLOUR_CX_SPATIAL = {"conv3_2": 16.0, "conv4_2": 16.0, "rgb5_d4": 16.0, "rgb3_d1": 16.0}
# The default's pixel-only warm-up, and the weights of its detail term (docs/experiments.md, "Fine detail") and
# of its L1 on the eyes, brows and lips (docs/experiments.md, "The face's parts").
DETAIL_WEIGHT = 3.0
PARTS_WEIGHT = 2.0
WARMUP_TERMS = ("l1", "parts", "detail", "p")  # terms the warm-up may weight
PIXEL_WARMUP = {"l1": 10.0, "parts": PARTS_WEIGHT, "detail": DETAIL_WEIGHT}
# The paper's own contextual term: CX (no spatial term) on VGG conv3_2 + conv4_2.
VGG_CX = {"cx_layers": {"conv3_2": 1.0, "conv4_2": 1.0}, "cx_spatial": {}, "cx_sample": 65}


@dataclass
class LossConfig:
    """Weights of each term; a weight of 0 switches the term off."""

    cx_weight: float = 1.0  # L_CX^t against the target frame
    # VGG layers plus colour patches (rgbK_dD: KxK RGB patches of the image pooled D times): the
    # offline VGG16-HED layers hardly see colour, full-resolution patches make painted lines off-style.
    cx_layers: dict[str, float] = field(default_factory=lambda: dict(COLOUR_CX_LAYERS))
    cx_h: float = 0.5
    cx_eps: float = 1e-5
    cx_sample: int = 48  # at most cx_sample^2 positions per layer (0 = all); only rgb3_d1 is larger at 128^2
    # CoBi: per-layer weight w_s of the spatial term ||p_i - q_j||^2 (positions in [0, 1]);
    # a layer not listed (or 0) is the paper's plain CX; entries for layers not in cx_layers are unused.
    cx_spatial: dict[str, float] = field(default_factory=lambda: dict(COLOUR_CX_SPATIAL))
    cxs_weight: float = 0.0  # L_CX^s against the driver frame (single-image mode)
    cxs_layers: dict[str, float] = field(default_factory=lambda: {"conv4_2": 1.0})
    p_weight: float = 0.1  # perceptual L1 on VGG features
    p_layers: dict[str, float] = field(default_factory=lambda: {"conv5_2": 1.0})
    l1_weight: float = 10.0
    # L1 again inside the eyes with their brows and the lips (edges.part_mask, ~7 % of a 128^2 crop):
    # the regions that carry the expression get more of the model's attention than hair or background.
    # 2: about 3.7x L1's weight per pixel there; mouth correlation 0.82-0.91 in four runs, 0.51-0.88
    # without (docs/experiments.md, "The face's parts").
    parts_weight: float = PARTS_WEIGHT
    # L1 between the local RMS of the luma Laplacian over detail_window^2 tiles (losses.pixel.detail_loss):
    # asks for the real frame's amount of fine detail, wherever in the tile it sits. 3: hair,
    # glasses rims and background crisp where L1 (and the parts term's L1) blurs them (docs/experiments.md,
    # "Fine detail", "The face's parts").
    detail_weight: float = DETAIL_WEIGHT
    detail_window: int = 8
    cx_warmup_steps: int = 2500  # CX terms start after this many steps of pixel/perceptual warm-up
    # Weights during the warm-up, by term (WARMUP_TERMS); empty = the weights above, CX off.
    # Pixel terms only (l1, parts, detail) make the warm-up cheap: no VGG pass at all, ~4x more steps per
    # minute on a CPU (docs/experiments.md: 10-minute comparison).
    warmup_weights: dict[str, float] = field(default_factory=lambda: dict(PIXEL_WARMUP))


@dataclass
class TrainConfig:
    steps: int = 4000
    max_minutes: float = 0.0  # stop (and save) after this wall time; 0 = no limit
    batch_size: int = 2
    lr: float = 2e-4
    # Linear decay of the learning rate to 0 over this last fraction of the run (steps or, with
    # max_minutes, wall time, whichever is further along); 0 = constant. 0.3: +0.2 dB in 10 CPU
    # minutes (docs/experiments.md).
    lr_decay_fraction: float = 0.3
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast on CUDA (CX similarity stays float32)
    sample_every: int = 100
    ckpt_every: int = 200
    vgg_weights: str = "auto"  # auto | vgg19 | vgg16-hed | random | PATH
    # Start from this model's weights (a run folder or checkpoint of the same architecture: a prior from
    # puppet pretrain, or a puppet of another person) instead of random ones; optimizer and step start afresh.
    init: str = ""
    # Draw frames with rare mouth/eye openings more often (puppet.data.sampling): 0 = uniform, 1 = every
    # opening about equally likely. 0.5: glasses_man's few open-mouth frames go from 3 % to 23 % of
    # the draws, and the mouth follows a talking driver (docs/experiments.md).
    balance: float = 0.5
    # Share of training pairs warped alike around the face, input map and frame by one smooth field
    # (puppet.train.augment): faces at poses and proportions between and beyond the clip's, for a
    # driver's expressions. 0 = none.
    augment: float = 0.25


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Named loss settings for `puppet train --loss NAME` (applied above the YAML file).
_COLOUR_CX = {"cx_layers": COLOUR_CX_LAYERS, "cx_spatial": COLOUR_CX_SPATIAL, "cx_sample": 48}
_NO_EXTRA = {"parts_weight": 0.0, "detail_weight": 0.0, "cxs_weight": 0.0, "warmup_weights": {}}
LOSS_PRESETS: dict[str, dict[str, Any]] = {
    # Default: a pixel-only warm-up (L1 + parts + detail), ~4x cheaper per step, then CoBi over HED
    # layers and colour patches beside L1 + parts + detail + P.
    "hybrid": {**_NO_EXTRA, **_COLOUR_CX, "cx_weight": 1.0, "p_weight": 0.1, "l1_weight": 10.0,
               "parts_weight": PARTS_WEIGHT, "detail_weight": DETAIL_WEIGHT, "cx_warmup_steps": 2500,
               "warmup_weights": dict(PIXEL_WARMUP)},
    # The paper's puppet-control loss L_CX^t + L_P^t, no pixel term, with features that see colour
    # and a spatial term (CoBi) that anchors layout (docs/experiments.md).
    "paper": {**_NO_EXTRA, **_COLOUR_CX, "cx_weight": 1.0, "p_weight": 0.1, "l1_weight": 0.0,
              "cx_warmup_steps": 0},
    # The paper's loss exactly as published: CX on VGG conv3_2 + conv4_2, plus L_P. Right with
    # ImageNet VGG19; colour-blind with the offline VGG16-HED weights.
    "paper-vgg": {**_NO_EXTRA, **VGG_CX, "cx_weight": 1.0, "p_weight": 0.1, "l1_weight": 0.0,
                  "cx_warmup_steps": 0},
    # The paper's "previous" baseline: L1 + L_P.
    "baseline": {**_NO_EXTRA, "cx_weight": 0.0, "p_weight": 0.1, "l1_weight": 10.0, "cx_warmup_steps": 0},
    # A prior (puppet pretrain): the default's warm-up terms throughout; the fine-tune adds the rest.
    "prior": {**_NO_EXTRA, "cx_weight": 0.0, "p_weight": 0.0, "cx_warmup_steps": 0,
              **{f"{k}_weight": v for k, v in PIXEL_WARMUP.items()}},
    # Single-image animation: L_CX^t (portrait) + L_CX^s (driver frame), after a short L1
    # warm-up against the portrait, with L1 kept to anchor its colours (CX alone drifts, docs/experiments.md).
    "single": {**_NO_EXTRA, **VGG_CX, "cx_weight": 0.5, "cxs_weight": 0.2, "p_weight": 0.1, "l1_weight": 10.0,
               "cx_warmup_steps": 200},
    # Unpaired domain transfer: L_CX^t (a random domain-B image) + L_CX^s (the input), as in the paper.
    "transfer": {**_NO_EXTRA, **VGG_CX, "cx_weight": 1.0, "cxs_weight": 1.0, "p_weight": 0.0, "l1_weight": 0.0,
                 "cx_warmup_steps": 0},
}


def _check_value(key: str, value: Any, tp: Any) -> Any:
    """Return ``value`` converted to type ``tp`` or raise PuppetError naming ``key``."""
    origin = typing.get_origin(tp)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, (list, tuple)):
            return [_check_value(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    elif origin is dict:
        _, item = typing.get_args(tp)
        if isinstance(value, dict):
            return {str(k): _check_value(f"{key}.{k}", v, item) for k, v in value.items()}
    else:  # pragma: no cover - only the types above are used
        raise TypeError(tp)
    name = getattr(tp, "__name__", str(tp))
    raise PuppetError(f"config key '{key}': expected {name}, got {value!r}")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        full = f"{prefix}{unknown[0]}"
        raise PuppetError(f"unknown config key '{full}' (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise PuppetError(f"config key '{prefix}{name}': expected a mapping, got {value!r}")
            kwargs[name] = _build(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _check_value(f"{prefix}{name}", value, tp)
    return cls(**kwargs)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        # Dict-valued leaves (layer weights) are replaced whole, sections are merged.
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k in ("data", "model", "loss", "train"):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


_ANY = object()
# Keys that earlier versions wrote (in a run's config.yaml, a checkpoint or a YAML file) and this one
# removed, with the one value each can still have: at that value it is dropped, so an older run still
# resumes and an older file still loads; at another it is an error. Models trained with other input
# channels (model.*) load by their checkpoint's version (puppet.data.checkpoint), not through these.
REMOVED_KEYS: dict[str, Any] = {
    "data.smooth_min_cutoff": 3.0,
    "model.no_input_levels": 1, "model.reference": False, "model.ramps": 0.25, "model.fine_ramps": True,
    "model.mouth": True,
    "loss.l2_weight": 0.0, "loss.l1_low_weight": 0.0, "loss.l1_low_factor": _ANY, "loss.gram_weight": 0.0,
    "loss.gram_layers": _ANY,
    "train.cache_targets": True,
}


def _drop_removed(data: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for section, values in data.items():
        if not isinstance(values, dict):
            out[section] = values
            continue
        out[section] = {}
        for key, value in values.items():
            name = f"{section}.{key}"
            if name not in REMOVED_KEYS:
                out[section][key] = value
            elif REMOVED_KEYS[name] is not _ANY and value != REMOVED_KEYS[name]:
                raise PuppetError(f"config key '{name}' was removed: it is always {REMOVED_KEYS[name]!r} now "
                                  f"(got {value!r}); drop it from the config")
    return out


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build a validated Config from a (possibly partial) nested dict."""
    if not isinstance(data, dict):
        raise PuppetError(f"config must be a mapping of sections, got {type(data).__name__}")
    return _build(Config, _merge(Config().to_dict(), _drop_removed(data)), "")


def parse_override(item: str) -> dict[str, Any]:
    """Turn ``section.key=value`` (value in YAML syntax) into a nested dict."""
    import yaml

    if "=" not in item:
        raise PuppetError(f"--set {item!r}: expected section.key=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise PuppetError(f"--set {item!r}: key must be section.key, e.g. train.steps=100")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return {parts[0]: {parts[1]: value}}


def load_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise PuppetError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise PuppetError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise PuppetError(f"{p}: expected a mapping of sections at the top level")
    return data


def without_target_clip(cfg: Config) -> Config:
    """A copy of ``cfg`` with the parts term off: it needs a target clip's eyes, brows and lips, which
    portrait and domain-transfer runs do not have."""
    warmup = {k: v for k, v in cfg.loss.warmup_weights.items() if k != "parts"}
    return dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, parts_weight=0.0, warmup_weights=warmup))


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    loss_preset: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Config:
    """Resolve a Config: defaults < YAML ``path`` < ``loss_preset`` < ``extra`` < ``overrides``.

    ``extra`` carries explicit command-line flags (e.g. ``{"train": {"steps": 5}}``),
    ``overrides`` the generic ``--set section.key=value`` items.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = _merge(data, load_yaml(path))
    if loss_preset is not None:
        if loss_preset not in LOSS_PRESETS:
            raise PuppetError(f"--loss {loss_preset!r}: choose one of {', '.join(LOSS_PRESETS)}")
        data = _merge(data, {"loss": LOSS_PRESETS[loss_preset]})
    if extra:
        data = _merge(data, extra)
    for item in overrides or []:
        data = _merge(data, parse_override(item))
    cfg = config_from_dict(data)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Range checks that types alone cannot express."""
    if cfg.data.size < 16 or cfg.data.size % 2**(len(cfg.model.widths) - 1):
        raise PuppetError(
            f"config key 'data.size': {cfg.data.size} must be >= 16 and divisible by "
            f"2^(len(model.widths)-1) = {2 ** (len(cfg.model.widths) - 1)}")
    if cfg.data.crop_mode not in ("auto", "fixed", "smooth"):
        raise PuppetError(f"config key 'data.crop_mode': expected auto, fixed or smooth, got {cfg.data.crop_mode!r}")
    if cfg.data.crop_probe_steps < 1:
        raise PuppetError(f"config key 'data.crop_probe_steps': must be >= 1, got {cfg.data.crop_probe_steps}")
    if not 0.0 <= cfg.data.val_fraction < 1.0:
        raise PuppetError(f"config key 'data.val_fraction': must be in [0, 1), got {cfg.data.val_fraction}")
    if cfg.train.batch_size < 1 or cfg.train.steps < 1:
        raise PuppetError("config keys 'train.batch_size' and 'train.steps' must be >= 1")
    if not 0.0 <= cfg.train.lr_decay_fraction <= 1.0:
        raise PuppetError(f"config key 'train.lr_decay_fraction': must be in [0, 1], got {cfg.train.lr_decay_fraction}")
    if not 0.0 <= cfg.train.augment <= 1.0:
        raise PuppetError(f"config key 'train.augment': a share in [0, 1], got {cfg.train.augment}")
    d = cfg.data
    if d.start < 0 or d.end < 0 or (d.end and d.end <= d.start):
        raise PuppetError(f"config keys 'data.start' / 'data.end': need 0 <= start < end (or end 0), "
                          f"got {d.start} / {d.end}")
    if d.face < 0 or d.max_kept < 0 or not 0 < d.max_turn <= 90:
        raise PuppetError("config keys 'data.face' and 'data.max_kept' must be >= 0, 'data.max_turn' in (0, 90]")
    if cfg.train.balance < 0:
        raise PuppetError(f"config key 'train.balance': must be >= 0, got {cfg.train.balance}")
    if len(cfg.data.portrait_pose) != 3:
        raise PuppetError("config key 'data.portrait_pose': expected [max_degrees, max_shift, max_scale_change]")
    if len(cfg.model.widths) < 2:
        raise PuppetError(f"config key 'model.widths': at least two modules, got {cfg.model.widths}")
    lw = cfg.loss
    if not any(w > 0 for w in (lw.l1_weight, lw.parts_weight, lw.detail_weight, lw.p_weight, lw.cx_weight,
                               lw.cxs_weight)):
        raise PuppetError("config keys 'loss.*_weight': every loss weight is 0: nothing to train")
    if cfg.loss.detail_window < 1:
        raise PuppetError(f"config key 'loss.detail_window': must be >= 1, got {cfg.loss.detail_window}")
    bad = sorted(set(cfg.loss.warmup_weights) - set(WARMUP_TERMS))
    if bad:
        raise PuppetError(f"config key 'loss.warmup_weights.{bad[0]}': warm-up terms are {', '.join(WARMUP_TERMS)}")
    for section in ("cx_layers", "cx_spatial", "cxs_layers", "p_layers"):
        for name in getattr(cfg.loss, section):
            if not _is_layer(name):
                raise PuppetError(f"config key 'loss.{section}.{name}': not a layer (VGG names such as conv3_2, "
                                  "or colour patches such as rgb5_d4, lab3_d1)")
    if cfg.loss.cx_h <= 0:
        raise PuppetError(f"config key 'loss.cx_h': must be > 0, got {cfg.loss.cx_h}")


def _is_layer(name: str) -> bool:
    """A VGG19 layer name (VGG16's are a subset), or a colour-patch layer such as rgb5_d4."""
    import re

    if re.fullmatch(r"(rgb|lab)\d+_d\d+", name):
        return True
    m = re.fullmatch(r"(pre)?(conv|relu)(\d)_(\d)|pool(\d)", name)
    if m is None:
        return False
    if m.group(5):
        return 1 <= int(m.group(5)) <= 5
    block, k = int(m.group(3)), int(m.group(4))
    return 1 <= block <= 5 and 1 <= k <= (2 if block <= 2 else 4)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    import yaml

    from puppet.utils import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
