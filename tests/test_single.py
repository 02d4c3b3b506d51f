"""Single-image animation: training, the model drives animate, inputs identical to the renderer's."""

import json

import numpy as np
import pytest

from puppet.config import load_config
from puppet.data.checkpoint import load_checkpoint
from puppet.errors import PuppetError
from puppet.face.inputs import InputLayout
from puppet.train.single import driver_edges, train_single_image
from tests.conftest import MEDIA, ROOT, need_shared


def _cfg(*extra):
    return load_config(ROOT / "configs" / "tiny.yaml", ["train.vgg_weights=random", "train.steps=3",
                                                        "loss.cx_warmup_steps=1", *extra], loss_preset="single")


def test_single_image_training_and_animation(tmp_path, media):
    from puppet.render.animate import animate

    image = need_shared(MEDIA / "images" / "einstein.jpg")
    driver = need_shared(MEDIA / "drivers" / "smile_man_short.mp4")
    res = train_single_image(image, driver, tmp_path / "run", _cfg())
    st = load_checkpoint(tmp_path / "run")
    assert st["kind"] == "single-image" and st["step"] == res.step == 3
    assert st["meta"]["neutral_crop"].shape == (32, 32, 3)
    assert (tmp_path / "run" / "samples" / "latest.png").is_file()
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "cx_s" in lines[-1] and "cx" in lines[-1]  # both CX terms active after the warm-up
    stats = animate(driver, tmp_path / "run", tmp_path / "out.mp4", panel=64, max_frames=6)
    assert stats.frames == 6


def test_training_edges_equal_what_the_renderer_draws(tmp_path, media):
    from puppet.data.video import probe
    from puppet.render.animate import prepare_driver
    from puppet.render.renderer import Renderer

    image = need_shared(MEDIA / "images" / "einstein.jpg")
    driver = need_shared(MEDIA / "drivers" / "smile_man_short.mp4")
    cfg = _cfg("train.steps=1")
    # a portrait run switches the parts term off (no clip landmarks to mask), as the saved config says
    train_single_image(image, driver, tmp_path / "run", cfg)
    st = load_checkpoint(tmp_path / "run")
    assert st["config"]["loss"]["parts_weight"] == 0.0
    trained_on = driver_edges(driver, st["meta"]["neutral_landmarks"].numpy(), cfg, InputLayout())
    renderer = Renderer(st, device="cpu")
    filled, _ = prepare_driver(renderer.driver, driver, cfg.data.max_frames)
    fps = probe(driver, audio=False).fps
    drawn = np.stack([renderer.edges(lm, i / fps) for i, lm in enumerate(filled)])
    assert trained_on.shape == drawn.shape == (cfg.data.max_frames, 13, 32, 32)  # edge maps, ramps, mouth
    assert trained_on.any()
    np.testing.assert_array_equal(trained_on, drawn)


def test_single_image_without_face(tmp_path, media):
    from puppet.utils import write_image

    blank = tmp_path / "blank.png"
    write_image(blank, np.full((64, 64, 3), 128, np.uint8))
    with pytest.raises(PuppetError, match="blank.png: no face found in the image"):
        train_single_image(blank, MEDIA / "drivers" / "smile_man_short.mp4", tmp_path / "run", _cfg())
    assert not (tmp_path / "run").exists()  # inputs are checked before the run folder is made
