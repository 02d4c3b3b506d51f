"""Config: precedence, unknown keys, wrong types."""

import pytest

from puppet.config import (
    LOSS_PRESETS,
    Config,
    config_from_dict,
    load_config,
    load_yaml,
    save_config,
)
from puppet.errors import PuppetError
from tests.conftest import ROOT


def test_defaults_yaml_equals_dataclass_defaults():
    assert load_config(ROOT / "configs" / "default.yaml") == Config()


def test_precedence_defaults_yaml_preset_flags_set(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  steps: 50\n  lr: 0.001\nloss:\n  l1_weight: 3.0\n")
    cfg = load_config(p)
    assert cfg.train.steps == 50 and cfg.train.lr == 0.001 and cfg.train.batch_size == Config().train.batch_size
    cfg = load_config(p, loss_preset="paper")
    assert cfg.loss.l1_weight == LOSS_PRESETS["paper"]["l1_weight"]
    cfg = load_config(p, extra={"train": {"steps": 7}}, overrides=["train.steps=9", "loss.cx_layers={conv4_2: 2}"])
    assert cfg.train.steps == 9 and cfg.train.lr == 0.001
    assert cfg.loss.cx_layers == {"conv4_2": 2.0}  # dict leaves are replaced whole


def test_unknown_keys_are_errors(tmp_path):
    with pytest.raises(PuppetError, match="unknown config key 'train.stpes'"):
        load_config(overrides=["train.stpes=3"])
    with pytest.raises(PuppetError, match="unknown config key 'bogus'"):
        config_from_dict({"bogus": {}})
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  sise: 64\n")
    with pytest.raises(PuppetError, match="data.sise"):
        load_config(p)


def test_wrong_types_are_errors():
    with pytest.raises(PuppetError, match="'train.steps': expected int"):
        load_config(overrides=["train.steps=ten"])
    with pytest.raises(PuppetError, match="'train.amp': expected bool"):
        load_config(overrides=["train.amp=3"])
    with pytest.raises(PuppetError, match=r"model.widths\[1\]"):
        load_config(overrides=["model.widths=[4, x]"])
    with pytest.raises(PuppetError, match="expected section.key=value"):
        load_config(overrides=["train.steps"])
    assert load_config(overrides=["train.lr=1"]).train.lr == 1.0  # int accepted for float


def test_range_checks():
    with pytest.raises(PuppetError, match="data.size"):
        load_config(overrides=["data.size=100"])
    with pytest.raises(PuppetError, match="expected auto, fixed or smooth"):
        load_config(overrides=["data.crop_mode=wobbly"])
    with pytest.raises(PuppetError, match="data.crop_probe_steps"):
        load_config(overrides=["data.crop_probe_steps=0"])
    with pytest.raises(PuppetError, match="model.widths"):
        load_config(overrides=["model.widths=[8]", "data.size=16"])
    with pytest.raises(PuppetError, match="--loss 'nope'"):
        load_config(loss_preset="nope")


def test_bad_yaml_file(tmp_path):
    with pytest.raises(PuppetError, match="config file not found"):
        load_yaml(tmp_path / "missing.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("train: [unclosed\n")
    with pytest.raises(PuppetError, match="not valid YAML"):
        load_yaml(p)


def test_round_trip(tmp_path):
    cfg = load_config(overrides=["train.steps=11", "model.widths=[8, 8, 4]", "data.size=32"])
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert config_from_dict(cfg.to_dict()) == cfg


def test_default_yaml_spells_out_every_default_and_nothing_else():
    assert load_yaml(ROOT / "configs" / "default.yaml") == Config().to_dict()
    assert load_config(ROOT / "configs" / "default.yaml") == Config()


@pytest.mark.parametrize("name", ["gpu", "paper", "tiny"])
def test_shipped_configs_load_and_set_only_what_they_change(name):
    data = load_yaml(ROOT / "configs" / f"{name}.yaml")
    cfg, default = load_config(ROOT / "configs" / f"{name}.yaml").to_dict(), Config().to_dict()
    for section, values in data.items():
        for key, value in values.items():
            assert cfg[section][key] == value  # read as written
    assert cfg != default
    if name != "paper":  # paper.yaml spells out the whole loss it names; the others set only what differs
        assert all(value != default[section][key] for section, values in data.items() for key, value in values.items())


def test_every_config_key_is_read_by_the_package():
    """A key nothing reads is dead weight: each one appears as an attribute access outside config.py."""
    import dataclasses
    import re

    source = "\n".join(p.read_text() for p in (ROOT / "puppet").rglob("*.py") if p.name != "config.py")
    for name, section in vars(Config()).items():
        for f in dataclasses.fields(section):
            assert re.search(rf"\.{f.name}\b", source), f"{name}.{f.name} is never read"


def test_removed_keys_load_at_their_only_value_and_are_errors_otherwise():
    old = Config().to_dict()
    old["model"].update(ramps=0.25, mouth=True, fine_ramps=True, no_input_levels=1, reference=False)
    old["loss"].update(l2_weight=0.0, gram_layers={"conv2_2": 1.0}, l1_low_factor=8)
    old["train"]["cache_targets"] = True
    assert config_from_dict(old) == Config()  # an older run's config.yaml still resumes
    with pytest.raises(PuppetError, match="'loss.l2_weight' was removed"):
        load_config(overrides=["loss.l2_weight=1"])
    with pytest.raises(PuppetError, match="'model.ramps' was removed"):
        load_config(overrides=["model.ramps=0"])


def test_without_target_clip_drops_what_needs_the_clips_landmarks():
    from puppet.config import without_target_clip

    cfg = load_config()
    assert cfg.loss.parts_weight > 0 and "parts" in cfg.loss.warmup_weights
    out = without_target_clip(cfg)
    assert out.loss.parts_weight == 0.0
    assert out.loss.warmup_weights == {k: v for k, v in cfg.loss.warmup_weights.items() if k != "parts"}
    assert cfg.loss.parts_weight > 0  # the original is left as it was
