"""The lent-GPU recipe (puppet.tools.gpu_run), run end to end on the CPU."""

import json

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_gpu_run_prepares_trains_and_brings_back_few_files(tmp_path, media):
    """The lent-GPU recipe end to end on the CPU: a job folder, two variants, at most 8 files back
    (the device tool's limit), and the best variant's model joined again from its pieces."""
    from puppet.data.checkpoint import load_checkpoint
    from puppet.data.video import read_frames
    from puppet.tools import gpu_run
    from tests.conftest import make_video

    clip = make_video(tmp_path / "clip.mp4", list(read_frames(media / "targets" / "glasses_man.mp4", 12)))
    job, out = tmp_path / "job", tmp_path / "out"
    gpu_run.prepare(clip, job, str(ROOT / "configs" / "tiny.yaml"))
    assert sorted(p.name for p in job.iterdir()) == ["clip.mp4", "clip.selection.npz", "vgg16_fp16.pth"]
    out.mkdir()
    gpu_run.train(job, out, 1.0, str(ROOT / "configs" / "tiny.yaml"),
                  ["a=--steps,2", "b=--steps,3,--set,train.lr=0.0002"], tmp_path / "runs", device="cpu")
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["parts/model.pt.00", "samples.png", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert [summary[n]["rc"] for n in "ab"] == [0, 0]
    assert [summary[n]["last"]["step"] for n in "ab"] == [2, 3]
    assert "lr: 0.0002" in summary["b"]["config"] and summary["a"]["log_tail"]
    best = max("ab", key=lambda n: summary[n]["last"]["val_psnr"])
    gpu_run.join(out / "parts", tmp_path / "joined" / "checkpoint.pt", target=clip)
    state = load_checkpoint(tmp_path / "joined" / "checkpoint.pt")
    assert state["step"] == summary[best]["last"]["step"]
    manifest = json.loads((tmp_path / "joined" / "data" / "manifest.json").read_text())  # for puppet eval
    assert manifest["settings"]["size"] == state["config"]["data"]["size"] == 32


def test_gpu_run_refuses_a_config_that_chooses_its_crop(tmp_path):
    """crop_mode auto extracts in its trials, which the GPU machine (no MediaPipe) cannot."""
    from puppet.tools import gpu_run
    job = tmp_path / "job"
    job.mkdir()
    (job / "clip.mp4").write_bytes(b"")
    with pytest.raises(SystemExit, match="crop_mode auto"):
        gpu_run.train(job, tmp_path / "out", 1.0, str(ROOT / "configs" / "default.yaml"), ["a="], tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
