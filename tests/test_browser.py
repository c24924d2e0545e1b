"""The app in a real browser: Debian's Chromium (/usr/bin/chromium), driven by Playwright.

Chromium is a system package, never downloaded by Playwright (`playwright install` is not
needed); its fake camera (--use-fake-device-for-media-stream) feeds the webcam tab.
"""

import io
import os
import re
import shutil
import warnings

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                               "(pip install -r requirements.txt)")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is missing (Debian: apt-get install chromium)")

from demo.examples import Examples  # noqa: E402
from demo.ui import build_app, serve  # noqa: E402
from depth.metrics import compute_metrics  # noqa: E402
from depth.predict import DepthModel  # noqa: E402
from depth.visualize import colorize  # noqa: E402

EXAMPLE = Examples().paths[2]
TIMEOUT_MS = 60_000  # generous: the machine may be busy; a passing run takes a few seconds


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
        yield browser
        browser.close()


@pytest.fixture
def model(small_net):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return DepthModel(small_net, device="cpu", info={"trained": False})


@pytest.fixture
def app_url(model):
    app = serve(build_app(model), prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield app.local_url
    app.close()


@pytest.fixture
def page(browser, app_url):
    """A page of the app that records every request leaving the app's server."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.outside = []
    page.on("request", lambda r: page.outside.append(r.url)
            if not r.url.startswith((app_url, "data:", "blob:")) else None)
    page.goto(app_url, wait_until="load")
    yield page
    context.close()


def wait_for_image(page, selector, index=0):
    """Wait until the index-th <img> under `selector` has loaded; returns its address."""
    page.wait_for_function(
        """([selector, index]) => {
            const image = document.querySelectorAll(selector + ' img')[index];
            return image && image.complete && image.naturalWidth > 0;
        }""", arg=[selector, index])
    return page.locator(f"{selector} img").nth(index).get_attribute("src")


def fetch_image(page, src):
    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())))


def test_a_photo_fills_every_output(page, model, tmp_path):
    # the viewer fetches its surface after the outputs show, later still on a busy machine
    with page.expect_response(lambda r: r.url.endswith("_surface.glb")) as viewer_file:
        page.locator("#photo-upload input[type=file]").set_input_files(str(EXAMPLE))
        page.wait_for_function("() => document.querySelector('#summary').innerText.includes('ms on CPU')")
        for selector in ("#photo", "#coarse", "#fine", "#truth", "#colorbar"):
            wait_for_image(page, selector)
        wait_for_image(page, "#slider", 0), wait_for_image(page, "#slider", 1)
        page.locator("#viewer canvas").wait_for()
        page.wait_for_function("() => document.querySelector('#downloads').innerText.includes('.npy')")
    assert viewer_file.value.status == 200

    summary = page.locator("#summary").inner_text()
    assert f"{EXAMPLE.name}, 640×480" in summary and "ground truth known" in summary
    prediction = model.predict(EXAMPLE)
    rmse = compute_metrics(prediction.fine, Examples().truth(EXAMPLE))["rmse"]
    table = page.locator("#metrics").inner_text()
    assert "coarse + fine" in table and f"{rmse:.3f}" in table
    downloads = page.locator("#downloads").inner_text().replace("\n", "")  # names show as stem, extension
    for suffix in ("_points.ply", "_depth.png", "_depth.npy", "_depth_color.png"):
        assert f"{EXAMPLE.stem}{suffix}" in downloads
    page.screenshot(path=tmp_path / "photo.png", full_page=True)
    assert Image.open(tmp_path / "photo.png").size[0] == 1400

    # another colormap re-colours the same prediction
    old = page.locator("#fine img").get_attribute("src")
    colormap = page.locator("#colormap input")
    colormap.fill("gray_r")
    colormap.press("Enter")
    page.wait_for_function("old => document.querySelector('#fine img').src !== old", arg=old)
    shown = fetch_image(page, wait_for_image(page, "#fine"))
    truth = Examples().truth(EXAMPLE)
    near, far = (float(v) for v in re.search(r"Colours ([\d.]+)–([\d.]+) m",
                                             page.locator("#summary").inner_text()).groups())
    expected = colorize(prediction.fine, near, far, "gray_r")
    assert shown.shape == expected.shape and np.abs(shown.astype(int) - expected).mean() < 2  # 2-decimal range
    assert truth is not None and page.outside == []  # nothing left the machine


def test_a_bad_file_is_a_message_and_the_app_goes_on(page, tmp_path, photo):
    (tmp_path / "bad.jpg").write_text("not a photo")
    upload = page.locator("#photo-upload input[type=file]")
    upload.set_input_files(str(tmp_path / "bad.jpg"))
    toast = page.locator("[data-testid=toast-body]")
    toast.filter(has_text="bad.jpg: not an image file Pillow can read").wait_for()
    assert str(tmp_path) not in toast.first.inner_text()

    page.locator("#photo-upload button[aria-label='Clear']").click()
    Image.fromarray(photo).save(tmp_path / "room.png")
    shutil.copy(tmp_path / "room.png", tmp_path / "room copy.png")
    upload.set_input_files(str(tmp_path / "room copy.png"))
    page.wait_for_function("() => document.querySelector('#summary').innerText.includes('room copy.png')")
    assert "ground truth unknown" in page.locator("#summary").inner_text()
    assert not page.locator("#truth img").is_visible()


def test_an_example_thumbnail_click_estimates_its_depth(page):
    assert not page.locator("#run").is_enabled()  # nothing to estimate yet
    page.locator("#examples img").nth(1).click()
    page.wait_for_function("() => document.querySelector('#summary').innerText.includes('ground truth known')")
    assert Examples().paths[1].name in page.locator("#summary").inner_text()
    page.wait_for_function("() => !document.querySelector('#run').disabled")  # a photo to estimate again


def test_the_webcam_streams_depth_frames(page):
    page.get_by_role("tab", name="Webcam").click()
    page.get_by_text("Click to Access Webcam").click()
    page.get_by_role("button", name="capture photo").click()  # the Record button
    page.wait_for_function("() => document.querySelector('#webcam-status').innerText.includes('frames/s')")
    frame = fetch_image(page, wait_for_image(page, "#webcam-depth"))
    assert frame.shape == (480, 640, 3)  # the camera asked for 640x480
    status = page.locator("#webcam-status").inner_text()
    assert float(re.search(r"([\d.]+) frames/s", status).group(1)) > 0
    assert "0.50–5.00 m" in status


def _loss_values(page) -> dict[str, float]:
    text = page.locator("#loss-values").inner_text()
    return {name: float(re.search(re.escape(name) + r"\s+([\d.]+)", text).group(1))
            for name in ("MSE of log depth (λ = 0)", "scale-invariant error (λ = 1)", "training loss (λ = 0.5)")}


def test_the_how_it_works_tab_explains_an_example_and_its_loss_follows_the_scale(page, model):
    page.locator("#examples img").nth(0).click()
    page.wait_for_function("() => document.querySelector('#summary').innerText.includes('ground truth known')")
    page.get_by_role("tab", name="How it works").click()
    wait_for_image(page, "#diagram")
    page.wait_for_function("() => document.querySelector('#loss-values').innerText.includes('MSE of log depth')")
    wait_for_image(page, "#features"), wait_for_image(page, "#templates")
    assert page.locator("#feature-notes li").count() == 5 and "of 32" in page.locator("#template-note").inner_text()
    assert Examples().paths[0].name in page.locator("#lesson-subject").inner_text()
    at_one = _loss_values(page)

    # the page shows depth.loss's values: compare with our own computation
    from demo.loss_panel import loss_readout

    example = Examples().paths[0]
    ours = loss_readout(model.predict(example).fine, Examples().truth(example), 2.0, 0.5)
    scale = page.locator("#loss-scale input[type=number]")
    scale.fill("2")
    scale.press("Enter")
    page.wait_for_function("() => document.querySelector('#loss-note').innerText.includes('× 2.00')")
    page.wait_for_function("old => !document.querySelector('#loss-values').innerText.includes(old)",
                           arg=f"{at_one['MSE of log depth (λ = 0)']:.4f}")
    at_two = _loss_values(page)
    assert at_two["scale-invariant error (λ = 1)"] == at_one["scale-invariant error (λ = 1)"]
    assert at_two["MSE of log depth (λ = 0)"] != at_one["MSE of log depth (λ = 0)"]
    assert at_two["MSE of log depth (λ = 0)"] == pytest.approx(ours.mse_log, abs=1e-4)
    assert at_two["training loss (λ = 0.5)"] == pytest.approx(ours.training_loss, abs=1e-4)
    assert page.outside == []
