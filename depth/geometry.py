"""Camera geometry: pinhole intrinsics and back-projection of metric depth to 3D points.

Conventions used throughout:

- Intrinsics are (fx, fy, cx, cy) in pixels of the image they describe.
- Pixel (u, v) is column u, row v, and its centre sits at the integer coordinates (u, v), as in
  NYU Depth v2's calibration and OpenCV; the image spans [-0.5, W - 0.5] x [-0.5, H - 0.5].
- The camera frame has x to the right, y down and z forward (along the optical axis), in
  metres; depth maps hold z, not the distance along the ray.
"""

from __future__ import annotations

import math

import numpy as np

Intrinsics = tuple[float, float, float, float]

# NYU Depth v2 Kinect RGB camera at 640x480 (fx, fy, cx, cy), from the dataset's toolbox
NYU_INTRINSICS: Intrinsics = (518.8579, 519.4696, 325.5824, 253.7362)
NYU_SIZE = (640, 480)  # (width, height) the NYU intrinsics describe


def scale_intrinsics(
    intrinsics: Intrinsics, from_size: tuple[int, int], to_size: tuple[int, int]
) -> Intrinsics:
    """Intrinsics of an image resized (not cropped) from `from_size` to `to_size`, both (W, H).

    fx and cx scale with the width, fy and cy with the height. Resizing scales the image's
    extent [-0.5, W - 0.5], not the pixel centres, so a principal point c moves to
    (c + 0.5) s - 0.5 with s = new size / old size.
    """
    _check_size(*from_size)
    _check_size(*to_size)
    fx, fy, cx, cy = intrinsics
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    return fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5


def horizontal_fov_degrees(intrinsics: Intrinsics, width: int) -> float:
    """Horizontal field of view, 2 atan(W / (2 fx)), of an image `width` pixels wide."""
    _check_size(width, 1)
    return math.degrees(2 * math.atan(width / (2 * intrinsics[0])))


def nyu_horizontal_fov_degrees() -> float:
    """The NYU Kinect RGB camera's horizontal field of view: about 63 degrees."""
    return horizontal_fov_degrees(NYU_INTRINSICS, NYU_SIZE[0])


def intrinsics_from_fov(width: int, height: int, horizontal_fov_degrees: float) -> Intrinsics:
    """Intrinsics for an uncalibrated photo: square pixels (fx = fy) giving the horizontal
    field of view `horizontal_fov_degrees`, principal point at the image centre
    ((W - 1) / 2, (H - 1) / 2).

    Raises ValueError for sizes that are not positive or a field of view outside (1, 179).
    """
    _check_size(width, height)
    if not 1 < horizontal_fov_degrees < 179:
        raise ValueError(f"horizontal field of view must be between 1 and 179 degrees, "
                         f"got {horizontal_fov_degrees}")
    focal = width / (2 * math.tan(math.radians(horizontal_fov_degrees) / 2))
    return focal, focal, (width - 1) / 2, (height - 1) / 2


def backproject(
    depth: np.ndarray, intrinsics: Intrinsics, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Lift every valid pixel of a depth map to a 3D point in the camera frame.

    depth: (H, W) metres along z; 0, negative or non-finite means no depth there.
    intrinsics: (fx, fy, cx, cy) in pixels of this depth map.
    stride: keep every stride-th row and column (rows and columns 0, stride, 2 stride, ...),
        so the point count falls by about stride^2.
    Returns points (N, 3) float32 metres, X = (u - cx) Z / fx, Y = (v - cy) Z / fy, Z = depth,
    and pixels (N,) int64 flat indices v * W + u into the full-resolution (H, W) map, in
    row-major order, so `image.reshape(-1, 3)[pixels]` gives each point's colour.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be an (H, W) map, got shape {depth.shape}")
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    fx, fy, cx, cy = (float(value) for value in intrinsics)
    height, width = depth.shape
    rows = np.arange(0, height, stride)
    cols = np.arange(0, width, stride)
    sampled = depth[::stride, ::stride].astype(np.float32, copy=False)
    keep_rows, keep_cols = np.nonzero(np.isfinite(sampled) & (sampled > 0))
    z = sampled[keep_rows, keep_cols]
    v, u = rows[keep_rows], cols[keep_cols]
    points = np.empty((z.size, 3), dtype=np.float32)
    points[:, 0] = (u - cx) * z / fx
    points[:, 1] = (v - cy) * z / fy
    points[:, 2] = z
    return points, v * width + u


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
