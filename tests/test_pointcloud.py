import numpy as np
import open3d as o3d
import pytest

from demo.pointcloud import point_cloud, write_ply, write_viewer_ply
from depth.geometry import NYU_INTRINSICS

OUTLIERS = [(100, 100), (200, 300), (400, 600), (50, 500), (300, 50)]  # (row, column)


@pytest.fixture
def wall() -> np.ndarray:
    """A 480x640 fronto-parallel wall 2 m away with 5 isolated pixels at 50 m."""
    depth = np.full((480, 640), 2.0, np.float32)
    for row, col in OUTLIERS:
        depth[row, col] = 50.0
    return depth


def pixel_of(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each camera-frame point, projected with the NYU intrinsics."""
    fx, fy, cx, cy = NYU_INTRINSICS
    cols = np.rint(fx * points[:, 0] / points[:, 2] + cx).astype(int)
    rows = np.rint(fy * points[:, 1] / points[:, 2] + cy).astype(int)
    return rows, cols


def test_without_outlier_removal_every_valid_pixel_is_a_point(photo, wall):
    wall[:10] = 0.0  # 10 rows without depth
    cloud = point_cloud(photo, wall, NYU_INTRINSICS, remove_outliers=False)
    assert len(cloud.points) == 470 * 640


def test_colours_are_the_photo_pixels(photo, wall):
    cloud = point_cloud(photo, wall, NYU_INTRINSICS, stride=2)
    points, colours = np.asarray(cloud.points), np.asarray(cloud.colors)
    rows, cols = pixel_of(points)
    np.testing.assert_allclose(colours, photo[rows, cols] / 255.0)
    assert (rows % 2 == 0).all() and (cols % 2 == 0).all()


def test_isolated_far_points_are_removed_and_the_wall_stays(photo, wall):
    cloud = point_cloud(photo, wall, NYU_INTRINSICS)
    points = np.asarray(cloud.points)
    valid = 480 * 640
    assert points[:, 2].max() == pytest.approx(2.0)  # all five 50 m pixels are gone
    # the wall stays; the points statistical removal may take besides the outliers are the
    # image border's, whose neighbours all lie on one side
    assert len(points) > 0.99 * (valid - len(OUTLIERS))
    rows, cols = pixel_of(points)
    assert rows.min() >= 0 and rows.max() <= 479 and cols.min() >= 0 and cols.max() <= 639
    interior = (rows > 1) & (rows < 478) & (cols > 1) & (cols < 638)
    assert interior.sum() == 476 * 636 - len(OUTLIERS)


def test_points_stay_in_metres(photo, wall):
    cloud = point_cloud(photo, wall, NYU_INTRINSICS, stride=4)
    np.testing.assert_allclose(np.asarray(cloud.points)[:, 2], 2.0)


def test_ply_round_trip(tmp_path, photo, wall):
    cloud = point_cloud(photo, wall, NYU_INTRINSICS, stride=4)
    path = write_ply(cloud, tmp_path / "cloud.ply")
    assert path.read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
    header = path.read_bytes().split(b"end_header\n")[0].decode()
    assert "property float x" in header and "double" not in header  # float32: half the bytes
    back = o3d.io.read_point_cloud(str(path))
    np.testing.assert_allclose(np.asarray(back.points), np.asarray(cloud.points), rtol=1e-7, atol=1e-7)
    # colours travel as uchar: exact for colours that came from uint8 pixels
    np.testing.assert_allclose(np.asarray(back.colors), np.asarray(cloud.colors), atol=1e-6)


def test_viewer_ply_is_a_plain_coloured_point_list_standing_upright(tmp_path, photo, wall):
    cloud = point_cloud(photo, wall, NYU_INTRINSICS, stride=4)
    path = write_viewer_ply(cloud, tmp_path / "view.ply")
    header = path.read_bytes().split(b"end_header\n")[0].decode()
    # what gr.Model3D renders as points: vertices with x y z and uchar colours, no faces and
    # none of the Gaussian-splat properties
    for line in ("property uchar red", "property uchar green", "property uchar blue"):
        assert line in header
    assert "element face" not in header and "scale_0" not in header
    back = np.asarray(o3d.io.read_point_cloud(str(path)).points)
    np.testing.assert_allclose(back, np.asarray(cloud.points) * [1, -1, -1], rtol=1e-7, atol=1e-7)


def test_empty_depth_raises(photo):
    with pytest.raises(ValueError, match="no valid pixels"):
        point_cloud(photo, np.zeros((480, 640), np.float32), NYU_INTRINSICS)


def test_empty_cloud_is_not_written(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        write_ply(o3d.geometry.PointCloud(), tmp_path / "empty.ply")


def test_unwritable_path_raises(tmp_path, photo, wall):
    cloud = point_cloud(photo, wall, NYU_INTRINSICS, stride=8)
    with pytest.raises(ValueError, match="could not write"):
        write_ply(cloud, tmp_path / "missing" / "cloud.ply")


def test_mismatched_shapes_raise(photo):
    with pytest.raises(ValueError, match="does not match"):
        point_cloud(photo, np.ones((240, 320), np.float32), NYU_INTRINSICS)
