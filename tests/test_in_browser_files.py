"""What the app serves for the in-browser mode (demo/browser.py), checked without a browser."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -r requirements.txt)")

from demo.browser import ISOLATION_HEADERS, colour_tables, export_for_browser  # noqa: E402
from demo.photo import COLORMAPS  # noqa: E402
from depth.visualize import colorize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("colormap", COLORMAPS)
def test_a_colour_table_lookup_is_colorize(colormap):
    # what depth_web.js does: float32 (d - near) / (far - near), clipped, times N, truncated
    depth = np.random.default_rng(0).uniform(0.1, 8.0, (60, 80)).astype(np.float32)
    depth[0, :5] = [0.5, 5.0, 0.0, np.nan, 30.0]  # the ends, no reading, beyond far
    table = np.array(colour_tables([colormap])[colormap], np.uint8).reshape(-1, 3)
    scaled = np.clip(np.nan_to_num((depth - np.float32(0.5)) / np.float32(4.5)), 0, 1)
    looked_up = table[np.minimum((scaled * np.float32(len(table))).astype(int), len(table) - 1)]
    looked_up[~(np.isfinite(depth) & (depth > 0))] = 0
    assert np.array_equal(looked_up, colorize(depth, 0.5, 5.0, colormap))


def test_an_export_is_kept_for_the_same_weights_and_redone_for_others(small_model, tmp_path):
    first = export_for_browser(small_model, tmp_path)
    modified = first.stat().st_mtime_ns
    assert export_for_browser(small_model, tmp_path) == first and first.stat().st_mtime_ns == modified
    small_model.contrast = {"coarse": 1.5, "fine": 1.0}
    assert export_for_browser(small_model, tmp_path) != first
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".onnx", ".onnx"]  # no partial file left


def test_the_isolation_headers_are_the_ones_wasm_threads_need():
    assert ISOLATION_HEADERS["Cross-Origin-Opener-Policy"] == "same-origin"
    assert ISOLATION_HEADERS["Cross-Origin-Embedder-Policy"] == "require-corp"


def test_the_vendored_runtime_matches_its_checksums():
    done = subprocess.run([sys.executable, str(ROOT / "demo" / "web" / "refresh_vendor.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
