"""Point clouds from a photo and its metric depth: build, clean, and write them for download
and for the app's 3D view.

What gr.Model3D (gradio 6.31) shows as points: a .ply with `element vertex` x, y, z and
red, green, blue (uchar) and no faces. Its frontend reads the PLY header, sends Gaussian-splat
PLYs (scale_*, rot_*, opacity) to its splat renderer and everything else to the Babylon.js
viewer, whose PLY loader turns a face-less, non-splat PLY into a coloured point cloud (one-pixel
points). The PLY we write for download is such a file; the viewer's copy only differs in its
axes (see `write_viewer_ply`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import open3d as o3d

from depth.geometry import Intrinsics, backproject

# Statistical outlier removal: a point goes when the mean distance to its NEIGHBORS nearest
# points exceeds the cloud's mean of that by STD_RATIO standard deviations. 12 neighbours
# reach two pixels out on the image grid (the 8 around a pixel plus the 4 two steps away), so
# a flying pixel, or a short streak of them along an edge, still has real surface points among
# its neighbours; 20 (Open3D's usual choice) removed much the same points 35% slower. With 3
# standard deviations it removes 0.7-1.2% of real NYU Kinect frames (points smeared across
# depth edges) and under 0.15% of smooth or slanted synthetic surfaces; with 2 it also ate 7%
# of a steeply slanted plane (a floor), whose pixels spread far apart in depth.
NEIGHBORS = 12
STD_RATIO = 3.0


def point_cloud(
    image: np.ndarray, depth: np.ndarray, intrinsics: Intrinsics, stride: int = 1,
    remove_outliers: bool = True,
) -> o3d.geometry.PointCloud:
    """A coloured point cloud of a photo in the camera frame (x right, y down, z forward).

    image: (H, W, 3) uint8 RGB. depth: (H, W) metres, 0 or non-finite = no depth.
    intrinsics: (fx, fy, cx, cy) in pixels of this (H, W) image.
    stride: use every stride-th row and column (about 1/stride^2 of the points).
    remove_outliers: drop isolated points (flying pixels at depth edges) with Open3D's
        statistical outlier removal, measured relative to depth (see `_inliers`).
    Returns points in metres with colours in [0, 1] taken from the photo's pixels.
    Raises ValueError when the shapes disagree or no pixel has depth.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if np.shape(depth) != image.shape[:2]:
        raise ValueError(f"depth {np.shape(depth)} does not match image {image.shape[:2]}")
    points, pixels = backproject(depth, intrinsics, stride)
    if len(points) == 0:
        raise ValueError("the depth map has no valid pixels (all 0 or non-finite): no points")
    if remove_outliers:
        keep = _inliers(points)
        points, pixels = points[keep], pixels[keep]
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(image.reshape(-1, 3)[pixels] / 255.0)
    return cloud


def write_ply(cloud: o3d.geometry.PointCloud, path: str | Path) -> Path:
    """Write a binary PLY of the cloud's points (float32 metres: a tenth of a micrometre at 5 m,
    half the bytes of double) and colours (uchar); returns the path.

    Raises ValueError for an empty cloud or when Open3D cannot write the file.
    """
    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise ValueError(f"{path}: a PLY file needs the .ply extension")
    if not cloud.has_points():
        raise ValueError(f"{path}: the point cloud is empty, nothing to write")
    compact = o3d.t.geometry.PointCloud(o3d.core.Tensor(np.asarray(cloud.points, dtype=np.float32)))
    if cloud.has_colors():
        compact.point.colors = o3d.core.Tensor(np.round(np.asarray(cloud.colors) * 255).astype(np.uint8))
    if not o3d.t.io.write_point_cloud(str(path), compact, write_ascii=False):
        raise ValueError(f"{path}: Open3D could not write the point cloud "
                         "(does the folder exist, and is it writable?)")
    return path


def write_viewer_ply(cloud: o3d.geometry.PointCloud, path: str | Path) -> Path:
    """Write the PLY that gr.Model3D shows as coloured points; returns the path.

    The cloud is in camera axes (y down, z forward) but the viewer's world is y up in a
    right-handed frame, so the file holds (x, -y, -z): the scene stands upright, seen from the
    photo's side. Keep the viewer's point count modest (stride 2 gives about 77K points for a
    640x480 photo): the browser adds them one by one.
    """
    flipped = o3d.geometry.PointCloud(cloud)
    flipped.points = o3d.utility.Vector3dVector(np.asarray(cloud.points) * (1.0, -1.0, -1.0))
    return write_ply(flipped, path)


def _inliers(points: np.ndarray) -> np.ndarray:
    """Indices of the points statistical outlier removal keeps, judged relative to depth.

    In metres the spacing of back-projected pixels grows with depth, so plain outlier removal
    flags the far end of a room as sparse (on NYU frames it removed points whose median depth
    was the scene's 90th percentile). It therefore runs on (X/Z, Y/Z, log Z), which is metric
    space divided by the local depth: a grid of equal spacing at every depth, where a point
    is an outlier when its depth is off by a large fraction, not a large number of metres.
    """
    depth = points[:, 2:3].astype(np.float64)
    relative = np.concatenate([points[:, :2] / depth, np.log(depth)], axis=1)
    probe = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(relative))
    _, kept = probe.remove_statistical_outlier(nb_neighbors=NEIGHBORS, std_ratio=STD_RATIO)
    return np.asarray(kept, dtype=np.int64)
