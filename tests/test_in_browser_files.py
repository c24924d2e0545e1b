"""What the app serves for the in-browser mode (demo/browser.py), checked without a browser."""

import logging
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -r requirements.txt)")

import depth.onnx_export  # noqa: E402
from demo import ui  # noqa: E402
from demo.browser import ISOLATION_HEADERS, BrowserFiles, browser_key, colour_tables, export_for_browser  # noqa: E402
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


@pytest.fixture
def exports(monkeypatch):
    """The exports done, counted: depth.onnx_export.export_onnx's calls."""
    done = []
    export = depth.onnx_export.export_onnx

    def counted(model, path, compact=True):
        done.append(Path(path))
        return export(model, path, compact)

    monkeypatch.setattr(depth.onnx_export, "export_onnx", counted)
    return done


def test_the_app_exports_nothing_until_a_page_asks_then_once(small_model, tmp_path, exports):
    app = ui.build_app(small_model, onnx_folder=tmp_path / "onnx")
    assert exports == [] and not (tmp_path / "onnx").exists()  # built, and served, without exporting
    config = app.browser_files.config(COLORMAPS)
    address = config["networks"]["paper network"]["url"]
    assert address == f"/depth-in-browser/{browser_key(small_model)}.onnx" and "bytes" not in config["networks"]
    ui.serve(app, prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        assert exports == []
        with ThreadPoolExecutor(3) as pool:  # three pages at once: one export, the same file for all
            answers = list(pool.map(lambda _: httpx.get(app.local_url.rstrip("/") + address, timeout=120), range(3)))
        assert len(exports) == 1 and [answer.status_code for answer in answers] == [200] * 3
        file = tmp_path / "onnx" / f"{browser_key(small_model)}.onnx"
        assert all(answer.content == file.read_bytes() for answer in answers)
        assert answers[0].headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert answers[0].headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert httpx.get(app.local_url.rstrip("/") + "/depth-in-browser/0123456789.onnx").status_code == 404
    finally:
        app.close()
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == [file.name]  # no partial file left


def test_a_failed_export_is_a_503_with_the_reason_and_one_line_in_the_log(small_model, tmp_path, monkeypatch,
                                                                         caplog):
    calls = []

    def fail(model, path, compact=True):
        calls.append(path)
        Path(path).write_bytes(b"half a file")
        raise RuntimeError("No space left on device")

    monkeypatch.setattr(depth.onnx_export, "export_onnx", fail)
    files = BrowserFiles({"paper network": small_model}, tmp_path)
    with caplog.at_level(logging.WARNING, logger="demo.browser"):
        answers = [files.respond(files.keys["paper network"]) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [503, 503] and len(calls) == 1  # not tried again
    # the page is told what happened, the log why (the page gets no server paths)
    assert answers[0].body.decode() == "the server could not prepare the paper network for the browser; its log says why"
    [record] = caplog.records
    assert record.exc_info is None and "No space left on device" in record.getMessage()
    assert "runs it on the server only" in record.getMessage()
    assert list(tmp_path.iterdir()) == []  # nothing that looks like a finished file, no partial one


def test_without_the_exporter_the_webcam_tab_is_server_only(small_model, monkeypatch):
    monkeypatch.setattr(ui, "missing_exporter", lambda: "the onnx package is not installed")
    with pytest.warns(UserWarning, match="runs on the server only: the onnx package is not installed"):
        app = ui.build_app(small_model)
    assert app.browser_files is None
    assert not [block for block in app.blocks.values() if getattr(block, "elem_id", None) == "webcam-browser"]
