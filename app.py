"""Gradio app: `python app.py`, then open http://localhost:7860 (also the Spaces entry point)."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine

import depth  # noqa: E402
from demo.photo import build_app  # noqa: E402

if __name__ == "__main__":
    model = depth.load_model()
    print(f"Loaded {model.describe()} on {model.device}")
    build_app(model).queue(default_concurrency_limit=2).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0")
    )
