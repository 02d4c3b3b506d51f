import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MEDIA = SHARED / "media"
VGG16_HED = SHARED / "weights" / "vgg16_hed_bsds500.pth"

# Tests never download and never depend on a user's torch hub cache.
os.environ.setdefault("TORCH_HOME", str(ROOT / ".pytest_cache" / "torch_home"))


def need_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not present (tests with real media need ../shared beside the checkout)")
    return path


@pytest.fixture
def media():
    return need_shared(MEDIA)


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.manual_seed(0)


@pytest.fixture(scope="session")
def glasses_data(tmp_path_factory):
    """glasses_man's first frames extracted once per test session with the tiny config's data settings
    (MediaPipe on every frame is the slow part of a tiny training run)."""
    from puppet.config import load_config
    from puppet.data.dataset import extract

    video = need_shared(MEDIA / "targets" / "glasses_man.mp4")
    out = tmp_path_factory.mktemp("extractions") / "glasses_man"
    extract(video, out, load_config(ROOT / "configs" / "tiny.yaml").data)
    return out


@pytest.fixture
def seed_run(glasses_data):
    """run folder -> the same folder holding glasses_man's shared extraction, which training with the
    tiny config's data settings reuses instead of extracting the clip again."""
    import shutil

    def seed(run: Path) -> Path:
        shutil.copytree(glasses_data, run / "data")
        return run

    return seed


@pytest.fixture(scope="session")
def tiny_run(glasses_data):
    """A tiny model trained for 4 steps on the first 24 frames of a real target clip."""
    import shutil

    from puppet.config import load_config
    from puppet.train.target import train

    run = glasses_data.parent.parent / "runs" / "tiny"
    shutil.copytree(glasses_data, run / "data")
    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["train.vgg_weights=random"])
    train(MEDIA / "targets" / "glasses_man.mp4", run, cfg)
    return run


def make_video(path, frames, fps=25.0, audio_from=None):
    """Write RGB uint8 frames to an mp4 with puppet's own writer."""
    from puppet.data.video import VideoWriter

    with VideoWriter(path, fps, audio_from=audio_from, duration=len(frames) / fps) as w:
        for f in frames:
            w.write(f)
    return path


def add_sine_audio(video, out, seconds=2.0):
    """Copy ``video`` with a 440 Hz tone as its audio track (ffmpeg from imageio-ffmpeg)."""
    import subprocess

    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(video),
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-t", str(seconds), str(out)],
                   check=True)
    return out


def interrupt_after_checkpoint(cmd, run, timeout=120):
    """Run ``cmd`` (a puppet command line, as a list), press Ctrl-C once ``run``/checkpoint.pt exists;
    returns (exit code, stdout, stderr)."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "puppet", *map(str, cmd)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while not (Path(run) / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err
