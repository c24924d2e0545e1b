"""Pictures of depth for the app: the working resolution and the shared colour range. Colours
and the colour bar themselves come from depth.visualize.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from depth.visualize import depth_range

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


def _nearest(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    resized = Image.fromarray(np.asarray(depth, dtype=np.float32)).resize(size, Image.Resampling.NEAREST)
    return np.asarray(resized, dtype=np.float32)
