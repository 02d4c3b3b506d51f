"""Checkpoints: round trip, atomic write, clear errors for foreign, corrupted or old files."""

import pytest
import torch

from puppet.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
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


@pytest.mark.parametrize("version, missing", [
    (1, {"no_input_levels": 0, "ramps": 0.0, "fine_ramps": False, "mouth": False}),  # the edge map at every scale
    (2, {"ramps": 0.0, "fine_ramps": False, "mouth": False}),  # version 2: the edge map alone
    (3, {"fine_ramps": False, "mouth": False}),  # version 3: the ramps only where the lines go
    (4, {"mouth": False}),  # version 4: no mouth channel
])
def test_older_versions_load_with_the_settings_they_were_trained_with(tmp_path, version, missing):
    from puppet.config import config_from_dict, load_config
    from puppet.models import build_model

    cfg = load_config(overrides=["data.size=16", "model.widths=[4, 4]"]).to_dict()
    m = build_model(config_from_dict({**cfg, "model": {**cfg["model"], **missing}}))
    for key in missing:
        del cfg["model"][key]  # written before the setting existed
    save_checkpoint(tmp_path / "old.pt", model=m, step=1, config=cfg, meta={})
    st = torch.load(tmp_path / "old.pt", weights_only=True)
    st["version"] = version
    torch.save(st, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert {k: loaded["config"]["model"][k] for k in missing} == missing
    build_model(config_from_dict(loaded["config"])).load_state_dict(loaded["model"])  # same architecture
