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
