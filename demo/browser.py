"""Depth in the visitor's browser: what the app serves so a page can run the networks itself.

The webcam tab's "Run in this browser" (demo/web/depth_web.js) fetches each network once as an
ONNX file (depth.onnx_export, exported here when the app starts and kept in a cache folder
keyed by the weights), runs it with onnxruntime-web (vendored in demo/web/vendor/) and colours
the maps with the server's colormaps, sent as lookup tables. Every one of these files is the
app's own static file (gr.set_static_paths): the page fetches nothing from anywhere else, and
in that mode it sends the server no frames.

WebAssembly threads need a cross-origin isolated page: `ISOLATION_HEADERS` are the response
headers that make it so (`serve` adds them to every response of the app; on a Hugging Face
Space the README's `custom_headers` set them). Without them the page runs on one thread.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gradio as gr
import matplotlib
import numpy as np

from depth import DepthModel

WEB = Path(__file__).resolve().parent / "web"
VENDOR = WEB / "vendor" / "onnxruntime-web"
SCRIPT = WEB / "depth_web.js"
CACHE = Path(tempfile.gettempdir()) / "eigen-depth-onnx"  # exported files, reused across restarts
EXPORT_VERSION = "1"  # part of each file's key: bump when depth.onnx_export changes its graphs
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    # others may still embed or link the app's files (a Space's page shows it in a frame)
    "Cross-Origin-Resource-Policy": "cross-origin",
}


def url(path: Path) -> str:
    """The address at which the app serves `path`, one of its static files."""
    return f"/gradio_api/file={path.resolve()}"


def export_for_browser(model: DepthModel, folder: Path = CACHE) -> Path:
    """`model`'s compact ONNX file in `folder`, exported unless a file for the same weights,
    contrast and exporter is already there (the name is a hash of them)."""
    digest = hashlib.sha256(EXPORT_VERSION.encode())
    for name, tensor in sorted(model.net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    digest.update(json.dumps([model.contrast, model.output, model.describe()]).encode())
    path = folder / f"{digest.hexdigest()[:20]}.onnx"
    if not path.is_file():
        from depth.onnx_export import export_onnx  # onnx and onnxruntime only where this runs

        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        export_onnx(model, partial)
        partial.replace(path)  # a killed export never leaves a file that looks finished
    return path


def colour_tables(colormaps: list[str]) -> dict[str, list[int]]:
    """{colormap: its N colours as flat [r, g, b, ...] uint8 values}: what depth.visualize.colorize
    looks up for a value x in [0, 1] is entry min(int(x N), N - 1) (matplotlib's rule)."""
    tables = {}
    for name in colormaps:
        cmap = matplotlib.colormaps[name]
        tables[name] = (cmap(np.arange(cmap.N))[:, :3] * 255).round().astype(np.uint8).ravel().tolist()
    return tables


def browser_config(networks: Mapping[str, DepthModel], colormaps: list[str], folder: Path = CACHE) -> dict[str, Any]:
    """What the page's script needs, JSON-ready: each network's ONNX file (address, bytes,
    default output), the runtime's folder, the colour tables. Exports what is missing and
    makes all of it static files of the app."""
    files = {name: export_for_browser(model, folder) for name, model in networks.items()}
    gr.set_static_paths([VENDOR, SCRIPT, *files.values()])
    return {
        "networks": {name: {"url": url(path), "bytes": path.stat().st_size, "output": networks[name].output}
                     for name, path in files.items()},
        "runtime": url(VENDOR) + "/",
        "colormaps": colour_tables(colormaps),
    }


class CrossOriginIsolation:
    """ASGI middleware: ISOLATION_HEADERS on every HTTP response, so the page may use
    SharedArrayBuffer and so WebAssembly threads."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (key.lower().encode(), value.encode()) for key, value in ISOLATION_HEADERS.items()
                    if key.lower().encode() not in present]
            await send(message)

        await self.app(scope, receive, with_headers)
