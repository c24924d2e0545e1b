"""Surface colour per pixel: photo textures (atlas.py) under procedural patterns (cells for
tiles, planks, drawers and book spines, wood grain, noise, pictures)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .atlas import TEXELS, sample_texture
from .hashing import GOLDEN, halves, hash_uniform, mix32
from .materials import Look
from .raycast import Surface, _select


def _value_noise(x: Tensor, y: Tensor, seed: Tensor) -> tuple[Tensor, Tensor]:
    """Two independent smooth noise fields in [0, 1): random values on the integer lattice
    (the two halves of one hash), blended with smoothstep.

    x, y: float tensors (any shape); seed: int32 broadcastable to them.
    """
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    # lattice point (i, j) gets the hash of ((i * 0x9E3779B1 + j) mod 2**32) ^ seed
    key = x0.int() * GOLDEN + y0.int()
    corners = [halves(mix32((key + offset) ^ seed)) for offset in (0, 1, GOLDEN, GOLDEN + 1)]

    def blend(c00: Tensor, c01: Tensor, c10: Tensor, c11: Tensor) -> Tensor:
        bottom, top = c00 + (c10 - c00) * fx, c01 + (c11 - c01) * fx
        return bottom + (top - bottom) * fy

    return blend(*(c[0] for c in corners)), blend(*(c[1] for c in corners))


def pixel_footprint(surface: Surface, fx: float) -> Tensor:
    """(B, P) metres of surface one pixel covers: its depth over the focal length (pixels),
    stretched where the ray meets the surface at a slant (up to 4x)."""
    direction = surface.direction
    along = (direction * direction).sum(1)  # |d|^2: d has z = 1, so the ray's length per unit depth squared
    facing = (surface.normal * direction).sum(1).abs()
    return surface.depth * along / (fx * torch.maximum(facing, 0.25 * along))


def surface_albedo(
    look: Tensor, uv: Tensor, face: Tensor, seed: Tensor, palette: Tensor, footprint: Tensor,
    texels: Tensor, level_start: Tensor,
) -> Tensor:
    """Albedo (B, 3, P), linear RGB, of the surface points with these looks (see materials.Look).

    look: (B, F, P); uv: (B, 2, P) metres; face: (B, P); seed: (B, P) int32, one per surface;
    palette: (K, 3) linear colours that cells and pictures pick from; footprint: (B, P) metres
    per pixel (`pixel_footprint`); texels, level_start: the TextureAtlas's. Colours are worked
    on as three (B, P) channels (see raycast.Surface).
    """
    u, v = uv.unbind(1)
    field = look.unbind(1)
    albedo, second = look[:, Look.ALBEDO].unbind(1), look[:, Look.SECOND].unbind(1)

    # a photo texture, tiled at its scale and turned on the surface, multiplies the albedo
    frequency, cos, sin = field[Look.TEXTURE_FREQ], field[Look.TEXTURE_COS], field[Look.TEXTURE_SIN]
    textured = field[Look.TEXTURE] >= 0
    pattern = sample_texture(texels, level_start, field[Look.TEXTURE].clamp(min=0).long(),
                             (u * cos + v * sin) * frequency, (v * cos - u * sin) * frequency,
                             footprint * frequency * TEXELS)
    albedo = [a * _select(textured, p, 1.0) for a, p in zip(albedo, pattern)]
    channels = palette.t().contiguous()

    def from_palette(index: Tensor) -> list[Tensor]:  # palette colours at int64 indices (B, P)
        return [channel.take(index) for channel in channels]

    # cells: tiles, planks, drawers, book spines, panes; rows shifted by a random fraction
    cell_u, cell_v = field[Look.CELL_U], field[Look.CELL_V]
    row = torch.floor(v / cell_v)
    row_hash = mix32(seed ^ row.int())
    shifted = u + field[Look.STAGGER] * hash_uniform(row_hash) * cell_u
    column = torch.floor(shifted / cell_u)
    cell_hash = mix32(row_hash ^ mix32(column.int()))
    tint, pick = halves(cell_hash)
    height, chance = halves(mix32(cell_hash ^ 0x5BD1E995))
    across, up = shifted / cell_u - column, v / cell_v - row
    edge = torch.minimum(torch.minimum(across, 1 - across) * cell_u, torch.minimum(up, 1 - up) * cell_v)
    brightness = 1 + field[Look.CELL_TINT] * (2 * tint - 1)
    book = 0.75 + 0.5 * tint
    use_palette = chance < field[Look.CELL_PALETTE]
    colour = [_select(use_palette, book * p, a * brightness)
              for p, a in zip(from_palette((pick * palette.shape[0]).long()), albedo)]
    # a cell's content ends at a random height (books); above it, the shadowed back
    fill = field[Look.CELL_FILL]
    back = up > fill + (1 - fill) * height
    grout = (edge < field[Look.GROUT_WIDTH]) * field[Look.GROUT_MIX]
    colour = [_select(back, s * 0.35, c) for s, c in zip(second, colour)]
    colour = [c + (s - c) * grout for s, c in zip(second, colour)]

    # two octaves of smooth noise: they vary the brightness (plaster, carpet, wear), warp the
    # wood grain and blend the colours of pictures
    frequency = field[Look.NOISE_FREQ]
    coarse, warp = _value_noise(u * frequency, v * frequency, seed)
    fine, blend = _value_noise(u * frequency * 2.03, v * frequency * 2.03, seed ^ 0x3C6EF372)

    # a picture inside the frame of the first cell: three palette colours blended by the noise
    choice = mix32(seed ^ 0x68E31DA4)
    first, middle, last = (from_palette((((choice >> shift) & 0xFF) % palette.shape[0]).long()) for shift in (0, 8, 16))
    blend = blend * blend
    show = field[Look.PICTURE] * (edge >= field[Look.GROUT_WIDTH])
    painting = [a + (b - a) * coarse for a, b in zip(first, middle)]
    painting = [p + (c - p) * blend for p, c in zip(painting, last)]
    colour = [c + (p - c) * show for p, c in zip(painting, colour)]

    patterned = (field[Look.PATTERN_FACE] < 0) | (field[Look.PATTERN_FACE] == face)
    colour = [_select(patterned, c, a) for c, a in zip(colour, albedo)]

    # wood grain (or fabric folds): wavy lines, a random phase per cell
    across_grain = _select(field[Look.GRAIN_AXIS] > 0.5, v, u)
    grain = torch.sin(2 * math.pi * (field[Look.GRAIN_FREQ] * across_grain + 1.5 * warp + tint))
    shade = 1 + field[Look.GRAIN_AMP] * grain + field[Look.NOISE_AMP] * ((2 * coarse + fine) / 1.5 - 1)
    return torch.stack([c * shade for c in colour], 1).clamp(0.0, 1.0)


