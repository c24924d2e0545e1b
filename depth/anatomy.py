"""Inside the two networks: each layer's operation and output size, its activations for a
photo, and the depth templates coarse 7 learned. For teaching (the app's "How it works" tab).

Everything is read off the modules themselves while they run, so a description can never
disagree with depth/model.py: `record_layers(net)` hooks every layer of the paper's Table
(or the pretrained backbone's stages); whatever runs the network inside it, `DepthModel.predict`
included, fills in the layers and their activations.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .backbones import describe
from .model import INPUT_HEIGHT, INPUT_WIDTH, OUTPUT_HEIGHT, OUTPUT_WIDTH, EigenDepthNet


@dataclass(frozen=True)
class Layer:
    """One layer (or group of layers) as it ran.

    name: as the paper's Table names it ("coarse 1", ..., "fine 3"; "stem", "stage 1", ... for
    the pretrained backbone), stack: "coarse" or "fine", operation: what it computes, read off
    the modules ("conv 11x11 stride 4, ReLU, max-pool 2x2"); channels, height, width: its
    output map (a fully connected layer: channels = features, 1x1).
    """

    name: str
    stack: str
    operation: str
    channels: int
    height: int
    width: int

    @property
    def size(self) -> str:
        """The output size as the paper's Table writes it: channels, then W x H."""
        return f"{self.channels}" if (self.height, self.width) == (1, 1) else \
            f"{self.channels} × {self.width}×{self.height}"


@dataclass
class Recording:
    """What `record_layers` saw during the last forward pass: the layers in the order they ran,
    and their activations by name ((B, C, H, W) float32 tensors on the CPU; a fully connected
    layer's (B, features) as (B, features, 1, 1))."""

    layers: list[Layer] = field(default_factory=list)
    activations: dict[str, torch.Tensor] = field(default_factory=dict)


@contextmanager
def record_layers(net: EigenDepthNet, keep: Collection[str] | None = None) -> Iterator[Recording]:
    """Hook every layer of `net` while the block runs; yields the Recording they fill in.

    keep: the layers whose activations are kept (None: all); every layer's size is recorded.

    The hooks are removed on exit. A forward pass inside replaces what an earlier one recorded.
    Only forward passes of the calling thread are recorded: a server may run the same network
    for another request at the same time.
    """
    recording = Recording()
    owner = threading.get_ident()
    taps = _taps(net)
    order = [name for name, *_ in taps]
    handles = []

    def note(name: str, stack: str, operation: str, output: torch.Tensor) -> None:
        if threading.get_ident() != owner:
            return
        if name == order[0]:  # a new forward pass
            recording.layers.clear()
            recording.activations.clear()
        if isinstance(output, tuple):  # the coarse net's (log depth, detail maps for the fine net)
            output = output[0]
        if output.ndim == 2:  # a fully connected layer
            output = output[:, :, None, None]
        if keep is None or name in keep:
            recording.activations[name] = output.detach().float().cpu()
        _, channels, height, width = output.shape
        recording.layers.append(Layer(name, stack, operation, channels, height, width))

    for name, stack, operation, module, reads_input in taps:
        if reads_input:  # the concatenation has no module: it is fine 2's input
            handles.append(module.register_forward_pre_hook(
                lambda m, inputs, n=name, s=stack, o=operation: note(n, s, o, inputs[0])))
        else:
            handles.append(module.register_forward_hook(
                lambda m, inputs, output, n=name, s=stack, o=operation: note(n, s, o, output)))
    try:
        yield recording
    finally:
        for handle in handles:
            handle.remove()


def layer_table(net: EigenDepthNet) -> list[Layer]:
    """Every layer of `net` with its output size for the network's 304x228 input."""
    parameter = next(net.parameters())
    with torch.inference_mode(), record_layers(net) as recording:
        net.eval()(torch.zeros(1, 3, INPUT_HEIGHT, INPUT_WIDTH, device=parameter.device))
    return list(recording.layers)


def coarse7_components(
    net: EigenDepthNet, count: int = 8, usage: torch.Tensor | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The depth templates of coarse 7, the fully connected layer that writes the 74x55 map.

    Its output is bias + sum_j a_j w_j over the hidden units j of coarse 6 (a_j >= 0 after the
    ReLU): every column w_j of its weight is a log-depth template over the grid. Their principal
    components (of the columns, centred) show what the coarse net can express.

    usage: (fc_width,) how much each unit is used, e.g. the standard deviation of its activation
    over some photos; the columns are weighted by it, so units that never change
    (whose columns keep their random initial values) do not drown the learned templates.
    Returns (components (count, 55, 74) of unit length, each signed so that its largest value
    is positive; share (count,) of the weighted columns' variance each explains).
    """
    weight = net.coarse.fc7.weight.detach().float().cpu()  # (4070, fc_width)
    if usage is not None:
        if usage.shape != (weight.shape[1],):
            raise ValueError(f"usage must have one value per unit of coarse 6, {weight.shape[1]}, "
                             f"got shape {tuple(usage.shape)}")
        weight = weight * usage.float().cpu()
    centred = weight - weight.mean(dim=1, keepdim=True)
    count = min(count, centred.shape[1])
    # the leading components only (randomised, seeded: a full SVD of 4070 x 4096 takes seconds)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    u, s, _ = torch.svd_lowrank(centred, q=min(count + 10, min(centred.shape)), niter=6)
    torch.random.set_rng_state(generator_state)
    components = u[:, :count].T  # (count, 4070)
    peaks = components.gather(1, components.abs().argmax(dim=1, keepdim=True))
    components = components * torch.sign(peaks)
    share = s[:count] ** 2 / (centred**2).sum().clamp(min=1e-12)
    return components.reshape(count, OUTPUT_HEIGHT, OUTPUT_WIDTH).numpy(), share.numpy()


def _taps(net: EigenDepthNet) -> list[tuple[str, str, str, nn.Module, bool]]:
    """(name, stack, operation, module whose output is the layer's, reads the module's input)."""
    coarse, fine = net.coarse, net.fine
    taps = [(name, "coarse", operation, module, False) for name, operation, module in coarse.features.taps()]
    fc6, fc7 = coarse.fc6, coarse.fc7
    dropout = f", dropout {coarse.dropout.p:g}" if coarse.dropout.p else ""
    taps += [
        ("coarse 6", "coarse", f"fully connected {fc6.in_features} → {fc6.out_features}, ReLU{dropout}", fc6, False),
        # the coarse net's output, (1, 55, 74): fc7's features reshaped onto the grid
        ("coarse 7", "coarse", f"fully connected {fc7.in_features} → {fc7.out_features}, reshaped to "
                               f"{OUTPUT_WIDTH}×{OUTPUT_HEIGHT}", coarse, False),
        ("fine 1", "fine", f"{describe(fine.conv1)}, ReLU, {describe(fine.pool1)}", fine.pool1, False),
    ]
    concat = "fine 1's maps + the coarse 7 output"
    if hasattr(fine, "detail"):
        taps.append(("detail", "fine", f"the backbone's stride-8 and stride-16 maps at the output cells, "
                                       f"{describe(fine.detail)}, ReLU", fine.detail, False))
        concat += " + the detail maps"
    taps += [
        ("concat", "fine", concat, fine.conv2, True),
        ("fine 2", "fine", f"{describe(fine.conv2)}, ReLU", fine.conv2, False),
        ("fine 3", "fine", f"{describe(fine.conv3)}, linear: log depth", fine.conv3, False),
    ]
    return taps
