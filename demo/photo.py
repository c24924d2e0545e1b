"""The photo tab: a photo in; coarse and fine depth, ground truth when known, metrics, a point
cloud and files out. Changing a control re-renders from the last result without the network.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from depth import DepthModel
from depth.geometry import intrinsics_from_fov, nyu_horizontal_fov_degrees
from depth.metrics import METRIC_NAMES, compute_metrics
from depth.predict import default_map
from depth.visualize import DEFAULT_COLORMAP, colorize, colour_bar

from .examples import Examples
from .networks import as_networks, choose
from .outputs import OutputFolders, file_stem, write_depth_files, write_rgb
from .pointcloud import point_cloud, write_ply, write_viewer_ply
from .surface import depth_surface, write_surface
from .views import colour_range, to_working

AUTOMATIC, FIXED = "automatic", "fixed"
DEFAULT_FOV = round(nyu_horizontal_fov_degrees(), 1)  # the NYU Kinect's: the camera the net assumes
DEFAULT_STRIDE = 2  # about 77K points for 640x480, which the browser's viewer shows smoothly
MAX_STRIDE = 16
SURFACE, POINTS = "surface", "points"  # what the 3D view shows
# What the shipped networks are good at and where they fail: MODEL_CARD.md, short. The two
# figures are the default's on the real frames: abs rel and 1 - δ<1.25 of
# assets/reports/default/real-rgbd.json (tests/test_classroom.py checks them against it).
LIMITS = (
    "**What to expect.** These networks learned from synthetic rooms this project renders, never "
    "from a real photo. Indoors they get the layout of a room roughly right (floor near, far wall "
    "far), with the coarse blur of a 74×55 grid; on real photos the default's metres are off by 21% "
    "on average and 40% of pixels' by more than a quarter, so read the maps as layout, not as "
    "measurements. Outdoor scenes, close-ups, "
    "people, very wide or tele lenses and tilted photos are outside what they learned. Numbers: "
    "the model card (MODEL_CARD.md)."
)
# The 3D view opens turned 35 degrees to the side and looking 20 degrees down on the scene (the
# viewer's alpha and beta; head-on, 90 and 90, a depth map looks flat), framed on it by the viewer.
VIEW_ANGLE = (55, 70, None)
DEFAULT_NEAR, DEFAULT_FAR = 0.5, 10.0  # metres: NYU Depth v2's range, for fixed ranges
COLORMAPS = [DEFAULT_COLORMAP, "magma_r", "plasma_r", "viridis_r", "cividis_r", "turbo", "Spectral", "gray_r"]
METRIC_LABELS = {"delta1": "δ<1.25", "delta2": "δ<1.25²", "delta3": "δ<1.25³", "abs_rel": "abs rel",
                 "sq_rel": "sq rel", "rmse": "RMSE", "rmse_log": "RMSE log", "si_log": "SI log",
                 "log10": "log10"}


@dataclass(frozen=True)
class Colours:
    """The colour pictures of one result (PNG files) and the one range they share."""

    colormap: str
    automatic: bool
    near: float  # metres
    far: float
    coarse: Path
    fine: Path  # also the colour image offered for download
    truth: Path | None
    bar: Path


@dataclass(frozen=True)
class Cloud:
    """The point cloud of one result."""

    fov: float  # horizontal field of view, degrees
    stride: int
    points: int
    ply: Path  # camera axes (x right, y down, z forward), metres: the download
    viewer: Path  # the same points in gr.Model3D's axes
    surface: Path  # the depth grid triangulated (every 2 stride-th pixel), gr.Model3D's axes (.glb)


@dataclass(frozen=True)
class PhotoResult:
    """One photo's depth, as the tab keeps it between events (in gr.State).

    image: (H, W, 3) uint8, the upright photo at the app's working resolution (views.WORK_SIDE);
    coarse, fine: (H, W) float32 metres; truth: (H, W) float32 metres, 0 = no reading, or None.
    output: the map the weights stand behind ("fine" or "coarse", DepthModel.output): the one
    downloaded and shown in 3D.
    metrics: {"coarse": ..., "fine": ...}, each depth.metrics.compute_metrics under the paper
    protocol at the photo's own resolution, or None without ground truth.
    model_seconds: the time model.predict took (decoding, network, resampling).
    """

    name: str  # the photo's file name
    size: tuple[int, int]  # the photo's own (width, height)
    image: np.ndarray
    coarse: np.ndarray
    fine: np.ndarray
    truth: np.ndarray | None
    metrics: dict[str, dict[str, float]] | None
    model_seconds: float
    device: str
    photo: Path  # JPEG of `image`, for display
    depth_png: Path  # 16-bit millimetres
    depth_npy: Path  # float32 metres
    colours: Colours
    cloud: Cloud
    output: str = "fine"
    network: str = ""  # the name of the network that estimated it (demo.networks)

    @property
    def depth(self) -> np.ndarray:
        """(H, W) float32 metres: the default output."""
        return default_map(self.output, self.coarse, self.fine)

    @property
    def downloads(self) -> list[Path]:
        """The files offered for download: point cloud, 16-bit depth PNG, .npy, colour image."""
        colour = default_map(self.output, self.colours.coarse, self.colours.fine)
        return [self.cloud.ply, self.depth_png, self.depth_npy, colour]


class PhotoDepth:
    """The tab's work, apart from the page: predict, re-colour, rebuild the point cloud.

    Every call writes its files into a new folder from `folders`. Bad photos and control
    values raise ValueError (FileNotFoundError for a missing file).
    """

    def __init__(self, models: DepthModel | Mapping[str, DepthModel], examples: Examples,
                 folders: OutputFolders) -> None:
        self.networks = as_networks(models)  # {name: model}, the first the default
        self.examples = examples
        self.folders = folders

    def predict(
        self, path: str | Path, colormap: str = DEFAULT_COLORMAP, range_mode: str = AUTOMATIC,
        near: float = DEFAULT_NEAR, far: float = DEFAULT_FAR, fov: float = DEFAULT_FOV,
        stride: int = DEFAULT_STRIDE, network: str | None = None,
    ) -> PhotoResult:
        """Run the network called `network` (None: the default) on the photo file at `path` and
        render everything."""
        model = choose(self.networks, network)
        start = time.perf_counter()
        prediction = model.predict(path)
        model_seconds = time.perf_counter() - start
        truth = self.examples.truth(path)
        metrics = None
        if truth is not None:
            metrics = {"coarse": compute_metrics(prediction.coarse, truth),
                       "fine": compute_metrics(prediction.fine, truth)}
        image, coarse, fine, truth = to_working(prediction.image, prediction.coarse, prediction.fine, truth)
        folder, stem = self.folders.new(), file_stem(path)
        output = model.output
        depth_png, depth_npy = write_depth_files(folder, stem, default_map(output, coarse, fine))
        height, width = prediction.image.shape[:2]
        return PhotoResult(
            name=Path(path).name, size=(width, height), image=image, coarse=coarse, fine=fine,
            truth=truth, metrics=metrics, model_seconds=model_seconds, device=_device_name(model),
            photo=write_rgb(folder / f"{stem}_photo.jpg", image), depth_png=depth_png, depth_npy=depth_npy,
            colours=_colours(coarse, fine, truth, folder, stem, colormap, range_mode, near, far),
            cloud=_cloud(image, default_map(output, coarse, fine), folder, stem, fov, stride), output=output,
            network=network or next(iter(self.networks)),
        )

    def recolour(
        self, result: PhotoResult, colormap: str, range_mode: str, near: float, far: float
    ) -> PhotoResult:
        """The same result in another colormap or range."""
        folder, stem = self._folder_for(result)
        colours = _colours(result.coarse, result.fine, result.truth, folder, stem, colormap, range_mode, near, far)
        return replace(result, colours=colours)

    def recloud(self, result: PhotoResult, fov: float, stride: int) -> PhotoResult:
        """The same result's point cloud for another field of view or density."""
        folder, stem = self._folder_for(result)
        return replace(result, cloud=_cloud(result.image, result.depth, folder, stem, fov, stride))

    def _folder_for(self, result: PhotoResult) -> tuple[Path, str]:
        if not result.depth_npy.exists():
            raise ValueError("this result's files have been cleaned up since; estimate its depth again")
        return self.folders.new(), file_stem(result.name)


def _colours(
    coarse: np.ndarray, fine: np.ndarray, truth: np.ndarray | None, folder: Path, stem: str,
    colormap: str, range_mode: str, near: float, far: float,
) -> Colours:
    """Colour every map over one range (automatic: over all of them together)."""
    if range_mode not in (AUTOMATIC, FIXED):
        raise ValueError(f"depth range must be {AUTOMATIC!r} or {FIXED!r}, got {range_mode!r}")
    maps = [coarse, fine] + ([truth] if truth is not None else [])
    near, far = colour_range(maps, None if range_mode == AUTOMATIC else (near, far))
    pictures = [colorize(depth, near, far, colormap) for depth in maps]
    names = ["coarse_color", "depth_color", "truth_color"]
    files = [write_rgb(folder / f"{stem}_{name}.png", picture) for name, picture in zip(names, pictures)]
    return Colours(
        colormap=colormap, automatic=range_mode == AUTOMATIC, near=near, far=far,
        coarse=files[0], fine=files[1], truth=files[2] if truth is not None else None,
        bar=write_rgb(folder / f"{stem}_colorbar.png", colour_bar(near, far, colormap)),
    )


def _cloud(image: np.ndarray, depth: np.ndarray, folder: Path, stem: str, fov: float, stride: int) -> Cloud:
    """Back-project the depth (H, W) metres through the intrinsics of a `fov`-degree camera."""
    if stride != int(stride) or not 1 <= stride <= MAX_STRIDE:
        raise ValueError(f"point density: stride must be a whole number from 1 to {MAX_STRIDE}, got {stride}")
    height, width = depth.shape
    intrinsics = intrinsics_from_fov(width, height, fov)
    cloud = point_cloud(image, depth, intrinsics, int(stride))
    # a surface needs fewer vertices than points to look whole: the depth is a 74x55 grid
    surface = depth_surface(image, depth, intrinsics, 2 * int(stride))
    return Cloud(fov=float(fov), stride=int(stride), points=len(cloud.points),
                 ply=write_ply(cloud, folder / f"{stem}_points.ply"),
                 viewer=write_viewer_ply(cloud, folder / f"{stem}_viewer.ply"),
                 surface=write_surface(surface, folder / f"{stem}_surface.glb"))


def summary(result: PhotoResult) -> str:
    """Markdown: what was computed, how fast, where, and with which settings."""
    width, height = result.size
    shown_h, shown_w = result.image.shape[:2]
    resized = "" if (shown_w, shown_h) == result.size else f" (shown and saved at {shown_w}×{shown_h})"
    colours, cloud = result.colours, result.cloud
    truth = ("known (example frame): metrics below, paper protocol" if result.metrics
             else "unknown (pick an example to compare with ground truth)")
    return (
        f"**{result.name}**, {width}×{height}{resized} · "
        f"depth in **{result.model_seconds * 1000:.0f} ms** on **{result.device}** by the {result.network}"
        + ("" if result.output == "fine" else " (its coarse map: its fine stage scored worse)") + "\n\n"
        f"Colours {colours.near:.2f}–{colours.far:.2f} m "
        f"({'automatic' if colours.automatic else 'fixed'}, shared by every map) · "
        f"3D: {cloud.points:,} points (stride {cloud.stride}, {cloud.fov:.1f}° field of view) · "
        f"ground truth {truth}"
    )


def metrics_table(result: PhotoResult) -> pd.DataFrame:
    """The metrics as the paper's Table 1 lays them out: columns "network" and the metrics,
    rows "coarse" and "coarse + fine"; no rows without ground truth."""
    columns = ["network"] + [METRIC_LABELS[name] for name in METRIC_NAMES]
    if result.metrics is None:
        return pd.DataFrame(columns=columns)
    rows = {"coarse": result.metrics["coarse"], "coarse + fine": result.metrics["fine"]}
    return pd.DataFrame([[name] + [values[k] for k in METRIC_NAMES] for name, values in rows.items()],
                        columns=columns)


@contextmanager
def user_errors(path: str | Path | None = None) -> Iterator[None]:
    """Turn a bad photo or control value into a message in the page (gr.Error), naming an
    uploaded file by its own name, not by the server's upload path."""
    try:
        yield
    except (ValueError, OSError) as error:
        message = str(error)
        if path is not None:
            message = message.replace(str(path), Path(path).name)
        # gr.Error shows HTML, but sanitised by the page, so a file name cannot inject anything
        raise gr.Error(message, print_exception=False) from None


def _device_name(model: DepthModel) -> str:
    if model.device.type == "cuda":
        import torch

        return f"GPU ({torch.cuda.get_device_name(model.device)})"
    return "CPU"


# ---- the page ------------------------------------------------------------------------------

def photo_tab(work: PhotoDepth, network: gr.Radio) -> gr.File:
    """Lay out the photo tab inside the current gr.Blocks and wire its events; `network` is the
    page's choice of network (demo.networks). Returns the photo upload (the classroom tab explains
    its photo).

    API "/predict": (photo file, colormap, range mode, near, far, fov, stride, 3D view, network) ->
    (photo, coarse, fine, ground truth or None, colour bar, (photo, fine) slider, 3D view file
    (the surface's .glb, or the points' .ply), downloads, metrics table (no rows without ground
    truth), summary Markdown).
    """
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            # a File, not an Image: gr.Image decodes uploads itself, before our checks and messages
            upload = gr.File(label="Photo", file_types=["image"], type="filepath", elem_id="photo-upload")
            # usable once there is a photo: pressed without one, every output would show an error
            run = gr.Button("Estimate depth", variant="primary", interactive=False, elem_id="run")
            if work.examples.paths:
                # thumbnails, named by the kind of room; a click puts the photo in the upload
                examples = gr.Gallery([(str(path), label) for path, label in zip(work.examples.paths,
                                                                                 work.examples.labels)],
                                      label="Examples with ground truth (synthetic rooms): click one", columns=4,
                                      height="auto", object_fit="cover", allow_preview=False, elem_id="examples")
                paths = [str(path) for path in work.examples.paths]

                def pick(event: gr.SelectData) -> str:  # Gradio passes the click by this annotation
                    return paths[event.index]

                examples.select(pick, None, upload, queue=False, api_visibility="private")
            colormap = gr.Dropdown(COLORMAPS, value=DEFAULT_COLORMAP, allow_custom_value=True,
                                   label="Colormap (any matplotlib name)", elem_id="colormap")
            range_mode = gr.Radio([AUTOMATIC, FIXED], value=AUTOMATIC, label="Depth range", elem_id="range",
                                  info="automatic: from this photo's maps; fixed: the same for every photo")
            with gr.Row():
                near = gr.Slider(0.0, 30.0, value=DEFAULT_NEAR, step=0.05, label="near (m)", interactive=False,
                                 elem_id="near")
                far = gr.Slider(0.1, 30.0, value=DEFAULT_FAR, step=0.05, label="far (m)", interactive=False,
                                elem_id="far")
            fov = gr.Slider(20, 120, value=DEFAULT_FOV, step=0.1, label="Field of view for 3D (°, horizontal)",
                            info="default: the NYU Kinect camera the network learned from", elem_id="fov")
            stride = gr.Slider(1, MAX_STRIDE, value=DEFAULT_STRIDE, step=1,
                               label="Point density: every n-th pixel in 3D", elem_id="stride")
            view = gr.Radio([SURFACE, POINTS], value=SURFACE, label="3D view", elem_id="view",
                            info="surface: the depth grid triangulated (every 2n-th pixel); points: the cloud")
        with gr.Column(scale=3):
            info = gr.Markdown(label="Summary", elem_id="summary")
            with gr.Row(equal_height=True):
                photo = gr.Image(label="Input", interactive=False, elem_id="photo")
                coarse = gr.Image(label="Coarse", interactive=False, elem_id="coarse")
                fine = gr.Image(label="Coarse + fine", interactive=False, elem_id="fine")
                truth = gr.Image(label="Ground truth", interactive=False, visible=False, elem_id="truth")
            bar = gr.Image(label="Colour bar", show_label=False, interactive=False, container=False, buttons=[],
                           elem_id="colorbar", height=70)
            metrics = gr.Dataframe(label="Metrics (ground truth, paper protocol)",
                                   interactive=False, visible=False, elem_id="metrics")
            with gr.Row(equal_height=True):
                slider = gr.ImageSlider(label="Photo | depth", interactive=False,
                                        elem_id="slider")
                viewer = gr.Model3D(label="3D", interactive=False, camera_position=VIEW_ANGLE,
                                    clear_color=(0.12, 0.12, 0.14, 1.0), elem_id="viewer", height=420)
            gr.Markdown("Drag the slider's handle to compare; drag the 3D view to turn it, scroll to "
                        "zoom. Downloads: the point cloud (.ply, metres, camera axes), the depth as a "
                        "16-bit PNG (millimetres) and as .npy (float32 metres), and its colour image.")
            downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
            gr.Markdown(LIMITS, elem_id="limits")
    state = gr.State(None)

    colour_outputs = [coarse, fine, truth, bar, slider]
    predict_outputs = [photo, *colour_outputs, viewer, downloads, metrics, info, state]
    controls = [colormap, range_mode, near, far, fov, stride]

    def predict(photo: str | None, colormap: str, range_mode: str, near: float, far: float, fov: float,
                stride: float, view: str = SURFACE, network_name: str | None = None) -> tuple:
        if photo is None:
            raise gr.Error("Upload a photo first (or pick an example).", print_exception=False)
        with user_errors(photo):
            result = work.predict(photo, colormap, range_mode, near, far, fov, stride, network_name)
            shown = _shown(result, view)
        return (result.photo, *_colour_values(result), shown, _files(result),
                _styled(metrics_table(result)), summary(result), result)

    def predict_or_clear(photo: str | None, *controls: Any) -> tuple:
        if photo is None:  # the upload was cleared
            return (None,) * len(predict_outputs)
        return predict(photo, *controls)

    def recolour(result: PhotoResult | None, *values: Any) -> tuple:
        if result is None:
            return (gr.skip(),) * (len(colour_outputs) + 3)
        with user_errors():
            result = work.recolour(result, *values)
        return (*_colour_values(result), _files(result), summary(result), result)

    def recloud(result: PhotoResult | None, fov: float, stride: float, view: str) -> tuple:
        if result is None:
            return (gr.skip(),) * 4
        with user_errors():
            result = work.recloud(result, fov, stride)
            return _shown(result, view), _files(result), summary(result), result

    def switch_view(result: PhotoResult | None, view: str) -> Any:
        if result is None:
            return gr.skip()
        with user_errors():
            return _shown(result, view)

    def show_truth(result: PhotoResult | None) -> tuple:
        # a separate step, so /predict returns plain values rather than component updates
        known = result is not None and result.truth is not None
        return gr.Image(visible=known), gr.Dataframe(visible=known)

    private = {"api_visibility": "private"}
    photo_events = {"concurrency_id": "photo", "concurrency_limit": 2}
    run.click(predict, [upload, *controls, view, network], predict_outputs, api_name="predict", **photo_events).then(
        show_truth, state, [truth, metrics], queue=False, **private)
    gr.on([upload.change, network.change], predict_or_clear, [upload, *controls, view, network], predict_outputs,
          **private, **photo_events).then(show_truth, state, [truth, metrics], queue=False, **private)
    # re-rendering is cheap (no network): its own, wider group, so it never waits behind predictions
    render_events = {"concurrency_id": "render", "concurrency_limit": 4, **private}
    gr.on([colormap.change, range_mode.change, near.release, far.release], recolour,
          [state, colormap, range_mode, near, far], [*colour_outputs, downloads, info, state], **render_events)
    gr.on([fov.release, stride.release], recloud, [state, fov, stride, view], [viewer, downloads, info, state],
          **render_events)
    view.change(switch_view, [state, view], viewer, queue=False, **private)
    range_mode.change(lambda mode: (gr.Slider(interactive=mode == FIXED),) * 2, range_mode, [near, far],
                      queue=False, **private)
    upload.change(lambda path: gr.Button(interactive=path is not None), upload, run, queue=False, **private)
    return upload


def _colour_values(result: PhotoResult) -> tuple:
    """Values for (coarse, fine, truth, colour bar, slider)."""
    colours = result.colours
    return colours.coarse, colours.fine, colours.truth, colours.bar, (result.photo, colours.fine)


def _shown(result: PhotoResult, view: str) -> str:
    """The file the 3D view shows: the surface or the points."""
    if view not in (SURFACE, POINTS):
        raise ValueError(f"3D view must be {SURFACE!r} or {POINTS!r}, got {view!r}")
    return str(result.cloud.surface if view == SURFACE else result.cloud.viewer)


def _files(result: PhotoResult) -> list[str]:
    return [str(path) for path in result.downloads]  # gr.File takes str paths only


def _styled(table: pd.DataFrame) -> Any:
    # the page shows 3 decimals; the API returns the full values
    return table.style.format(precision=3)
