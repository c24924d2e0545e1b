"""The dataset readers, on small files written here in each real on-disk format."""

import io
import json
import pickle
import zipfile

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

from depth.data import open_dataset
from depth.data.folder import write_frame, write_manifest
from depth.data.nyu import NYU_INTRINSICS

from .conftest import REAL_RGBD

H, W = 480, 640


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _rgb(seed: int, height: int = H, width: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# --- nyu-labeled: nyu_depth_v2_labeled.mat (MATLAB v7.3 = HDF5) and splits.mat (MATLAB v5) ---

LABELED_FRAMES = 4


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    """A 4-frame labeled .mat in MATLAB's layout, the true frames, and a splits.mat beside it.

    Frame k (0-based) has a red 30x10 (W x H) marker in its top-left corner, written through
    MATLAB's own indexing images(y, x, c, n) = h5py [n, c, x, y], and depth growing with x.
    """
    folder = tmp_path_factory.mktemp("nyu")
    path = folder / "nyu_depth_v2_labeled.mat"
    images = np.stack([_rgb(k) for k in range(LABELED_FRAMES)])  # (N, H, W, 3), the true frames
    images[:, :10, :30] = (255, 0, 0)
    x = np.arange(W, dtype=np.float32)
    depths = np.stack([np.broadcast_to(1 + k + x / 100, (H, W)) for k in range(LABELED_FRAMES)])
    depths[:, 200:210, 300:320] = 0  # a hole: no reading

    with h5py.File(path, "w", userblock_size=512) as file:  # MATLAB v7.3 files start with a userblock
        stored = file.create_dataset("images", (LABELED_FRAMES, 3, W, H), dtype=np.uint8)
        stored[...] = images.transpose(0, 3, 2, 1)
        stored[:, 0, :30, :10], stored[:, 1:, :30, :10] = 255, 0  # the marker, in MATLAB's indices
        file.create_dataset("depths", data=depths.transpose(0, 2, 1).astype(np.float32))
    with open(path, "r+b") as file:
        file.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 2024 HDF5 schema 1.00 .")
    # MATLAB saves index vectors as double column vectors
    splits = {"trainNdxs": np.array([[1.0], [3.0]]), "testNdxs": np.array([[2.0], [4.0]])}
    scipy.io.savemat(folder / "splits.mat", splits)
    return path, images, depths


def test_labeled_frames_are_pixel_exact_and_upright(labeled):
    path, images, depths = labeled
    dataset = open_dataset("nyu-labeled", path, "all")
    assert len(dataset) == LABELED_FRAMES
    for k in range(LABELED_FRAMES):
        sample = dataset[k]
        assert sample.image.shape == (H, W, 3) and sample.depth.shape == (H, W)
        assert np.array_equal(sample.image, images[k])
        assert np.array_equal(sample.depth, depths[k])
        assert sample.name == f"nyu_labeled_{k + 1:04d}"
        assert sample.intrinsics == NYU_INTRINSICS
    sample = dataset[0]
    # the marker is 30 wide and 10 high in the top-left corner, nowhere else
    assert (sample.image[:10, :30] == (255, 0, 0)).all()
    assert not (sample.image[10, :30] == (255, 0, 0)).all(axis=-1).all()
    assert not (sample.image[-10:, -30:] == (255, 0, 0)).all()
    assert sample.depth[0, 0] == pytest.approx(1.0) and sample.depth[0, -1] == pytest.approx(1 + 639 / 100)
    assert not sample.valid[200:210, 300:320].any() and sample.valid.mean() > 0.99


def test_labeled_official_split(labeled):
    path, images, _ = labeled
    train = open_dataset("nyu-labeled", path, "train")
    test = open_dataset("nyu-labeled", path, "test")
    assert [s.name for s in (train[0], train[1])] == ["nyu_labeled_0001", "nyu_labeled_0003"]
    assert [s.name for s in (test[0], test[1])] == ["nyu_labeled_0002", "nyu_labeled_0004"]
    assert len(train) == len(test) == 2
    assert np.array_equal(test[1].image, images[3])
    with pytest.raises(IndexError):
        train[2]


def test_labeled_splits_file_elsewhere(labeled, tmp_path):
    path, _, _ = labeled
    splits = tmp_path / "my_splits.mat"
    scipy.io.savemat(splits, {"trainNdxs": np.array([[4.0]]), "testNdxs": np.array([[1.0], [2.0], [3.0]])})
    assert [s.name for s in open_dataset("nyu-labeled", path, "train", splits=splits)] == ["nyu_labeled_0004"]
    assert len(open_dataset("nyu-labeled", path, "test", splits=splits)) == 3


def test_labeled_survives_pickling_for_dataloader_workers(labeled):
    path, images, _ = labeled
    dataset = open_dataset("nyu-labeled", path, "test")
    dataset[0]  # opens the HDF5 file in this process
    copy = pickle.loads(pickle.dumps(dataset))
    assert np.array_equal(copy[0].image, images[1])


def test_labeled_errors_name_the_file(labeled, tmp_path):
    path, _, _ = labeled
    with pytest.raises(FileNotFoundError, match="nope.mat"):
        open_dataset("nyu-labeled", tmp_path / "nope.mat", "test")
    lonely = tmp_path / "lonely" / "nyu_depth_v2_labeled.mat"  # no splits.mat beside it
    lonely.parent.mkdir()
    lonely.write_bytes(path.read_bytes())
    assert len(open_dataset("nyu-labeled", lonely, "all")) == LABELED_FRAMES  # 'all' needs no split
    with pytest.raises(FileNotFoundError, match=r"lonely/splits\.mat"):
        open_dataset("nyu-labeled", lonely, "train")
    text = tmp_path / "fake.mat"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match=r"fake\.mat: not an HDF5"):
        open_dataset("nyu-labeled", text, "all")
    wrong = tmp_path / "wrong.mat"
    with h5py.File(wrong, "w") as file:
        file.create_dataset("images", (1, 3, H, W), dtype=np.uint8)  # not transposed: not MATLAB's
        file.create_dataset("depths", (1, H, W), dtype=np.float32)
    with pytest.raises(ValueError, match=r"wrong\.mat: 'images' must be"):
        open_dataset("nyu-labeled", wrong, "all")
    bad_split = tmp_path / "bad_splits.mat"
    scipy.io.savemat(bad_split, {"trainNdxs": np.array([[0.0], [1.0]])})  # 0 is not 1-based
    with pytest.raises(ValueError, match=r"bad_splits\.mat: trainNdxs"):
        open_dataset("nyu-labeled", path, "train", splits=bad_split)
    with pytest.raises(ValueError, match="split"):
        open_dataset("nyu-labeled", path, "val")


# --- nyu-csv: DenseDepth's nyu_data.zip, extracted or not ---

def _csv_layout(small: bool = False) -> tuple[dict[str, bytes], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Files of the CSV layout (relative path -> bytes) and the expected (image, metres) by name.

    Train: JPEG images, 8-bit depth (0..255 -> 0..10 m). Test: PNG images, 16-bit millimetres.
    """
    height, width = (24, 32) if small else (H, W)
    files, expected = {}, {}
    train_lines, test_lines = [], []
    for k, scene in enumerate(["living_room_0038_out", "kitchen_0001_out"]):
        rgb, depth = f"data/nyu2_train/{scene}/{k + 37}.jpg", f"data/nyu2_train/{scene}/{k + 37}.png"
        values = np.random.default_rng(10 + k).integers(0, 256, (height, width), dtype=np.uint8)
        files[rgb], files[depth] = _jpeg(_rgb(k, height, width)), _png(values)
        expected[rgb[:-4]] = _decoded(files[rgb]), values / 255 * 10
        train_lines.append(f"{rgb},{depth}")
    for k in range(2):
        rgb, depth = f"data/nyu2_test/{k:05d}_colors.png", f"data/nyu2_test/{k:05d}_depth.png"
        millimetres = np.random.default_rng(20 + k).integers(0, 10000, (height, width), dtype=np.uint16)
        image = _rgb(5 + k, height, width)
        files[rgb], files[depth] = _png(image), _png(millimetres)
        expected[rgb[:-4]] = image, millimetres / 1000
        test_lines.append(f"{rgb},{depth}")
    files["data/nyu2_train.csv"] = ("\n".join(train_lines) + "\n").encode()
    files["data/nyu2_test.csv"] = ("\r\n".join(test_lines)).encode()  # CRLF, no final newline
    return files, expected


def _write_folder(root, files):
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _write_zip(path, files, prefix=""):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(prefix + name, data)
    return path


@pytest.fixture(scope="module")
def csv_layout():
    return _csv_layout()


@pytest.mark.parametrize("form", ["folder", "zip", "zip with a leading folder", "zip without data/"])
def test_csv_layout_reads_metres_from_8_and_16_bit_depth(tmp_path, csv_layout, form):
    files, expected = csv_layout
    if form == "folder":
        path = _write_folder(tmp_path, files)
    elif form == "zip":
        path = _write_zip(tmp_path / "nyu_data.zip", files)
    elif form == "zip with a leading folder":
        path = _write_zip(tmp_path / "nyu_data.zip", files, prefix="nyu_data/")
    else:  # members nyu2_train.csv, nyu2_train/...; the CSV lines still start with data/
        path = _write_zip(tmp_path / "nyu_data.zip", {k.removeprefix("data/"): v for k, v in files.items()})
    for split in ("train", "test"):
        dataset = open_dataset("nyu-csv", path, split)
        assert len(dataset) == 2
        for sample in dataset:
            image, metres = expected[sample.name]
            assert sample.name.startswith(f"data/nyu2_{split}/")
            assert np.array_equal(sample.image, image) and sample.image.flags.writeable
            np.testing.assert_allclose(sample.depth, metres, rtol=1e-6)
            assert np.array_equal(sample.valid, metres > 0)
            assert sample.intrinsics == NYU_INTRINSICS
            assert 0 <= sample.depth.max() <= 10


def test_csv_layout_without_nyu_frame_size_has_no_intrinsics(tmp_path):
    files, _ = _csv_layout(small=True)
    sample = open_dataset("nyu-csv", _write_folder(tmp_path, files), "test")[0]
    assert sample.image.shape == (24, 32, 3) and sample.intrinsics is None


def test_csv_zip_survives_pickling(tmp_path, csv_layout):
    files, expected = csv_layout
    dataset = open_dataset("nyu-csv", _write_zip(tmp_path / "nyu_data.zip", files), "test")
    dataset[0]  # opens the zip in this process
    sample = pickle.loads(pickle.dumps(dataset))[1]
    assert np.array_equal(sample.image, expected[sample.name][0])


def _small_layout(changes: dict[str, bytes | None]) -> dict[str, bytes]:
    """The CSV layout at 32x24 with files replaced, or removed where the change is None."""
    files, _ = _csv_layout(small=True)
    return {name: data for name, data in {**files, **changes}.items() if data is not None}


def test_csv_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.zip"):
        open_dataset("nyu-csv", tmp_path / "missing.zip", "train")

    files = _small_layout({"data/nyu2_test.csv": b"data/nyu2_test/00000_colors.png\n"})
    with pytest.raises(ValueError, match=r"nyu2_test\.csv line 1: expected 'rgb_path,depth_path'"):
        open_dataset("nyu-csv", _write_zip(tmp_path / "malformed.zip", files), "test")

    files = _small_layout({"data/nyu2_test/00001_depth.png": None})  # listed, not in the zip
    with pytest.raises(FileNotFoundError, match=r"nyu2_test\.csv line 2: data/nyu2_test/00001_depth\.png"):
        open_dataset("nyu-csv", _write_zip(tmp_path / "incomplete.zip", files), "test")

    files = _small_layout({"data/nyu2_test.csv": None})
    with pytest.raises(FileNotFoundError, match=r"nocsv\.zip: no member named nyu2_test\.csv"):
        open_dataset("nyu-csv", _write_zip(tmp_path / "nocsv.zip", files), "test")

    files = _small_layout({"data/nyu2_test/00001_depth.png": _png(np.ones((12, 16), np.uint16))})
    dataset = open_dataset("nyu-csv", _write_zip(tmp_path / "sizes.zip", files), "test")
    dataset[0]
    with pytest.raises(ValueError, match=r"sizes\.zip:data/nyu2_test/00001_depth\.png: depth is 16x12"):
        dataset[1]

    files = _small_layout({"data/nyu2_test/00001_depth.png": b"\x89PNG truncated"})
    with pytest.raises(ValueError, match=r"00001_depth\.png: not an image"):
        open_dataset("nyu-csv", _write_folder(tmp_path / "broken", files), "test")[1]


# --- folder: RGB + 16-bit depth PNGs + manifest.json ---

def _folder_frames(root, count=2, scale=1000):
    """Frames NAME_rgb.png / NAME_depth.png written with Pillow; returns {name: (image, metres)}."""
    root.mkdir(parents=True, exist_ok=True)
    expected = {}
    for k in range(count):
        image = _rgb(30 + k, 48, 64)
        units = np.random.default_rng(40 + k).integers(0, 8000, (48, 64), dtype=np.uint16)
        (root / f"frame{k}_rgb.png").write_bytes(_png(image))
        (root / f"frame{k}_depth.png").write_bytes(_png(units))
        expected[f"frame{k}"] = image, units / scale
    return expected


def test_folder_with_list_manifest(tmp_path):
    expected = _folder_frames(tmp_path)
    manifest = [
        {"name": "frame0", "intrinsics": [50.0, 51.0, 32.0, 24.0], "dataset": "ignored"},
        {"name": "frame1", "intrinsics": None},
    ]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    for split in ("train", "test", "anything"):  # a folder is one split
        dataset = open_dataset("folder", tmp_path, split)
        assert len(dataset) == 2
    for sample in dataset:
        image, metres = expected[sample.name]
        assert np.array_equal(sample.image, image)
        assert sample.image.flags.writeable  # torch.from_numpy warns on read-only arrays
        np.testing.assert_allclose(sample.depth, metres, rtol=1e-6)
        assert np.array_equal(sample.valid, metres > 0)
    assert dataset[0].intrinsics == (50.0, 51.0, 32.0, 24.0) and dataset[1].intrinsics is None


def test_folder_with_object_manifest_depth_scale_and_file_names(tmp_path):
    expected = _folder_frames(tmp_path, scale=2000)  # units of 0.5 mm
    (tmp_path / "frame1_rgb.png").rename(tmp_path / "colour.png")
    (tmp_path / "frame1_depth.png").rename(tmp_path / "range.png")
    manifest = {
        "depth_scale": 0.0005,
        "frames": [
            {"name": "frame0", "intrinsics": [50, 50, 32, 24]},
            {"name": "frame1", "rgb": "colour.png", "depth": "range.png", "depth_scale": 0.001},
        ],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    dataset = open_dataset("folder", tmp_path)
    np.testing.assert_allclose(dataset[0].depth, expected["frame0"][1], rtol=1e-6)
    np.testing.assert_allclose(dataset[1].depth, expected["frame1"][1] * 2, rtol=1e-6)  # its own scale
    assert np.array_equal(dataset[1].image, expected["frame1"][0])
    assert dataset[0].intrinsics == (50.0, 50.0, 32.0, 24.0)


def test_write_frame_and_manifest_round_trip(tmp_path):
    image = _rgb(1, 48, 64)
    metres = np.random.default_rng(2).uniform(0.3, 9.0, (48, 64))
    metres[0, :5] = [0, np.nan, np.inf, -1, 1e-5]  # no reading x4, then a tiny but real depth
    entries = [write_frame(tmp_path, "a", image, metres, intrinsics=(50, 50, 32, 24)),
               write_frame(tmp_path, "b", image, metres, depth_scale=0.0002)]
    write_manifest(tmp_path, entries)
    a, b = open_dataset("folder", tmp_path)
    assert np.array_equal(a.image, image) and a.intrinsics == (50.0, 50.0, 32.0, 24.0)
    assert not a.valid[0, :4].any() and a.depth[0, 4] == pytest.approx(0.001)
    np.testing.assert_allclose(a.depth[1:], metres[1:], atol=0.0005 + 1e-6)
    np.testing.assert_allclose(b.depth[1:], metres[1:], atol=0.0001 + 1e-6)
    with pytest.raises(ValueError, match="does not fit 16 bits"):
        write_frame(tmp_path, "far", image, metres * 10)
    with pytest.raises(FileNotFoundError, match="never_rgb.png"):
        write_manifest(tmp_path, entries + [{"name": "never"}])
    assert len(open_dataset("folder", tmp_path)) == 2  # the bad manifest was not written


def test_folder_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        open_dataset("folder", tmp_path / "nowhere")
    _folder_frames(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"manifest\.json"):
        open_dataset("folder", tmp_path)

    manifest = tmp_path / "manifest.json"
    cases = [  # (manifest.json, error, what its message says after "manifest.json: ")
        ('[{"name": "frame0"},', ValueError, "not valid JSON"),
        ('[{"name": "frame0"}, {"intrinsics": null}]', ValueError, "frame 1 has no 'name'"),
        ('[{"name": "frame0", "intrinsics": [1, 2, 3]}]', ValueError, r"frame 0 \(frame0\): intrinsics"),
        ('{"depth_scale": -1, "frames": []}', ValueError, "depth_scale must be"),
        ('[{"name": "frame0", "depth": "../x.png"}]', ValueError, "frame 0 .*'depth' must be"),
        ('[{"name": "frame9"}]', FileNotFoundError, "frame 0 .* names .*frame9_rgb.png"),
    ]
    for text, error, message in cases:
        manifest.write_text(text)
        with pytest.raises(error, match=r"manifest\.json: " + message):
            open_dataset("folder", tmp_path)

    manifest.write_text('[{"name": "frame0"}, {"name": "frame1"}]')
    (tmp_path / "frame0_depth.png").write_bytes(_png(np.zeros((48, 64), np.uint8)))
    (tmp_path / "frame1_depth.png").write_bytes(_png(np.zeros((24, 32), np.uint16)))
    dataset = open_dataset("folder", tmp_path)
    with pytest.raises(ValueError, match=r"frame0_depth\.png: depth PNG must be 16-bit, got 8-bit"):
        dataset[0]
    with pytest.raises(ValueError, match=r"frame1_depth\.png: depth is 32x24 but its image .*_rgb\.png is 64x48"):
        dataset[1]
    (tmp_path / "frame1_depth.png").write_bytes(_jpeg(np.zeros((48, 64), np.uint8)))
    with pytest.raises(ValueError, match=r"frame1_depth\.png: depth must be a PNG"):
        dataset[1]


@pytest.mark.skipif(not REAL_RGBD.is_dir(), reason="shared real RGB-D frames not present")
def test_real_frames_through_the_folder_reader():
    dataset = open_dataset("folder", REAL_RGBD, "test")
    assert len(dataset) == 7
    samples = {sample.name: sample for sample in dataset}
    assert {"nyu_dining_1", "tum_desk", "sun_office"} <= samples.keys()
    for name, sample in samples.items():
        assert sample.image.shape == (480, 640, 3) and sample.image.dtype == np.uint8
        assert sample.depth.shape == (480, 640) and sample.depth.dtype == np.float32
        valid = sample.depth[sample.valid]
        assert 0.6 < sample.valid.mean() < 0.9, name  # raw sensor depth has holes
        assert 0.2 < valid.min() and valid.max() < 10.0, name  # metres, not millimetres
        assert (sample.depth[~sample.valid] == 0).all()
    assert samples["sun_office"].intrinsics is None
    assert samples["tum_desk"].intrinsics == (525.0, 525.0, 319.5, 239.5)
    assert samples["nyu_dining_1"].intrinsics == pytest.approx(NYU_INTRINSICS, abs=1e-3)
