"""Speed of the app on the machine it runs on:

    python -m demo.bench [--weights W | --paper-size] [--device cpu|cuda] [--repeats N]

- photo: one 640x480 example photo (so with ground truth and metrics) to every output
  (prediction, colour pictures and colour bar, metrics, point cloud and its two PLYs, the depth
  PNG and .npy), through the /predict handler's work (PhotoDepth.predict) and through
  gradio_client against the app served on this machine (upload, queue, handler, and the
  download of every output file); target within 1 s on the 2-core CPU;
- webcam: frames per second of the webcam handler at 640x480 (model.predict, then colorize
  over a fixed range), alone and with the server's per-frame encoding around it (decoding the
  browser's JPEG data URL, encoding the depth picture as the output JPEG); target >= 15.

Each figure is the median after warm-up (depth.bench.median_seconds). The network's size
matters most: the figures name it. --paper-size times an untrained network of the paper's
size (fc_width 4096) instead of the given weights.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import shutil
import tempfile
import warnings

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from depth import DepthModel, EigenDepthNet, ModelConfig, load_model  # noqa: E402
from depth.bench import median_seconds  # noqa: E402


def bench_app(model: DepthModel, repeats: int = 10) -> dict[str, float]:
    """The app's timings (milliseconds, frames/s) for `model` on this machine."""
    import gradio as gr
    from gradio.image_utils import decode_base64_to_image_array
    from gradio_client import Client, handle_file

    from .examples import Examples
    from .outputs import OutputFolders
    from .photo import PhotoDepth
    from .ui import build_app, serve
    from .views import colour_bar
    from .webcam import DEFAULT_FAR, DEFAULT_NEAR, FrameRate, webcam_depth

    examples = Examples()
    photo_path = examples.paths[0]
    folders = OutputFolders()
    work = PhotoDepth(model, examples, folders)
    device = model.device
    results: dict[str, float] = {}

    model_seconds = []

    def photo() -> None:
        colour_bar.cache_clear()  # a new photo's range is seldom in the cache
        model_seconds.append(work.predict(photo_path).model_seconds)

    results["photo_handler_ms"] = 1000 * median_seconds(photo, device, repeats)
    results["photo_model_ms"] = 1000 * float(np.median(model_seconds[-repeats:]))

    app = serve(build_app(model, examples, folders), prevent_thread_lock=True, server_name="127.0.0.1",
                quiet=True)
    try:
        client = Client(app.local_url, verbose=False)
        results["photo_client_ms"] = 1000 * median_seconds(
            lambda: client.predict(handle_file(str(photo_path)), api_name="/predict"), device, repeats)
    finally:
        app.close()

    frame = np.asarray(Image.open(photo_path).convert("RGB"))
    rate = FrameRate()
    results["webcam_handler_fps"] = 1 / median_seconds(
        lambda: webcam_depth(model, frame, DEFAULT_NEAR, DEFAULT_FAR, rate=rate), device, repeats * 3)

    # what the browser sends: a JPEG data URL of the canvas (Chromium's default quality 0.92)
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "JPEG", quality=92)
    data_url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    output = gr.Image(format="jpeg")  # as the webcam tab's output: its postprocess encodes

    def served_frame() -> None:
        picture, _, _ = webcam_depth(model, decode_base64_to_image_array(data_url), DEFAULT_NEAR,
                                     DEFAULT_FAR, rate=rate)
        output.postprocess(picture)

    results["webcam_served_fps"] = 1 / median_seconds(served_frame, device, repeats * 3)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m demo.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="checkpoint to time (default: the shipped weights)")
    parser.add_argument("--paper-size", action="store_true",
                        help="time an untrained network of the paper's size instead of weights")
    parser.add_argument("--device", help="cpu or cuda (default: CUDA when available)")
    parser.add_argument("--repeats", type=int, default=10, help="timings per figure (webcam: 3x)")
    args = parser.parse_args(argv)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untrained weights are fine for timing
        if args.paper_size:
            model = DepthModel(EigenDepthNet(ModelConfig()), device=args.device)
        else:
            model = load_model(args.weights, device=args.device)
    # a private Gradio cache: the benchmark's files go when it ends
    cache = tempfile.mkdtemp(prefix="depth-bench-")
    os.environ["GRADIO_TEMP_DIR"] = cache
    try:
        results = bench_app(model, args.repeats)
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    params = sum(p.numel() for p in model.net.parameters())
    print(f"network: fc_width {model.net.config.fc_width}, {params / 1e6:.1f}M parameters, "
          f"on {model.device} ({torch.get_num_threads()} CPU threads)")
    print(f"photo 640x480 -> all outputs, handler:       {results['photo_handler_ms']:6.0f} ms "
          f"(model.predict {results['photo_model_ms']:.0f} ms)")
    print(f"photo 640x480 -> all outputs, gradio_client: {results['photo_client_ms']:6.0f} ms "
          "(target: within 1000 ms on the 2-core CPU)")
    print(f"webcam 640x480, handler:                     {results['webcam_handler_fps']:6.1f} frames/s "
          "(target: >= 15 on the 2-core CPU)")
    print(f"webcam 640x480, handler + JPEG in and out:   {results['webcam_served_fps']:6.1f} frames/s")


if __name__ == "__main__":
    main()
