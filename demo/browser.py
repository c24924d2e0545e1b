"""Depth in the visitor's browser: what the app serves so a page can run the networks itself.

The webcam tab's "Run in this browser" (demo/web/depth_web.js) fetches each network once as an
ONNX file (depth.onnx_export) from the app's route ROUTE/<key>.onnx (`BrowserFiles`). Nothing is
exported when the app starts: a network's file is exported the first time a page asks for it
(about half a minute on a 2-core CPU, while the page says the model is being prepared) and kept
in a cache folder under a hash of the weights, contrast and exporter (`browser_key`), so a
restart, and every later visitor, gets it at once. The page runs it with onnxruntime-web
(vendored in demo/web/vendor/, the app's static files, gr.set_static_paths) and colours the
maps with the server's colormaps, sent as lookup tables: it fetches nothing from anywhere else,
and in that mode it sends the server no frames. When an export fails, the route answers 503
with the reason, the log gets one line, and the page falls back to the server's camera.

WebAssembly threads need a cross-origin isolated page: `ISOLATION_HEADERS` are the response
headers that make it so (`serve` adds them to every response of the app; on a Hugging Face
Space the README's `custom_headers` set them). Without them the page runs on one thread.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gradio as gr
import matplotlib
import numpy as np
import torch
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute

from depth import DepthModel

WEB = Path(__file__).resolve().parent / "web"
VENDOR = WEB / "vendor" / "onnxruntime-web"
SCRIPT = WEB / "depth_web.js"
CACHE = Path(tempfile.gettempdir()) / "eigen-depth-onnx"  # exported files, reused across restarts
EXPORT_VERSION = "1"  # part of each file's key: bump when depth.onnx_export changes its graphs
ROUTE = "/depth-in-browser"  # the app's address for the networks' files: ROUTE/<key>.onnx
# a file's address names its contents (the key): browsers may keep it for good
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    # others may still embed or link the app's files (a Space's page shows it in a frame)
    "Cross-Origin-Resource-Policy": "cross-origin",
}
log = logging.getLogger(__name__)


def url(path: Path) -> str:
    """The address at which the app serves `path`, one of its static files."""
    return f"/gradio_api/file={path.resolve()}"


def browser_key(model: DepthModel) -> str:
    """The name of `model`'s ONNX file: a hash of its weights, contrast, default output,
    description and EXPORT_VERSION (a fraction of a second for the shipped networks)."""
    digest = hashlib.sha256(EXPORT_VERSION.encode())
    for name, tensor in sorted(model.net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    digest.update(json.dumps([model.contrast, model.output, model.describe()]).encode())
    return digest.hexdigest()[:20]


def export_for_browser(model: DepthModel, folder: Path = CACHE) -> Path:
    """`model`'s compact ONNX file in `folder`, exported unless a file for the same weights,
    contrast and exporter is already there (the name is `browser_key`)."""
    return _export(model, Path(folder) / f"{browser_key(model)}.onnx")


def _export(model: DepthModel, path: Path) -> Path:
    """`path`, exported from `model` unless it is there. The export reads a CPU copy of the
    network, so the served one keeps its device and keeps answering meanwhile."""
    if path.is_file():
        return path
    from depth.onnx_export import export_onnx  # onnx and onnxruntime only where this runs

    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own per process and thread: a killed export never leaves a file that looks
    # finished, and two processes exporting at once never write into the same file
    partial = path.with_name(f"{path.stem}-{os.getpid()}-{threading.get_ident()}.partial")
    copied = copy.copy(model)
    copied.net = copy.deepcopy(model.net).to("cpu")
    copied.device = torch.device("cpu")
    try:
        export_onnx(copied, partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def missing_exporter() -> str | None:
    """Why this machine cannot export the networks (a package it lacks), else None; found
    without importing them."""
    for package in ("onnx", "onnxruntime"):
        if importlib.util.find_spec(package) is None:
            return f"the {package} package is not installed (pip install -r requirements.txt)"
    return None


def colour_tables(colormaps: list[str]) -> dict[str, list[int]]:
    """{colormap: its N colours as flat [r, g, b, ...] uint8 values}: what depth.visualize.colorize
    looks up for a value x in [0, 1] is entry min(int(x N), N - 1) (matplotlib's rule)."""
    tables = {}
    for name in colormaps:
        cmap = matplotlib.colormaps[name]
        tables[name] = (cmap(np.arange(cmap.N))[:, :3] * 255).round().astype(np.uint8).ravel().tolist()
    return tables


class BrowserFiles:
    """The networks' ONNX files for the page, each exported the first time a page asks for it.

    Building this exports nothing: it only hashes each network's weights (`browser_key`) for
    the file's address. `routes()` is the app's route that answers ROUTE/<key>.onnx: the file,
    exported into `folder` first where it is missing (one export per file at a time, however
    many pages ask), or 503 with the reason when the export fails. A failed export is not tried
    again until the app restarts: every visitor would wait for it to fail once more.
    """

    def __init__(self, networks: Mapping[str, DepthModel], folder: Path = CACHE) -> None:
        self.folder = Path(folder)
        self.keys = {name: browser_key(model) for name, model in networks.items()}
        self.models = {self.keys[name]: (name, model) for name, model in networks.items()}
        self._locks = {key: threading.Lock() for key in self.models}
        self._failed: dict[str, str] = {}

    def config(self, colormaps: list[str]) -> dict[str, Any]:
        """What the page's script needs, JSON-ready: each network's file (address, default
        output), the runtime's folder, the colour tables. Makes the runtime and the script
        static files of the app."""
        gr.set_static_paths([VENDOR, SCRIPT])
        return {
            "networks": {name: {"url": f"{ROUTE}/{key}.onnx", "output": self.models[key][1].output}
                         for name, key in self.keys.items()},
            "runtime": url(VENDOR) + "/",
            "colormaps": colour_tables(colormaps),
        }

    def prepare(self, key: str) -> Path:
        """The file for `key`, exported now if it is missing. Raises RuntimeError, with the
        reason, when the export fails (now or earlier in this process)."""
        name, model = self.models[key]
        with self._locks[key]:
            if key not in self._failed:
                try:
                    return _export(model, self.folder / f"{key}.onnx")
                except Exception as error:  # whatever the exporter raised: the server path still works
                    # one line in the log, no traceback; the page is told less (no server paths)
                    log.warning("exporting the %s for the browser failed (%s: %s); the webcam tab runs it on the "
                                "server only", name, type(error).__name__, error)
                    self._failed[key] = f"the server could not prepare the {name} for the browser; its log says why"
            raise RuntimeError(self._failed[key])

    def respond(self, key: str) -> Response:
        """GET ROUTE/<key>.onnx: the file, else 404 (no such network) or 503 (its export failed)."""
        if key not in self.models:
            return PlainTextResponse("no network of this app has that file", status_code=404)
        try:
            path = self.prepare(key)
        except RuntimeError as error:
            return PlainTextResponse(str(error), status_code=503)
        return FileResponse(path, media_type="application/octet-stream", headers=IMMUTABLE)

    def routes(self) -> list[APIRoute]:
        """The app's route for the files (a plain function: FastAPI runs it in its thread pool,
        so an export never holds up the app's other requests)."""
        return [APIRoute(ROUTE + "/{key}.onnx", self.respond, methods=["GET"], include_in_schema=False)]


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
