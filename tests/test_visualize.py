import numpy as np
import pytest
from PIL import Image

from depth.visualize import check_colormap, colorize, depth_range, figure4, save_depth_png


def test_colorize_maps_near_and_far_to_the_colormap_ends_and_holes_to_black():
    depth = np.array([[1.0, 2.0, 3.0, 0.0]])
    rgb = colorize(depth, near=1.0, far=3.0, colormap="gray")
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 4, 3)
    assert tuple(rgb[0, 0]) == (0, 0, 0) and tuple(rgb[0, 2]) == (255, 255, 255)
    assert tuple(rgb[0, 1]) in {(127, 127, 127), (128, 128, 128)}
    assert tuple(rgb[0, 3]) == (0, 0, 0)  # no depth
    with pytest.raises(ValueError, match="unknown colormap 'nope'"):
        check_colormap("nope")


def test_shared_range_ignores_holes():
    near, far = depth_range(np.array([0.0, 1.0, 2.0]), np.array([np.nan, 3.0]), percentiles=(0, 100))
    assert (near, far) == (1.0, 3.0)


def test_depth_png_is_16_bit_millimetres(tmp_path):
    depth = np.array([[0.0, 1.2345, 70.0, np.nan]])
    save_depth_png(tmp_path / "d.png", depth)
    values = np.asarray(Image.open(tmp_path / "d.png"))
    assert values.dtype == np.uint16 and values.tolist() == [[0, 1234, 65535, 0]]


def test_figure4_has_a_column_per_map(tmp_path):
    rng = np.random.default_rng(0)
    row = dict(image=rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), coarse=rng.random((24, 32)) + 1,
               fine=rng.random((24, 32)) + 1)
    three = np.asarray(Image.open(figure4([row], tmp_path / "three.png")))
    four = np.asarray(Image.open(figure4([{**row, "truth": rng.random((24, 32)) + 1}], tmp_path / "four.png")))
    assert four.shape[1] > three.shape[1] and three.shape[0] == four.shape[0]
