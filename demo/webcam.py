"""The webcam tab: live depth from the browser's camera.

Per frame the server does only what it must: model.predict on the frame (the network at batch
1 is most of the time) and one colorize over a fixed range, so the colours mean the same
metres from frame to frame instead of flickering with each frame's own range. No point cloud,
no files of our own; the output is sent as JPEG, the cheapest encoding. The network runs the
paper's single pass here (`live`): flip averaging doubles the network's work for a small gain
that a live preview does not show, and with it the handler falls under the 15 frames/s the tab
aims for on the project's 2-core CPU (docs/benchmarks.md, "The app").

A frame is never worked on at more than FRAME_SIDE pixels a side (the network sees 304x228
anyway): bigger ones are scaled down first. The API endpoint takes a file, whose size is
read from its header, so an absurd frame is refused before it is decoded.
"""

from __future__ import annotations

import copy
import json
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from depth import DepthModel
from depth.images import load_rgb
from depth.visualize import DEFAULT_COLORMAP, colorize, colour_bar

from .browser import SCRIPT, url
from .networks import as_networks, choose
from .outputs import OutputFolders, write_rgb
from .photo import COLORMAPS, LIMITS, user_errors
from .views import colour_range, working_size

DEFAULT_NEAR, DEFAULT_FAR = 0.5, 5.0  # metres: a room seen from a desk
STREAM_EVERY = 0.05  # s between frames the browser may send (it sends the next once the last is back)
TIME_LIMIT = 120  # s of processing per stream, so one viewer cannot hold a slot for ever
CONCURRENCY = 2  # webcam streams served at once, in their own group (photo users are not starved)
# Ask the camera for 640x480 (the NYU frame) instead of Gradio's default of up to 1920x1440:
# the network sees 304x228 anyway, and a big frame only costs decoding, resampling and encoding.
CAMERA = {"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}
FRAME_SIDE = 640  # pixels: the longest side a frame is worked on at
MAX_FRAME_PIXELS = 12_000_000  # a 4K camera's 8.3 MP fits; more is no webcam frame
# The in-browser mode's elements; demo/web/depth_web.js finds them by id and runs them.
BROWSER_PANEL = """
<div id="browser-panel">
  <button id="browser-toggle" class="lg secondary" type="button">Run in this browser</button>
  <span id="browser-status"></span>
  <div style="display: flex; gap: 8px; margin-top: 6px;">
    <video id="browser-camera" playsinline muted style="width: 50%;"></video>
    <canvas id="browser-depth" style="width: 50%;"></canvas>
  </div>
</div>
"""


@dataclass
class FrameRate:
    """Frames per second of one stream over its last `window` frames; a pause longer than
    `gap` seconds (a stopped and restarted stream) starts the count afresh."""

    window: int = 10
    gap: float = 2.0
    times: deque[float] = field(default_factory=deque)

    def tick(self, now: float) -> float | None:
        """Record a frame finished at `now` (seconds); the rate so far, None until two frames."""
        if self.times and now - self.times[-1] > self.gap:
            self.times.clear()
        self.times.append(now)
        while len(self.times) > self.window:
            self.times.popleft()
        if len(self.times) < 2:
            return None
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


def webcam_depth(
    model: DepthModel, frame: np.ndarray | str | Path, near: float, far: float, colormap: str = DEFAULT_COLORMAP,
    rate: FrameRate | None = None,
) -> tuple[np.ndarray, str, FrameRate]:
    """One frame, (H, W, 3) uint8 RGB or an image file, in -> (h, w, 3) uint8 colour depth over
    [near, far] metres at the frame's working size (at most FRAME_SIDE a side), a Markdown
    status line (frames/s, model time, device, size), and the updated rate.

    Raises ValueError for a bad frame (not an image, empty, tiny, or over MAX_FRAME_PIXELS,
    which a file's header tells before decoding) or range.
    """
    rate = rate if rate is not None else FrameRate()
    near, far = colour_range([], (near, far))
    start = time.perf_counter()
    name = Path(frame).name if isinstance(frame, (str, Path)) else "webcam frame"
    rgb = load_rgb(frame, name=name, max_pixels=MAX_FRAME_PIXELS)
    height, width = rgb.shape[:2]
    working = working_size(width, height, FRAME_SIDE)
    if working != (width, height):  # only pixels the network would never see
        rgb = np.asarray(Image.fromarray(rgb).resize(working, Image.Resampling.BILINEAR, reducing_gap=2.0))
    depth = model.predict(rgb).depth  # the default output (coarse + fine, or coarse)
    model_ms = (time.perf_counter() - start) * 1000
    picture = colorize(depth, near, far, colormap)
    fps = rate.tick(time.perf_counter())
    size = f"{width}×{height}" + (f" scaled to {working[0]}×{working[1]}" if working != (width, height) else "")
    status = (f"**{fps:.1f} frames/s** · " if fps is not None else "") + (
        f"{model_ms:.0f} ms per frame in the model on {model.device.type.upper()} · {size} · "
        f"colours {near:.2f}–{far:.2f} m")
    return picture, status, rate


def live(model: DepthModel) -> DepthModel:
    """The same network, weights and contrast in the paper's single pass (no flip averaging)."""
    single = copy.copy(model)  # shares the network: no second copy of the weights
    single.flip_average = False
    return single


def webcam_tab(models: DepthModel | Mapping[str, DepthModel], network: gr.Radio,
               folders: OutputFolders | None = None, browser: dict[str, Any] | None = None) -> None:
    """Lay out the webcam tab inside the current gr.Blocks and wire its stream; `network` is
    the page's choice among `models` (demo.networks). With `browser` (demo.browser.BrowserFiles.config)
    the tab also offers "Run in this browser": the page's own camera, network and colours
    (demo/web/depth_web.js), which send the server no frames.

    API "/webcam": (frame image file, near, far, colormap, network) -> (colour depth image,
    status Markdown).
    Its pictures are written into `folders` (default: 64 folders in Gradio's cache): a file of
    its own per call, as Gradio writes equal pictures it is given as arrays to one shared path,
    and a client reading that path while another call rewrites it gets a truncated image.
    """
    folders = folders if folders is not None else OutputFolders(keep=64, max_bytes=32 * 2**20)
    networks = {name: live(model) for name, model in as_networks(models).items()}
    if browser is not None:
        gr.HTML(BROWSER_PANEL, elem_id="webcam-browser", js_on_load=(
            f"import({json.dumps(url(SCRIPT))}).then((page) => page.start(element, {json.dumps(browser)}))"))
    with gr.Row(elem_id="webcam-server-row"):
        camera = gr.Image(label="Camera", sources=["webcam"], streaming=True, type="numpy",
                          webcam_options=gr.WebcamOptions(constraints=CAMERA), elem_id="camera")
        output = gr.Image(label="Depth", interactive=False, format="jpeg",
                          elem_id="webcam-depth")
    bar = gr.Image(colour_bar(DEFAULT_NEAR, DEFAULT_FAR, DEFAULT_COLORMAP), label="Colour bar", show_label=False,
                   interactive=False, container=False, buttons=[], elem_id="webcam-colorbar")
    status = gr.Markdown(label="Status", value="Press the camera's record button to start; it stops after "
                         f"{TIME_LIMIT} s of depth.", elem_id="webcam-status")
    with gr.Row():
        near = gr.Slider(0.0, 30.0, value=DEFAULT_NEAR, step=0.05, label="near (m)", elem_id="webcam-near")
        far = gr.Slider(0.1, 30.0, value=DEFAULT_FAR, step=0.05, label="far (m)", elem_id="webcam-far")
        colormap = gr.Dropdown(COLORMAPS, value=DEFAULT_COLORMAP, allow_custom_value=True, label="Colormap",
                               elem_id="webcam-colormap")
    gr.Markdown(LIMITS, elem_id="webcam-limits")
    rate = gr.State(None)
    frame_file = gr.File(visible=False, type="filepath")  # the API's input: checked before it is decoded

    def on_frame(frame: np.ndarray | None, near: float, far: float, colormap: str, name: str | None,
                 rate: Any) -> tuple:
        if frame is None:
            return gr.skip(), gr.skip(), rate
        with user_errors():
            return webcam_depth(choose(networks, name), frame, near, far, colormap, rate)

    def one_frame(path: str | None, near: float, far: float, colormap: str, network_name: str | None = None) -> tuple:
        if path is None:
            raise gr.Error("Send a frame (an image file).", print_exception=False)
        with user_errors(path):
            picture, status, _ = webcam_depth(choose(networks, network_name), path, near, far, colormap)
            return write_rgb(folders.new() / "webcam_depth.jpg", picture), status

    def recolour_bar(near: float, far: float, colormap: str) -> np.ndarray:
        with user_errors():
            return colour_bar(*colour_range([], (near, far)), colormap)

    webcam = {"concurrency_id": "webcam", "concurrency_limit": CONCURRENCY, "show_progress": "hidden"}
    # the browser's stream; gradio_client cannot call stream events, so it is not in the API docs
    camera.stream(on_frame, [camera, near, far, colormap, network, rate], [output, status, rate],
                  stream_every=STREAM_EVERY,
                  time_limit=TIME_LIMIT, api_visibility="private", **webcam)
    # the same per-frame work for API clients: an endpoint with no trigger in the page
    gr.on([], one_frame, [frame_file, near, far, colormap, network], [output, status], api_name="webcam", **webcam)
    gr.on([near.release, far.release, colormap.change], recolour_bar, [near, far, colormap], [bar],
          api_visibility="private", show_progress="hidden")
