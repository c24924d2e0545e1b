"""The webcam tab's "Run in this browser" in Debian's Chromium (see tests/test_browser.py),
with a fake camera playing an example frame: the page's own network (onnxruntime-web, WASM)
must give the server's map for the same pixels, and no frame may reach the server.

The default network only (assets/model.safetensors): the paper network's ONNX file is checked
against PyTorch in tests/test_onnx.py, and the page's arithmetic around the network is the same
for both. The app keeps its ONNX files in the session's `onnx_folder` (tests/conftest.py), shared
with tests/test_onnx.py: when this test runs first, the page's click makes the app export the
file, and the page must say that the model is being prepared meanwhile.
"""

import os
import warnings

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -r requirements.txt)")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is missing (Debian: apt-get install chromium)")

from demo.browser import browser_key  # noqa: E402
from demo.examples import Examples  # noqa: E402
from demo.ui import build_app, serve  # noqa: E402
from depth.predict import DEFAULT_WEIGHTS, load_model  # noqa: E402

EXAMPLE = Examples().paths[2]
TIMEOUT_MS = 240_000  # the first start may export the network (2-core CPU), and the page compiles the runtime
INT8_BOUND = 1e-2  # mean |delta log depth|, as tests/test_onnx.py allows the int8 file
# what the server would be asked for if frames went there (queue, direct calls, uploads)
SERVER_WORK = ("/queue/join", "/gradio_api/run/", "/gradio_api/call/", "/gradio_api/upload", "/stream/")


def write_y4m(rgb: np.ndarray, path, frames: int = 2) -> None:
    """(H, W, 3) uint8 -> a YUV 4:2:0 video of `frames` equal frames (full-range BT.601), the
    format Chromium's fake camera plays."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = 128 + (b - y) * 0.564
    v = 128 + (r - y) * 0.713
    planes = [np.clip(np.round(p), 0, 255).astype(np.uint8) for p in
              (y, u.reshape(u.shape[0] // 2, 2, -1, 2).mean((1, 3)), v.reshape(v.shape[0] // 2, 2, -1, 2).mean((1, 3)))]
    height, width = y.shape
    with open(path, "wb") as file:
        file.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            file.write(b"FRAME\n" + b"".join(p.tobytes() for p in planes))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    video = tmp_path_factory.mktemp("camera") / "example.y4m"
    write_y4m(np.asarray(Image.open(EXAMPLE).convert("RGB")), video)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={video}"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_model(DEFAULT_WEIGHTS, device="cpu", flip_average=False)  # the webcam's single pass


@pytest.fixture(scope="module")
def app_url(model, onnx_folder):
    app = serve(build_app(model, onnx_folder=onnx_folder), prevent_thread_lock=True, server_name="127.0.0.1",
                quiet=True)
    yield app.local_url
    app.close()


@pytest.fixture
def page(browser, app_url):
    """A page of the app recording every request: `outside` (not to the app) and `calls` (to it)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.outside, page.calls = [], []
    page.on("request", lambda r: (page.calls if r.url.startswith(app_url) else page.outside).append(r.url)
            if not r.url.startswith(("data:", "blob:")) else None)
    page.goto(app_url, wait_until="load")
    yield page
    context.close()


def test_the_page_runs_the_network_itself_and_matches_the_server(page, model, onnx_folder):
    page.get_by_role("tab", name="Webcam").click()
    assert page.evaluate("() => self.crossOriginIsolated")  # the app's headers: WASM may use threads
    file = onnx_folder / f"{browser_key(model)}.onnx"
    exported_before = file.is_file()  # by tests/test_onnx.py when it ran first
    before = len(page.calls)
    page.locator("#browser-toggle").click()
    try:
        page.wait_for_function("() => window.depthInBrowser.frames >= 3 || window.depthInBrowser.error")
    finally:  # what the page said, for a run that timed out too
        said = page.evaluate("() => window.depthInBrowser.said")
        print("\nthe page said:", *said, sep="\n  ")
    state = page.evaluate("() => ({error: depthInBrowser.error, backend: depthInBrowser.backend, "
                          "fps: depthInBrowser.fps})")
    assert state["error"] is None
    assert file.is_file()
    if not exported_before:  # the click had the app export it, and the page said so while it waited
        assert any(text.startswith("Preparing the in-browser model") for text in said), said
    assert state["backend"].startswith("WASM") and state["fps"] > 0
    status = page.locator("#browser-status").inner_text()
    assert "frames/s" in status and state["backend"] in status and "0.50–5.00 m" in status
    assert not page.locator("#webcam-server-row").is_visible()  # the server's camera is out of the way

    page.locator("#browser-toggle").click()  # stop; the frame in flight finishes
    page.wait_for_function("() => !window.depthInBrowser.running")
    last = page.evaluate("() => ({width: depthInBrowser.last.width, height: depthInBrowser.last.height, "
                         "rgba: Array.from(depthInBrowser.last.rgba), map: Array.from(depthInBrowser.last.map), "
                         "output: depthInBrowser.last.output})")
    frame = np.array(last["rgba"], np.uint8).reshape(last["height"], last["width"], 4)[..., :3]
    assert frame.shape == (480, 640, 3) and frame.std() > 10  # the example, through the fake camera
    ours = np.array(last["map"], np.float32).reshape(55, 74)
    prediction = model.predict(frame)
    server = prediction.fine_map if last["output"] == "fine" else prediction.coarse_map
    error = np.abs(np.log(ours) - np.log(server)).mean()
    print(f"\n{model.weights_path.name}: in-browser map vs server map, mean |d log| {error:.2e}; {status}")
    assert error <= INT8_BOUND

    sent = page.calls[before:]
    assert not [call for call in sent if any(work in call for work in SERVER_WORK)], sent  # no frame, no call
    assert any(call.endswith(".onnx") for call in sent) and page.outside == []
