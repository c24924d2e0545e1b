"""Gradio app: `python app.py`, then open http://localhost:7860 (also the Spaces entry point)."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine

import depth  # noqa: E402
from demo.networks import network_name  # noqa: E402
from demo.ui import build_app, serve  # noqa: E402

if __name__ == "__main__":
    networks = {}
    for path in depth.SHIPPED_WEIGHTS:  # the default first, then any other network shipped
        if path == depth.DEFAULT_WEIGHTS or path.is_file():
            model = depth.load_model(path)  # CUDA when the machine (or Space) has a GPU
            networks[network_name(model)] = model
            print(f"Loaded the {network_name(model)}: {model.describe()} on {model.device}")
    serve(build_app(networks), server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"))
