"""Where the app writes the files it shows and offers for download, and how it writes them.

Every handler call writes into a fresh folder of its own (a re-render never overwrites a file
a browser may have cached under the same address). The folders live inside Gradio's cache
folder, so Gradio serves them as they are instead of hashing and copying each one, and the
set is bounded: folders older than `max_age_s`, all but the newest `keep`, and the oldest
beyond `max_bytes` in all, are deleted whenever a new one is made. Gradio's own leftovers there
(the empty tmp* files of uploads that never finished, which its cache sweep does not track) go
once they are `max_age_s` old.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from gradio.utils import get_upload_folder
from PIL import Image

from depth.visualize import save_depth_png

ROOT_PREFIX = "depth-app-"


class OutputFolders:
    """A bounded set of per-request folders under one root.

    root: the parent folder; default a new folder inside Gradio's cache (GRADIO_TEMP_DIR, else
        the system temp folder's gradio/), removed when the process exits. Such folders left
        by processes that were killed are removed once nothing in them changed for max_age_s.
    keep: at most this many request folders are kept (the newest).
    max_bytes: the folders' files take at most about this many bytes (the newest folder is
        always kept, whatever its size).
    max_age_s: folders older than this (seconds since they were made) are deleted.
    """

    def __init__(self, root: str | Path | None = None, keep: int = 128, max_age_s: float = 3600,
                 max_bytes: int = 256 * 2**20) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.cache = None  # Gradio's upload folder, when the root lives in it
        if root is None:
            self.cache = Path(get_upload_folder())
            self.cache.mkdir(parents=True, exist_ok=True)
            _remove_older(self.cache.glob(f"{ROOT_PREFIX}*"), time.time() - max_age_s)
            root = tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=self.cache)
            atexit.register(shutil.rmtree, root, ignore_errors=True)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def new(self) -> Path:
        """A new empty folder for one request's files (older folders are pruned first)."""
        with self._lock:
            self._prune()
            folder = self.root / uuid.uuid4().hex
            folder.mkdir(parents=True)  # (the root too, should another process have swept it)
        return folder

    def folders(self) -> list[Path]:
        """The request folders, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted((p for p in self.root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)

    def _prune(self) -> None:
        folders = self.folders()
        cutoff = time.time() - self.max_age_s
        # make room for the folder about to be made: keep - 1 old ones stay, within max_bytes
        doomed = folders[: max(0, len(folders) - (self.keep - 1))]
        kept, total = folders[len(doomed):], 0
        for index in range(len(kept) - 1, -1, -1):  # newest first: the oldest go over the budget
            total += _bytes(kept[index])  # measured afresh: a handler may still be writing
            if total > self.max_bytes and index < len(kept) - 1:
                doomed, kept = doomed + kept[: index + 1], kept[index + 1:]
                break
        for folder in doomed:
            shutil.rmtree(folder, ignore_errors=True)
        _remove_older(kept, cutoff)
        if self.cache is not None:
            _remove_older_files(self.cache.glob("tmp*"), cutoff)


def _remove_older(folders: Iterable[Path], cutoff: float) -> None:
    """Remove the folders last modified before `cutoff` (a time.time() value)."""
    for folder in folders:
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except FileNotFoundError:  # another process removed it first
            pass


def _bytes(folder: Path) -> int:
    """The bytes of the files in `folder` (0 for files or the folder gone meanwhile)."""
    total = 0
    for file in folder.rglob("*"):
        try:
            total += file.stat().st_size if file.is_file() else 0
        except FileNotFoundError:
            pass
    return total


def _remove_older_files(files: Iterable[Path], cutoff: float) -> None:
    """Remove the plain files last modified before `cutoff` (a time.time() value)."""
    for file in files:
        try:
            if file.is_file() and file.stat().st_mtime < cutoff:
                file.unlink()
        except FileNotFoundError:  # another process removed it first
            pass


def file_stem(path: str | Path) -> str:
    """A safe stem for output names from a photo's file name: 'My room (2).jpg' -> 'My_room_2'."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem).strip("._")
    return stem[:80] or "photo"


def write_rgb(path: Path, image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 image: JPEG (quality 90) for .jpg, fast lossless PNG for .png."""
    options = {"quality": 90} if path.suffix == ".jpg" else {"compress_level": 1}
    Image.fromarray(image).save(path, **options)
    return path


def write_depth_files(folder: Path, stem: str, depth: np.ndarray) -> tuple[Path, Path]:
    """Write (H, W) metres as STEM_depth.png (16-bit millimetres, 0 = none) and STEM_depth.npy
    (float32 metres); returns both paths."""
    png, npy = folder / f"{stem}_depth.png", folder / f"{stem}_depth.npy"
    save_depth_png(png, depth)
    np.save(npy, np.asarray(depth, dtype=np.float32))
    return png, npy
