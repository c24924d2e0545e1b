"""Speed of the app on the machine it runs on, for `python bench.py app [--repeats N]` (in
detail, `app_report`) and the app's rows of `python bench.py` (`app_figures`).

- photo: one 640x480 example photo (so with ground truth and metrics) to every output
  (prediction, colour pictures and colour bar, metrics, point cloud and its two PLYs, the depth
  PNG and .npy): through gradio_client against a real `python app.py` process (upload, queue,
  handler, and the download of every output file; target within 1 s on the 2-core CPU), and
  the handler's own work in this process (PhotoDepth.predict);
- webcam: frames per second of the webcam handler at 640x480 (model.predict in one pass, as the
  tab runs it, then colorize over a fixed range; target >= 15 on the 2-core CPU), alone and
  with the server's per-frame encoding around it (decoding the browser's JPEG data URL,
  encoding the output JPEG);
- the peak resident memory of the app process.

Every figure uses the shipped weights (assets/model.safetensors) on the device the app picks
(CUDA when available) and is a median after warm-up (depth.bench.median_seconds).
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from depth import DepthModel, load_model
from depth.bench import median_seconds

REPO = Path(__file__).resolve().parent.parent


def app_figures(repeats: int = 10) -> dict[str, float]:
    """The app's figures on this machine: round_trip_s (gradio_client, real app process),
    peak_rss_mib (of that process), photo_handler_ms and photo_model_ms (in this process),
    webcam_fps (handler alone) and webcam_served_fps (with JPEG decoding and encoding)."""
    cache = tempfile.mkdtemp(prefix="depth-bench-")  # a private Gradio cache, gone at the end
    saved = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = cache
    try:
        with app_process(cache) as (url, pid):
            figures = {"round_trip_s": _round_trip_seconds(url, repeats)}
            figures["peak_rss_mib"] = _peak_rss_mib(pid)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # untrained weights time the same
            model = load_model()
        figures |= _handler_figures(model, repeats)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        if saved is None:
            os.environ.pop("GRADIO_TEMP_DIR")
        else:
            os.environ["GRADIO_TEMP_DIR"] = saved
    return figures


@contextmanager
def app_process(cache: str, timeout_s: float = 180) -> Iterator[tuple[str, int]]:
    """Run `python app.py` on a free local port with Gradio's cache in `cache`; yields its
    (url, pid) once it answers, and stops it afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_TEMP_DIR": cache, "GRADIO_ANALYTICS_ENABLED": "False"}
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"python app.py did not start:\n{log.read().decode(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _round_trip_seconds(url: str, repeats: int) -> float:
    from gradio_client import Client, handle_file

    from .examples import Examples

    photo = str(Examples().paths[0])
    client = Client(url, verbose=False)
    # the work happens in another process: no device of ours to wait for
    no_sync = torch.device("cpu")
    return median_seconds(lambda: client.predict(handle_file(photo), api_name="/predict"), no_sync, repeats)


def _peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size (Linux /proc); NaN where that is not available."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return kib / 1024


def _handler_figures(model: DepthModel, repeats: int) -> dict[str, float]:
    import gradio as gr
    from gradio.image_utils import decode_base64_to_image_array

    from depth.visualize import colour_bar

    from .examples import Examples
    from .outputs import OutputFolders
    from .photo import PhotoDepth
    from .webcam import DEFAULT_FAR, DEFAULT_NEAR, FrameRate, live, webcam_depth

    examples = Examples()
    photo_path = examples.paths[0]
    work = PhotoDepth(model, examples, OutputFolders())
    model_seconds = []

    def photo() -> None:
        colour_bar.cache_clear()  # a new photo's range is seldom in the cache
        model_seconds.append(work.predict(photo_path).model_seconds)

    figures = {"photo_handler_ms": 1000 * median_seconds(photo, model.device, repeats)}
    figures["photo_model_ms"] = 1000 * float(np.median(model_seconds[-repeats:]))

    frame = np.asarray(Image.open(photo_path).convert("RGB"))
    rate = FrameRate()
    camera_model = live(model)  # as the webcam tab runs it: one pass
    figures["webcam_fps"] = 1 / median_seconds(
        lambda: webcam_depth(camera_model, frame, DEFAULT_NEAR, DEFAULT_FAR, rate=rate), model.device, repeats * 3)

    # what the browser sends: a JPEG data URL of its canvas (Chromium's default quality 0.92)
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "JPEG", quality=92)
    data_url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    output = gr.Image(format="jpeg")  # as the webcam tab's output: its postprocess encodes

    def served_frame() -> None:
        picture, _, _ = webcam_depth(camera_model, decode_base64_to_image_array(data_url), DEFAULT_NEAR,
                                     DEFAULT_FAR, rate=rate)
        output.postprocess(picture)

    figures["webcam_served_fps"] = 1 / median_seconds(served_frame, model.device, repeats * 3)
    return figures


def app_report(repeats: int = 10) -> str:
    """The app's figures (app_figures) as lines of text, for `python bench.py app`."""
    figures = app_figures(repeats)
    return "\n".join([
        f"photo 640x480 -> all outputs, gradio_client: {1000 * figures['round_trip_s']:6.0f} ms "
        "(a real python app.py; target: within 1000 ms on the 2-core CPU)",
        f"photo 640x480 -> all outputs, handler:       {figures['photo_handler_ms']:6.0f} ms "
        f"(model.predict {figures['photo_model_ms']:.0f} ms)",
        f"webcam 640x480, handler:                     {figures['webcam_fps']:6.1f} frames/s "
        "(target: >= 15 on the 2-core CPU)",
        f"webcam 640x480, handler + JPEG in and out:   {figures['webcam_served_fps']:6.1f} frames/s",
        f"app process, peak resident memory:           {figures['peak_rss_mib']:6.0f} MiB",
    ])
