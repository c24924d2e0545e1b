"""Synthetic indoor RGB-D frames: a batched ray caster over the scenes of `scenes.py`.

The only training data this project can have: rooms rendered with exact metric depth and a
camera and depth sensor made to look like NYU Depth v2's hand-held Kinect.

Camera: a pinhole with the Kinect RGB intrinsics (`nyu_intrinsics`, NYU's 640x480 values scaled
to the image). In camera coordinates x points right, y down and z along the optical axis; the
ray of pixel (u, v) (column, row; integer values are pixel centres) is
((u - cx) / fx, (v - cy) / fy, 1), turned into the world (y up) by the camera's yaw (about the
world y axis), pitch (positive looks up) and roll. Because that ray has z = 1, the ray
parameter t of a hit is its depth: the z distance along the optical axis, as Kinect and NYU
store it.

Rendering a batch (`render`, in stages that `Stages.compiled()` can compile one by one):

1. Camera rays (`trace`): one per pixel, intersected with the room shell (the exit from the
   union of the free-space boxes), the boxes (slab test, in the frame of their group) and
   the cylinders. To keep the work per pixel small, the screen is cut into 16 x 16 tiles and
   only (tile, object) pairs whose object's projection can reach the tile are tested: each
   frame tests a fixed budget of such pairs, nearest the camera first; a depth bound from
   the pairs left out proves each hit exact (the rare unproven pixel becomes a depth hole).
   The nearest hit gives the exact depth and the surface.
2. Shading: a procedural texture from the surface coordinates and the surface's look (cells
   for tiles, planks, drawers, book spines and window panes, wood grain, noise, pictures);
   direct light from each point light, with shadow rays aimed at random points of the light
   (soft shadows) and one short random ray for ambient occlusion, cast from every 4th pixel
   of every 4th row (at 320 x 240) against the same boxes, cylinders and room shell by the
   same intersection code, then smoothed and brought back to every pixel without crossing
   depth edges; Blinn-Phong highlights; emission (windows, lamp shades, screens).
3. Camera: optical blur, auto exposure with a random bias, vignetting, white balance and
   colour cast, shot noise, a filmic tone curve and JPEG-like losses (4:2:0 chroma and
   8 x 8 DCT quantisation).
4. Depth sensor: Kinect-like holes (depth 0): a border band where the depth camera sees
   nothing, the projector's shadow beside near objects, ragged object edges, glass, black and
   glossy surfaces, grazing angles, readings nearer than MIN_DEPTH or beyond the frame's range
   (at most MAX_DEPTH), and small random speckles. Depth itself is never perturbed: where
   there is a reading, it is exact.

Everything is batched tensor code, the same on CPU and CUDA, laid out for eager CPU speed
too: per-pixel values are contiguous (B, P) rows (vectors channel-first), hashes int32, and
selections arithmetic rather than torch.where. On a GPU and under torch.compile every shape is
fixed and nothing waits for the device (no `.item()`); eager on a CPU, where that costs
nothing, the lists of objects to test are cut to what the frames of a pass use
(`_nearest_pairs`, `_used_first`), with the same result. The per-frame parameters come from
counter-based hashes, so frame k of a stream is the same alone or in any batch (up to float
rounding of a few transcendental functions).

Public: `nyu_intrinsics`, `trace`, `render`, `Frames`, `Sensor` (`random_sensor`,
`ideal_sensor`), `SyntheticFrames` (a FrameSource), the "synthetic" dataset
(`open_dataset("synthetic", split=..., n=...)`) and `write_folder`. Hand-made scenes:
`scenes.simple_scene`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import FRAME_HEIGHT, FRAME_WIDTH, Sample, make_sample, register_dataset
from ..geometry import scale_intrinsics
from .nyu import NYU_HEIGHT, NYU_INTRINSICS, NYU_WIDTH
from .scenes import (
    FACES, VOID, Draws, Look, Palettes, Scene, constant, frame_keys, hash_uniform, mix32, random_scenes,
    rotate_y,
)

MIN_DEPTH = 0.4  # metres: nearer readings are holes, as for a Kinect
MAX_DEPTH = 10.0  # metres: no valid reading is further (each frame draws its own range <= this)
FAR = 30.0  # metres: no ray travels further than this before it leaves the rooms
_EPS = 1e-4  # ray parameter below which a hit is the ray's own starting surface
_MISS = 1e9  # ray parameter standing for "no hit"
_M32 = 0xFFFFFFFF  # the low 32 bits

SPLITS = ("train", "val", "test")
MIN_SIDE, MAX_SIDE = 8, 4096  # pixels: the frame sizes the renderer accepts


# ----------------------------------------------------------------------------- camera

def nyu_intrinsics(height: int = NYU_HEIGHT, width: int = NYU_WIDTH) -> tuple[float, float, float, float]:
    """NYU's Kinect RGB intrinsics (fx, fy, cx, cy), in pixels of a height x width image."""
    return scale_intrinsics(NYU_INTRINSICS, (NYU_WIDTH, NYU_HEIGHT), (width, height))


def _pixel_grid(height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Row and column indices (H * W,) of every pixel, row-major."""
    rows = torch.arange(height, device=device).repeat_interleave(width)
    return rows, torch.arange(width, device=device).repeat(height)


def camera_rays(
    scene: Scene, rows: Tensor, columns: Tensor, intrinsics: tuple[float, float, float, float]
) -> tuple[Tensor, Tensor]:
    """World rays through pixels (rows, columns (P,) indices): origin (B, 1, 3) and direction
    (B, P, 3).

    Directions are not normalised: their camera-frame z is 1, so a hit's ray parameter t is
    its depth along the optical axis.
    """
    fx, fy, cx, cy = intrinsics
    x_cam = ((columns.float() - cx) / fx)[None, :, None]  # (1, P, 1)
    y_cam = ((rows.float() - cy) / fy)[None, :, None]
    right, down, forward = camera_axes(scene.camera_ypr)
    direction = x_cam * right[:, None] + y_cam * down[:, None] + forward[:, None]
    return scene.camera_pos[:, None, :], direction


def camera_axes(ypr: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The camera's right, down and forward unit vectors in the world, each (B, 3).

    Yaw 0 looks along world +z (right is then world -x, a right-handed camera); positive
    yaw turns towards +x, positive pitch looks up, positive roll turns the camera clockwise
    about its optical axis (its right side dips).
    """
    yaw, pitch, roll = ypr.unbind(-1)
    zero = torch.zeros_like(yaw)
    forward = torch.stack([torch.sin(yaw) * torch.cos(pitch), torch.sin(pitch),
                           torch.cos(yaw) * torch.cos(pitch)], -1)
    level_right = torch.stack([-torch.cos(yaw), zero, torch.sin(yaw)], -1)
    up = torch.linalg.cross(level_right, forward)
    cos_r, sin_r = torch.cos(roll)[:, None], torch.sin(roll)[:, None]
    right = cos_r * level_right - sin_r * up
    down = -sin_r * level_right - cos_r * up
    return right, down, forward


# ----------------------------------------------------------------------------- intersection
#
# Rays come as origin (B, 1, 3) (shared by all rays of a frame) or (B, P, 3), and direction
# (B, P, 3); a hit is the ray parameter t with point = origin + t * direction. Per-object
# work is laid out (B, objects, P), so objects are tested against rays in one broadcast
# expression. Camera rays test each object only in the screen tiles it can appear in and keep
# the nearest hit (`_camera_hits`); shadow rays, few, test every object and stop at any hit.

SPACE_CHAIN = 2  # spaces a ray can pass into beyond the ones it starts in (door passage, room beyond)
TILE = 16  # pixels per side of the screen tiles camera rays are culled by
BOX_PAIRS = 4.0  # (tile, box) pairs a frame tests, per tile of the frame (random rooms see 1.2 on average)
CYLINDER_PAIRS = 0.5  # (tile, cylinder) pairs a frame tests, per tile (random rooms: 0.04)


def _slab_interval(origin: Tensor, direction: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Where rays are inside boxes: entry and exit parameters, each (B, K, P).

    origin (B, 1 or P, 3); direction (B, P, 3); lo, hi (B, K, 3) box corners. A box is the
    intersection of three slabs lo_a <= x_a <= hi_a; the ray is inside slab a between
    (lo_a - o_a) / d_a and (hi_a - o_a) / d_a. Empty where entry > exit.

    Each of those is computed as lo_a / d_a - o_a / d_a in one fused addcmul: on a CPU, the
    two broadcasting ops of (lo_a - o_a) * (1 / d_a) are 30x slower. 1 / d_a is clamped to
    +-1e30, so a ray parallel to a slab gets huge parameters of the right sign instead of inf
    (inf - inf would be NaN).
    """
    entry = exit = None
    for axis in range(3):
        inv = (1.0 / direction[..., axis]).clamp(-1e30, 1e30)[:, None]  # (B, 1, P)
        start = -origin[:, None, :, axis] * inv  # (B, 1, P): t where the ray crosses x_a = 0
        t1 = torch.addcmul(start, lo[:, :, axis, None], inv)
        t2 = torch.addcmul(start, hi[:, :, axis, None], inv)
        near, far = torch.minimum(t1, t2), torch.maximum(t1, t2)
        entry = near if entry is None else torch.maximum(entry, near)
        exit = far if exit is None else torch.minimum(exit, far)
    return entry, exit


def _cylinder_interval(origin: Tensor, direction: Tensor, cylinders: Tensor) -> tuple[Tensor, Tensor]:
    """Entry and exit parameters (B, C, P) of rays through vertical cylinders (B, C, 5).

    A capped cylinder is the intersection of an infinite vertical cylinder (a quadratic in t
    in the x-z plane) with the slab bottom <= y <= top.
    """
    cx, cz, radius, bottom, top = (c[..., None] for c in cylinders.unbind(-1))  # (B, C, 1)
    ox = origin[:, None, :, 0] - cx  # (B, C, P or 1)
    oz = origin[:, None, :, 2] - cz
    dx, dy, dz = (direction[:, None, :, axis] for axis in range(3))  # (B, 1, P)
    a = dx * dx + dz * dz
    half_b = ox * dx + oz * dz
    c = ox * ox + oz * oz - radius * radius
    discriminant = half_b * half_b - a * c
    root = torch.sqrt(discriminant.clamp(min=0))
    inv_a = 1.0 / a
    entry = (-half_b - root) * inv_a
    exit = torch.where(discriminant < 0, -_MISS, (-half_b + root) * inv_a)  # the ray misses the circle
    oy = origin[:, None, :, 1]
    t1, t2 = (bottom - oy) / dy, (top - oy) / dy
    return torch.maximum(entry, torch.minimum(t1, t2)), torch.minimum(exit, torch.maximum(t1, t2))


def _hit(entry: Tensor, exit: Tensor) -> Tensor:
    """The ray parameter of the hit from entry and exit parameters: entry where the ray enters
    the object beyond _EPS, else _MISS (also for NaN: a ray exactly parallel to, and in the
    plane of, a face counts as a miss)."""
    entry = entry.clamp(min=_EPS)
    return torch.where(entry <= exit, entry, _MISS)


def _room_exit(origin: Tensor, direction: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Where rays leave the union of the free-space boxes, for rays starting inside it.

    Returns t (B, P), capped at FAR, and the index (B, P) of the space whose face the ray
    leaves through. Starting from the spaces that contain the origin, the exit is pushed out
    to the exit of every space the ray enters before leaving the part already known; each
    round reaches one space further, SPACE_CHAIN rounds a chain like room, door passage,
    room beyond.
    """
    entry, exit = _slab_interval(origin, direction, lo, hi)  # finite (see _slab_interval)
    # masks multiply rather than select: several times faster on a CPU, and exact here
    reach = (exit * ((entry <= 0) & (exit > 0))).amax(1)
    for _ in range(min(SPACE_CHAIN, lo.shape[1] - 1)):
        joined = (entry <= reach[:, None] + 1e-5) & (exit > reach[:, None])
        reach = torch.maximum(reach, (exit * joined).amax(1))
    reach = torch.nan_to_num(reach, nan=FAR).clamp(_EPS, FAR)
    leaving = (entry <= reach[:, None] + 1e-5) & ((exit - reach[:, None]).abs() <= 1e-4 * reach[:, None] + 1e-5)
    # the first space left through (space 0 if none matches): the largest of S - index
    spaces = lo.shape[1]
    countdown = constant([[float(spaces - s)] for s in range(spaces)], lo.device)
    return reach, ((spaces - (leaving * countdown).amax(1)) % spaces).long()


def _turn(vectors: Tensor, yaw: Tensor) -> Tensor:
    """Vectors (..., 3) turned about the vertical axis by yaw (broadcast to vectors[..., 0]),
    as scenes.rotate_y: a group's frame to the world by +yaw, the world to it by -yaw."""
    x, z = rotate_y(vectors[..., 0], vectors[..., 2], torch.cos(yaw), torch.sin(yaw))
    return torch.stack([x, vectors[..., 1], z], -1)


def _groups(scene: Scene) -> list[tuple[slice, Tensor, Tensor]]:
    """The box groups: (slots, yaw (B,), pivot (B, 3)) each."""
    groups, start = [], 0
    for group, size in enumerate(scene.group_sizes):
        groups.append((slice(start, start + size), scene.group_yaw[:, group], scene.group_pivot[:, group]))
        start += size
    return groups


def _object_intervals(
    scene: Scene, origin: Tensor, direction: Tensor, used_only: bool = False,
) -> list[tuple[Tensor, Tensor]]:
    """Entry and exit parameters (B, K, P) of rays (origin (B, 1 or P, 3), direction
    (B, P, 3)) through every box group and the cylinders: one (entry, exit) per group, then
    the cylinders'. Objects keep their slot order, so index k of a group is its k-th slot.

    used_only: on a CPU, test only as many slots of each group as the busiest frame uses,
    those first (for questions that do not need to know which object was hit).
    """
    intervals = []
    for slots, yaw, pivot in _groups(scene):
        o = _turn(origin - pivot[:, None], -yaw[:, None])
        d = _turn(direction, -yaw[:, None])
        lo, hi = scene.box_lo[:, slots], scene.box_hi[:, slots]
        if used_only:
            lo, hi = _used_first(torch.cat([lo, hi], -1), lo[..., 1] < VOID - 1)[0].split(3, -1)
        intervals.append(_slab_interval(o, d, lo, hi))
    cylinders = scene.cylinders
    if used_only:
        cylinders = _used_first(cylinders, cylinders[..., 3] < VOID - 1)[0]
    return intervals + [_cylinder_interval(origin, direction, cylinders)]


def _used_first(table: Tensor, used: Tensor) -> tuple[Tensor, Tensor]:
    """A per-slot table (B, K, C) with the rows frames use (used: (B, K) bool) moved first and
    cut to the most that any frame uses, and the slot (B, K') each row came from. About half
    the slots are parked, and testing them costs as much as testing real objects. Eager CPU
    only, as in _nearest_pairs: elsewhere the table stays whole."""
    if table.device.type != "cpu" or torch.compiler.is_compiling():
        return table, torch.arange(table.shape[1], device=table.device).expand(table.shape[0], -1)
    keep = max(1, int(used.sum(1).max()))
    order = torch.argsort(used.logical_not().to(torch.uint8), dim=1, stable=True)[:, :keep]
    return torch.gather(table, 1, order[..., None].expand(-1, -1, table.shape[2])), order


def _used_spaces(scene: Scene) -> tuple[Tensor, Tensor, Tensor]:
    """The spaces some frame uses: lo, hi (B, S', 3) and their slots (B, S') (see _used_first)."""
    spaces, slots = _used_first(torch.cat([scene.space_lo, scene.space_hi], -1), scene.space_lo[..., 1] < VOID - 1)
    return *spaces.split(3, -1), slots


def _slot_groups(scene: Scene) -> Tensor:
    """(N,) int64: the group of each box slot."""
    return constant([g for g, size in enumerate(scene.group_sizes) for _ in range(size)], scene.device, torch.int64)


def _blocked(scene: Scene, origin: Tensor, target: Tensor) -> Tensor:
    """(B, P) bool: does anything lie on the segments from origin to target (both (B, P, 3))?

    The same intersection code as for camera rays, with direction = target - origin, so the
    segment is t in (0, 1); the room shell blocks too (a light in the next room).
    """
    direction = target - origin
    room, _ = _room_exit(origin, direction, *_used_spaces(scene)[:2])
    blocked = room < 1.0
    for entry, exit in _object_intervals(scene, origin, direction, used_only=True):
        entry = entry.clamp(min=_EPS)  # any hit will do: cheaper than finding the nearest
        blocked |= ((entry <= exit) & (entry < 1.0)).any(1)
    return blocked


def _corners(lo: Tensor, hi: Tensor) -> Tensor:
    """The 8 corners (..., 8, 3) of boxes lo, hi (..., 3)."""
    pick = constant([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], lo.device, torch.bool)
    return torch.where(pick, hi[..., None, :], lo[..., None, :])


_NEAR = 0.02  # metres: the near plane objects are clipped at for culling
_EDGES = [(i, i | bit) for bit in (1, 2, 4) for i in range(8) if not i & bit]  # the 12 edges of _corners


def _tile_keys(
    scene: Scene, corners: Tensor, usable: Tensor, tiles: tuple[int, int], intrinsics: tuple[float, ...],
) -> Tensor:
    """(B, T, M): for every screen tile (row-major) and object, the object's nearest depth if
    it can appear in the tile, else _MISS.

    corners: (B, M, 8, 3) world corners of the objects' bounding boxes; usable: (B, M) bool.
    An object can only appear inside the rectangle around the projection of its box's part
    beyond the near plane (the corners there, and where edges cross the plane), and none of
    its points is nearer (in depth) than its nearest corner.
    """
    fx, fy, cx, cy = intrinsics
    rows, columns = tiles
    axes = torch.stack(camera_axes(scene.camera_ypr), 1)  # (B, 3, 3): right, down, forward
    camera = torch.einsum("bmcj,bij->bmci", corners - scene.camera_pos[:, None, None], axes)  # (B, M, 8, 3)
    a, b = camera[:, :, [e[0] for e in _EDGES]], camera[:, :, [e[1] for e in _EDGES]]
    crossing = (a[..., 2] - _NEAR) * (b[..., 2] - _NEAR) < 0
    share = ((_NEAR - a[..., 2]) / torch.where(crossing, b[..., 2] - a[..., 2], 1.0))[..., None]
    points = torch.cat([camera, a + share * (b - a)], 2)  # (B, M, 20, 3)
    valid = torch.cat([camera[..., 2] >= _NEAR, crossing], 2)
    z = points[..., 2].clamp(min=_NEAR)
    u, v = fx * points[..., 0] / z + cx, fy * points[..., 1] / z + cy
    u0 = torch.where(valid, u, _MISS).amin(-1)[..., None]
    u1 = torch.where(valid, u, -_MISS).amax(-1)[..., None]
    v0 = torch.where(valid, v, _MISS).amin(-1)[..., None]
    v1 = torch.where(valid, v, -_MISS).amax(-1)[..., None]
    left = torch.arange(columns, device=z.device, dtype=torch.float32) * TILE  # pixel centres of tiles
    top = torch.arange(rows, device=z.device, dtype=torch.float32) * TILE
    across = (u1 >= left) & (u0 <= left + TILE - 1)  # (B, M, columns)
    along = (v1 >= top) & (v0 <= top + TILE - 1)  # (B, M, rows)
    seen = (along[..., :, None] & across[..., None, :]).flatten(2) & (usable & valid.any(-1))[..., None]
    nearest_corner = camera[..., 2].amin(-1).clamp(min=0)[..., None]
    return torch.where(seen, nearest_corner, _MISS).transpose(1, 2)


def _nearest_pairs(keys: Tensor, per_tile: float) -> tuple[Tensor, Tensor, Tensor]:
    """The (tile, object) pairs a frame tests: its per_tile * T pairs nearest the camera.

    keys: (B, T, M) from _tile_keys. Returns the pairs' tiles (B, Q) and objects (B, Q), and
    per tile the depth bound (B, T) of the nearest pair left out (_MISS if none): a pixel
    whose hit is no deeper than that is exact. One budget per frame, not per tile, because
    objects crowd into a few tiles: most tiles see none or one.

    On a CPU (eager) the budget shrinks to the most pairs any frame of the batch can see
    (random rooms use about a third of it on average): the same result for less work. GPUs and compiled graphs keep the
    fixed budget: the shapes would depend on the data.
    """
    batch, tiles, objects = keys.shape
    flat = keys.flatten(1)
    budget = min(round(per_tile * tiles), flat.shape[1])
    if keys.device.type == "cpu" and not torch.compiler.is_compiling():
        budget = max(1, min(budget, int((flat < _MISS).sum(1).max())))
    pairs = torch.topk(flat, budget, dim=1, largest=False, sorted=False).indices
    left_out = flat.scatter(1, pairs, _MISS).view(batch, tiles, objects).amin(-1)
    return pairs // objects, pairs % objects, left_out


def _pack(t: Tensor, ids: Tensor) -> Tensor:
    """Hits as int64 that order as their t (>= 0, float32): t's bits high, the surface id low,
    so one min reduction finds both the nearest hit and what it hit."""
    return (t.view(torch.int32).long() << 32) | ids


def _camera_hits(
    scene: Scene, height: int, width: int, intrinsics: tuple[float, float, float, float],
) -> tuple[Tensor, Tensor, Tensor]:
    """The nearest surface along every camera ray: depth (B, P), surface id (B, P) and whether
    the culling could prove it exact (B, P), pixels row-major.

    Surface ids: box slot k is k, cylinder j is N + j, face f of space s is N + C + 6 s + f.
    Every ray tests the room shell. Boxes and cylinders are tested by screen tiles of
    TILE x TILE pixels: each frame tests its BOX_PAIRS * T nearest (tile, box) pairs whose box
    can appear in the tile, and its CYLINDER_PAIRS * T nearest (tile, cylinder) pairs.
    """
    batch, device = scene.batch, scene.device
    n_box, n_cyl = scene.box_lo.shape[1], scene.cylinders.shape[1]
    rows, columns = -(-height // TILE), -(-width // TILE)
    tiles, tile_pixels = rows * columns, TILE * TILE
    # camera rays in tile order: (B, T * TILE * TILE), row-major inside each tile
    offsets = torch.arange(TILE, device=device)
    v = (torch.arange(rows, device=device)[:, None, None, None] * TILE + offsets[None, None, :, None])
    u = (torch.arange(columns, device=device)[None, :, None, None] * TILE + offsets[None, None, None, :])
    v, u = torch.broadcast_tensors(v, u)  # (rows, columns, TILE, TILE)
    origin, direction = camera_rays(scene, v.reshape(-1), u.reshape(-1), intrinsics)
    space_lo, space_hi, space_slots = _used_spaces(scene)
    t_room, space = _room_exit(origin, direction, space_lo, space_hi)
    space = torch.gather(space_slots, 1, space)
    nearest = _pack(t_room, n_box + n_cyl + space * FACES)  # the face is settled later
    by_tile = direction.view(batch, tiles, tile_pixels, 3)

    def test(tile: Tensor, t_of: Callable[[Tensor], tuple[Tensor, Tensor]], ids: Tensor) -> None:
        """Merge the hits of pairs (tiles (B, Q), surface ids (B, Q)); t_of maps their rays
        (B * Q, TILE * TILE, 3) to entry and exit (B * Q, 1, TILE * TILE)."""
        nonlocal nearest
        rays = torch.gather(by_tile, 1, tile[..., None, None].expand(-1, -1, tile_pixels, 3))
        t = _hit(*t_of(rays.flatten(0, 1))).view(batch, -1)
        pixel = (tile[..., None] * tile_pixels + torch.arange(tile_pixels, device=device)).view(batch, -1)
        nearest = nearest.scatter_reduce(1, pixel, _pack(t, ids.repeat_interleave(tile_pixels, 1)), "amin")

    # boxes, each in the frame of its group
    group = _slot_groups(scene)
    yaw, pivot = scene.group_yaw[:, group], scene.group_pivot[:, group]  # (B, N), (B, N, 3)
    corners = _turn(_corners(scene.box_lo, scene.box_hi), yaw[..., None]) + pivot[:, :, None]
    keys = _tile_keys(scene, corners, scene.box_lo[..., 1] < VOID - 1, (rows, columns), intrinsics)
    tile, box, bound = _nearest_pairs(keys, BOX_PAIRS)

    def box_interval(rays: Tensor) -> tuple[Tensor, Tensor]:
        def per_pair(table: Tensor) -> Tensor:  # (B, N, ...) -> (B * Q, 1, ...)
            return torch.gather(table, 1, box.view(batch, -1, *[1] * (table.dim() - 2)).expand(
                -1, -1, *table.shape[2:])).flatten(0, 1)[:, None]
        turn = -per_pair(yaw)
        local_origin = _turn(origin.repeat_interleave(box.shape[1], 0) - per_pair(pivot), turn)
        return _slab_interval(local_origin, _turn(rays, turn), per_pair(scene.box_lo), per_pair(scene.box_hi))

    test(tile, box_interval, box)

    # cylinders (vertical: the same in every group's frame)
    cx, cz, radius, bottom, top = scene.cylinders.unbind(-1)
    lo = torch.stack([cx - radius, bottom, cz - radius], -1)
    hi = torch.stack([cx + radius, top, cz + radius], -1)
    keys = _tile_keys(scene, _corners(lo, hi), bottom < VOID - 1, (rows, columns), intrinsics)
    tile, cylinder, cylinder_bound = _nearest_pairs(keys, CYLINDER_PAIRS)
    bound = torch.minimum(bound, cylinder_bound)
    pair_cylinders = torch.gather(scene.cylinders, 1, cylinder[..., None].expand(-1, -1, 5)).flatten(0, 1)[:, None]
    test(tile, lambda rays: _cylinder_interval(origin.repeat_interleave(cylinder.shape[1], 0), rays, pair_cylinders),
         cylinder + n_box)

    depth = (nearest >> 32).int().view(torch.float32)
    certain = depth.view(batch, tiles, -1) <= bound[..., None]

    def to_rows(values: Tensor) -> Tensor:  # tile order -> row-major (B, H * W)
        values = values.reshape(batch, rows, columns, TILE, TILE).transpose(2, 3)
        return values.reshape(batch, rows * TILE, columns * TILE)[:, :height, :width].reshape(batch, -1)

    return to_rows(depth), to_rows(nearest & _M32), to_rows(certain)


@dataclass
class Surface:
    """What the camera rays hit, per pixel (P = H * W, row-major). Vectors are channel-first
    (B, C, P), so that each component is a contiguous row: elementwise work on CPU is many
    times faster on those than on (B, P, C) components.

    depth: (B, P) metres along the optical axis. direction: (B, 3, P) the camera rays (world,
    camera-frame z = 1). exact: (B, P) bool, False where tile culling could not prove the hit
    is the nearest (rare; such pixels become depth holes). point, normal: (B, 3, P) world (the
    normal faces the camera side). uv: (B, 2, P) surface coordinates, metres. face: (B, P)
    face index on its box (0..5, see scenes.FACES; cylinders: 0 side, 2 bottom, 3 top), as
    float. look: (B, F, P) appearance (see scenes.Look). surface: (B, P) int64 surface id
    (see `_camera_hits`).
    """

    depth: Tensor
    direction: Tensor
    exact: Tensor
    point: Tensor
    normal: Tensor
    uv: Tensor
    face: Tensor
    look: Tensor
    surface: Tensor


def _per_pixel(table: Tensor, index: Tensor) -> Tensor:
    """Rows of a per-object table (B, K, C) at the objects index (B, P): (B, C, P)."""
    return torch.gather(table.transpose(1, 2).contiguous(), 2, index[:, None].expand(-1, table.shape[2], -1))


def _unit(vectors: Tensor, dim: int = 1) -> Tensor:
    """Vectors scaled to length 1 along dim (by default channel-first (B, 3, P)): as
    F.normalize, which is many times slower on CPU."""
    return vectors * torch.rsqrt((vectors * vectors).sum(dim, keepdim=True).clamp(min=1e-24))


def _select(condition: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """torch.where(condition, a, b) for finite floats: as arithmetic, many times faster on CPU."""
    return b + condition * (a - b)


def trace(scene: Scene, height: int, width: int, intrinsics: tuple[float, float, float, float]) -> Surface:
    """Cast the camera rays of a height x width image and describe what each one hits."""
    batch = scene.batch
    n_box, n_cyl = scene.box_lo.shape[1], scene.cylinders.shape[1]
    n_space = scene.space_lo.shape[1]
    depth, surface, exact = _camera_hits(scene, height, width, intrinsics)
    origin, direction = camera_rays(scene, *_pixel_grid(height, width, scene.device), intrinsics)
    direction = direction.transpose(1, 2).contiguous()
    point = origin.transpose(1, 2) + depth[:, None] * direction

    # every object as a box in its own frame, turned by yaw about a pivot: box slots (their
    # group's frame), cylinders (their bounding box) and spaces
    group = _slot_groups(scene)
    others = torch.zeros(batch, n_cyl + n_space, device=scene.device)
    yaw = torch.cat([scene.group_yaw[:, group], others], 1)
    pivot = torch.cat([scene.group_pivot[:, group], others[..., None].expand(-1, -1, 3)], 1)
    cx, cz, radius, bottom, top = scene.cylinders.unbind(-1)
    lo = torch.cat([scene.box_lo, torch.stack([cx - radius, bottom, cz - radius], -1), scene.space_lo], 1)
    hi = torch.cat([scene.box_hi, torch.stack([cx + radius, top, cz + radius], -1), scene.space_hi], 1)
    table = torch.cat([lo, hi, pivot, torch.cos(yaw)[..., None], torch.sin(yaw)[..., None]], -1)
    on_room = surface >= n_box + n_cyl
    on_cylinder = (surface >= n_box) & ~on_room
    first_space = n_box + n_cyl
    objects = torch.where(on_room, first_space + torch.div(surface - first_space, FACES, rounding_mode="floor"),
                          surface)
    lo_x, lo_y, lo_z, hi_x, hi_y, hi_z, pivot_x, pivot_y, pivot_z, cos, sin = _per_pixel(table, objects).unbind(1)

    # boxes and room faces: the nearest of the six planes, in the object's frame
    x, y, z = point.unbind(1)
    dx, dz = x - pivot_x, z - pivot_z
    local_x, local_y, local_z = cos * dx - sin * dz, y - pivot_y, sin * dx + cos * dz
    gaps = [local_x - lo_x, hi_x - local_x, local_y - lo_y, hi_y - local_y, local_z - lo_z, hi_z - local_z]
    nearest, face = gaps[0].abs(), torch.zeros_like(x)
    for index, gap in enumerate(gaps[1:], 1):  # the first of equal gaps wins
        gap = gap.abs()
        face = _select(gap < nearest, index, face)
        nearest = torch.minimum(nearest, gap)
    on_x, on_y, on_z = face < 1.5, (face > 1.5) & (face < 3.5), face > 3.5
    u = _select(on_x, local_z - lo_z, local_x - lo_x)
    v = _select(on_y, local_z - lo_z, local_y - lo_y)
    # outward normal in the object's frame, turned back to the world; room faces face inwards
    sign = (torch.remainder(face, 2) * 2 - 1) * (1 - 2.0 * on_room)
    normal_x, normal_z = on_x * sign, on_z * sign
    normal = [cos * normal_x + sin * normal_z, on_y * sign, cos * normal_z - sin * normal_x]

    # cylinders: side or cap
    radius = (hi_x - lo_x) * 0.5
    rx, rz = x - (lo_x + hi_x) * 0.5, z - (lo_z + hi_z) * 0.5
    ring = torch.sqrt(rx * rx + rz * rz).clamp(min=1e-6)
    to_bottom, to_top = (y - lo_y).abs(), (y - hi_y).abs()
    on_cap = torch.minimum(to_bottom, to_top) < (ring - radius).abs()
    is_top = to_bottom > to_top
    cap_normal_y = is_top * 2.0 - 1
    cylinder_face = on_cap * (2 + is_top * 1.0)
    cylinder_normal = [_select(on_cap, 0.0, rx / ring), on_cap * cap_normal_y, _select(on_cap, 0.0, rz / ring)]
    cylinder_u = _select(on_cap, rx + radius, radius * torch.atan2(rz, rx))
    cylinder_v = _select(on_cap, rz + radius, y - lo_y)

    face = _select(on_cylinder, cylinder_face, face)
    normal = torch.stack([_select(on_cylinder, c, b) for c, b in zip(cylinder_normal, normal)], 1)
    uv = torch.stack([_select(on_cylinder, cylinder_u, u), _select(on_cylinder, cylinder_v, v)], 1)
    # a face seen from behind (the inside of a box poking through a wall) shades as if in front
    normal = normal * (1 - 2.0 * ((normal * direction).sum(1) > 0))[:, None]
    surface = surface + on_room * face.long()
    looks = torch.cat([scene.box_looks, scene.cylinder_looks, scene.space_looks.flatten(1, 2)], 1)
    return Surface(depth=depth, direction=direction, exact=exact, point=point, normal=normal, uv=uv, face=face,
                   look=_per_pixel(looks, surface), surface=surface)


# ----------------------------------------------------------------------------- textures

_GOLDEN = -0x61C8864F  # 0x9E3779B1 (2**32 / the golden ratio) as a signed 32-bit integer


def _halves(h: Tensor) -> tuple[Tensor, Tensor]:
    """Two independent uniforms in [0, 1) from the low and high 16 bits of a 32-bit hash."""
    return (h & 0xFFFF).float() / 65536.0, ((h >> 16) & 0xFFFF).float() / 65536.0


def _frame_seed(key: Tensor, salt: int) -> Tensor:
    """(B,) int32 hashes of the frames' int64 keys, independent for each salt. Per-pixel
    hashes are int32 (see scenes.mix32)."""
    return mix32((key & _M32) ^ mix32(((key >> 32) & _M32) ^ salt)).int()


def _value_noise(x: Tensor, y: Tensor, seed: Tensor) -> tuple[Tensor, Tensor]:
    """Two independent smooth noise fields in [0, 1): random values on the integer lattice
    (the two halves of one hash), blended with smoothstep.

    x, y: float tensors (any shape); seed: int32 broadcastable to them.
    """
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    # lattice point (i, j) gets the hash of ((i * 0x9E3779B1 + j) mod 2**32) ^ seed
    key = x0.int() * _GOLDEN + y0.int()
    corners = [_halves(mix32((key + offset) ^ seed)) for offset in (0, 1, _GOLDEN, _GOLDEN + 1)]

    def blend(c00: Tensor, c01: Tensor, c10: Tensor, c11: Tensor) -> Tensor:
        bottom, top = c00 + (c10 - c00) * fx, c01 + (c11 - c01) * fx
        return bottom + (top - bottom) * fy

    return blend(*(c[0] for c in corners)), blend(*(c[1] for c in corners))


def _texture(look: Tensor, uv: Tensor, face: Tensor, seed: Tensor, palette: Tensor) -> Tensor:
    """Albedo (B, 3, P), linear RGB, of the surface points with these looks (see scenes.Look).

    look: (B, F, P); uv: (B, 2, P) metres; face: (B, P); seed: (B, P) int32, one per surface;
    palette: (K, 3) linear colours that cells and pictures pick from. Colours are worked on as
    three (B, P) channels (see Surface).
    """
    u, v = uv.unbind(1)
    field = look.unbind(1)
    albedo, second = look[:, Look.ALBEDO].unbind(1), look[:, Look.SECOND].unbind(1)
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
    tint, pick = _halves(cell_hash)
    height, chance = _halves(mix32(cell_hash ^ 0x5BD1E995))
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


# ----------------------------------------------------------------------------- lighting

def _pixel_hash(key: Tensor, salt: int, pixels: int) -> Tensor:
    """(B, P) int32 hashes, one per pixel of each frame, independent for each salt."""
    index = torch.arange(pixels, device=key.device, dtype=torch.int32)
    return mix32(_frame_seed(key, salt)[:, None] ^ (index * _GOLDEN))


def _unit_vectors(h1: Tensor, h2: Tensor) -> Tensor:
    """Uniformly random unit vectors (..., 3) from two hashes."""
    a, b = hash_uniform(h1), hash_uniform(h2)
    z = 2 * a - 1
    ring = torch.sqrt((1 - z * z).clamp(min=0))
    angle = 2 * math.pi * b
    return torch.stack([ring * torch.cos(angle), z, ring * torch.sin(angle)], -1)


def _visibility(scene: Scene, surface: Surface, height: int, width: int, step: int) -> Tensor:
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
        jitter = _unit_vectors(_pixel_hash(scene.key, 2 * light + 101, samples.shape[0]),
                               _pixel_hash(scene.key, 2 * light + 102, samples.shape[0]))
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


def _shade(scene: Scene, surface: Surface, albedo: Tensor, visibility: Tensor) -> Tensor:
    """Radiance (B, 3, P), linear: ambient (occluded), each light's diffuse and specular
    light where it is visible, and emission. albedo: (B, 3, P); visibility: (B, L + 1, P)."""
    normal, point, look = surface.normal, surface.point, surface.look
    view = -_unit(surface.direction)
    diffuse = scene.ambient[:, :, None] * ((0.4 + 0.6 * visibility[:, -1]) * (1 + 0.15 * normal[:, 1]))[:, None]
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
    emission = look[:, Look.EMISSION, None] * albedo
    return albedo * diffuse + specular + emission


# ----------------------------------------------------------------------------- the sensors

@dataclass
class Sensor:
    """Per-frame camera and depth-sensor settings, each a tensor with a leading batch axis B.

    exposure: (B,) exposure bias in stops around auto exposure. white_balance: (B, 3) RGB
    gains (colour cast). vignetting: (B,) light lost in the image corners (0..1). blur: (B,)
    Gaussian sigma, pixels of a 640-wide image. noise: (B,) noise sigma at mid grey (0..1
    scale). jpeg_quality: (B,) 1..100 (100: no compression artefacts). band: (B, 4) width of
    the depth border band at the left, top, right and bottom, as fractions of the image side.
    band_tilt: (B,) slope of the band edges. max_range: (B,) metres, at most MAX_DEPTH.
    speckle: (B,) share of pixels lost to small random holes. edge_loss: (B,) probability
    that a pixel at a depth edge is lost. key: (B,) int64, seeds the per-pixel noise.
    holes: False gives a perfect depth sensor (no holes at all), as for the ideal sensor.
    """

    exposure: Tensor
    white_balance: Tensor
    vignetting: Tensor
    blur: Tensor
    noise: Tensor
    jpeg_quality: Tensor
    band: Tensor
    band_tilt: Tensor
    max_range: Tensor
    speckle: Tensor
    edge_loss: Tensor
    key: Tensor
    holes: bool = True


def ideal_sensor(batch: int, device: torch.device | str = "cpu") -> Sensor:
    """A sensor without effects: auto exposure only, no noise, blur, compression or holes."""
    zeros = torch.zeros(batch, device=device)
    return Sensor(exposure=zeros, white_balance=torch.ones(batch, 3, device=device), vignetting=zeros,
                  blur=zeros, noise=zeros, jpeg_quality=zeros + 100, band=torch.zeros(batch, 4, device=device),
                  band_tilt=zeros, max_range=zeros + MAX_DEPTH, speckle=zeros, edge_loss=zeros,
                  key=torch.zeros(batch, dtype=torch.int64, device=device), holes=False)


def random_sensor(draws: Draws) -> Sensor:
    """Settings of a hand-held Kinect: NYU-like depth borders most of the time, a warm cast."""
    nyu_like = draws.chance(0.6)[:, None]
    nyu_band = torch.stack([draws.uniform(0.055, 0.068), draws.uniform(0.08, 0.095),
                            draws.uniform(0.045, 0.056), draws.uniform(0.012, 0.02)], -1)
    other_band = draws.uniform(0.0, 1.0, n=4) ** 2 * constant([0.06, 0.06, 0.05, 0.03], draws.device)
    warm = draws.uniform(-0.04, 0.16)  # most indoor pictures keep some of the lamps' warmth
    magenta = draws.uniform(-0.03, 0.08)
    white_balance = torch.stack([1 + warm, 1 - magenta, 1 - warm], -1) * draws.uniform(0.96, 1.04, n=3)
    quality = torch.where(draws.chance(0.2), torch.full_like(warm, 100.0), draws.uniform(55, 95))
    return Sensor(
        exposure=draws.triangular(-1.2, 0.5), white_balance=white_balance,
        vignetting=draws.uniform(0.15, 0.6), blur=draws.uniform(0.6, 1.6), noise=draws.uniform(0.008, 0.035),
        jpeg_quality=quality, band=torch.where(nyu_like, nyu_band, other_band),
        band_tilt=draws.uniform(-0.012, 0.012), max_range=draws.uniform(7.0, MAX_DEPTH),
        speckle=draws.uniform(0.0, 0.03), edge_loss=draws.uniform(0.2, 0.9),
        key=mix32(draws.bits(1)[:, 0]),
    )


def _blur(image: Tensor, sigma: Tensor) -> Tensor:
    """Per-frame Gaussian blur of (B, C, H, W) with sigma (B,) pixels, a 5x5 separable kernel."""
    batch, channels, height, width = image.shape
    taps = torch.arange(-2, 3, device=image.device, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma.clamp(min=0.05)[:, None]) ** 2)
    kernel = (kernel / kernel.sum(-1, keepdim=True)).repeat_interleave(channels, 0)  # (B*C, 5)
    flat = image.reshape(1, batch * channels, height, width)
    flat = F.conv2d(F.pad(flat, (2, 2, 0, 0), mode="replicate"), kernel[:, None, None, :], groups=batch * channels)
    flat = F.conv2d(F.pad(flat, (0, 0, 2, 2), mode="replicate"), kernel[:, None, :, None], groups=batch * channels)
    return flat.view(batch, channels, height, width)


_JPEG_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
              14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
              49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
_TO_YCC = [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]  # JFIF
_TO_RGB = [[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]]
_LUMINANCE = [0.2126, 0.7152, 0.0722]  # Rec. 709 weights of linear R, G, B
_DCT = [[(math.sqrt(0.125) if i == 0 else 0.5) * math.cos((2 * j + 1) * i * math.pi / 16) for j in range(8)]
        for i in range(8)]  # the orthonormal 8-point DCT-II, row i = frequency i
_JPEG_CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
                47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def _jpeg(rgb: Tensor, quality: Tensor) -> Tensor:
    """JPEG's losses on (B, 3, H, W) RGB in 0..255: 4:2:0 chroma and 8x8 DCT quantisation.

    quality (B,) follows the IJG scaling of the standard tables; at 100 every step is 1.
    """
    batch, _, height, width = rgb.shape
    pad_h, pad_w = -height % 16, -width % 16
    rgb = F.pad(rgb, (0, pad_w, 0, pad_h), mode="replicate")
    to_ycc = constant(_TO_YCC, rgb.device)
    ycc = torch.einsum("ij,bjhw->bihw", to_ycc, rgb)
    chroma = F.interpolate(F.avg_pool2d(ycc[:, 1:], 2), scale_factor=2, mode="bilinear", align_corners=False)
    ycc = torch.cat([ycc[:, :1] - 128, chroma], 1)
    dct = constant(_DCT, rgb.device)
    scale = torch.where(quality < 50, 5000 / quality.clamp(min=1), 200 - 2 * quality)
    tables = constant([_JPEG_LUMA, _JPEG_CHROMA, _JPEG_CHROMA], rgb.device)
    steps = torch.floor((tables[None] * scale[:, None, None] + 50) / 100).clamp(1, 255).view(batch, 3, 1, 8, 1, 8)
    h, w = ycc.shape[-2:]
    blocks = ycc.view(batch, 3, h // 8, 8, w // 8, 8)
    coefficients = torch.einsum("ij,bchjwk,lk->bchiwl", dct, blocks, dct)
    coefficients = torch.round(coefficients / steps) * steps
    blocks = torch.einsum("ji,bchjwk,kl->bchiwl", dct, coefficients, dct)
    ycc = blocks.reshape(batch, 3, h, w)
    ycc = torch.cat([ycc[:, :1] + 128, ycc[:, 1:]], 1)
    to_rgb = constant(_TO_RGB, rgb.device)
    return torch.einsum("ij,bjhw->bihw", to_rgb, ycc)[..., :height, :width]


def _camera(radiance: Tensor, sensor: Sensor) -> Tensor:
    """Linear radiance (B, 3, H, W) to the image a cheap camera makes of it: uint8 RGB."""
    batch, _, height, width = radiance.shape
    radiance = _blur(radiance, sensor.blur * width / NYU_WIDTH)
    # auto exposure: the frame's mean log luminance to a mid grey, then the frame's bias
    luminance = (radiance * constant(_LUMINANCE, radiance.device)[:, None, None]).sum(1)
    key = torch.exp(torch.log(luminance + 1e-4).mean((1, 2)))
    gain = 0.16 * torch.exp2(sensor.exposure) / key
    rows = torch.linspace(-1, 1, height, device=radiance.device)[:, None] * (height / width)
    cols = torch.linspace(-1, 1, width, device=radiance.device)[None, :]
    corner = 1 + (height / width) ** 2
    falloff = 1 - sensor.vignetting[:, None, None] * (rows ** 2 + cols ** 2) / corner
    exposed = radiance * (gain[:, None, None] * falloff)[:, None] * sensor.white_balance[:, :, None, None]
    # sensor noise: shot noise grows with the signal; triangular noise per channel
    pixels = height * width
    noise = torch.stack([sum(_halves(_pixel_hash(sensor.key, 10 + c, pixels))) - 1.0 for c in range(3)], 1)
    noise = noise.view(batch, 3, height, width) * 2.45
    exposed = exposed + noise * sensor.noise[:, None, None, None] * torch.sqrt(exposed.clamp(min=0) + 0.02) * 2
    # a filmic curve (Narkowicz's ACES fit) and the display gamma
    x = exposed.clamp(min=0)
    toned = (x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14)
    encoded = toned.clamp(0, 1) ** (1 / 2.2) * 255
    return _jpeg(encoded, sensor.jpeg_quality).round().clamp(0, 255).to(torch.uint8)


def _blobs(key: Tensor, salt: int, height: int, width: int, size: float) -> tuple[Tensor, Tensor]:
    """Two independent (B, H, W) smooth noise fields in [0, 1), blobs about `size` pixels of a
    640-wide image (two octaves)."""
    scale = width / NYU_WIDTH * size
    rows = torch.arange(height, device=key.device, dtype=torch.float32)[:, None].expand(height, width) / scale
    cols = torch.arange(width, device=key.device, dtype=torch.float32)[None, :].expand(height, width) / scale
    seed = _frame_seed(key, salt)[:, None, None]
    a1, b1 = _value_noise(cols[None], rows[None], seed)
    a2, b2 = _value_noise(cols[None] * 2.03, rows[None] * 2.03, seed ^ 0x3C6EF372)
    return (2 * a1 + a2) / 3, (2 * b1 + b2) / 3


def _kinect_valid(surface: Surface, albedo: Tensor, sensor: Sensor, height: int, width: int, fx: float) -> Tensor:
    """(B, H, W) bool: where a Kinect would have read the depth of this frame.

    A structured-light sensor loses depth where its projector's pattern does not reach the
    surface (the shadow beside near objects, 7.5 cm of baseline), where the pattern is too
    faint (black, glossy or glass surfaces, grazing angles, far away) and along object edges;
    it sees nothing nearer than MIN_DEPTH or outside its field of view (the border band).
    """
    batch = surface.depth.shape[0]
    depth = surface.depth.view(batch, height, width)
    max_range = sensor.max_range[:, None, None]
    valid = (depth >= MIN_DEPTH) & (depth <= max_range) & surface.exact.view(batch, height, width)
    if not sensor.holes:
        return valid
    # projector shadow: the projector sits right of the camera; a pixel is in shadow when a
    # pixel to its right maps to a projector column at or left of its own
    column = torch.arange(width, device=depth.device, dtype=torch.float32)
    projector = column - fx * 0.075 / depth
    right_min = torch.flip(torch.cummin(torch.flip(projector, [-1]), -1).values, [-1])
    right_min = torch.cat([right_min[..., 1:], torch.full_like(right_min[..., :1], _MISS)], -1)
    valid &= projector < right_min + 0.5

    # ragged edges: pixels next to a depth jump of more than 3 %
    log_depth = torch.log(depth)[:, None]
    padded = F.pad(log_depth, (1, 1, 1, 1), mode="replicate")
    jumps = torch.stack([(padded[..., 1:-1, :-2] - log_depth).abs(), (padded[..., 1:-1, 2:] - log_depth).abs(),
                         (padded[..., :-2, 1:-1] - log_depth).abs(), (padded[..., 2:, 1:-1] - log_depth).abs()])
    edge = F.max_pool2d((jumps.amax(0) > 0.03).float(), 3, stride=1, padding=1)[:, 0] > 0
    pixel = hash_uniform(_pixel_hash(sensor.key, 20, height * width)).view(batch, height, width)
    valid &= ~(edge & (pixel < sensor.edge_loss[:, None, None]))

    # weak returns: the surface's own dropout, dark albedo, grazing angles, long range
    weak = surface.look[:, Look.DROPOUT].view(batch, height, width)
    luminance = (albedo * constant(_LUMINANCE, albedo.device)[:, None]).sum(1)
    weak = weak + ((0.02 - luminance) / 0.02).clamp(0, 1).view(batch, height, width) * 0.5
    facing = (surface.normal * _unit(surface.direction)).sum(1).abs().view(batch, height, width)
    weak = weak + ((0.25 - facing) / 0.2).clamp(0, 1) * 0.8
    weak = weak + ((depth - 0.7 * max_range) / (0.3 * max_range)).clamp(0, 1) * 0.5
    blobs, speckles = _blobs(sensor.key, 21, height, width, 10.0)
    valid &= blobs >= weak

    # speckle: small irregular holes anywhere
    valid &= speckles >= sensor.speckle[:, None, None] * 2.5

    # the border band, its edges slightly tilted (the depth camera's view, registered to RGB)
    rows = torch.arange(height, device=depth.device, dtype=torch.float32)[:, None] / height - 0.5
    cols = (column / width - 0.5)[None, :]
    tilt = sensor.band_tilt[:, None, None]
    left, top, right, bottom = (b[:, None, None] for b in sensor.band.unbind(-1))
    inside = ((cols + 0.5 > left + tilt * rows) & (0.5 - cols > right - tilt * rows)
              & (rows + 0.5 > top - tilt * cols) & (0.5 - rows > bottom + tilt * cols))
    return valid & inside


# ----------------------------------------------------------------------------- rendering

@dataclass
class Frames:
    """A rendered batch. image: (B, 3, H, W) uint8 RGB. depth: (B, H, W) float32 metres along
    the optical axis, 0 in holes. valid: (B, H, W) bool, depth > 0. true_depth: (B, H, W) the
    exact depth everywhere, holes included. intrinsics: (fx, fy, cx, cy) in pixels."""

    image: Tensor
    depth: Tensor
    valid: Tensor
    true_depth: Tensor
    intrinsics: tuple[float, float, float, float]


@dataclass(frozen=True)
class Stages:
    """The stages of `render`. `Stages.compiled()` runs each through torch.compile on its own:
    fused kernels on a GPU, and small graphs compile far faster than one graph of it all."""

    trace: Callable = trace
    texture: Callable = _texture
    visibility: Callable = _visibility
    shade: Callable = _shade
    camera: Callable = _camera
    kinect: Callable = _kinect_valid

    @classmethod
    def compiled(cls) -> Stages:
        return cls(*(torch.compile(getattr(cls, f.name), dynamic=False) for f in fields(cls)))


def render(
    scene: Scene, sensor: Sensor, height: int = FRAME_HEIGHT, width: int = FRAME_WIDTH,
    intrinsics: tuple[float, float, float, float] | None = None, shadow_step: int | None = None,
    stages: Stages = Stages(),
) -> Frames:
    """Render B scenes through their sensors at height x width pixels.

    intrinsics default to NYU's Kinect scaled to the image (`nyu_intrinsics`). Shadow and
    ambient-occlusion rays start from every shadow_step-th pixel in each direction (default:
    4 at 320 pixels wide, the same number of rays at any size).
    """
    intrinsics = intrinsics or nyu_intrinsics(height, width)
    shadow_step = shadow_step or max(1, round(4 * width / FRAME_WIDTH))
    batch = scene.batch
    surface = stages.trace(scene, height, width, intrinsics)
    surface_seed = mix32(_frame_seed(scene.key, 0)[:, None] ^ mix32(surface.surface.int()))
    palette = Palettes(scene.device).tables["books"]
    albedo = stages.texture(surface.look, surface.uv, surface.face, surface_seed, palette)
    visibility = stages.visibility(scene, surface, height, width, shadow_step)
    radiance = stages.shade(scene, surface, albedo, visibility)
    image = stages.camera(radiance.view(batch, 3, height, width), sensor)
    valid = stages.kinect(surface, albedo, sensor, height, width, intrinsics[0])
    true_depth = surface.depth.view(batch, height, width)
    return Frames(image=image, depth=torch.where(valid, true_depth, 0.0), valid=valid,
                  true_depth=true_depth, intrinsics=tuple(float(v) for v in intrinsics))


def render_keys(
    keys: Tensor, height: int = FRAME_HEIGHT, width: int = FRAME_WIDTH, stages: Stages = Stages(),
    frames_per_pass: int | None = None,
) -> Frames:
    """Frames of random scenes, one per key (B,) int64 (see scenes.frame_keys).

    The scenes are generated all at once and rendered frames_per_pass at a time (default: all).
    """
    draws = Draws(keys)
    scene, sensor = random_scenes(draws), random_sensor(draws)
    step = frames_per_pass or len(keys)
    parts = [render(_frames_of(scene, start, step), _frames_of(sensor, start, step), height, width, stages=stages)
             for start in range(0, len(keys), step)]
    names = ("image", "depth", "valid", "true_depth")
    return Frames(*(torch.cat([getattr(part, name) for part in parts]) for name in names), parts[0].intrinsics)


def _frames_of(batch: Scene | Sensor, start: int, count: int) -> Scene | Sensor:
    """Frames start .. start + count - 1 of a batch of scenes or sensors."""
    return replace(batch, **{f.name: getattr(batch, f.name)[start:start + count] for f in fields(batch)
                             if isinstance(getattr(batch, f.name), Tensor)})


def stream_id(seed: int, split: str) -> int:
    """The stream of frames of (seed, split): different for every pair, so splits are disjoint."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; the synthetic splits are {', '.join(SPLITS)}")
    if not 0 <= seed < 2**31 // len(SPLITS):
        raise ValueError(f"seed must be in [0, {2**31 // len(SPLITS)}), got {seed}")
    return seed * len(SPLITS) + SPLITS.index(split)


class SyntheticFrames:
    """A FrameSource of rendered rooms: frame k of (seed, split) is always the same frame.

    frames(indices) -> images (B, 3, H, W) uint8 and depth (B, H, W) float32 metres (0 = hole)
    on indices.device; render(indices) -> Frames with the valid mask, exact depth and
    intrinsics too. Batches are rendered in chunks of at most `chunk` frames (bounded memory;
    default by device): the scenes of a chunk are generated together, then rendered
    `frames_per_pass` at a time. compile=True runs the renderer's stages through torch.compile
    (scene generation stays eager): chunks then always have `chunk` frames (the last one
    padded), so each stage compiles once or twice.
    """

    def __init__(
        self, seed: int = 0, device: torch.device | str | None = None, height: int = FRAME_HEIGHT,
        width: int = FRAME_WIDTH, split: str = "train", length: int = 2**31, chunk: int | None = None,
        compile: bool = False,
    ) -> None:
        if not (MIN_SIDE <= height <= MAX_SIDE and MIN_SIDE <= width <= MAX_SIDE):
            raise ValueError(f"frames must be {MIN_SIDE} to {MAX_SIDE} pixels a side, got {width}x{height}")
        self.stream = stream_id(seed, split)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.height, self.width, self.length = height, width, length
        # Scene generation is many small ops, cheaper per frame in big batches. On a CPU the
        # per-pixel stages run faster a few frames at a time (small tensors stay in cache and
        # need no fresh pages): on 2 cores, passes of 4 frames at 320x240 beat 16 or 32 by 30%.
        frame_sizes = FRAME_HEIGHT * FRAME_WIDTH / (height * width)  # 320x240 frames per frame
        cuda = self.device.type == "cuda"
        self.chunk = chunk or max(1, int((256 if cuda else 32) * frame_sizes))
        self.frames_per_pass = self.chunk if cuda else min(self.chunk, max(1, int(4 * frame_sizes)))
        self.compile = compile
        self.stages = Stages.compiled() if compile else Stages()

    def __len__(self) -> int:
        return self.length

    @torch.no_grad()
    def render(self, indices: Tensor) -> Frames:
        """Frames of these stream indices (B,), rendered on (and returned on) the source's device."""
        indices = indices.to(self.device)
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.length):
            raise IndexError(f"frame indices must be in [0, {self.length})")
        parts = []
        for chunk in indices.split(self.chunk):
            keys = frame_keys(self.stream, chunk)
            count = len(keys)
            if self.compile and count < self.chunk:  # one shape for the compiler
                keys = torch.cat([keys, keys[-1:].expand(self.chunk - count)])
            frames = render_keys(keys, self.height, self.width, self.stages, self.frames_per_pass)
            parts.append((frames.image[:count], frames.depth[:count], frames.valid[:count],
                          frames.true_depth[:count]))
        image, depth, valid, true_depth = (torch.cat(p) for p in zip(*parts))
        return Frames(image, depth, valid, true_depth, nyu_intrinsics(self.height, self.width))

    def frames(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        frames = self.render(indices)
        return frames.image.to(indices.device), frames.depth.to(indices.device)


@register_dataset("synthetic")
class SyntheticDataset:
    """Map-style dataset of n rendered frames of one split (path is ignored).

    Options: n (frames; 0 = the whole stream of 2**31), height, width, seed, device (where
    to render). The splits "train", "val" and "test" are disjoint streams of scenes.
    `frame_source(device, compile)` renders the same frames at 320x240 straight on a device.
    """

    def __init__(
        self, path: str | None = None, split: str = "train", n: int = 1000, height: int = FRAME_HEIGHT,
        width: int = FRAME_WIDTH, seed: int = 0, device: str | None = None,
    ) -> None:
        if n < 0:
            raise ValueError(f"n must be >= 0 (0: the whole stream), got {n}")
        self.split, self.seed = split, seed
        self.source = SyntheticFrames(seed, device, height, width, split, length=n or 2**31)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} out of range for {len(self)} frames")
        index %= len(self)
        frames = self.source.render(torch.tensor([index]))
        return make_sample(frames.image[0].permute(1, 2, 0).cpu().numpy(), frames.depth[0].cpu().numpy(),
                           frames.intrinsics, f"synthetic_{self.split}{self.seed}_{index:06d}")

    def frame_source(self, device: torch.device | str, compile: bool = False) -> SyntheticFrames:
        return SyntheticFrames(self.seed, device, FRAME_HEIGHT, FRAME_WIDTH, self.split, length=len(self),
                               compile=compile)


def write_folder(
    out_dir: str | Path, n: int, split: str = "train", seed: int = 0, height: int = NYU_HEIGHT,
    width: int = NYU_WIDTH, device: torch.device | str | None = None, preview: int = 12, compile: bool = False,
) -> Path:
    """Render frames 0..n-1 of (seed, split) into `out_dir` in the folder layout (folder.py).

    Writes NAME_rgb.png, NAME_depth.png (16-bit millimetres, 0 = hole), manifest.json (a
    list of entries with name, intrinsics at this size, dataset, source and license, like
    the real-rgbd folder) and preview.png (image beside coloured depth, the first `preview`
    frames). compile: torch.compile the renderer's stages (see SyntheticFrames). Returns the
    folder.
    """
    from ..visualize import colorize
    from .folder import write_frame, write_manifest

    if n < 1:
        raise ValueError(f"the number of frames must be at least 1, got {n}")
    source = SyntheticFrames(seed, device, height, width, split, length=n, compile=compile)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries, tiles = [], []
    for start in range(0, n, source.chunk):
        frames = source.render(torch.arange(start, min(start + source.chunk, n)))
        for offset in range(frames.image.shape[0]):
            index = start + offset
            image = frames.image[offset].permute(1, 2, 0).cpu().numpy()
            depth = frames.depth[offset].cpu().numpy()
            name = f"synthetic_{split}{seed}_{index:05d}"
            entries.append({
                **write_frame(out, name, image, depth, frames.intrinsics),
                "dataset": "synthetic rooms (depth.data.synthetic)",
                "source": f"rendered by depth.data.synthetic: split {split}, seed {seed}, frame {index}, "
                          f"{width}x{height}",
                "license": "generated by this project; same terms as its code",
            })
            if index < preview:
                tiles.append(_thumbnail(np.concatenate([image, colorize(depth, colormap="turbo")], 1)))
    write_manifest(out, entries)
    if tiles:
        _save_grid(out / "preview.png", tiles)
    return out


def _thumbnail(tile: np.ndarray, height: int = FRAME_HEIGHT) -> np.ndarray:
    """A preview tile (H, W, 3) uint8 scaled down to at most `height` rows."""
    from PIL import Image

    if tile.shape[0] <= height:
        return tile
    width = round(tile.shape[1] * height / tile.shape[0])
    return np.asarray(Image.fromarray(tile).resize((width, height), Image.BILINEAR))


def _save_grid(path: Path, tiles: list[np.ndarray], columns: int = 2) -> None:
    """Tiles (H, W', 3) uint8 in a grid `columns` wide, 4 px apart, as a PNG."""
    from PIL import Image

    height, width = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    grid = np.full((rows * (height + 4) - 4, columns * (width + 4) - 4, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[r * (height + 4):r * (height + 4) + height, c * (width + 4):c * (width + 4) + width] = tile
    Image.fromarray(grid).save(path)
