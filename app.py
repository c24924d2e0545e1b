"""Gradio app: `python app.py`, then open http://localhost:7860 (also the Spaces entry point)."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine

import depth  # noqa: E402
from demo.ui import build_app, serve  # noqa: E402

if __name__ == "__main__":
    model = depth.load_model()  # CUDA when the machine (or Space) has a GPU
    print(f"Loaded {model.describe()} on {model.device}")
    serve(build_app(model), server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"))
