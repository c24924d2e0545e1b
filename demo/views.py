"""Pictures of depth for the app: the working resolution, the shared colour range and the
colour bar. Colours themselves come from depth.visualize.colorize.
"""

from __future__ import annotations

from functools import lru_cache

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image

from depth.visualize import check_colormap, depth_range

# The app shows, writes and back-projects photos at most this many pixels on their long side.
# The depth itself comes from a 74x55 grid, so a larger map adds pixels, not detail; the CLI
# (python -m depth predict) writes full-resolution files.
WORK_SIDE = 1024


def working_size(width: int, height: int, limit: int = WORK_SIDE) -> tuple[int, int]:
    """(width, height) scaled to fit `limit` pixels on the long side; unchanged if it fits."""
    scale = limit / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_working(image: np.ndarray, *depths: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """The photo (H, W, 3) uint8 and its (H, W) depth maps (metres; None passes through) at
    the working resolution. The photo is resampled smoothly (Lanczos); depth maps take the
    nearest pixel, so "no reading" (0) never blends with real depths.
    """
    height, width = image.shape[:2]
    size = working_size(width, height)
    if size == (width, height):
        return (image, *depths)
    small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))
    return (small, *(None if d is None else _nearest(d, size) for d in depths))


def colour_range(
    depths: list[np.ndarray], fixed: tuple[float, float] | None = None
) -> tuple[float, float]:
    """One (near, far) range in metres for several maps: `fixed` if given (checked), else the
    robust automatic range of depth.visualize.depth_range over all of them together."""
    if fixed is None:
        return depth_range(*depths)
    near, far = (float(v) for v in fixed)
    if not (np.isfinite(near) and np.isfinite(far) and 0 <= near < far):
        raise ValueError(f"a fixed depth range needs 0 <= near < far, got near={near} m, far={far} m")
    return near, far


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
    figure.canvas.draw()
    bar_image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    bar_image.flags.writeable = False
    return bar_image


def _nearest(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    resized = Image.fromarray(np.asarray(depth, dtype=np.float32)).resize(size, Image.Resampling.NEAREST)
    return np.asarray(resized, dtype=np.float32)
