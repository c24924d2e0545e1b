import io
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import depth
from depth.images import MAX_PIXELS, load_rgb
from depth.predict import DepthModel, UntrainedWeightsWarning


class IntensityProbe(torch.nn.Module):
    """Stands in for the network: "depth" = mean red intensity (0..255) over each output cell.

    Output cell (i, j) covers input pixels [4j + 3.5, 4j + 7.5), centred on 4j + 5.5: the
    5x5 average of input pixels 4j + 3 ... 4j + 7 is centred there too. So the prediction
    mapped back to the photo must reproduce the photo's own red channel where it is smooth.
    """

    def forward(self, images):
        red = images[:, :1] * 255.0
        cells = F.avg_pool2d(red[:, :, 3:, 3:], kernel_size=5, stride=4)[:, :, :55, :74]
        log_depth = cells.clamp(min=1.0).log()
        return log_depth, log_depth


def _ramp(height, width, horizontal=True):
    """Red channel rising linearly across the photo (20..220), constant green and blue."""
    coord = np.arange(width if horizontal else height) + 0.5
    line = 20 + 200 * coord / coord[-1]
    red = np.broadcast_to(line[None, :] if horizontal else line[:, None], (height, width))
    image = np.full((height, width, 3), 128, dtype=np.uint8)
    image[..., 0] = np.round(red)
    return image


@pytest.mark.parametrize("size", [(480, 640), (240, 320), (1080, 1920), (640, 480), (333, 1000), (50, 40)])
@pytest.mark.parametrize("horizontal", [True, False])
def test_depth_lands_on_the_photo_pixels_it_came_from(size, horizontal):
    height, width = size
    image = _ramp(height, width, horizontal)
    prediction = DepthModel(IntensityProbe(), device="cpu", flip_average=False).predict(image)  # one pass
    assert prediction.fine.shape == (height, width)
    red = image[..., 0].astype(np.float32)
    # inside the region the output grid covers, the mapping must be exact up to resampling; the
    # margin also keeps the probe's 5x5 window off the replicated padding of narrow photos
    photo_pixels_per_input_pixel = max(width / 320, height / 240)
    margin_y = int(0.06 * height + 8 * photo_pixels_per_input_pixel) + 1
    margin_x = int(0.06 * width + 8 * photo_pixels_per_input_pixel) + 1
    inner = (slice(margin_y, height - margin_y), slice(margin_x, width - margin_x))
    # tolerance: the ramp's own uint8 rounding (0.5) plus half an input pixel of misplacement;
    # placing the grid half a cell (2 input pixels) off fails this by a factor of two or more
    levels_per_input_pixel = 200 / (width if horizontal else height) * photo_pixels_per_input_pixel
    tolerance = 0.6 + 0.5 * levels_per_input_pixel
    error = np.abs(prediction.fine - red)[inner]
    assert error.max() < tolerance, (error.max(), tolerance)
    # the thin uncovered border repeats the nearest prediction: values stay in the photo's range
    assert prediction.fine.min() >= 19 and prediction.fine.max() <= 221


def test_output_contract(small_net, photo):
    prediction = DepthModel(small_net, device="cpu").predict(photo)
    for name in ("fine", "coarse"):
        values = getattr(prediction, name)
        assert values.shape == (480, 640) and values.dtype == np.float32
        assert np.isfinite(values).all() and (values > 0).all()
    assert prediction.fine_map.shape == prediction.coarse_map.shape == (55, 74)
    assert prediction.image.shape == (480, 640, 3) and prediction.image.dtype == np.uint8
    # the photo-resolution maps are the raw grids resampled: same range
    assert prediction.fine.max() <= prediction.fine_map.max() * (1 + 1e-5)
    assert prediction.fine.min() >= prediction.fine_map.min() * (1 - 1e-5)


def test_path_pil_and_array_give_the_same_depth(tmp_path, small_net, photo):
    model = DepthModel(small_net, device="cpu")
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    results = [model.predict(source).fine for source in (photo, Image.fromarray(photo), path, str(path))]
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


def test_batch_matches_single_predictions(small_net, photo):
    model = DepthModel(small_net, device="cpu")
    images = [photo, photo[:200, :500], np.ascontiguousarray(photo[::-1, ::3])]
    batch = model.predict_batch(images, batch_size=2)
    for image, prediction in zip(images, batch):
        single = model.predict(image)
        assert prediction.fine.shape == image.shape[:2]
        np.testing.assert_allclose(prediction.fine, single.fine, rtol=1e-4)
        np.testing.assert_allclose(prediction.coarse, single.coarse, rtol=1e-4)


def test_flip_averaging_is_the_mean_of_the_photo_and_its_mirror(small_net, photo):
    mirror = np.ascontiguousarray(photo[:, ::-1])
    averaged = DepthModel(small_net, device="cpu")
    assert averaged.flip_average  # the default
    single = DepthModel(small_net, device="cpu", flip_average=False)
    as_is, mirrored = single.predict_batch([photo, mirror])
    both = averaged.predict(photo)
    for name in ("coarse_map", "fine_map"):  # geometric mean of the two passes, the mirror flipped back
        expected = np.sqrt(getattr(as_is, name) * getattr(mirrored, name)[:, ::-1])
        np.testing.assert_allclose(getattr(both, name), expected, rtol=1e-5)
        assert not np.allclose(getattr(both, name), getattr(as_is, name), rtol=1e-3)  # it does change the map
    # so a mirrored photo gets the mirrored maps
    np.testing.assert_allclose(averaged.predict(mirror).fine_map, both.fine_map[:, ::-1], rtol=1e-5)


def test_exif_orientation_is_honoured(tmp_path):
    image = _ramp(120, 200, horizontal=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers rotate it 90 degrees clockwise
    path = tmp_path / "sideways.jpg"
    Image.fromarray(image).save(path, exif=exif, quality=95)
    upright = load_rgb(path)
    assert upright.shape == (200, 120, 3)
    # after rotating clockwise, the ramp runs top to bottom
    assert upright[10, 60, 0] < upright[190, 60, 0] - 100
    assert DepthModel(IntensityProbe(), device="cpu").predict(path).fine.shape == (200, 120)


def _save(tmp_path, image: Image.Image, name: str) -> str:
    path = tmp_path / name
    image.save(path)
    return str(path)


def test_any_mode_becomes_rgb(tmp_path):
    rgb = _ramp(64, 80)
    rgba = np.dstack([rgb, np.full((64, 80), 255, np.uint8)])
    rgba[:, :40, 3] = 0  # left half fully transparent: composited onto white
    grey16 = (np.arange(64 * 80).reshape(64, 80) * 12).astype(np.uint16)
    sources = {
        "L": Image.fromarray(rgb[..., 0]),
        "LA": Image.fromarray(rgba).convert("LA"),
        "RGBA": Image.fromarray(rgba),
        "P": Image.fromarray(rgb).convert("P"),
        "CMYK": Image.fromarray(rgb).convert("CMYK"),
        "1": Image.fromarray(rgb[..., 0]).convert("1"),
        "I;16": Image.fromarray(grey16),
        "I": Image.fromarray(grey16.astype(np.int32)),
        "F": Image.fromarray(grey16.astype(np.float32) / 65535),
    }
    for mode, image in sources.items():
        out = load_rgb(image)
        assert out.shape == (64, 80, 3) and out.dtype == np.uint8, mode
    assert (load_rgb(sources["RGBA"])[:, :40] == 255).all()
    np.testing.assert_array_equal(load_rgb(sources["RGBA"])[:, 40:], rgb[:, 40:])
    # 16-bit greyscale keeps its full range instead of saturating at 255
    np.testing.assert_array_equal(load_rgb(sources["I;16"])[..., 0], np.round(grey16 / 257).astype(np.uint8))
    # a float image is scaled by its own range: values 0-4 are not black
    ramp = np.linspace(0, 4, 64 * 80, dtype=np.float32).reshape(64, 80)
    grey = load_rgb(Image.fromarray(ramp))[..., 0]
    assert grey.min() == 0 and grey.max() == 255
    np.testing.assert_array_equal(grey, np.round(ramp / 4 * 255).astype(np.uint8))
    # the same through files, including a 16-bit PNG and a CMYK JPEG
    np.testing.assert_array_equal(load_rgb(_save(tmp_path, sources["I;16"], "g16.png")), load_rgb(sources["I;16"]))
    assert load_rgb(_save(tmp_path, sources["CMYK"], "cmyk.jpg")).shape == (64, 80, 3)
    assert load_rgb(_save(tmp_path, sources["P"], "palette.gif")).shape == (64, 80, 3)


def _png_header_only(path, width, height):
    """A PNG that claims width x height: enough for any reader that checks before decoding."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_bad_inputs_raise_clear_value_errors(tmp_path, photo):
    text = tmp_path / "notes.jpg"
    text.write_text("this is text, not a photo")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    jpeg = io.BytesIO()
    Image.fromarray(photo).save(jpeg, format="JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1)).save(tiny)
    cases = {
        text: "notes.jpg: not an image",
        empty: "empty.png: not an image",
        truncated: "truncated.jpg: image data is corrupt or truncated",
        tiny: "tiny.png: image is 1x1 pixels",
        _png_header_only(tmp_path / "bomb.png", 20000, 20000): "bomb.png: image is larger than the 50-megapixel limit",
        _png_header_only(tmp_path / "huge.png", 9000, 7000):
            "huge.png: image is 9000x7000 = 63 megapixels, more than the 50-megapixel limit",
        tmp_path: "not a file",
    }
    for source, message in cases.items():
        with pytest.raises(ValueError, match=message):
            load_rgb(source)
    for array, message in [(np.zeros((0, 0, 3), np.uint8), "empty"), (np.zeros((40, 40, 3)), "must be uint8"),
                           (np.zeros((40, 40, 2), np.uint8), r"\(H, W, 3\)")]:
        with pytest.raises(ValueError, match=message):
            load_rgb(array)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        load_rgb(tmp_path / "missing.jpg")
    assert 9000 * 7000 > MAX_PIXELS


def test_bad_input_in_a_batch_fails_before_any_work(tmp_path, small_net, photo):
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    with pytest.raises(ValueError, match="bad.png"):
        DepthModel(small_net, device="cpu").predict_batch([photo, bad])


def test_default_model_loads_and_says_if_untrained():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = depth.load_model(device="cpu")
    untrained = [w for w in caught if issubclass(w.category, UntrainedWeightsWarning)]
    assert bool(untrained) == (not model.trained)
    assert ("UNTRAINED" in model.describe()) == (not model.trained)
    assert model.device == torch.device("cpu")


def test_devices():
    assert depth.resolve_device("cpu") == torch.device("cpu")
    assert depth.resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        depth.resolve_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            depth.resolve_device("cuda")


def test_read_only_arrays_predict_without_warnings(small_net, photo):
    model = DepthModel(small_net, device="cpu", info={"trained": True})
    frozen = photo.copy()
    frozen.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.predict(frozen).fine.shape == (480, 640)
