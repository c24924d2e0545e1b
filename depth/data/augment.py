"""The paper's training augmentation, batched, on whatever device the frames live on.

Scale, rotation, crop and flip are one affine map from each 304x228 crop pixel to its source
frame, so a frame is resampled once (`grid_sample`): the image bilinearly, the depth with
nearest neighbours, so no depth is ever blended across an object edge or into a hole. Colour
scaling touches only the image. Test time uses the same code with the identity parameters:
the centre crop, as in the paper's test protocol.

Also here: `output_targets`, which brings a 304x228 depth crop down to the network's 74x55
output grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..loss import paper_valid_mask
from ..model import (
    INPUT_HEIGHT,
    INPUT_WIDTH,
    OUTPUT_HEIGHT,
    OUTPUT_OFFSET,
    OUTPUT_STRIDE,
    OUTPUT_WIDTH,
)


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms: the paper's (section 3.3)."""

    min_scale: float = 1.0
    max_scale: float = 1.5
    max_rotation_degrees: float = 5.0
    min_color: float = 0.8
    max_color: float = 1.2
    flip_probability: float = 0.5


@dataclass
class AugmentParams:
    """Per-frame parameters, each a tensor with a leading batch dimension B.

    scale (B,): zoom factor s (depth is divided by s). angle (B,): rotation in radians.
    crop (B, 2): where the crop sits in the scaled frame, as fractions in [0, 1] of the free
    room in x and y (0.5 = centred). color (B, 3): RGB multipliers. flip (B,): bool, mirror.
    """

    scale: torch.Tensor
    angle: torch.Tensor
    crop: torch.Tensor
    color: torch.Tensor
    flip: torch.Tensor

    def __getitem__(self, rows: slice | torch.Tensor) -> AugmentParams:
        """The parameters of a subset of the frames."""
        return AugmentParams(self.scale[rows], self.angle[rows], self.crop[rows], self.color[rows], self.flip[rows])


def random_params(
    batch: int, generator: torch.Generator, config: AugmentConfig = AugmentConfig()
) -> AugmentParams:
    """Draw parameters for `batch` frames on the generator's device, in one random draw (on a
    GPU the cost of a training step's data path is mostly the number of operations launched)."""
    u = torch.rand(batch, 8, generator=generator, device=generator.device)
    max_angle = math.radians(config.max_rotation_degrees)
    return AugmentParams(
        scale=config.min_scale + (config.max_scale - config.min_scale) * u[:, 0],
        angle=max_angle * (2 * u[:, 1] - 1),
        crop=u[:, 2:4],
        color=config.min_color + (config.max_color - config.min_color) * u[:, 4:7],
        flip=u[:, 7] < config.flip_probability,
    )


def identity_params(batch: int, device: torch.device | str = "cpu") -> AugmentParams:
    """No augmentation: the centre crop of each frame (the paper's test protocol)."""
    return AugmentParams(
        scale=torch.ones(batch, device=device),
        angle=torch.zeros(batch, device=device),
        crop=torch.full((batch, 2), 0.5, device=device),
        color=torch.ones(batch, 3, device=device),
        flip=torch.zeros(batch, dtype=torch.bool, device=device),
    )


def augment(
    images: torch.Tensor, depth: torch.Tensor, params: AugmentParams
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply `params` jointly to images and depth.

    images: (B, 3, H, W) uint8 frames. depth: (B, H, W) metres, 0 = no reading.
    Returns images (B, 3, 228, 304) float in [0, 1] and depth (B, 228, 304) metres, 0 where the
    frame had no reading or where rotation brought in pixels from outside the frame.
    """
    batch, _, height, width = images.shape
    grid = _sampling_grid(params, height, width)
    rgb = F.grid_sample(images.float() / 255.0, grid, mode="bilinear",
                        padding_mode="reflection", align_corners=False)
    rgb = (rgb * params.color[:, :, None, None]).clamp(0.0, 1.0)
    crop_depth = F.grid_sample(depth[:, None].float(), grid, mode="nearest",
                               padding_mode="zeros", align_corners=False)[:, 0]
    return rgb, crop_depth / params.scale[:, None, None]


def _sampling_grid(params: AugmentParams, height: int, width: int) -> torch.Tensor:
    """(B, 228, 304, 2) normalised source coordinates for every crop pixel.

    A crop pixel centre (u, v) is mirrored if flipped, shifted to its place q in the frame
    scaled by s, rotated by -angle about the scaled frame's centre c, and divided by s:
        source = (R(-angle) (q - c) + c) / s.
    """
    device = params.scale.device
    s = params.scale[:, None]
    u = torch.arange(INPUT_WIDTH, device=device, dtype=torch.float32) + 0.5
    v = torch.arange(INPUT_HEIGHT, device=device, dtype=torch.float32) + 0.5
    u = torch.where(params.flip[:, None], INPUT_WIDTH - u, u)  # (B, W)
    room_x = (s * width - INPUT_WIDTH).clamp(min=0)
    room_y = (s * height - INPUT_HEIGHT).clamp(min=0)
    # offsets put the crop inside the scaled frame; frames smaller than the crop are centred
    qx = u + room_x * params.crop[:, :1] - (INPUT_WIDTH - s * width).clamp(min=0) / 2
    qy = v[None] + room_y * params.crop[:, 1:] - (INPUT_HEIGHT - s * height).clamp(min=0) / 2
    dx = qx[:, None, :] - s[:, :, None] * width / 2  # (B, 1, W)
    dy = qy[:, :, None] - s[:, :, None] * height / 2  # (B, H, 1)
    cos, sin = params.angle.cos()[:, None, None], params.angle.sin()[:, None, None]
    source_x = (cos * dx + sin * dy + s[:, :, None] * width / 2) / s[:, :, None]
    source_y = (-sin * dx + cos * dy + s[:, :, None] * height / 2) / s[:, :, None]
    return torch.stack([2 * source_x / width - 1, 2 * source_y / height - 1], dim=-1)


def output_targets(depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A 304x228 depth crop on the network's 74x55 output grid, with the paper's mask.

    depth: (B, 228, 304) metres, 0 = none. Invalid pixels (no reading, or the crop's minimum or
    maximum depth) are left out. Output cell (i, j) spans input [4j + 3.5, 4j + 7.5) x
    [4i + 3.5, 4i + 7.5): the mean of the valid depths under it, weighting the half-covered
    border pixels of the 5x5 neighbourhood by one half, so cells are centred exactly.
    Returns depth (B, 55, 74) metres and valid (B, 55, 74) bool (some valid pixel under it).
    """
    valid = paper_valid_mask(depth)
    # weights [0.5, 1, 1, 1, 0.5], made on the device (a host tensor would sync the GPU)
    edge = 1.0 - 0.5 * (torch.arange(5, device=depth.device) % 4 == 0).float()
    kernel = (edge[:, None] * edge[None, :])[None, None]
    start = int(OUTPUT_OFFSET - 0.5)  # the 5x5 window of cell 0 starts at input pixel 3
    stacked = torch.stack([depth * valid, valid.float()], dim=1)[:, :, start:, start:]
    pooled = F.conv2d(stacked.flatten(0, 1)[:, None], kernel, stride=OUTPUT_STRIDE)
    pooled = pooled.view(depth.shape[0], 2, *pooled.shape[-2:])[:, :, :OUTPUT_HEIGHT, :OUTPUT_WIDTH]
    weight = pooled[:, 1]
    target_valid = weight > 0
    return torch.where(target_valid, pooled[:, 0] / weight.clamp(min=1e-6), 0.0), target_valid
