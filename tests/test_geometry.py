import math

import numpy as np
import pytest

from depth.geometry import (
    NYU_INTRINSICS,
    backproject,
    horizontal_fov_degrees,
    intrinsics_from_fov,
    nyu_horizontal_fov_degrees,
    scale_intrinsics,
)

FX, FY, CX, CY = NYU_INTRINSICS


def project(points: np.ndarray, intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame points (N, 3) -> pixel coordinates (u, v), the inverse of backproject."""
    fx, fy, cx, cy = intrinsics
    return fx * points[:, 0] / points[:, 2] + cx, fy * points[:, 1] / points[:, 2] + cy


def test_plane_backprojects_to_the_frustum_at_its_depth():
    points, pixels = backproject(np.full((480, 640), 2.0, np.float32), NYU_INTRINSICS)
    assert points.shape == (480 * 640, 3) and points.dtype == np.float32
    assert pixels.shape == (480 * 640,)
    np.testing.assert_array_equal(points[:, 2], 2.0)
    # corners: pixel centres (0, 0) and (639, 479), X = (u - cx) Z / fx, Y = (v - cy) Z / fy
    np.testing.assert_allclose(points[:, 0].min(), (0 - 325.5824) * 2 / 518.8579, rtol=1e-6)
    np.testing.assert_allclose(points[:, 0].max(), (639 - 325.5824) * 2 / 518.8579, rtol=1e-6)
    np.testing.assert_allclose(points[:, 1].min(), (0 - 253.7362) * 2 / 519.4696, rtol=1e-6)
    np.testing.assert_allclose(points[:, 1].max(), (479 - 253.7362) * 2 / 519.4696, rtol=1e-6)


def test_principal_point_lies_on_the_optical_axis():
    intrinsics = (500.0, 500.0, 20.0, 10.0)  # principal point exactly on pixel (20, 10)
    depth = np.full((32, 48), 3.0, np.float32)
    points, pixels = backproject(depth, intrinsics)
    centre = points[pixels == 10 * 48 + 20][0]
    np.testing.assert_allclose(centre, [0.0, 0.0, 3.0], atol=1e-7)


def test_projecting_the_points_returns_their_pixels():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 10.0, (48, 64)).astype(np.float32)
    points, pixels = backproject(depth, NYU_INTRINSICS)
    u, v = project(points.astype(np.float64), NYU_INTRINSICS)
    np.testing.assert_allclose(u, pixels % 64, atol=1e-3)
    np.testing.assert_allclose(v, pixels // 64, atol=1e-3)
    np.testing.assert_allclose(points[:, 2], depth.ravel()[pixels])


def test_pixels_without_depth_are_dropped():
    depth = np.full((4, 5), 1.5, np.float32)
    depth[0, 0], depth[1, 2], depth[2, 3], depth[3, 4] = 0.0, np.nan, np.inf, -1.0
    points, pixels = backproject(depth, NYU_INTRINSICS)
    assert len(points) == 16
    assert not np.isin([0, 7, 13, 19], pixels).any()  # flat indices v * 5 + u of the holes
    assert np.all(points[:, 2] == 1.5)


def test_stride_keeps_every_stride_th_row_and_column():
    depth = np.arange(1, 10 * 7 + 1, dtype=np.float32).reshape(10, 7)
    points, pixels = backproject(depth, NYU_INTRINSICS, stride=3)
    rows, cols = np.divmod(pixels, 7)
    assert set(rows) == {0, 3, 6, 9} and set(cols) == {0, 3, 6}
    assert len(points) == 4 * 3
    np.testing.assert_array_equal(points[:, 2], depth[::3, ::3].ravel())


@pytest.mark.parametrize("stride", [0, -1, 1.5])
def test_bad_stride_raises(stride):
    with pytest.raises(ValueError, match="stride"):
        backproject(np.ones((4, 4), np.float32), NYU_INTRINSICS, stride=stride)


def test_halving_the_nyu_image_halves_focal_lengths_and_moves_the_centre_by_pixel_edges():
    fx, fy, cx, cy = scale_intrinsics(NYU_INTRINSICS, (640, 480), (320, 240))
    assert fx == pytest.approx(259.42895) and fy == pytest.approx(259.7348)
    # pixel centres at integers: c' = (c + 0.5) / 2 - 0.5
    assert cx == pytest.approx(162.5412) and cy == pytest.approx(126.6181)


def test_scaling_keeps_points_at_the_same_place_in_the_image():
    # the image's right edge u = W - 0.5 must map to the new right edge
    fx, _, cx, _ = scale_intrinsics(NYU_INTRINSICS, (640, 480), (320, 240))
    assert ((639.5 - CX) / FX) == pytest.approx((319.5 - cx) / fx)


def test_nyu_field_of_view_is_about_63_degrees():
    assert nyu_horizontal_fov_degrees() == pytest.approx(
        math.degrees(2 * math.atan(640 / (2 * 518.8579))))
    assert 62 < nyu_horizontal_fov_degrees() < 64


def test_intrinsics_from_the_nyu_fov_give_the_nyu_focal_length():
    fx, fy, cx, cy = intrinsics_from_fov(640, 480, nyu_horizontal_fov_degrees())
    assert fx == pytest.approx(FX, rel=0.01) and fy == fx
    assert (cx, cy) == (319.5, 239.5)
    fov = horizontal_fov_degrees((fx, fy, cx, cy), 640)
    assert fov == pytest.approx(nyu_horizontal_fov_degrees())


@pytest.mark.parametrize("fov", [0.5, 1, 179, 180, -60])
def test_field_of_view_out_of_range_raises(fov):
    with pytest.raises(ValueError, match=str(fov)):
        intrinsics_from_fov(640, 480, fov)


@pytest.mark.parametrize("size", [(0, 480), (640, -1)])
def test_non_positive_size_raises(size):
    with pytest.raises(ValueError, match="size"):
        intrinsics_from_fov(*size, 60)
