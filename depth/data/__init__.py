"""Datasets: one sample form, a registry of readers by name, and frame sources for training.

Every reader returns `Sample`s. Training does not iterate samples on the CPU: it draws batches
from a `FrameSource`, which hands out frames as tensors already on the training device, either
from a `TensorPool` (a dataset decoded once into device memory) or rendered on the fly.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch


@dataclass
class Sample:
    """One RGB-D frame.

    image: (H, W, 3) uint8 RGB.
    depth: (H, W) float32 metres along the optical axis (z), 0 where there is no reading.
    valid: (H, W) bool, True where depth is a real reading (finite and > 0).
    intrinsics: (fx, fy, cx, cy) in pixels of this image, or None when unknown.
    name: an identifier for messages and output files.
    """

    image: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    intrinsics: tuple[float, float, float, float] | None
    name: str


def make_sample(
    image: np.ndarray, depth: np.ndarray, intrinsics: Any, name: str
) -> Sample:
    """Build a Sample, checking shapes and types; non-finite or negative depth becomes 0 (none)."""
    image = np.asarray(image)
    depth = np.asarray(depth, dtype=np.float32)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if depth.shape != image.shape[:2]:
        raise ValueError(f"{name}: depth {depth.shape} does not match image {image.shape[:2]}")
    valid = np.isfinite(depth) & (depth > 0)
    depth = np.where(valid, depth, 0.0).astype(np.float32)
    if intrinsics is not None:
        intrinsics = tuple(float(v) for v in intrinsics)
        if len(intrinsics) != 4:
            raise ValueError(f"{name}: intrinsics must be [fx, fy, cx, cy], got {intrinsics}")
    return Sample(image=image, depth=depth, valid=valid, intrinsics=intrinsics, name=name)


class DepthDataset(Protocol):
    """A map-style dataset of Samples."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sample: ...


class FrameSource(Protocol):
    """Frames as device tensors, for training and validation at FRAME_HEIGHT x FRAME_WIDTH.

    A dataset that can produce its frames directly on a device (the synthetic renderer) offers
    `frame_source(device, compile) -> FrameSource` (compile: torch.compile its work); training then
    renders instead of decoding.

    frames(indices): indices (B,) int64 on the target device ->
        images (B, 3, 240, 320) uint8 and depth (B, 240, 320) float32 metres (0 = no reading),
        both on indices.device. The same index always gives the same frame.
    """

    def __len__(self) -> int: ...

    def frames(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


DatasetFactory = Callable[..., DepthDataset]
_REGISTRY: dict[str, DatasetFactory] = {}


def register_dataset(name: str) -> Callable[[DatasetFactory], DatasetFactory]:
    """Decorator: make `factory(path, split, **options) -> DepthDataset` available by name."""

    def add(factory: DatasetFactory) -> DatasetFactory:
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return add


def dataset_names() -> list[str]:
    _load_builtin_readers()
    return sorted(_REGISTRY)


def open_dataset(name: str, path: str | None = None, split: str = "train", **options: Any) -> DepthDataset:
    """The dataset registered as `name`, reading `path` (a file or folder), split 'train'/'test'/..."""
    _load_builtin_readers()
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](path, split, **options)


# The built-in readers, by the module that registers each; imported on first use, so `import
# depth` stays light, and by name, so this package never imports the readers built on it.
BUILTIN_READERS = {"folder": "depth.data.folder", "nyu-labeled": "depth.data.nyu", "nyu-csv": "depth.data.nyu",
                   "synthetic": "depth.synthetic.frames"}


def _load_builtin_readers() -> None:
    for module in sorted(set(BUILTIN_READERS.values())):
        importlib.import_module(module)
