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

from .efficientnet import VARIANTS, EfficientNetLite

# Frames are stored and augmented at the paper's working resolution, NYU's 640x480 halved;
# the network sees the centre 304x228 of it.
FRAME_HEIGHT, FRAME_WIDTH = 240, 320
INPUT_HEIGHT, INPUT_WIDTH = 228, 304
OUTPUT_HEIGHT, OUTPUT_WIDTH = 55, 74
OUTPUT_STRIDE = 4  # input pixels per output pixel
BACKBONES = ("eigen", *VARIANTS)  # the paper's coarse 1-5, or an ImageNet-pretrained EfficientNet-Lite
OUTPUT_OFFSET = 3.5  # input coordinate (pixel edges at integers) of the output grid's top-left edge

# ImageNet statistics: the paper's coarse net was an ImageNet-style network, and a fixed
# normalisation keeps the first layers' activations well scaled from random init.
_RGB_MEAN = (0.485, 0.456, 0.406)
_RGB_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network; stored beside the weights in checkpoints.

    fc_width: width of the coarse net's hidden fully connected layer (coarse 6); the paper: 4096.
    dropout: dropout probability after coarse 6 (the paper's only dropout layer).
    backbone: what computes the coarse net's features before coarse 6: "eigen", the paper's
        coarse 1-5 (8x6x256), or "efficientnet-lite0", the ImageNet-pretrained
        EfficientNet-Lite0 up to stride 32 (10x8x320; see depth/efficientnet.py).
    fine_reads_backbone: fine 2 also reads the pretrained backbone's stride-8 and stride-16
        maps, sampled at the output cells (efficientnet-lite backbones only). Not in the paper:
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
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if self.fine_reads_backbone and self.backbone not in VARIANTS:
            raise ValueError(f"fine_reads_backbone needs an efficientnet-lite backbone, not {self.backbone!r}")


class CoarseNet(nn.Module):
    """Global coarse-scale network: (B, 3, 228, 304) in [0, 1] -> (log depth (B, 1, 55, 74),
    detail maps for the fine net: [] unless config.fine_reads_backbone, else the backbone's
    stride-8 and stride-16 maps, Lite0: (B, 40, 29, 38) and (B, 112, 15, 19)).

    Features from the configured backbone, then the paper's coarse 6 and 7."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.backbone in VARIANTS:
            self.normalize = _Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # as the ImageNet weights expect
            self.features = EfficientNetLite(config.backbone)  # -> 10x8, Lite0: 320 * 8 * 10 = 25600 features
            features = VARIANTS[config.backbone].features * 8 * 10
            self.detail_blocks = VARIANTS[config.backbone].detail_blocks if config.fine_reads_backbone else ()
        else:
            self.normalize = _Normalize(_RGB_MEAN, _RGB_STD)
            self.features = _eigen_features()
            features = 256 * 6 * 8
        self.fc6 = nn.Linear(features, config.fc_width)
        self.dropout = nn.Dropout(config.dropout)
        self.fc7 = nn.Linear(config.fc_width, OUTPUT_HEIGHT * OUTPUT_WIDTH)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.normalize(images)
        if isinstance(self.features, EfficientNetLite):
            x, detail = self.features.forward_keeping(x, self.detail_blocks)
        else:
            x, detail = self.features(x), []
        x = self.dropout(torch.relu(self.fc6(x.flatten(1))))
        return self.fc7(x).view(-1, 1, OUTPUT_HEIGHT, OUTPUT_WIDTH), detail


def _eigen_features() -> nn.Sequential:
    """The paper's coarse 1-5: (B, 3, 228, 304) normalised -> (B, 256, 6, 8)."""
    return nn.Sequential(
        nn.Conv2d(3, 96, kernel_size=11, stride=4),  # coarse 1: 304x228 -> 74x55
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),  # -> 37x27
        nn.Conv2d(96, 256, kernel_size=5, padding=2),  # coarse 2
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),  # -> 18x13
        nn.Conv2d(256, 384, kernel_size=3, padding=1),  # coarse 3
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, kernel_size=3, padding=1),  # coarse 4
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),  # coarse 5
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2),  # -> 8x6, 256 * 6 * 8 = 12288 features
    )


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
        detail_channels = VARIANTS[config.backbone].detail_channels if config.fine_reads_backbone else 0
        self.fine = FineNet(detail_channels)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coarse, detail = self.coarse(images)
        return coarse, self.fine(images, coarse, detail)


class _Normalize(nn.Module):
    """Fixed per-channel normalisation. The constants are buffers (moved with the module, not
    saved in checkpoints) so no forward pass copies them from the host."""

    def __init__(self, mean: tuple[float, ...] = _RGB_MEAN, std: tuple[float, ...] = _RGB_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std
