"""NYU Depth v2 readers: the official labeled set, and the preprocessed CSV layout.

"nyu-labeled" reads `nyu_depth_v2_labeled.mat`, a MATLAB v7.3 file (HDF5, 2.8 GB) holding
1449 frames. MATLAB writes arrays column-major, so h5py sees them transposed: `images` is
(N, 3, 640, 480) uint8 indexed [frame, channel, x, y] and `depths` (N, 640, 480) float32
metres indexed [frame, x, y] (the inpainted depth the paper evaluates on). The official split
is `splits.mat` (MATLAB v5), column vectors `trainNdxs` (795) and `testNdxs` (654) of 1-based
frame numbers. One frame is read per item; the file is never loaded whole.

"nyu-csv" reads the layout of DenseDepth's `nyu_data.zip`, zipped or extracted:
`data/nyu2_train.csv` and `data/nyu2_test.csv`, one `rgb_path,depth_path` pair per line,
relative to the folder that holds `data/`. Depth PNGs come in two encodings, told apart by
each file's bit depth: 8-bit PNGs (the training frames) map 0..255 linearly to 0..10 m;
16-bit PNGs (the test frames) hold millimetres. Zip members are read without extracting.
"""

from __future__ import annotations

import functools
import os
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import h5py
import numpy as np
import scipy.io

from ..geometry import NYU_INTRINSICS, NYU_SIZE
from . import Sample, make_sample, register_dataset
from .folder import decode_frame

NYU_WIDTH, NYU_HEIGHT = NYU_SIZE
CSV_MAX_DEPTH = 10.0  # metres that an 8-bit depth PNG's 255 stands for


@register_dataset("nyu-labeled")
class NYULabeled:
    """The labeled set: split 'train' (795 frames), 'test' (654) or 'all' (1449), in file order.

    path: nyu_depth_v2_labeled.mat. splits: the official splits.mat, by default beside it;
    read only for 'train' and 'test'. Samples are 480x640, named nyu_labeled_0001 onwards by
    their 1-based number in the file.
    """

    def __init__(self, path: str | Path | None, split: str, splits: str | Path | None = None) -> None:
        if path is None:
            raise ValueError("nyu-labeled needs the path of nyu_depth_v2_labeled.mat")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        try:
            with h5py.File(self.path, "r") as file:
                count = _check_labeled_layout(file, self.path)
        except OSError as error:
            raise ValueError(f"{self.path}: not an HDF5 (MATLAB v7.3) file: {error}") from None

        if split == "all":
            self.frames = np.arange(count)
        elif split in ("train", "test"):
            splits = self.path.with_name("splits.mat") if splits is None else Path(splits)
            self.frames = _read_split(splits, split, count)
        else:
            raise ValueError(f"nyu-labeled split must be 'train', 'test' or 'all', got {split!r}")
        self._file = _PerProcess(functools.partial(h5py.File, self.path, "r"))

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Sample:
        frame = int(self.frames[index])
        file = self._file.get()
        image = file["images"][frame].transpose(2, 1, 0)  # [c, x, y] -> [y, x, c]
        depth = file["depths"][frame].T  # [x, y] -> [y, x]
        return make_sample(np.ascontiguousarray(image), np.ascontiguousarray(depth),
                           NYU_INTRINSICS, f"nyu_labeled_{frame + 1:04d}")


@register_dataset("nyu-csv")
class NYUCsv:
    """DenseDepth's NYU layout: split 'train' (nyu2_train.csv) or 'test' (nyu2_test.csv).

    path: nyu_data.zip or the folder it was extracted to. The CSV is found as data/NAME.csv
    or NAME.csv in a folder, and anywhere in a zip. If the files sit under an extra leading
    folder, or without `data/`, the first line decides which leading folders to add or drop,
    and then every line must name an existing file. Samples are named by their image's CSV
    path without the extension; intrinsics are NYU's for 640x480 frames, else None.
    """

    def __init__(self, path: str | Path | None, split: str) -> None:
        if path is None:
            raise ValueError("nyu-csv needs the path of nyu_data.zip or the folder holding data/")
        if split not in ("train", "test"):
            raise ValueError(f"nyu-csv split must be 'train' or 'test', got {split!r}")
        path = Path(path)
        if path.is_dir():
            self.files: _FolderFiles | _ZipFiles = _FolderFiles(path)
        elif zipfile.is_zipfile(path):
            self.files = _ZipFiles(path)
        elif path.exists():
            raise ValueError(f"{path}: neither a folder nor a zip file")
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
        csv_name = self.files.find(f"nyu2_{split}.csv")
        self.pairs = _read_csv_pairs(self.files, csv_name)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        rgb, depth, name = self.pairs[index]
        image, values = decode_frame(self.files.read(rgb), self.files.read(depth),
                                     self.files.describe(rgb), self.files.describe(depth))
        if values.dtype == np.uint8:
            metres = values * (CSV_MAX_DEPTH / 255)
        else:
            metres = values / 1000.0
        intrinsics = NYU_INTRINSICS if image.shape[:2] == (NYU_HEIGHT, NYU_WIDTH) else None
        return make_sample(image, metres, intrinsics, name)


class _PerProcess:
    """A file handle opened on first use in each process.

    DataLoader workers get copies of a dataset by fork or by pickling. An h5py or zipfile
    handle must not be used across a fork (HDF5 state and the file offset would be shared)
    and cannot be pickled, so each process opens its own.
    """

    def __init__(self, opener: Callable[[], Any]) -> None:
        self.opener = opener
        self.pid: int | None = None
        self.handle: Any = None

    def get(self) -> Any:
        if self.pid != os.getpid():
            self.handle, self.pid = self.opener(), os.getpid()
        return self.handle

    def __getstate__(self) -> dict[str, Any]:
        return {"opener": self.opener, "pid": None, "handle": None}


class _FolderFiles:
    """Files under a folder, named by POSIX paths relative to it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def find(self, filename: str) -> str:
        for name in (f"data/{filename}", filename):
            if self.exists(name):
                return name
        raise FileNotFoundError(f"{self.path}: has neither data/{filename} nor {filename}")

    def exists(self, name: str) -> bool:
        return (self.path / name).is_file()

    def read(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def describe(self, name: str) -> str:
        return str(self.path / name)


class _ZipFiles:
    """Members of a zip archive, read without extracting it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with zipfile.ZipFile(path) as archive:
            self.names = {info.filename for info in archive.infolist() if not info.is_dir()}
        self._archive = _PerProcess(functools.partial(zipfile.ZipFile, path))

    def find(self, filename: str) -> str:
        found = sorted(name for name in self.names if PurePosixPath(name).name == filename)
        if len(found) != 1:
            what = "no member" if not found else f"{len(found)} members ({', '.join(found)})"
            raise FileNotFoundError(f"{self.path}: {what} named {filename}")
        return found[0]

    def exists(self, name: str) -> bool:
        return name in self.names

    def read(self, name: str) -> bytes:
        return self._archive.get().read(name)

    def describe(self, name: str) -> str:
        return f"{self.path}:{name}"


def _check_labeled_layout(file: h5py.File, path: Path) -> int:
    """The frame count, after checking `images` and `depths` have the labeled set's layout."""
    images, depths = file.get("images"), file.get("depths")
    if not isinstance(images, h5py.Dataset) or not isinstance(depths, h5py.Dataset):
        raise ValueError(f"{path}: has no 'images' and 'depths' datasets: not the NYU labeled set")
    count = images.shape[0] if images.ndim == 4 else 0
    if images.shape != (count, 3, NYU_WIDTH, NYU_HEIGHT) or images.dtype != np.uint8:
        raise ValueError(
            f"{path}: 'images' must be (N, 3, {NYU_WIDTH}, {NYU_HEIGHT}) uint8 "
            f"(MATLAB's {NYU_HEIGHT}x{NYU_WIDTH}x3xN), got {images.shape} {images.dtype}"
        )
    if depths.shape != (count, NYU_WIDTH, NYU_HEIGHT) or depths.dtype.kind != "f":
        raise ValueError(
            f"{path}: 'depths' must be ({count}, {NYU_WIDTH}, {NYU_HEIGHT}) float metres, "
            f"got {depths.shape} {depths.dtype}"
        )
    return count


def _read_split(path: Path, split: str, count: int) -> np.ndarray:
    """0-based frame indices of `split` from splits.mat's 1-based `trainNdxs` / `testNdxs`."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file (the official NYU split; pass splits=PATH if it is elsewhere)"
        )
    try:
        mat = scipy.io.loadmat(path)
    except (scipy.io.matlab.MatReadError, ValueError, OSError, NotImplementedError) as error:
        raise ValueError(f"{path}: not a MATLAB v5 .mat file: {error}") from None
    key = f"{split}Ndxs"
    if key not in mat:
        raise ValueError(f"{path}: has no {key}")
    numbers = np.asarray(mat[key], dtype=np.float64).ravel()
    if numbers.size == 0 or np.any(numbers != np.round(numbers)) or numbers.min() < 1 or numbers.max() > count:
        raise ValueError(f"{path}: {key} must hold frame numbers in 1..{count} (1-based)")
    return numbers.astype(np.int64) - 1


def _read_csv_pairs(files: _FolderFiles | _ZipFiles, csv_name: str) -> list[tuple[str, str, str]]:
    """(rgb file, depth file, sample name) for each line of the CSV, resolved to existing files."""
    source = files.describe(csv_name)
    try:
        text = files.read(csv_name).decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{source}: not a UTF-8 text file: {error}") from None
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 2 or not all(fields):
            raise ValueError(f"{source} line {number}: expected 'rgb_path,depth_path', got {line!r}")
        lines.append((number, *fields))
    if not lines:
        raise ValueError(f"{source}: lists no frames")

    rebase = _find_rebase(files, csv_name, lines[0][1])
    if rebase is None:
        raise FileNotFoundError(f"{source} line {lines[0][0]}: {lines[0][1]} is not in {files.path}")
    pairs = []
    for number, rgb, depth in lines:
        resolved = [_rebased(entry, *rebase) for entry in (rgb, depth)]
        for entry, name in zip((rgb, depth), resolved):
            if not files.exists(name):
                raise FileNotFoundError(f"{source} line {number}: {entry} is missing ({files.describe(name)})")
        pairs.append((*resolved, str(PurePosixPath(rgb).with_suffix(""))))
    return pairs


def _find_rebase(
    files: _FolderFiles | _ZipFiles, csv_name: str, entry: str
) -> tuple[PurePosixPath, int] | None:
    """(base, drop) such that `_rebased(entry, base, drop)` names an existing file, or None.

    base is the CSV's folder or one of its parents (nearest first); drop counts the leading
    components of the CSV path left out (fewest first).
    """
    csv_folder = PurePosixPath(csv_name).parent
    for base in (csv_folder, *csv_folder.parents):
        for drop in range(len(PurePosixPath(entry).parts)):
            if files.exists(_rebased(entry, base, drop)):
                return base, drop
    return None


def _rebased(path: str, base: PurePosixPath, drop: int) -> str:
    """The file name of a CSV path: its first `drop` components replaced by `base`."""
    return str(base.joinpath(*PurePosixPath(path).parts[drop:]))
