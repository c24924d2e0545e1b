"""Photo textures: the CC0 material photos of assets/textures in one atlas tensor, and sampling.

Each texture is a square tile of a real material (wood floor, carpet, brick, fabric, ...)
repeated over a surface at a physical scale: one tile covers `size` metres. The atlas holds
every texture at 128x128 texels and its mip levels down to 1x1 (box-filtered in linear light),
so a surface far away or seen at a grazing angle reads a level whose texels match the pixel's
footprint instead of aliasing into moire. Texels are stored divided by their texture's mean
colour: a sample is a pattern around 1 that multiplies the look's albedo, so one texture can
carry its own photographed colour (albedo = its mean, see `TextureAtlas.mean`) or any other.

Textures are loaded once per device, in a fixed order (sorted by category, then file name),
so texture index k is the same file on every machine, and sampling is a pure function of the
surface coordinates: frames stay deterministic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

TEXTURE_DIR = Path(__file__).resolve().parents[2] / "assets" / "textures"
TEXELS = 128  # texels a side of the finest level (bigger photos are scaled down to it)
LEVELS = 8  # mip levels: 128, 64, ..., 1 texels a side
# metres one tile covers, per category: the range a surface draws its scale from (judged from
# what the photos show: about ten courses of bricks, four floor tiles, six planks, ...)
TILE_METRES: dict[str, tuple[float, float]] = {
    "brick": (0.6, 1.0), "carpet": (0.3, 0.8), "ceiling": (1.2, 2.4), "concrete": (0.8, 2.0),
    "fabric": (0.12, 0.35), "floor_tiles": (0.8, 1.6), "marble_stone": (0.4, 1.0), "metal": (0.3, 0.8),
    "misc_clutter": (0.2, 0.6), "parquet": (0.6, 1.2), "plaster_paint": (0.8, 2.0), "wallpaper": (0.4, 1.0),
    "wood_floor": (0.8, 1.5), "wood_furniture": (0.4, 1.0),
}


@dataclass(frozen=True)
class TextureAtlas:
    """Every texture of assets/textures on one device.

    texels: (3, N) float32, each channel contiguous: level-major, then texture, then row-major
        texels (row 0 at the top of the photo), divided by the texture's mean colour.
    level_start: (LEVELS,) int64 index in texels of each level's first texel.
    mean: (T, 3) linear RGB mean colour of each texture.
    categories: category -> (first texture index, count); the categories' textures are
        consecutive.
    files: the texture files, relative to TEXTURE_DIR, in index order.
    """

    texels: Tensor
    level_start: Tensor
    mean: Tensor
    categories: dict[str, tuple[int, int]]
    files: tuple[str, ...]

    @property
    def count(self) -> int:
        return self.mean.shape[0]


def _read_tile(path: Path) -> Tensor:
    """(3, TEXELS, TEXELS) linear RGB of one texture file (sRGB, any size, square)."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.size != (TEXELS, TEXELS):
            image = image.resize((TEXELS, TEXELS), Image.BOX)
        srgb = torch.from_numpy(np.asarray(image, dtype=np.float32).copy())
    return (srgb / 255.0).clamp(min=1 / 255.0).pow(2.2).permute(2, 0, 1)


@cache
def _load(device: str) -> TextureAtlas:
    manifest_path = TEXTURE_DIR / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path} is missing: the renderer needs the photo textures of "
                                "assets/textures (they ship with the repository)")
    manifest = json.loads(manifest_path.read_text())
    entries = sorted(manifest, key=lambda entry: (entry["category"], entry["file"]))
    unknown = {entry["category"] for entry in entries} - TILE_METRES.keys()
    if unknown:
        raise ValueError(f"{TEXTURE_DIR / 'manifest.json'}: categories without a tile size: {sorted(unknown)}")
    tiles = torch.stack([_read_tile(TEXTURE_DIR / entry["file"]) for entry in entries])  # (T, 3, S, S)
    mean = tiles.mean((2, 3))
    level = tiles / mean[:, :, None, None]
    levels = []
    for _ in range(LEVELS):
        levels.append(level.permute(1, 0, 2, 3).reshape(3, -1))
        level = F.avg_pool2d(level, 2) if level.shape[-1] > 1 else level
    sizes = torch.tensor([lv.shape[1] for lv in levels])
    level_start = torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)[:-1]])
    categories: dict[str, tuple[int, int]] = {}
    for index, entry in enumerate(entries):
        first, count = categories.get(entry["category"], (index, 0))
        categories[entry["category"]] = (first, count + 1)
    return TextureAtlas(texels=torch.cat(levels, 1).contiguous().to(device), level_start=level_start.to(device),
                        mean=mean.to(device), categories=categories, files=tuple(e["file"] for e in entries))


def texture_atlas(device: torch.device | str = "cpu") -> TextureAtlas:
    """The atlas on `device`, loaded from assets/textures the first time (then cached)."""
    return _load(str(torch.device(device)))


def sample_texture(
    texels: Tensor, level_start: Tensor, index: Tensor, s: Tensor, t: Tensor, texels_per_pixel: Tensor,
) -> list[Tensor]:
    """The texture pattern at tile coordinates (s, t) (1 = one tile; t up): three (B, P) channels.

    texels, level_start: a TextureAtlas's. index: (B, P) int64 texture index. texels_per_pixel:
    (B, P) finest-level texels one pixel covers; the level read is the nearest mip level whose
    texels are about a pixel big (nearest texel within it).
    """
    level = torch.floor(torch.log2(texels_per_pixel.clamp(min=1.0)) + 0.5).clamp(max=LEVELS - 1).long()
    side = TEXELS >> level
    column = ((s - torch.floor(s)) * side).long().clamp(max=side - 1)
    row = ((torch.floor(t) + 1.0 - t) * side).long().clamp(max=side - 1)
    flat = level_start.take(level) + (index * side + row) * side + column
    return [channel.take(flat) for channel in texels]
