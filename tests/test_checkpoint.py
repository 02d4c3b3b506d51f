"""Checkpoints: round trip, atomic write, clear errors for foreign, corrupted or old files."""

import pytest
import torch

from puppet.data.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from puppet.errors import PuppetError
from puppet.models.crn import CRN


def _save(path, **kw):
    m = CRN(6, 16, [4, 4])
    opt = torch.optim.Adam(m.parameters())
    m(torch.rand(1, 6, 16, 16)).mean().backward()
    opt.step()
    save_checkpoint(path, model=m, step=3, config={"a": 1}, meta={"lm": torch.zeros(2, 2)}, optimizer=opt, **kw)
    return m, opt


def test_round_trip(tmp_path):
    m, opt = _save(tmp_path / "c.pt")
    st = load_checkpoint(tmp_path / "c.pt")
    assert st["step"] == 3 and st["config"] == {"a": 1} and st["kind"] == "puppet"
    for k, v in m.state_dict().items():
        torch.testing.assert_close(st["model"][k], v)
    assert st["optimizer"]["state"]  # Adam moments saved
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp files left


def test_run_folder_resolves(tmp_path):
    _save(tmp_path / "checkpoint.pt")
    assert resolve_checkpoint(tmp_path) == tmp_path / "checkpoint.pt"
    with pytest.raises(PuppetError, match="no checkpoint in this run folder"):
        resolve_checkpoint(tmp_path / "sub" if (tmp_path / "sub").mkdir() is None else None)


def test_missing(tmp_path):
    with pytest.raises(PuppetError, match="model not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupted(tmp_path):
    _save(tmp_path / "c.pt")
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "c.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(PuppetError, match="corrupted or not a puppet checkpoint"):
        load_checkpoint(tmp_path / "c.pt")


def test_foreign_and_other_version(tmp_path):
    torch.save({"weights": torch.zeros(1)}, tmp_path / "f.pt")
    with pytest.raises(PuppetError, match="not a puppet checkpoint"):
        load_checkpoint(tmp_path / "f.pt")
    _save(tmp_path / "v.pt")
    st = torch.load(tmp_path / "v.pt", weights_only=True)
    st["version"] = 99
    torch.save(st, tmp_path / "v.pt")
    with pytest.raises(PuppetError, match="version 99 is not supported"):
        load_checkpoint(tmp_path / "v.pt")


# What each version's config held of the model's input settings (the keys it had, with the values of a
# typical model of its time), and the layout such a model has.
OLD_MODEL_SETTINGS = {
    1: ({}, {"lineless_levels": 0, "ramps": 0.0, "fine_ramps": False, "mouth": False}),
    2: ({"no_input_levels": 1}, {"lineless_levels": 1, "ramps": 0.0, "fine_ramps": False, "mouth": False}),
    3: ({"no_input_levels": 1, "ramps": 0.25}, {"lineless_levels": 1, "ramps": 0.25, "fine_ramps": False,
                                                 "mouth": False}),
    4: ({"no_input_levels": 1, "ramps": 0.25, "fine_ramps": True},
        {"lineless_levels": 1, "ramps": 0.25, "fine_ramps": True, "mouth": False}),
    5: ({"no_input_levels": 1, "ramps": 0.0, "fine_ramps": True, "mouth": True, "reference": False},
        {"lineless_levels": 1, "ramps": 0.0, "fine_ramps": True, "mouth": True}),
}


def _old_checkpoint(path, version, settings, layout):
    """A checkpoint as ``version`` wrote it: its model settings in the config, the loss and train keys of
    its time, no ``layout``."""
    from puppet.config import load_config
    from puppet.face.inputs import InputLayout
    from puppet.models import build_model

    cfg = load_config(overrides=["data.size=16", "model.widths=[4, 4]"])
    model = build_model(cfg, layout=InputLayout(**layout))
    config = cfg.to_dict()
    config["model"].update(settings)
    config["data"]["smooth_min_cutoff"] = 3.0
    config["loss"].update(l2_weight=0.0, l1_low_weight=0.0, l1_low_factor=8, gram_weight=0.0,
                          gram_layers={"conv2_2": 1.0})
    config["train"]["cache_targets"] = True
    save_checkpoint(path, model=model, step=1, config=config, meta={})
    st = torch.load(path, weights_only=True)
    st["version"] = version
    del st["layout"]
    torch.save(st, path)
    return model


@pytest.mark.parametrize("version", sorted(OLD_MODEL_SETTINGS))
def test_each_older_version_loads_with_the_inputs_it_was_trained_with(tmp_path, version):
    from puppet.config import config_from_dict
    from puppet.face.inputs import InputLayout
    from puppet.models import build_model

    settings, layout = OLD_MODEL_SETTINGS[version]
    model = _old_checkpoint(tmp_path / "old.pt", version, settings, layout)
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert loaded["layout"] == layout
    assert not set(settings) & set(loaded["config"]["model"])  # no longer user settings
    rebuilt = build_model(config_from_dict(loaded["config"]), layout=InputLayout.from_dict(loaded["layout"]))
    rebuilt.load_state_dict(loaded["model"])  # same architecture
    assert rebuilt.in_channels + rebuilt.dense_channels == model.in_channels + model.dense_channels


def test_current_version_records_its_layout(tmp_path):
    from puppet.config import config_from_dict, load_config
    from puppet.data.checkpoint import VERSION
    from puppet.face.inputs import InputLayout
    from puppet.models import build_model

    cfg = load_config(overrides=["data.size=16", "model.widths=[4, 4]"])
    save_checkpoint(tmp_path / "new.pt", model=build_model(cfg), step=1, config=cfg.to_dict(), meta={})
    loaded = load_checkpoint(tmp_path / "new.pt")
    assert loaded["version"] == VERSION == 6 and loaded["layout"] == InputLayout().to_dict()
    build_model(config_from_dict(loaded["config"]), layout=InputLayout(**loaded["layout"])).load_state_dict(
        loaded["model"])


def test_a_model_with_the_removed_warped_reference_is_refused_in_one_line(tmp_path):
    _old_checkpoint(tmp_path / "ref.pt", 5, {"no_input_levels": 1, "reference": True}, {})
    with pytest.raises(PuppetError, match="ref.pt: this model was trained with the warped reference"):
        load_checkpoint(tmp_path / "ref.pt")
