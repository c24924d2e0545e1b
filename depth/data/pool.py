"""TensorPool: a dataset decoded once into tensors on the training device.

Decoding JPEGs or rendering scenes for every batch would leave a GPU waiting; instead every
frame is decoded (or rendered) once, brought to the 320x240 working resolution and kept as
uint8 images and float16 depth on the device. A batch is then one gather. 120K frames take
about 46 GB (230 KB of image and 154 KB of depth each).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..images import resize_rgb
from . import FRAME_HEIGHT, FRAME_WIDTH, DepthDataset, FrameSource, Sample


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
        workers: int | None = None, desc: str = "decoding",
    ) -> TensorPool:
        """Decode up to `limit` samples of `dataset` (in parallel worker processes) into a pool.

        Frames must have a 4:3 aspect ratio (NYU's); they are resized to 320x240, the image
        antialiased, the depth by nearest neighbour so no depth is invented between surfaces.
        """
        count = len(dataset) if limit is None else min(limit, len(dataset))
        if count == 0:
            raise ValueError("the dataset has no frames")
        workers = min(8, os.cpu_count() or 1) if workers is None else workers
        loader = DataLoader(_FrameTensors(dataset), batch_size=None, num_workers=workers,
                            sampler=range(count))
        images = torch.empty(count, 3, FRAME_HEIGHT, FRAME_WIDTH, dtype=torch.uint8, device=device)
        depth = torch.empty(count, FRAME_HEIGHT, FRAME_WIDTH, dtype=torch.float16, device=device)
        for index, (image, frame_depth) in enumerate(tqdm(loader, total=count, desc=desc, unit="frame")):
            images[index], depth[index] = image.to(device), frame_depth.to(device)
        return cls(images, depth)

    @classmethod
    def from_source(
        cls, source: FrameSource, count: int, device: torch.device | str, batch: int = 256,
        desc: str = "rendering",
    ) -> TensorPool:
        """Frames 0..count-1 of a FrameSource (for example the synthetic renderer), kept."""
        images = torch.empty(count, 3, FRAME_HEIGHT, FRAME_WIDTH, dtype=torch.uint8, device=device)
        depth = torch.empty(count, FRAME_HEIGHT, FRAME_WIDTH, dtype=torch.float16, device=device)
        for start in tqdm(range(0, count, batch), desc=desc, unit="batch"):
            indices = torch.arange(start, min(start + batch, count), device=device)
            images[indices], frame_depth = source.frames(indices)
            depth[indices] = frame_depth.half()
        return cls(images, depth)


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
