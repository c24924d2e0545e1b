"""The coarse- and fine-scale networks of Eigen, Puhrsch & Fergus (NIPS 2014), NYU setting.

Both networks take an RGB image of 304x228 (W x H) with values in [0, 1] and predict natural
log depth in metres on a 74x55 grid. That grid covers a centre crop of the input: output pixel
(i, j) spans input pixels [4j + 3.5, 4j + 7.5) x [4i + 3.5, 4i + 7.5) (see `OUTPUT_STRIDE`,
`OUTPUT_OFFSET`), because the fine net's unpadded 9x9 convolution and 2x2 pooling lose a
small border. The coarse net's fully connected output is defined on the same grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import backbone_type, build_backbone
from .backbones.base import IMAGENET_RGB

# Frames are stored and augmented at the paper's working resolution, NYU's 640x480 halved;
# the network sees the centre 304x228 of it.
FRAME_HEIGHT, FRAME_WIDTH = 240, 320
INPUT_HEIGHT, INPUT_WIDTH = 228, 304
OUTPUT_HEIGHT, OUTPUT_WIDTH = 55, 74
OUTPUT_STRIDE = 4  # input pixels per output pixel
OUTPUT_OFFSET = 3.5  # input coordinate (pixel edges at integers) of the output grid's top-left edge


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network; stored beside the weights in checkpoints.

    fc_width: width of the coarse net's hidden fully connected layer (coarse 6); the paper: 4096.
    dropout: dropout probability after coarse 6 (the paper's only dropout layer).
    backbone: what computes the coarse net's features before coarse 6, a name in
        depth.backbones.BACKBONES: "eigen", the paper's coarse 1-5 (8x6x256), or
        "efficientnet-lite0", the ImageNet-pretrained EfficientNet-Lite0 up to stride 32 (10x8x320).
    fine_reads_backbone: fine 2 also reads the backbone's detail maps (Lite0: stride 8 and 16),
        sampled at the output cells (backbones that offer them only). Not in the paper:
        its successor (Eigen & Fergus, ICCV 2015) feeds scale 1's features into scale 2 the
        same way. The fine net's own 63 maps see 9x9 pixels; these see the photo's objects.
    """

    fc_width: int = 4096
    dropout: float = 0.5
    backbone: str = "eigen"
    fine_reads_backbone: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.fc_width, int) and self.fc_width > 0):
            raise ValueError(f"fc_width must be a positive integer, got {self.fc_width!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        backbone = backbone_type(self.backbone)  # ValueError for an unknown name
        if self.fine_reads_backbone and not backbone.detail_channels:
            raise ValueError(f"fine_reads_backbone needs a backbone with maps for the fine net, not {self.backbone!r}")


class CoarseNet(nn.Module):
    """Global coarse-scale network: (B, 3, 228, 304) in [0, 1] -> (log depth (B, 1, 55, 74),
    detail maps for the fine net: [] unless config.fine_reads_backbone, else the backbone's
    stride-8 and stride-16 maps, Lite0: (B, 40, 29, 38) and (B, 112, 15, 19)).

    Features from the configured backbone, then the paper's coarse 6 and 7."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.features = build_backbone(config.backbone)  # depth.backbones
        self.normalize = _Normalize(*self.features.normalization)
        self.reads_detail = config.fine_reads_backbone
        self.fc6 = nn.Linear(self.features.feature_count, config.fc_width)
        self.dropout = nn.Dropout(config.dropout)
        self.fc7 = nn.Linear(config.fc_width, OUTPUT_HEIGHT * OUTPUT_WIDTH)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x, detail = self.features.extract(self.normalize(images), self.reads_detail)
        x = self.dropout(torch.relu(self.fc6(x.flatten(1))))
        return self.fc7(x).view(-1, 1, OUTPUT_HEIGHT, OUTPUT_WIDTH), detail


class FineNet(nn.Module):
    """Local fine-scale network: refines the coarse log depth with image detail.

    forward(images (B, 3, 228, 304) in [0, 1], coarse_log_depth (B, 1, 55, 74), detail maps
    (CoarseNet's: [] or the backbone's stride-8 and -16 maps)) -> log depth (B, 1, 55, 74).

    detail_channels: the detail maps' channels together; 0 (the paper): the net reads none.
    Otherwise they are sampled at the centres of the output cells, mixed by a 1x1 convolution
    into DETAIL_MAPS maps and appended to fine 2's input after the coarse map.
    """

    DETAIL_MAPS = 32

    def __init__(self, detail_channels: int = 0) -> None:
        super().__init__()
        self.normalize = _Normalize()
        self.conv1 = nn.Conv2d(3, 63, kernel_size=9, stride=2)  # fine 1: -> 148x110
        self.pool1 = nn.MaxPool2d(2)  # -> 74x55
        inputs = 64
        if detail_channels:
            self.detail = nn.Conv2d(detail_channels, self.DETAIL_MAPS, kernel_size=1)
            inputs += self.DETAIL_MAPS
        # Edge values pad fine 2 and 3: a zero border (what the paper's description suggests)
        # draws a thin frame into the fine map.
        self.conv2 = nn.Conv2d(inputs, 64, kernel_size=5, padding=2, padding_mode="replicate")  # fine 2, after the concat
        self.conv3 = nn.Conv2d(64, 1, kernel_size=5, padding=2, padding_mode="replicate")  # fine 3: linear

    def forward(self, images: torch.Tensor, coarse_log_depth: torch.Tensor,
                detail: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        x = self.pool1(torch.relu(self.conv1(self.normalize(images))))
        x = torch.cat([x, coarse_log_depth.to(x.dtype)], dim=1)
        if hasattr(self, "detail"):
            sampled = torch.cat([_at_output_cells(maps, images.shape[-1] / maps.shape[-1]) for maps in detail], dim=1)
            x = torch.cat([x, torch.relu(self.detail(sampled.to(x.dtype)))], dim=1)
        x = torch.relu(self.conv2(x))
        return self.conv3(x)


def _at_output_cells(maps: torch.Tensor, stride: float) -> torch.Tensor:
    """(B, C, h, w) maps of `stride` input pixels per cell -> (B, C, 55, 74), bilinearly
    sampled at the centres of the output cells (input x = 4j + 5.5, see OUTPUT_OFFSET), taking
    map cell u to be centred at input x = stride * (u + 0.5)."""
    def positions(cells: int, size: int) -> torch.Tensor:
        centres = OUTPUT_OFFSET + OUTPUT_STRIDE * (torch.arange(cells, device=maps.device) + 0.5)
        return 2 * (centres / stride - 0.5) / (size - 1) - 1  # grid_sample's [-1, 1], align_corners
    rows, columns = positions(OUTPUT_HEIGHT, maps.shape[-2]), positions(OUTPUT_WIDTH, maps.shape[-1])
    grid = torch.stack(torch.meshgrid(columns, rows, indexing="xy"), dim=-1)  # (55, 74, [x, y])
    grid = grid.to(maps.dtype).expand(maps.shape[0], -1, -1, -1)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True)


class EigenDepthNet(nn.Module):
    """Coarse and fine networks together.

    forward(images (B, 3, 228, 304) float in [0, 1]) -> (coarse, fine), each natural log depth
    in metres, (B, 1, 55, 74). The fine net consumes the coarse prediction; during stage 2 of
    training the coarse net is frozen, so no gradient flows back into it from the fine loss.
    """

    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.config = config
        self.coarse = CoarseNet(config)
        self.fine = FineNet(self.coarse.features.detail_channels if config.fine_reads_backbone else 0)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coarse, detail = self.coarse(images)
        return coarse, self.fine(images, coarse, detail)


class _Normalize(nn.Module):
    """Fixed per-channel normalisation. The constants are buffers (moved with the module, not
    saved in checkpoints) so no forward pass copies them from the host."""

    def __init__(self, mean: tuple[float, ...] = IMAGENET_RGB[0], std: tuple[float, ...] = IMAGENET_RGB[1]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std
