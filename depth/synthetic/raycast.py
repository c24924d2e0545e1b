"""Ray casting: where a ray hits a box, a cylinder or the room shell, and what the camera sees."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .camera import _pixel_grid, camera_axes, camera_rays
from .hashing import MASK32
from .scene import FACES, VOID, Scene, constant, rotate_y

FAR = 30.0  # metres: no ray travels further than this before it leaves the rooms
_EPS = 1e-4  # ray parameter below which a hit is the ray's own starting surface
_MISS = 1e9  # ray parameter standing for "no hit"

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
    as scene.rotate_y: a group's frame to the world by +yaw, the world to it by -yaw."""
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

    return to_rows(depth), to_rows(nearest & MASK32), to_rows(certain)


@dataclass
class Surface:
    """What the camera rays hit, per pixel (P = H * W, row-major). Vectors are channel-first
    (B, C, P), so that each component is a contiguous row: elementwise work on CPU is many
    times faster on those than on (B, P, C) components.

    depth: (B, P) metres along the optical axis. direction: (B, 3, P) the camera rays (world,
    camera-frame z = 1). exact: (B, P) bool, False where tile culling could not prove the hit
    is the nearest (rare; such pixels become depth holes). point, normal: (B, 3, P) world (the
    normal faces the camera side). uv: (B, 2, P) surface coordinates, metres. face: (B, P)
    face index on its box (0..5, see scene.FACES; cylinders: 0 side, 2 bottom, 3 top), as
    float. look: (B, F, P) appearance (see materials.Look). surface: (B, P) int64 surface id
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


