from pathlib import Path

import numpy as np
import pytest
import torch

from depth import EigenDepthNet, ModelConfig

REAL_RGBD = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-rgbd"


@pytest.fixture
def small_net() -> EigenDepthNet:
    """The paper's network with a narrow fully connected layer: same maps, fast to build."""
    torch.manual_seed(0)
    return EigenDepthNet(ModelConfig(fc_width=32)).eval()


@pytest.fixture
def photo() -> np.ndarray:
    """A 480x640 RGB uint8 test picture with structure in both directions."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    base = np.stack([x * 255 // 639, y * 255 // 479, (x + y) % 256], axis=-1)
    return np.clip(base + rng.integers(-10, 10, base.shape), 0, 255).astype(np.uint8)
