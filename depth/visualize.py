"""Depth maps as pictures: colour mapping, colour bars, figures as pixels and 16-bit PNG export."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image

DEFAULT_COLORMAP = "inferno_r"  # near = bright, far = dark


def depth_range(*depths: np.ndarray, percentiles: tuple[float, float] = (2, 98)) -> tuple[float, float]:
    """A robust shared (near, far) range in metres over one or more depth maps."""
    values = np.concatenate([d[np.isfinite(d) & (d > 0)].ravel() for d in depths])
    if values.size == 0:
        return 0.0, 1.0
    near, far = np.percentile(values, percentiles)
    return float(near), float(max(far, near + 1e-3))


def colorize(
    depth: np.ndarray, near: float | None = None, far: float | None = None,
    colormap: str = DEFAULT_COLORMAP,
) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8 through a matplotlib colormap over [near, far] metres.

    near/far default to a robust range of this map. Pixels without depth (0 or NaN) are black.
    """
    if near is None or far is None:
        auto_near, auto_far = depth_range(depth)
        near = auto_near if near is None else near
        far = auto_far if far is None else far
    cmap = matplotlib.colormaps[check_colormap(colormap)]
    scaled = (np.asarray(depth, dtype=np.float32) - near) / max(far - near, 1e-6)
    rgb = (cmap(np.clip(np.nan_to_num(scaled), 0, 1))[..., :3] * 255).round().astype(np.uint8)
    rgb[~(np.isfinite(depth) & (depth > 0))] = 0
    return rgb


def check_colormap(name: str) -> str:
    """`name` if matplotlib knows that colormap, else ValueError."""
    if name not in matplotlib.colormaps:
        raise ValueError(f"unknown colormap {name!r}; try inferno_r, magma, viridis, turbo, gray")
    return name


@lru_cache(maxsize=64)
def colour_bar(near: float, far: float, colormap: str, width: int = 640) -> np.ndarray:
    """A horizontal colour bar for [near, far] metres in `colormap`, ticks labelled in metres.

    Returns (70, width, 3) uint8 RGB, read-only: it is cached, as ranges and colormaps repeat.
    """
    cmap = matplotlib.colormaps[check_colormap(colormap)]
    dpi = 100
    figure = Figure(figsize=(width / dpi, 0.7), dpi=dpi)
    FigureCanvasAgg(figure)
    axis = figure.add_axes((0.03, 0.55, 0.94, 0.4))
    mappable = ScalarMappable(norm=Normalize(near, far), cmap=cmap)
    bar = figure.colorbar(mappable, cax=axis, orientation="horizontal")
    bar.set_label("depth (m)", fontsize=8, labelpad=1)
    bar.ax.tick_params(labelsize=8, length=3, pad=1)
    bar_image = figure_pixels(figure)
    bar_image.flags.writeable = False
    return bar_image


def figure_pixels(figure: Figure) -> np.ndarray:
    """A matplotlib figure rendered to (H, W, 3) uint8 RGB (attached to an Agg canvas if it has none)."""
    if not isinstance(figure.canvas, FigureCanvasAgg):
        FigureCanvasAgg(figure)
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def save_depth_png(path: str | Path, depth: np.ndarray) -> None:
    """Write (H, W) metres as a 16-bit PNG in millimetres (0 = no depth, clipped at 65.535 m)."""
    millimetres = np.nan_to_num(np.asarray(depth, dtype=np.float64) * 1000.0, nan=0.0, posinf=0.0)
    Image.fromarray(np.clip(millimetres, 0, 65535).round().astype(np.uint16)).save(path)


def figure4(
    rows: list[dict[str, np.ndarray]], path: str | Path, colormap: str = DEFAULT_COLORMAP,
    titles: tuple[str, ...] = ("input", "coarse", "coarse + fine", "ground truth"),
) -> Path:
    """A figure laid out like the paper's Fig. 4: one row per example, columns input, coarse,
    fine and (when given) ground truth, every depth on that row's shared range with a colour
    bar in metres.

    rows: dicts with "image" (H, W, 3) uint8, "coarse" and "fine" (H, W) metres, and optionally
    "truth" (H, W) metres, 0 = no reading.
    """
    import matplotlib.pyplot as plt

    columns = 4 if any("truth" in row for row in rows) else 3
    figure, axes = plt.subplots(len(rows), columns, figsize=(3.2 * columns + 0.6, 2.5 * len(rows)),
                                squeeze=False, constrained_layout=True)
    for axes_row, row in zip(axes, rows):
        maps = [row["coarse"], row["fine"]] + ([row["truth"]] if "truth" in row else [])
        near, far = depth_range(*maps)
        axes_row[0].imshow(row["image"])
        for axis, depth in zip(axes_row[1:], maps):
            shown = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan)
            image = axis.imshow(shown, cmap=check_colormap(colormap), vmin=near, vmax=far)
        figure.colorbar(image, ax=list(axes_row[1:]), label="depth (m)", shrink=0.9)
        for axis in axes_row:
            axis.set_axis_off()
    for axis, title in zip(axes[0], titles):
        axis.set_title(title)
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
