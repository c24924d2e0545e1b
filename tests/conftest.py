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
def small_model(small_net):
    """small_net as a trained-looking DepthModel on the CPU (what the app's handlers run)."""
    from depth.predict import DepthModel

    return DepthModel(small_net, device="cpu", info={"trained": True, "trained_on": "tests"})


@pytest.fixture(scope="session")
def onnx_folder(tmp_path_factory) -> Path:
    """The in-browser ONNX files' folder for the whole session (demo.browser.export_for_browser,
    and the app's on-demand route): tests/test_onnx.py and the app in tests/test_browser_depth.py
    share it, so each network is exported once per session, by whichever asks first."""
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture
def photo() -> np.ndarray:
    """A 480x640 RGB uint8 test picture with structure in both directions."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    base = np.stack([x * 255 // 639, y * 255 // 479, (x + y) % 256], axis=-1)
    return np.clip(base + rng.integers(-10, 10, base.shape), 0, 255).astype(np.uint8)


def write_learnable_folder(folder: Path, frames: int, seed: int) -> Path:
    """A small 320x240 RGB-D folder dataset whose depth a network can learn from the image:
    a wall at a random distance receding upwards, brightness falling with depth."""
    from depth.data.folder import write_frame, write_manifest

    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:240, 0:320]
    entries = []
    for index in range(frames):
        depth = rng.uniform(1, 5) * (1 + 0.5 * (240 - v) / 240) * (1 + 0.1 * np.sin(u / 30 + index))
        grey = np.clip(255 * (1 - depth / 9) + rng.normal(0, 8, depth.shape), 0, 255)
        image = np.stack([grey, grey * 0.9, grey * 0.8], -1).astype(np.uint8)
        entries.append(write_frame(folder, f"frame{index:03d}", image, depth, (259.4, 259.7, 162.8, 126.9)))
    write_manifest(folder, entries)
    return folder


@pytest.fixture(scope="session")
def learnable_folders(tmp_path_factory) -> tuple[Path, Path]:
    """(train, val) folders of write_learnable_folder frames."""
    root = tmp_path_factory.mktemp("learnable")
    return write_learnable_folder(root / "train", 16, 0), write_learnable_folder(root / "val", 4, 1)
