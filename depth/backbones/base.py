"""The contract every backbone keeps: what the coarse net and training may ask of it."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

# ImageNet statistics: the paper's coarse net was an ImageNet-style network, and a fixed
# normalisation keeps the first layers' activations well scaled from random init.
IMAGENET_RGB = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # mean, std
Tap = tuple[str, str, nn.Module]  # a stage as the "How it works" tab shows it: name, operation, its last module


class Backbone:
    """Mixed into an nn.Module that maps (B, 3, 228, 304) normalised images to coarse 6's input.

    normalization: the RGB (mean, std) its inputs are normalised by (what its weights expect).
    feature_count: the values it hands coarse 6 for a 304x228 input.
    detail_channels: channels of the maps the fine net may read (ModelConfig.fine_reads_backbone;
        0: it offers none). detail_strides: their strides in input pixels.
    rate_option: the TrainConfig field holding its learning rate.
    weights: where its initial weights come from, in words.
    """

    normalization: ClassVar[tuple[tuple[float, float, float], tuple[float, float, float]]]
    feature_count: ClassVar[int]
    detail_channels: ClassVar[int] = 0
    detail_strides: ClassVar[tuple[int, ...]] = ()
    rate_option: ClassVar[str] = "lr_coarse_conv"
    weights: ClassVar[str] = "random"

    def extract(self, x: torch.Tensor, with_detail: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(its output map (B, C, h, w), the detail maps the fine net reads: [] unless `with_detail`)."""
        raise NotImplementedError

    def load_pretrained(self) -> None:
        """Put in the weights a new run starts from (nothing to do for random weights)."""

    def freeze(self, blocks: int) -> None:
        """Stop gradients to its first `blocks` blocks; a backbone without blocks takes only 0."""
        if blocks:
            raise ValueError(f"frozen_blocks applies to backbones made of blocks, not the {type(self).__name__} one")

    def taps(self) -> list[Tap]:
        """Its stages, first to last, for depth.anatomy."""
        raise NotImplementedError


def describe(module: nn.Module) -> str:
    """A convolution, pooling or activation module in the paper's words."""
    if isinstance(module, nn.Conv2d):
        height, width = module.kernel_size
        stride = f" stride {module.stride[0]}" if module.stride[0] > 1 else ""
        return f"conv {height}x{width}{stride}"
    if isinstance(module, nn.MaxPool2d):
        kernel, stride = module.kernel_size, module.stride
        return f"max-pool {kernel}x{kernel}" + (f" stride {stride}" if stride != kernel else "")
    if isinstance(module, nn.ReLU):
        return "ReLU"
    return type(module).__name__
