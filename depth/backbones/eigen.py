"""The paper's coarse 1-5 (Eigen et al. 2014, Table 1 of this project's DESIGN), from random weights."""

from __future__ import annotations

import torch
from torch import nn

from .base import IMAGENET_RGB, Backbone, Tap, describe


class EigenCoarse(nn.Sequential, Backbone):
    """(B, 3, 228, 304) normalised -> (B, 256, 6, 8): five convolutions, as in the paper."""

    normalization = IMAGENET_RGB
    feature_count = 256 * 6 * 8  # 12288, coarse 6's inputs

    def __init__(self) -> None:
        super().__init__(
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
            # the paper gives no pooling size: a 3x3, stride-2 max-pool brings 13x18 to its 6x8
            nn.MaxPool2d(3, stride=2),
        )

    def extract(self, x: torch.Tensor, with_detail: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self(x), []

    def taps(self) -> list[Tap]:
        """Coarse 1-5: each starts at a convolution and takes the modules up to the next one."""
        groups: list[list[nn.Module]] = []
        for module in self:
            if isinstance(module, nn.Conv2d) or not groups:
                groups.append([])
            groups[-1].append(module)
        return [(f"coarse {index}", ", ".join(describe(m) for m in group), group[-1])
                for index, group in enumerate(groups, start=1)]
