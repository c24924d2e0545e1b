"""Pictures of what the networks compute: a photo's feature maps layer by layer, and the depth
templates of coarse 7, each with a caption saying what it shows and at what resolution."""

from __future__ import annotations

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from depth.anatomy import Layer, Recording
from depth.model import INPUT_WIDTH
from depth.visualize import DEFAULT_COLORMAP, colorize, depth_range, figure_pixels

# The layers shown for a photo, in order (those the loaded network has) and what each sees.
CAPTIONS = {
    "coarse 1": "Coarse 1 looks at 11×11-pixel patches every 4 pixels: edges, colours and textures.",
    "coarse 5": "Coarse 5: each unit now sees a large part of the photo; the maps are tiny, so they say "
                "roughly where things are, not what they look like.",
    "stage 2": "An early stage of the ImageNet-trained network: edges and textures.",
    "stage 4": "A middle stage: parts of objects, at a sixteenth of the resolution.",
    "stage 7": "The last stage: what is in view and roughly where; coarse 6 reads all of these maps at once.",
    "coarse 7": "The coarse network's depth: one fully connected layer writes all 74×55 values, so it can use "
                "the whole scene (the room's layout, vanishing lines), but it is blurry.",
    "fine 1": "Fine 1 looks at the photo again, 9×9 patches at stride 2, pooled onto the coarse output's grid: "
              "local edges the coarse map lacks.",
    "fine 3": "Coarse + fine: fine 2 and 3 combine fine 1's maps with the coarse depth (its 64th channel; where "
              "the fine net reads the backbone, also 32 maps made from its stages 3 and 5) and "
              "sharpen it along edges, on the same grid.",
}
DEPTH_LAYERS = ("coarse 7", "fine 3")  # layers whose output is log depth, shown in metres
CHANNELS_SHOWN = 8  # feature channels shown per layer: those that vary most over the photo
MOSAIC_WIDTH = 480  # pixels, about: small maps are enlarged (nearest neighbour) to this
FEATURE_COLORMAP, TEMPLATE_COLORMAP = "viridis", "RdBu_r"


def feature_pictures(recording: Recording, colormap: str = DEFAULT_COLORMAP) -> list[tuple[np.ndarray, str, str]]:
    """(picture (H, W, 3) uint8, label, caption) for each layer of CAPTIONS that `recording`
    holds, of the first photo it recorded; the label is the layer's name and output size.

    Feature layers show the CHANNELS_SHOWN channels that vary most, each scaled to its own range
    (bright = strong); log-depth layers show depth in metres on one shared range (`colormap`).
    """
    layers = {layer.name: layer for layer in recording.layers}
    depth_maps = [recording.activations[name][0, 0].exp().numpy() for name in DEPTH_LAYERS if name in layers]
    near, far = depth_range(*depth_maps) if depth_maps else (0.0, 1.0)
    pictures = []
    for name, caption in CAPTIONS.items():
        if name not in layers:
            continue
        layer, values = layers[name], recording.activations[name][0]
        if name in DEPTH_LAYERS:
            picture = colorize(values[0].exp().numpy(), near, far, colormap)
            detail = f"depth {near:.1f}–{far:.1f} m"
        else:
            picture = _mosaic(values)
            detail = f"{min(CHANNELS_SHOWN, layer.channels)} of its {layer.channels} maps, the most varied"
        pictures.append((_enlarge(picture), f"{name}: {layer.size}", f"{caption} {_resolution(layer)}; {detail}."))
    return pictures


def template_pictures(components: np.ndarray, share: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """(picture, label) for each principal component of coarse 7's templates
    (depth.anatomy.coarse7_components), on a diverging scale: red where a unit that adds the
    component makes the room farther, blue nearer."""
    cmap = matplotlib.colormaps[TEMPLATE_COLORMAP]
    pictures = []
    for index, (component, part) in enumerate(zip(components, share), start=1):
        limit = max(float(np.percentile(np.abs(component), 99)), 1e-12)  # a few outliers would wash it out
        picture = (cmap(np.clip(0.5 + 0.5 * component / limit, 0, 1))[..., :3] * 255).round().astype(np.uint8)
        pictures.append((_enlarge(picture), f"component {index}: {part:.0%} of the variance"))
    return pictures


def picture_grid(pictures: list[tuple[np.ndarray, str]], columns: int = 3, width: float = 13.0) -> np.ndarray:
    """Pictures with their labels above them, laid out `columns` to a row: one (H, W, 3) uint8
    image (a page shows it whole, and a teacher can save it)."""
    rows = -(-len(pictures) // columns)
    cell = width / columns
    heights = [max(p.shape[0] / p.shape[1] for p, _ in pictures[r * columns:(r + 1) * columns]) for r in range(rows)]
    figure = Figure(figsize=(width, sum(cell * h + 0.35 for h in heights)), dpi=100, layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False, gridspec_kw={"height_ratios": heights})
    for axis in axes.ravel():
        axis.set_axis_off()
    for axis, (picture, label) in zip(axes.ravel(), pictures):
        axis.imshow(picture, interpolation="nearest")
        axis.set_title(label, fontsize=10)
    return figure_pixels(figure)


def _mosaic(values: torch.Tensor) -> np.ndarray:
    """(C, H, W) activations -> the CHANNELS_SHOWN most varied channels tiled 2 rows x 4, 1-pixel
    white gaps, each channel in FEATURE_COLORMAP over its own min-max."""
    chosen = values.flatten(1).var(dim=1).argsort(descending=True)[:CHANNELS_SHOWN]
    maps = values[chosen].numpy()
    low = maps.min(axis=(1, 2), keepdims=True)
    high = maps.max(axis=(1, 2), keepdims=True)
    scaled = (maps - low) / np.maximum(high - low, 1e-12)
    tiles = (matplotlib.colormaps[FEATURE_COLORMAP](scaled)[..., :3] * 255).round().astype(np.uint8)
    columns = min(4, len(tiles))
    rows = -(-len(tiles) // columns)
    height, width = tiles.shape[1:3]
    mosaic = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1, 3), 255, dtype=np.uint8)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        top, left = row * (height + 1), column * (width + 1)
        mosaic[top:top + height, left:left + width] = tile
    return mosaic


def _enlarge(picture: np.ndarray) -> np.ndarray:
    """Small pictures repeated pixel by pixel (no smoothing, so the grid stays visible)."""
    factor = max(1, MOSAIC_WIDTH // picture.shape[1])
    return picture.repeat(factor, axis=0).repeat(factor, axis=1)


def _resolution(layer: Layer) -> str:
    """"96 maps of 37×27, one value per 8 input pixels"."""
    stride = INPUT_WIDTH / layer.width
    return (f"{layer.channels} map{'s' if layer.channels > 1 else ''} of {layer.width}×{layer.height}, "
            f"one value per {stride:.0f} input pixels")
