"""The two networks drawn as the paper draws them: the coarse stack above, the fine stack below,
the coarse output feeding the fine stack's concatenation (and, where the fine net reads them,
the backbone's stride-8 and -16 maps feeding its detail layer). Built from `depth.anatomy.Layer`s
recorded while the network ran, so every label is the module's real operation and output size.
"""

from __future__ import annotations

import math
import textwrap

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from depth.anatomy import Layer
from depth.model import INPUT_HEIGHT, INPUT_WIDTH

COLOURS = {"input": "#dddddd", "coarse": "#8fb8de", "fine": "#f2b880", "fully connected": "#b8b8b8"}
ROWS = {"coarse": 0.70, "fine": 0.24}  # vertical centre of each stack, figure fraction


def network_diagram(layers: list[Layer]) -> Figure:
    """A figure of the coarse and fine stacks: one box per layer, its height growing with the
    map's side, labelled with the layer's name, output size (channels, W x H) and operation.

    layers: as `depth.anatomy.layer_table` returns them (coarse layers, then fine).
    """
    input_layer = Layer("input", "input", "RGB photo, centre crop", 3, INPUT_HEIGHT, INPUT_WIDTH)
    stacks = {stack: [input_layer] + [layer for layer in layers if layer.stack == stack]
              for stack in ("coarse", "fine")}
    columns = max(len(boxes) for boxes in stacks.values())
    figure = Figure(figsize=(max(10.0, 1.15 * columns), 5.2), dpi=100)
    axis = figure.add_axes((0, 0, 1, 1))
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_axis_off()
    step = 1 / columns
    centres: dict[tuple[str, str], tuple[float, float, float]] = {}  # (stack, name) -> (x, y, half height)
    for stack, boxes in stacks.items():
        for column, layer in enumerate(boxes):
            x, y = step * (column + 0.5), ROWS[stack]
            fully_connected = (layer.height, layer.width) == (1, 1)
            height = 0.22 if fully_connected else 0.05 + 0.17 * math.sqrt(
                math.sqrt(layer.height * layer.width / (INPUT_HEIGHT * INPUT_WIDTH)))
            width = step * (0.25 if fully_connected else 0.62)
            colour = COLOURS["input" if layer.stack == "input" else "fully connected" if fully_connected else stack]
            axis.add_patch(Rectangle((x - width / 2, y - height / 2), width, height, facecolor=colour,
                                     edgecolor="#333333", linewidth=0.8))
            axis.text(x, y + height / 2 + 0.015, layer.name, ha="center", va="bottom", fontsize=9, weight="bold")
            axis.text(x, y, layer.size, ha="center", va="center", fontsize=7.5)
            axis.text(x, y - height / 2 - 0.012, textwrap.fill(layer.operation, 20), ha="center", va="top",
                      fontsize=6.5, color="#333333")
            if column:
                previous_x, _, _ = centres[stack, boxes[column - 1].name]
                _arrow(axis, (previous_x + step * 0.33, y), (x - width / 2, y))
            centres[stack, layer.name] = (x, y, height / 2)
    if ("coarse", "coarse 7") in centres and ("fine", "concat") in centres:
        (x7, y7, h7), (xc, yc, hc) = centres["coarse", "coarse 7"], centres["fine", "concat"]
        _arrow(axis, (x7, y7 - h7 - 0.11), (xc, yc + hc + 0.05), colour="#b00020")
        axis.text(xc + 0.02, yc + hc + 0.07, "the coarse output enters the fine net", fontsize=7.5,
                  color="#b00020")
    for stage in ("stage 3", "stage 5"):  # the backbone maps a fine net may read (fine_reads_backbone)
        if ("coarse", stage) in centres and ("fine", "detail") in centres:
            (xs, ys, hs), (xd, yd, hd) = centres["coarse", stage], centres["fine", "detail"]
            _arrow(axis, (xs, ys - hs - 0.11), (xd, yd + hd + 0.05), colour="#1b7837")
    return figure


def _arrow(axis, start: tuple[float, float], end: tuple[float, float], colour: str = "#555555") -> None:
    axis.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, color=colour, linewidth=0.9))
