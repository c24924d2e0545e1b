import os
import warnings

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from demo.photo import build_app, photo_to_depth  # noqa: E402
from depth.predict import DepthModel  # noqa: E402


@pytest.fixture
def model(small_net):
    return DepthModel(small_net, device="cpu", info={"trained": True, "trained_on": "tests"})


def test_photo_handler_returns_both_depths_on_one_scale(tmp_path, model, photo):
    path = tmp_path / "room.png"
    Image.fromarray(photo).save(path)
    upright, coarse, fine, summary = photo_to_depth(model, str(path))
    np.testing.assert_array_equal(upright, photo)
    assert coarse.shape == fine.shape == (480, 640, 3) and coarse.dtype == np.uint8
    assert "ms on CPU" in summary and " m " in summary


def test_photo_handler_turns_bad_input_into_a_message(tmp_path, model):
    (tmp_path / "x.jpg").write_text("text")
    with pytest.raises(gr.Error, match="x.jpg: not an image") as error:
        photo_to_depth(model, str(tmp_path / "x.jpg"))
    assert str(tmp_path) not in str(error.value)
    with pytest.raises(gr.Error, match="Upload a photo"):
        photo_to_depth(model, None)


def test_app_serves_the_documented_api(tmp_path, model, photo):
    from gradio_client import Client, handle_file

    Image.fromarray(photo).save(tmp_path / "room.png")
    app = build_app(model)
    app.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(app.local_url, verbose=False)
        _, coarse, fine, summary = client.predict(handle_file(str(tmp_path / "room.png")), api_name="/predict")
        assert Image.open(coarse).size == Image.open(fine).size == (640, 480)
        (tmp_path / "bad.jpg").write_text("text")
        with pytest.raises(Exception, match="not an image"):
            client.predict(handle_file(str(tmp_path / "bad.jpg")), api_name="/predict")
        # the server is still serving after the bad request
        assert Image.open(client.predict(handle_file(str(tmp_path / "room.png")), api_name="/predict")[2]).size == (640, 480)
    finally:
        app.close()


def test_untrained_weights_are_announced(small_net):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        untrained = DepthModel(small_net, device="cpu", info={"trained": False})
    app = build_app(untrained)
    texts = [block.value for block in app.blocks.values() if isinstance(block, gr.Markdown)]
    assert any("UNTRAINED" in str(text) for text in texts)
