"""The photo tab: a photo in, its coarse and fine depth out, coloured on one shared scale."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import numpy as np

from depth import DepthModel
from depth.visualize import DEFAULT_COLORMAP, colorize, depth_range


def photo_to_depth(
    model: DepthModel, image_path: str | None, colormap: str = DEFAULT_COLORMAP
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Handler: photo file -> (upright photo, coarse RGB, fine RGB, Markdown: range, time, device).

    Bad input raises gr.Error, which the page shows while the server keeps serving.
    """
    if image_path is None:
        raise gr.Error("Upload a photo first.")
    start = time.perf_counter()
    try:
        prediction = model.predict(image_path)
    except (ValueError, OSError) as error:
        # name the file as the user knows it, not by the server's upload path
        raise gr.Error(str(error).replace(image_path, Path(image_path).name)) from None
    seconds = time.perf_counter() - start
    near, far = depth_range(prediction.coarse, prediction.fine)
    summary = (f"Depth {near:.2f}-{far:.2f} m (shared colour scale) · "
               f"{seconds * 1000:.0f} ms on {model.device.type.upper()}")
    return (prediction.image, colorize(prediction.coarse, near, far, colormap),
            colorize(prediction.fine, near, far, colormap), summary)


def build_app(model: DepthModel) -> gr.Blocks:
    """The whole UI around one loaded model."""
    with gr.Blocks(title="Depth from a single image (Eigen et al. 2014)") as app:
        gr.Markdown("# Depth from a single image\nEigen, Puhrsch & Fergus 2014, multi-scale network.")
        banner = f"**Weights:** {model.describe()}"
        if not model.trained:
            banner = f"## ⚠️ {banner}"
        gr.Markdown(banner)
        # a File, not an Image: gr.Image decodes uploads itself, before our checks and messages
        upload = gr.File(label="Photo", file_types=["image"], type="filepath")
        run = gr.Button("Estimate depth", variant="primary")
        with gr.Row():
            photo = gr.Image(label="Input", interactive=False)
            coarse = gr.Image(label="Coarse network", interactive=False)
            fine = gr.Image(label="Coarse + fine network", interactive=False)
        summary = gr.Markdown()
        run.click(lambda path: photo_to_depth(model, path), inputs=upload,
                  outputs=[photo, coarse, fine, summary], api_name="predict")
    return app
