"""Lights and shading: placing lights, shadow and occlusion rays, direct and ambient light."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .hashing import Draws, hash_uniform, pixel_hash
from .materials import Look
from .raycast import _EPS, Surface, _blocked, _unit
from .rooms import _Room, _take
from .scene import Scene, constant

_LIGHT_COLOURS = [(1.0, 0.8, 0.58), (1.0, 0.88, 0.72), (1.0, 0.95, 0.88), (0.92, 0.96, 1.0)]  # warm .. cool


def place_lights(d: Draws, room: _Room, panel_on: Tensor, panel_centre: Tensor, lamps: dict) -> dict[str, Tensor]:
    """Two point lights and the ambient light: the main ceiling light, and the daylight from
    a window, a lit lamp or a second ceiling light."""
    device = d.device
    colours = constant(_LIGHT_COLOURS, device)
    technical = (room.type == 2) | (room.type == 3) | (room.type == 5)
    odds = torch.where(technical[:, None], constant([0.1, 0.2, 0.4, 0.3], device),
                       constant([0.4, 0.35, 0.2, 0.05], device))
    main_colour = colours[d.choice(odds)]
    area = room.width * room.depth
    strength = d.uniform(2.5, 6.0) * torch.sqrt(area / 16)
    window = room.windows[0]
    second_window = room.windows[1]
    use_second = ~window["on"] & second_window["on"]
    chosen = {k: torch.where(use_second, second_window[k], window[k]) for k in ("side", "at", "width", "sill", "top")}
    daylight = room.day & (window["on"] | second_window["on"])
    strength = strength * torch.where(daylight & d.chance(0.6), 0.15, 1.0)
    main_pos = torch.where(panel_on[:, None], panel_centre - constant([0.0, 0.15, 0.0], device),
                           lamps["fixture"])

    middle = (chosen["sill"] + chosen["top"]) / 2
    in_front = room.wall_box(chosen["side"], chosen["at"], chosen["at"], -0.5, -0.5, middle, middle)[:, :3]
    floor_pos, floor_lit = lamps["floor"]
    table_pos, table_lit = lamps["table"]
    ceiling_pos = torch.stack([room.width * d.uniform(0.2, 0.8), room.height - 0.15,
                               room.depth * d.uniform(0.2, 0.8)], -1)
    options_pos = torch.stack([in_front, floor_pos, table_pos, ceiling_pos], 1)
    options_rgb = torch.stack([
        constant([0.88, 0.94, 1.05], device)
        * (d.uniform(4.0, 12.0) * chosen["width"] * (chosen["top"] - chosen["sill"]))[:, None],
        colours[0] * d.uniform(0.8, 2.5)[:, None],
        colours[0] * d.uniform(0.4, 1.2)[:, None],
        main_colour * (strength * d.uniform(0.3, 0.8))[:, None]], 1)
    options_radius = torch.stack([torch.minimum(chosen["width"], chosen["top"] - chosen["sill"]) * 0.4,
                                  torch.full_like(area, 0.08), torch.full_like(area, 0.06), d.uniform(0.1, 0.3)], -1)
    options_spot = torch.stack([torch.zeros_like(area), torch.zeros_like(area), torch.zeros_like(area),
                                d.uniform(0.5, 2.0)], -1)
    second = torch.where(daylight, 0, torch.where(floor_lit, 1, torch.where(table_lit, 2, 3)))
    pos = torch.stack([main_pos, _take(options_pos, second)], 1)
    rgb = torch.stack([main_colour * strength[:, None], _take(options_rgb, second)], 1)
    ambient = d.uniform(0.04, 0.16)[:, None] * rgb.sum(1) / 4 / torch.sqrt(area / 16)[:, None]
    return {"pos": pos, "rgb": rgb, "ambient": ambient,
            "radius": torch.stack([d.uniform(0.1, 0.3), _take(options_radius, second)], -1),
            "spot": torch.stack([d.uniform(0.5, 2.0), _take(options_spot, second)], -1)}


# ----------------------------------------------------------------------------- lighting



def _unit_vectors(h1: Tensor, h2: Tensor) -> Tensor:
    """Uniformly random unit vectors (..., 3) from two hashes."""
    a, b = hash_uniform(h1), hash_uniform(h2)
    z = 2 * a - 1
    ring = torch.sqrt((1 - z * z).clamp(min=0))
    angle = 2 * math.pi * b
    return torch.stack([ring * torch.cos(angle), z, ring * torch.sin(angle)], -1)


def light_visibility(scene: Scene, surface: Surface, height: int, width: int, step: int) -> Tensor:
    """(B, L + 1, P) in [0, 1]: how much of each light every pixel sees and (last) how open
    its surroundings are (ambient occlusion).

    Shadow rays start from every step-th pixel of every step-th row, aimed at a random point of
    the lower half of each light's sphere (soft shadows), plus one ray 0.4 m long in a random direction around
    the normal. The coarse result is brought back to every pixel by depth-aware bilinear
    interpolation, so shadows do not bleed across object edges.
    """
    batch, lights = scene.light_pos.shape[:2]
    rows, columns = -(-height // step), -(-width // step)
    sample_v = (torch.arange(rows, device=scene.device) * step + step // 2).clamp(max=height - 1)
    sample_u = (torch.arange(columns, device=scene.device) * step + step // 2).clamp(max=width - 1)
    samples = (sample_v[:, None] * width + sample_u[None, :]).reshape(-1)
    # start just off the surface, so a ray does not hit the face it starts on
    start = (surface.point + 2e-3 * surface.normal)[:, :, samples].transpose(1, 2)
    normal = surface.normal[:, :, samples].transpose(1, 2)
    seen = []
    for light in range(lights + 1):
        jitter = _unit_vectors(pixel_hash(scene.key, 2 * light + 101, samples.shape[0]),
                               pixel_hash(scene.key, 2 * light + 102, samples.shape[0]))
        if light < lights:  # lights glow below their centre (ceilings and lamp shades are above)
            jitter = torch.cat([jitter[..., :1], -jitter[..., 1:2].abs(), jitter[..., 2:]], -1)
            target = scene.light_pos[:, light, None] + scene.light_radius[:, light, None, None] * jitter
        else:  # cosine-weighted around the normal: the unit sphere set on the normal's tip
            target = start + 0.4 * _unit(normal + jitter, dim=-1)
        seen.append(1.0 - _blocked(scene, start, target).float())
    coarse = torch.stack(seen, 1).view(batch, lights + 1, rows, columns)
    log_depth = torch.log(surface.depth.clamp(min=_EPS)).view(batch, height, width)
    coarse_depth = log_depth.index_select(1, sample_v).index_select(2, sample_u)

    # one ray per sample is noisy: average each with its neighbours on the same surface
    # (a 5 x 5 window, neighbours weighted down the more their depth differs)
    padded = F.pad(coarse, (2, 2, 2, 2), mode="replicate")
    padded_depth = F.pad(coarse_depth[:, None], (2, 2, 2, 2), mode="replicate")[:, 0]
    total = weights = 0.0
    for dy in range(5):
        for dx in range(5):
            near = padded_depth[:, dy:dy + rows, dx:dx + columns]
            weight = torch.exp(-((near - coarse_depth) / 0.05) ** 2)[:, None]
            total = total + weight * padded[:, :, dy:dy + rows, dx:dx + columns]
            weights = weights + weight
    coarse = total / weights

    # depth-aware bilinear upsampling: the four nearest samples, each weighted down the more
    # its depth differs from the pixel's
    y = ((torch.arange(height, device=scene.device) - step // 2) / step).clamp(0, rows - 1)
    x = ((torch.arange(width, device=scene.device) - step // 2) / step).clamp(0, columns - 1)
    y0, x0 = y.long().clamp(max=rows - 2), x.long().clamp(max=columns - 2)
    wy, wx = (y - y0)[:, None], (x - x0)[None, :]
    total = weights = 0.0
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        near = coarse_depth.index_select(1, y0 + dy).index_select(2, x0 + dx)
        weight = (wy if dy else 1 - wy) * (wx if dx else 1 - wx) + 1e-3
        weight = weight * torch.exp(-((near - log_depth) / 0.03) ** 2) + 1e-8
        total = total + weight[:, None] * coarse.index_select(2, y0 + dy).index_select(3, x0 + dx)
        weights = weights + weight[:, None]
    return (total / weights).flatten(2)


BOUNCE = 0.8  # share of the radiosity estimate used: the camera sees the lit part of the room more often


def shade(scene: Scene, surface: Surface, albedo: Tensor, visibility: Tensor) -> Tensor:
    """Radiance (B, 3, P), linear: each light's diffuse and specular light where it is
    visible, light bounced around the room and ambient light (both occluded), and emission.
    albedo: (B, 3, P); visibility: (B, L + 1, P).

    Bounce light is one radiosity step in the mean, the way light fills a closed room: the
    room reflects the mean of what its surfaces receive directly times their mean albedo
    rho, again and again, so every surface gets rho / (1 - rho) times the mean direct light
    (in that mean's colour), less in corners and under furniture (ambient occlusion). The
    mean is over what the camera sees, which stands in for the whole room.
    """
    normal, point, look = surface.normal, surface.point, surface.look
    view = -_unit(surface.direction)
    open_around = 0.4 + 0.6 * visibility[:, -1]
    diffuse = torch.zeros_like(albedo)
    specular = torch.zeros_like(albedo)
    gloss, shininess = look[:, Look.GLOSS], look[:, Look.SHININESS]
    for light in range(scene.light_pos.shape[1]):
        to_light = scene.light_pos[:, light, :, None] - point
        distance2 = (to_light * to_light).sum(1)
        l_dir = to_light * torch.rsqrt(distance2)[:, None]
        radius = scene.light_radius[:, light, None]
        # a ceiling light shines downwards: a cosine lobe, with a little light sideways
        spot = 0.15 + 0.85 * l_dir[:, 1].clamp(min=0) ** scene.light_spot[:, light, None]
        cosine = (normal * l_dir).sum(1).clamp(min=0)
        arriving = visibility[:, light] * spot / (distance2 + radius * radius) * cosine
        half = _unit(l_dir + view)
        highlight = (normal * half).sum(1).clamp(min=0) ** shininess
        colour = scene.light_rgb[:, light, :, None]
        diffuse = diffuse + colour * arriving[:, None]
        specular = specular + colour * (arriving * gloss * highlight * (shininess + 8) / 8)[:, None]
    mean_albedo = albedo.mean(2, keepdim=True).clamp(max=0.8)
    bounced = (albedo * diffuse).mean(2, keepdim=True) / (1 - mean_albedo)
    ambient = scene.ambient[:, :, None] * (1 + 0.15 * normal[:, 1, None])
    diffuse = diffuse + (BOUNCE * bounced + ambient) * open_around[:, None]
    emission = look[:, Look.EMISSION, None] * albedo
    return albedo * diffuse + specular + emission


