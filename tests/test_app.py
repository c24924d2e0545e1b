import os
import shutil
import time
import warnings
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import open3d as o3d  # noqa: E402
import pytest  # noqa: E402
from gradio.utils import get_upload_folder  # noqa: E402
from PIL import Image, ImageFile  # noqa: E402

from demo.examples import Examples  # noqa: E402
from demo.outputs import OutputFolders  # noqa: E402
from demo.photo import DEFAULT_FOV, METRIC_LABELS, PhotoDepth, summary, user_errors  # noqa: E402
from demo.pointcloud import point_cloud  # noqa: E402
from demo.ui import build_app, serve  # noqa: E402
from demo.views import to_working  # noqa: E402
from demo.webcam import FrameRate, live, webcam_depth  # noqa: E402
from depth.geometry import intrinsics_from_fov, nyu_horizontal_fov_degrees  # noqa: E402
from depth.metrics import METRIC_NAMES, compute_metrics  # noqa: E402
from depth.model import EigenDepthNet, ModelConfig  # noqa: E402
from depth.predict import DepthModel  # noqa: E402
from depth.visualize import (  # noqa: E402
    DEFAULT_COLORMAP,
    colorize,
    colour_bar,  # noqa: E402
    depth_range,
)

EXAMPLES = Examples()


@pytest.fixture
def model(small_model):
    return small_model


@pytest.fixture
def work(model, tmp_path):
    return PhotoDepth(model, EXAMPLES, OutputFolders(tmp_path / "out"))


@pytest.fixture
def room(tmp_path, photo):
    """The conftest photo as an uploaded file without ground truth."""
    Image.fromarray(photo).save(tmp_path / "room.png")
    return tmp_path / "room.png"


def load_png(path):
    return np.asarray(Image.open(path))


def test_a_photo_gives_every_output_from_one_prediction(work, model, room, photo):
    result = work.predict(room)
    expected = model.predict(room)
    np.testing.assert_array_equal(result.image, photo)
    np.testing.assert_array_equal(result.fine, expected.fine)
    np.testing.assert_array_equal(result.coarse, expected.coarse)
    assert result.truth is None and result.metrics is None and result.colours.truth is None
    assert result.size == (640, 480) and result.model_seconds > 0 and result.device == "CPU"

    # one automatic range for both maps, the fine map's colours are the download
    near, far = depth_range(expected.coarse, expected.fine)
    assert (result.colours.near, result.colours.far) == (near, far)
    np.testing.assert_array_equal(load_png(result.colours.fine), colorize(expected.fine, near, far, DEFAULT_COLORMAP))
    np.testing.assert_array_equal(load_png(result.colours.coarse), colorize(expected.coarse, near, far))
    assert load_png(result.colours.bar).shape[1::] == (640, 3)

    ply, depth_png, npy, colour = result.downloads
    assert [p.name for p in result.downloads] == ["room_points.ply", "room_depth.png", "room_depth.npy",
                                                   "room_depth_color.png"]
    np.testing.assert_array_equal(np.load(npy), expected.fine)
    millimetres = load_png(depth_png)
    assert millimetres.dtype == np.uint16
    np.testing.assert_array_equal(millimetres, np.round(expected.fine.astype(np.float64) * 1000).astype(np.uint16))

    # the cloud: the fine depth through the NYU camera's field of view, every 2nd pixel
    cloud = o3d.io.read_point_cloud(str(ply))
    viewer = o3d.io.read_point_cloud(str(result.cloud.viewer))
    assert result.cloud.fov == DEFAULT_FOV == pytest.approx(nyu_horizontal_fov_degrees(), abs=0.05)
    intrinsics = intrinsics_from_fov(640, 480, DEFAULT_FOV)
    reference = point_cloud(photo, expected.fine, intrinsics, stride=2)
    assert len(cloud.points) == len(reference.points) == result.cloud.points > 0.9 * 320 * 240
    np.testing.assert_allclose(np.asarray(cloud.points), np.asarray(reference.points), atol=1e-5)
    np.testing.assert_allclose(np.asarray(viewer.points), np.asarray(cloud.points) * (1, -1, -1), atol=1e-5)
    assert cloud.has_colors()


def test_an_example_gets_its_ground_truth_and_the_paper_metrics(work, model):
    path = EXAMPLES.paths[3]
    result = work.predict(path)
    truth = EXAMPLES.truth(path)
    expected = model.predict(path)
    np.testing.assert_array_equal(result.truth, truth)
    assert result.metrics == {"coarse": compute_metrics(expected.coarse, truth),
                              "fine": compute_metrics(expected.fine, truth)}
    near, far = depth_range(expected.coarse, expected.fine, truth)  # the truth shares the range
    assert (result.colours.near, result.colours.far) == (near, far)
    np.testing.assert_array_equal(load_png(result.colours.truth), colorize(truth, near, far))


def test_ground_truth_follows_the_photo_bytes_not_the_name(tmp_path, photo):
    renamed = tmp_path / "holiday.png"
    shutil.copy(EXAMPLES.paths[0], renamed)
    assert EXAMPLES.truth(renamed) is not None
    impostor = tmp_path / EXAMPLES.paths[0].name
    Image.fromarray(photo).save(impostor)
    assert EXAMPLES.truth(impostor) is None
    assert len(EXAMPLES) == 8 and Examples(tmp_path / "nothing").paths == []


def test_controls_rerender_without_the_network(work, room, photo, monkeypatch):
    result = work.predict(room)
    monkeypatch.setattr(next(iter(work.networks.values())), "predict", lambda *a: pytest.fail("the network ran again"))

    recoloured = work.recolour(result, "turbo", "fixed", 1.0, 3.0)
    assert (recoloured.colours.near, recoloured.colours.far) == (1.0, 3.0)
    np.testing.assert_array_equal(load_png(recoloured.colours.fine), colorize(result.fine, 1.0, 3.0, "turbo"))
    assert recoloured.colours.fine.parent != result.colours.fine.parent  # new files, new addresses
    assert result.colours.fine.exists() and recoloured.cloud == result.cloud

    rebuilt = work.recloud(result, 90.0, 4)
    reference = point_cloud(photo, result.fine, intrinsics_from_fov(640, 480, 90.0), stride=4)
    np.testing.assert_allclose(np.asarray(o3d.io.read_point_cloud(str(rebuilt.cloud.ply)).points),
                               np.asarray(reference.points), atol=1e-5)
    assert rebuilt.cloud.points == len(reference.points) <= 160 * 120
    assert rebuilt.downloads[0] == rebuilt.cloud.ply and rebuilt.colours == result.colours


@pytest.mark.parametrize("change, message", [
    (lambda w, r: w.recolour(r, "no_such_map", "automatic", 0, 1), "unknown colormap 'no_such_map'"),
    (lambda w, r: w.recolour(r, DEFAULT_COLORMAP, "fixed", 3.0, 2.0), "needs 0 <= near < far"),
    (lambda w, r: w.recloud(r, 63.0, 0), "stride must be a whole number"),
    (lambda w, r: w.recloud(r, 200.0, 2), "field of view must be between 1 and 179"),
])
def test_bad_control_values_are_messages(work, room, change, message):
    result = work.predict(room)
    with pytest.raises(gr.Error, match=message), user_errors():
        change(work, result)


def test_bad_photos_are_messages_that_name_the_file(work, tmp_path):
    (tmp_path / "notes.jpg").write_text("not a photo")
    Image.new("RGB", (10, 12)).save(tmp_path / "tiny.png")
    Image.new("1", (8200, 6200)).save(tmp_path / "huge.png")  # 51 megapixels, a 6 KB file
    cases = {"notes.jpg": "notes.jpg: not an image", "tiny.png": "tiny.png: image is 10x12 pixels",
             "huge.png": "huge.png: .*50-megapixel limit", "gone.png": "gone.png: no such file"}
    for name, message in cases.items():
        with pytest.raises(gr.Error, match=message) as error, user_errors(tmp_path / name):
            work.predict(tmp_path / name)
        assert str(tmp_path) not in error.value.message  # the server's upload path stays private


def test_large_photos_are_worked_at_a_bounded_size():
    image = np.zeros((1500, 2000, 3), np.uint8)
    depth = np.full((1500, 2000), 2.0, np.float32)
    depth[::2, ::2] = 0.0  # holes must stay holes or 2 m, never a blend
    small, small_depth = to_working(image, depth)
    assert small.shape == (768, 1024, 3) and small_depth.shape == (768, 1024)
    assert set(np.unique(small_depth)) <= {0.0, 2.0}
    same = to_working(image[:480, :640], depth[:480, :640], None)
    assert same[0].shape == (480, 640, 3) and same[2] is None


def test_colour_bar_spans_the_colormap_from_near_to_far():
    bar = colour_bar(1.0, 3.0, "viridis")
    cmap = matplotlib.colormaps["viridis"]
    # the bar's middle row: just inside its frame, the colormap's two ends
    row = bar[bar.shape[0] * 3 // 10].astype(int)
    inked = np.flatnonzero(np.abs(row - 255).sum(axis=1) > 30)
    for column, end in ((inked[0] + 3, 0.0), (inked[-1] - 3, 1.0)):
        np.testing.assert_allclose(row[column], np.array(cmap(end)[:3]) * 255, atol=12)
    assert not bar.flags.writeable  # shared from the cache


def test_output_folders_stay_bounded(tmp_path):
    def age(folder, seconds):
        os.utime(folder, (time.time() - seconds, time.time() - seconds))

    folders = OutputFolders(tmp_path / "count", keep=3)
    made = [folders.new() for _ in range(3)]
    for index, folder in enumerate(made):
        age(folder, 30 - index)  # oldest first
    newest = folders.new()
    assert folders.folders() == [made[1], made[2], newest]  # the oldest went

    folders = OutputFolders(tmp_path / "age", keep=10, max_age_s=60)
    old, recent = folders.new(), folders.new()
    age(old, 120)
    folders.new()
    assert not old.exists() and recent.exists()

    folders = OutputFolders(tmp_path / "bytes", keep=10, max_bytes=2500)
    made = []
    for index in range(4):
        made.append(folders.new())
        (made[-1] / "depth.npy").write_bytes(b"x" * 1000)
        age(made[-1], 40 - index)
    newest = folders.new()  # 4,000 bytes in the old folders: the two oldest go
    assert folders.folders() == [made[2], made[3], newest]


def test_output_folders_of_killed_processes_are_swept(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    stale, live = tmp_path / "depth-app-stale", tmp_path / "depth-app-live"
    (stale / "request").mkdir(parents=True)
    (live / "request").mkdir(parents=True)
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    folders = OutputFolders(max_age_s=3600)
    assert not stale.exists() and live.exists() and folders.root.parent == tmp_path
    shutil.rmtree(folders.root)  # swept by another process while this one was idle
    assert folders.new().parent == folders.root
    # Gradio's own leftovers: the empty tmp* files of uploads that never finished
    stale_upload, fresh_upload = tmp_path / "tmpabc123", tmp_path / "tmpdef456"
    stale_upload.touch()
    fresh_upload.touch()
    os.utime(stale_upload, (time.time() - 7200, time.time() - 7200))
    folders.new()
    assert not stale_upload.exists() and fresh_upload.exists()


def test_webcam_frames_use_the_fixed_range_and_count_frames(model, photo):
    picture, status, rate = webcam_depth(model, photo, 0.8, 4.0, "magma_r")
    np.testing.assert_array_equal(picture, colorize(model.predict(photo).fine, 0.8, 4.0, "magma_r"))
    assert "ms per frame" in status and "0.80–4.00 m" in status and "frames/s" not in status
    _, status, rate = webcam_depth(model, photo, 0.8, 4.0, "magma_r", rate)
    assert "frames/s" in status
    with pytest.raises(ValueError, match="near < far"):
        webcam_depth(model, photo, 4.0, 4.0)

    rate = FrameRate(window=3, gap=1.0)
    assert [rate.tick(t) for t in (0.0, 0.1, 0.2, 0.3)][1:] == pytest.approx([10, 10, 10])
    assert rate.tick(5.0) is None and rate.tick(5.5) == pytest.approx(2)  # a pause starts afresh


def test_the_webcam_runs_the_same_weights_in_one_pass(model, photo):
    single = live(model)
    assert single.net is model.net and single.contrast == model.contrast  # no second copy of the weights
    assert model.flip_average and not single.flip_average  # the photo tab's model is left as it was
    np.testing.assert_array_equal(single.predict(photo).fine, DepthModel(
        model.net, "cpu", model.info, flip_average=False).predict(photo).fine)
    assert not np.array_equal(single.predict(photo).fine, model.predict(photo).fine)


def test_webcam_frames_are_capped_and_bad_ones_refused_before_decoding(model, photo, tmp_path, monkeypatch):
    big = np.asarray(Image.fromarray(photo).resize((1920, 1440)))
    picture, status, _ = webcam_depth(model, big, 0.8, 4.0)
    assert picture.shape == (480, 640, 3) and "1920×1440 scaled to 640×480" in status
    Image.new("L", (7000, 7000)).save(tmp_path / "huge.png")  # 49 megapixels, a few kB of file
    def never_decode(image):
        raise AssertionError("the pixels were decoded")

    with monkeypatch.context() as patch:  # refused from the header, never decoded
        patch.setattr(ImageFile.ImageFile, "load", never_decode)
        refused = "huge.png: image is 7000x7000 = 49 megapixels, more than the 12-megapixel"
        with pytest.raises(ValueError, match=refused):
            webcam_depth(model, str(tmp_path / "huge.png"), 0.8, 4.0)
    (tmp_path / "notes.txt").write_text("not a frame")
    with pytest.raises(ValueError, match="notes.txt: not an image file"):
        webcam_depth(model, str(tmp_path / "notes.txt"), 0.8, 4.0)
    with pytest.raises(ValueError, match="webcam frame: image is 1x1 pixels"):
        webcam_depth(model, np.zeros((1, 1, 3), np.uint8), 0.8, 4.0)


def test_app_serves_the_documented_api(model, room):
    from gradio_client import Client, handle_file

    app = serve(build_app(model), prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(app.local_url, verbose=False)
        assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {"/predict", "/webcam"}
        example = EXAMPLES.paths[0]
        outputs = client.predict(handle_file(str(example)), api_name="/predict")
        photo, coarse, fine, truth, bar, slider, viewer, downloads, metrics, summary = outputs
        for image in (photo, coarse, fine, truth, *slider):
            assert Image.open(image).size == (640, 480)
        assert Image.open(bar).size[0] == 640 and viewer.endswith("_surface.glb")  # the surface by default
        assert [os.path.basename(f) for f in downloads] == [
            "synthetic_test26_00000_rgb_points.ply", "synthetic_test26_00000_rgb_depth.png",
            "synthetic_test26_00000_rgb_depth.npy", "synthetic_test26_00000_rgb_depth_color.png"]
        prediction, gt = model.predict(example), EXAMPLES.truth(example)
        assert metrics["headers"] == ["network"] + [METRIC_LABELS[name] for name in METRIC_NAMES]
        for row, depth_map in zip(metrics["data"], (prediction.coarse, prediction.fine)):
            assert row[1:] == list(compute_metrics(depth_map, gt).values())
        assert "ms** on **CPU**" in summary and "ground truth known" in summary

        # controls by name; no ground truth for an upload
        outputs = client.predict(handle_file(str(room)), colormap="gray_r", range_mode="fixed", near=1.0,
                                 far=2.0, stride=8, view="points", api_name="/predict")
        assert outputs[3] is None and outputs[8]["data"] == [] and outputs[6].endswith("_viewer.ply")
        np.testing.assert_array_equal(load_png(outputs[2]), colorize(model.predict(room).fine, 1.0, 2.0, "gray_r"))
        assert "stride 8" in outputs[9] and "1.00–2.00 m (fixed" in outputs[9]

        bad = room.with_name("bad.jpg")
        bad.write_text("text")
        with pytest.raises(Exception, match="bad.jpg: not an image"):
            client.predict(handle_file(str(bad)), api_name="/predict")
        depth_frame, status = client.predict(handle_file(str(room)), 0.5, 5.0, api_name="/webcam")
        assert Image.open(depth_frame).size == (640, 480) and "ms per frame" in status  # still serving
        # equal frames at once: each answer is a file of its own, whole (no shared path rewritten meanwhile)
        written = lambda: len(list(Path(get_upload_folder()).glob("depth-app-*/*/webcam_depth.jpg")))  # noqa: E731
        before = written()
        jobs = [client.submit(handle_file(str(room)), 0.5, 5.0, api_name="/webcam") for _ in range(6)]
        for job in jobs:
            Image.open(job.result()[0]).load()
        assert written() == before + 6
        for name, content in (("notes.txt", b"text"), ("empty.jpg", b"")):  # the webcam door is guarded too
            (room.parent / name).write_bytes(content)
            with pytest.raises(Exception, match=rf"{name}: not an image file"):
                client.predict(handle_file(str(room.parent / name)), 0.5, 5.0, api_name="/webcam")
    finally:
        app.close()


def test_the_header_names_the_weights(model, small_net):
    def markdown(app):
        return " ".join(str(b.value) for b in app.blocks.values() if isinstance(b, gr.Markdown))

    assert "trained on tests" in markdown(build_app(model))
    assert markdown(build_app(model)).count("**What to expect.**") == 2  # beside the photo's and the webcam's outputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        untrained = DepthModel(small_net, device="cpu", info={"trained": False})
    assert "⚠️ **paper network:** in-memory weights: UNTRAINED" in markdown(build_app(untrained))


def test_with_two_networks_the_page_offers_a_choice_and_each_endpoint_takes_it(model, small_net, room, tmp_path):
    from demo.networks import BACKBONE_NAMES, as_networks, network_name
    from depth.backbones import BACKBONES

    other = DepthModel(EigenDepthNet(ModelConfig(fc_width=16)).eval(), device="cpu", info={"trained": True})
    networks = {"paper network": model, "another": other}
    app = build_app(networks)
    radio = next(block for block in app.blocks.values() if getattr(block, "elem_id", None) == "network")
    assert radio.visible and [choice[0] for choice in radio.choices] == ["paper network", "another"]
    assert not next(b for b in build_app(model).blocks.values() if getattr(b, "elem_id", None) == "network").visible
    assert network_name(model) == "paper network" and list(as_networks(model)) == ["paper network"]
    assert set(BACKBONE_NAMES) == set(BACKBONES)  # every backbone a checkpoint can hold has a name on the page

    work = PhotoDepth(networks, EXAMPLES, OutputFolders(tmp_path / "out"))
    first, second = work.predict(room), work.predict(room, network="another")
    assert first.network == "paper network" and second.network == "another"
    np.testing.assert_array_equal(second.fine, to_working(other.predict(room).image, other.predict(room).fine)[1])
    assert not np.array_equal(first.fine, second.fine) and "by the another" in summary(second)
    with pytest.raises(ValueError, match="unknown network 'third'; choose one of paper network, another"):
        work.predict(room, network="third")
    picture, _, _ = webcam_depth(other, str(room), 0.5, 5.0)
    assert picture.shape == (480, 640, 3)


def test_the_last_start_up_line_names_the_port_actually_served(model, capsys, monkeypatch):
    import socket

    from gradio import http_server

    from demo.ui import served_address

    monkeypatch.setattr(http_server, "INITIAL_PORT_VALUE", 7860)  # no GRADIO_SERVER_PORT when Gradio loaded
    assert served_address(7860) == "The app is ready: open http://localhost:7860 in a browser"
    assert "port 7860 was busy; set GRADIO_SERVER_PORT" in served_address(7861)
    with socket.socket() as probe:  # a port free now, as if GRADIO_SERVER_PORT had asked for it
        probe.bind(("127.0.0.1", 0))
        asked = probe.getsockname()[1]
    monkeypatch.setattr(http_server, "INITIAL_PORT_VALUE", asked)
    first = serve(build_app(model), prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:  # the second app finds the first one's port busy and moves on
        second = serve(build_app(model), prevent_thread_lock=True, server_name="127.0.0.1")
        try:
            assert first.server_port == asked and second.server_port != asked
            line = capsys.readouterr().out.strip().splitlines()[-1]
            assert line == (f"The app is ready: open http://localhost:{second.server_port} in a browser "
                            f"(port {asked} was busy; set GRADIO_SERVER_PORT to choose another)")
        finally:
            second.close()
    finally:
        first.close()


def test_examples_are_thumbnails_named_by_room_and_a_click_loads_one(model):
    app = build_app(model)
    gallery = next(block for block in app.blocks.values() if getattr(block, "elem_id", None) == "examples")
    assert isinstance(gallery, gr.Gallery) and len(gallery.value) == len(EXAMPLES) == 8
    assert [item["caption"] for item in gallery.value] == EXAMPLES.labels
    pick = next(fn for fn in app.fns.values() if fn.name == "pick")
    assert pick.fn(gr.SelectData(gallery, {"index": 3, "value": None})) == str(EXAMPLES.paths[3])
