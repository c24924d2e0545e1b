"""The whole app: a header naming the weights (and a choice of network), the photo tab, the
webcam tab and the "How it works" tab."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import http_server
from starlette.middleware import Middleware

from depth import DepthModel

from .browser import CACHE, BrowserFiles, CrossOriginIsolation, missing_exporter
from .classroom import Classroom, classroom_tab
from .examples import Examples
from .networks import as_networks
from .outputs import OutputFolders
from .photo import COLORMAPS, PhotoDepth, photo_tab
from .webcam import webcam_tab

TITLE = "Depth from a single image (Eigen et al. 2014)"
# Gradio's own cached images (every webcam frame is one): swept every 10 minutes, an hour old
DELETE_CACHE = (600, 3600)
MAX_UPLOAD = "100mb"  # a 50-megapixel PNG photo (the library's limit) fits; larger never decodes
QUEUE = {"default_concurrency_limit": 2, "max_size": 64}
CSS = """
#untrained { background: #b00020; color: white; padding: 0.6em 1em; border-radius: 8px; }
#untrained * { color: white !important; margin: 0; }
"""


def build_app(
    models: DepthModel | Mapping[str, DepthModel], examples: Examples | None = None,
    folders: OutputFolders | None = None, in_browser: bool = True, onnx_folder: Path = CACHE,
) -> gr.Blocks:
    """The UI around one loaded model, or several by name ({name: model}, the first the default):
    with several, a choice of network heads the page and every endpoint takes its name.

    examples: the example frames with ground truth (default: assets/examples).
    folders: where output files go (default: a bounded folder in Gradio's cache).
    in_browser: offer the webcam tab's "Run in this browser". Nothing is exported here: `serve`
    adds the route that exports a network's ONNX file into `onnx_folder` when a page first asks
    for it (demo.browser.BrowserFiles), and `app.browser_files` is that object (None without it).
    """
    networks = as_networks(models)
    files = None
    if in_browser:
        if missing := missing_exporter():  # the server path still works
            warnings.warn(f"the webcam tab runs on the server only: {missing}", stacklevel=2)
        else:
            files = BrowserFiles(networks, onnx_folder)
    examples = examples if examples is not None else Examples()
    folders = folders if folders is not None else OutputFolders()
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=DELETE_CACHE) as app:
        gr.Markdown(f"# {TITLE}\nA single photo in, metric depth out: the coarse network sees the whole "
                    "scene, the fine network refines it locally ([Eigen, Puhrsch & Fergus, NIPS 2014]"
                    "(https://arxiv.org/abs/1406.2283)).")
        for name, model in networks.items():
            weights = f"**{name}:** {model.describe()} · running on {model.device.type.upper()}"
            if model.trained:
                gr.Markdown(weights, elem_id="weights")
            else:
                gr.Markdown(f"## ⚠️ {weights}", elem_id="untrained")
        network = gr.Radio(list(networks), value=next(iter(networks)), label="Network", elem_id="network",
                           visible=len(networks) > 1,
                           info="the paper's coarse layers, or an EfficientNet-Lite0 pretrained on ImageNet in "
                                "their place, whose middle stages its fine network reads too")
        with gr.Tabs():
            with gr.Tab("Photo", id="photo-tab") as photo:
                upload = photo_tab(PhotoDepth(networks, examples, folders), network)
            with gr.Tab("Webcam", id="webcam-tab") as webcam:
                webcam_tab(networks, network, browser=files.config(COLORMAPS) if files else None)
            with gr.Tab("How it works", id="classroom-tab") as classroom:
                showing = classroom_tab(Classroom(networks, examples), network, upload, classroom)
        for other in (photo, webcam):  # the classroom tab re-runs the network only while it is open
            other.select(lambda: False, None, showing, queue=False, api_visibility="private")
    app.browser_files = files
    return app


def serve(app: gr.Blocks, **launch: Any) -> gr.Blocks:
    """Queue and launch `app` with the app's settings; `launch` adds or overrides
    gr.Blocks.launch arguments (server_name, server_port, prevent_thread_lock, quiet, ...).

    The app gets the cross-origin isolation headers and, with the in-browser mode, the route
    that exports and serves the networks' ONNX files on demand (demo.browser.BrowserFiles).
    Unless quiet, the last start-up line says where the app is: Gradio takes the next free port
    when the one asked for (GRADIO_SERVER_PORT, default 7860) is busy."""
    keep_serving = not launch.pop("prevent_thread_lock", False)
    # cross-origin isolated, so the in-browser mode may run WebAssembly on several threads
    server = {"middleware": [Middleware(CrossOriginIsolation)]}
    if files := getattr(app, "browser_files", None):  # the in-browser mode's ONNX files, exported on demand
        server["routes"] = files.routes()
    app.queue(**QUEUE).launch(**{"css": CSS, "max_file_size": MAX_UPLOAD, "app_kwargs": server, **launch,
                                 "prevent_thread_lock": True})
    if not launch.get("quiet"):
        print(served_address(app.server_port, launch.get("server_port")), flush=True)
    if keep_serving:
        app.block_thread()
    return app


def served_address(port: int, asked: int | None = None) -> str:
    """The start-up line naming the address the app serves on, and why when it is not the one asked for."""
    asked = asked or http_server.INITIAL_PORT_VALUE  # GRADIO_SERVER_PORT as Gradio read it, else 7860
    moved = "" if port == asked else f" (port {asked} was busy; set GRADIO_SERVER_PORT to choose another)"
    return f"The app is ready: open http://localhost:{port} in a browser{moved}"
