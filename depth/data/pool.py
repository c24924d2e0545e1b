"""TensorPool: a dataset decoded once into tensors on the training device.

Decoding JPEGs or rendering scenes for every batch would leave a GPU waiting; instead every
frame is decoded (or rendered) once, brought to the 320x240 working resolution and kept as
uint8 images and float16 depth on the device. A batch is then one gather. 120K frames take
about 46 GB (230 KB of image and 154 KB of depth each).

A pool can be kept in a folder (`keep`): its frames are written there as it is built, and a
later pool of the same frames (a resumed run, a run of another network) maps that folder's
files instead of rendering or decoding again. On the CPU the mapped pages are shared by every
process that maps them, so two runs hold one copy in memory.

    pool.json   what the frames are (the `key` they were built for) and how many
    images.npy  (N, 3, 240, 320) uint8
    depth.npy   (N, 240, 320) float16 metres
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..images import resize_rgb
from ..model import FRAME_HEIGHT, FRAME_WIDTH
from . import DepthDataset, FrameSource, Sample


class TensorPool:
    """A FrameSource over frames held in memory on one device.

    images: (N, 3, 240, 320) uint8. depth: (N, 240, 320) float16 metres, 0 = no reading.
    """

    def __init__(self, images: torch.Tensor, depth: torch.Tensor) -> None:
        if images.shape[0] != depth.shape[0] or images.shape[-2:] != depth.shape[-2:]:
            raise ValueError(f"images {tuple(images.shape)} and depth {tuple(depth.shape)} disagree")
        self.images = images
        self.depth = depth

    def __len__(self) -> int:
        return self.images.shape[0]

    def frames(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[indices], self.depth[indices].float()

    @classmethod
    def from_dataset(
        cls, dataset: DepthDataset, device: torch.device | str, limit: int | None = None,
        workers: int | None = None, desc: str = "decoding", keep: Path | None = None,
        key: dict[str, Any] | None = None,
    ) -> TensorPool:
        """Decode up to `limit` samples of `dataset` (in parallel worker processes) into a pool,
        or map them from `keep` (see `kept`), writing them there first if it holds none.

        Frames must have a 4:3 aspect ratio (NYU's); they are resized to 320x240, the image
        antialiased, the depth by nearest neighbour so no depth is invented between surfaces.
        """
        count = len(dataset) if limit is None else min(limit, len(dataset))
        if count == 0:
            raise ValueError("the dataset has no frames")
        if keep is not None and (pool := cls.kept(keep, key or {}, count, device)) is not None:
            return pool
        workers = min(8, os.cpu_count() or 1) if workers is None else workers
        images, depth, done = _storage(count, device, keep, key)
        loader = DataLoader(_FrameTensors(dataset), batch_size=None, num_workers=workers,
                            sampler=range(done, count))
        progress = tqdm(loader, total=count, initial=done, desc=desc, unit="frame")
        for index, (image, frame_depth) in enumerate(progress, start=done):
            images[index], depth[index] = image.to(images.device), frame_depth.to(images.device)
            if (index + 1) % PROGRESS_EVERY == 0:
                _note_progress(keep, count, index + 1, key)
        return cls._finish(images, depth, device, keep, key)

    @classmethod
    def from_source(
        cls, source: FrameSource, count: int, device: torch.device | str, batch: int = 256,
        desc: str = "rendering", keep: Path | None = None, key: dict[str, Any] | None = None,
    ) -> TensorPool:
        """Frames 0..count-1 of a FrameSource (for example the synthetic renderer), kept; or
        mapped from `keep` (see `kept`), writing them there first if it holds none."""
        if keep is not None and (pool := cls.kept(keep, key or {}, count, device)) is not None:
            return pool
        images, depth, done = _storage(count, device, keep, key)
        for start in tqdm(range(done, count, batch), desc=desc, unit="batch"):
            indices = torch.arange(start, min(start + batch, count), device=device)
            frame_images, frame_depth = source.frames(indices)
            images[start:start + len(indices)] = frame_images.to(images.device)
            depth[start:start + len(indices)] = frame_depth.half().to(images.device)
            _note_progress(keep, count, start + len(indices), key)
        return cls._finish(images, depth, device, keep, key)

    @classmethod
    def kept(cls, folder: Path, key: dict[str, Any], count: int, device: torch.device | str) -> TensorPool | None:
        """The first `count` frames kept in `folder`, mapped (on the CPU) or copied to `device`;
        None when the folder holds no finished pool. A pool kept for other frames (its key
        differs) or with fewer than `count` of them is an error naming the folder."""
        folder = Path(folder)
        if not (folder / "pool.json").is_file():
            return None
        try:
            kept = json.loads((folder / "pool.json").read_text())
            images = np.load(folder / "images.npy", mmap_mode="c")
            depth = np.load(folder / "depth.npy", mmap_mode="c")
        except (OSError, ValueError) as error:
            raise ValueError(f"{folder}: the kept pool cannot be read ({error}); delete the folder to build it again") from error
        if kept.get("key") != key:
            raise ValueError(f"{folder} keeps the frames of {kept.get('key')}, not of {key}; choose another folder")
        if kept.get("frames", 0) < count or len(images) < count or len(depth) < count:
            raise ValueError(f"{folder} keeps {kept.get('frames')} frames, fewer than the {count} asked for; "
                             "choose another folder")
        return cls(torch.from_numpy(images[:count]).to(device), torch.from_numpy(depth[:count]).to(device))

    @classmethod
    def _finish(cls, images: torch.Tensor, depth: torch.Tensor, device: torch.device | str,
                keep: Path | None, key: dict[str, Any] | None) -> TensorPool:
        """The pool of frames just built; when kept, its files are complete once pool.json exists."""
        if keep is not None:
            (Path(keep) / "pool.json").write_text(json.dumps({"key": key or {}, "frames": len(images)}, indent=2) + "\n")
            (Path(keep) / PROGRESS).unlink(missing_ok=True)
        return cls(images.to(device), depth.to(device))


FRAME_BYTES = 3 * FRAME_HEIGHT * FRAME_WIDTH + 2 * FRAME_HEIGHT * FRAME_WIDTH  # uint8 image, float16 depth


def check_pool_fits(count: int, device: torch.device | str, keep: Path | None = None, option: str = "--train-frames") -> None:
    """Raise ValueError, naming the size and `option`, when a pool of `count` frames cannot fit
    where it would live: the free memory of `device` (the CPU's available RAM), or, when kept
    in the folder `keep`, that folder's free disk space."""
    need = count * FRAME_BYTES
    device = torch.device(device)
    if keep is not None:
        folder = next(parent for parent in (Path(keep), *Path(keep).resolve().parents) if parent.exists())
        free, where = shutil.disk_usage(folder).free, f"free disk space at {folder}"
    elif device.type == "cuda":
        free, where = torch.cuda.mem_get_info(device)[0], f"free memory on {device}"
    else:
        free, where = _available_ram(), "available memory"
    if free is not None and need > free:
        raise ValueError(f"a pool of {count:,} frames needs {need / 2**30:.1f} GiB ({FRAME_BYTES / 1000:.0f} KB a frame) "
                         f"but the {where} is {free / 2**30:.1f} GiB; lower {option} "
                         f"(at most about {int(free * 0.9 / FRAME_BYTES):,} here)")


def _available_ram() -> int | None:
    """Bytes of memory available to new allocations (Linux's MemAvailable), or None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _storage(count: int, device: torch.device | str, keep: Path | None, key: dict[str, Any] | None = None,
             ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Storage for a pool being built: images (count, 3, 240, 320) uint8, depth (count, 240, 320)
    float16, and how many frames it already holds. On `device` (empty), or, to keep, in files
    under `keep` mapped on the CPU: new ones, or those of an unfinished build of the same
    frames (its PROGRESS file), which then goes on where it stopped."""
    image_shape, depth_shape = (count, 3, FRAME_HEIGHT, FRAME_WIDTH), (count, FRAME_HEIGHT, FRAME_WIDTH)
    if keep is None:
        check_pool_fits(count, device, keep)
        return (torch.empty(image_shape, dtype=torch.uint8, device=device),
                torch.empty(depth_shape, dtype=torch.float16, device=device), 0)
    keep = Path(keep)
    started = _started_build(keep, key or {}, count)
    if started:
        images = np.load(keep / "images.npy", mmap_mode="r+")
        depth = np.load(keep / "depth.npy", mmap_mode="r+")
        return torch.from_numpy(images), torch.from_numpy(depth), started
    check_pool_fits(count, device, keep)
    try:
        keep.mkdir(parents=True, exist_ok=True)
        images = np.lib.format.open_memmap(keep / "images.npy", "w+", np.uint8, image_shape)
        depth = np.lib.format.open_memmap(keep / "depth.npy", "w+", np.float16, depth_shape)
    except OSError as error:
        raise ValueError(f"{keep}: cannot keep the pool there ({error})") from error
    return torch.from_numpy(images), torch.from_numpy(depth), 0


PROGRESS = "progress.json"  # an unfinished build's frames so far; gone once pool.json is written
PROGRESS_EVERY = 256  # frames decoded between progress notes


def _note_progress(keep: Path | None, count: int, done: int, key: dict[str, Any] | None) -> None:
    """Record that the first `done` frames of a kept pool are on disk, so a killed build resumes."""
    if keep is None:
        return
    # No flush needed: a killed process's writes to a mapped file are in the page cache already.
    tmp = Path(keep) / (PROGRESS + ".tmp")
    tmp.write_text(json.dumps({"key": key or {}, "frames": count, "done": done}) + "\n")
    os.replace(tmp, Path(keep) / PROGRESS)


def _started_build(keep: Path, key: dict[str, Any], count: int) -> int:
    """Frames already built of an unfinished pool of the same `count` frames of `key` in `keep` (0 if none)."""
    try:
        note = json.loads((keep / PROGRESS).read_text())
        shapes = [np.load(keep / name, mmap_mode="r").shape[0] for name in ("images.npy", "depth.npy")]
    except (OSError, ValueError):
        return 0
    if note.get("key") != key or note.get("frames") != count or shapes != [count, count]:
        return 0
    return int(note.get("done", 0))


class _FrameTensors(torch.utils.data.Dataset):
    """Samples as (3, 240, 320) uint8 image and (240, 320) float16 depth tensors."""

    def __init__(self, dataset: DepthDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return frame_tensors(self.dataset[index])


def frame_tensors(sample: Sample) -> tuple[torch.Tensor, torch.Tensor]:
    """A Sample at the working resolution: (3, 240, 320) uint8 image, (240, 320) float16 depth."""
    height, width = sample.depth.shape
    if abs(width / height - FRAME_WIDTH / FRAME_HEIGHT) > 0.01:
        raise ValueError(f"{sample.name}: frames must be 4:3 like NYU's, got {width}x{height}")
    image = torch.from_numpy(sample.image).permute(2, 0, 1)[None]
    image = (resize_rgb(image, FRAME_HEIGHT, FRAME_WIDTH)[0] * 255).round().to(torch.uint8)
    depth = torch.from_numpy(sample.depth)[None, None]
    depth = F.interpolate(depth, size=(FRAME_HEIGHT, FRAME_WIDTH), mode="nearest-exact")[0, 0]
    return image, depth.half()
