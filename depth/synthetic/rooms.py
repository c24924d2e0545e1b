"""Room shells: room types and sizes, doors, wings, windows, and the box helpers of layout."""

from __future__ import annotations

import torch
from torch import Tensor

from .hashing import Draws
from .materials import Materials
from .scene import FACES, VOID, constant, rotate_y

# ----------------------------------------------------------------------------- room shells

ROOM_TYPES = ("bedroom", "living", "kitchen", "office", "dining", "corridor")
ROOM_NAMES = ("bedroom", "living room", "kitchen", "office", "dining room", "corridor")  # as people say them
ROOM_ODDS = [0.24, 0.22, 0.16, 0.14, 0.14, 0.10]
# width (x) and depth (z) ranges, metres, per room type
ROOM_WIDTH = [(3.0, 5.2), (3.8, 7.5), (2.6, 5.0), (3.5, 8.0), (3.2, 6.0), (1.4, 2.4)]
ROOM_DEPTH = [(3.4, 6.0), (4.5, 9.0), (3.4, 6.5), (4.5, 10.0), (4.0, 7.5), (6.0, 10.0)]


SPACES = 6  # main room, wing, door passage, room beyond, two window niches


def _odds(table: list[dict[int, float]], size: int, device: torch.device) -> Tensor:
    rows = torch.zeros(len(table), size, device=device)
    for r, row in enumerate(table):
        for column, p in row.items():
            rows[r, column] = p
    return rows


def _stack_box(x0: Tensor | float, y0: Tensor | float, z0: Tensor | float,
               x1: Tensor | float, y1: Tensor | float, z1: Tensor | float) -> Tensor:
    """(B, 6) box rows [x0, y0, z0, x1, y1, z1] from floats or (B,) tensors (broadcast)."""
    like = next(v for v in (x0, y0, z0, x1, y1, z1) if isinstance(v, Tensor))
    # floats become filled tensors (a 0-d tensor made from a float is a host copy on a GPU)
    values = [v if isinstance(v, Tensor) else like.new_full(like.shape, v) for v in (x0, y0, z0, x1, y1, z1)]
    return torch.stack(torch.broadcast_tensors(*values), -1)


def _void_like(box: Tensor) -> Tensor:
    void = constant([0.0, VOID, 0.0, 0.1, VOID + 0.1, 0.1], box.device)
    return void.expand_as(box)


def _keep(box: Tensor, on: Tensor) -> Tensor:
    """Boxes (B, ..., 6) where on (B,) is True, else parked in the void."""
    on = on.view(on.shape[0], *([1] * (box.dim() - 1)))
    return torch.where(on, box, _void_like(box))


def _overlaps(lo_a: Tensor, hi_a: Tensor, lo_b: Tensor, hi_b: Tensor, margin: float = 0.0) -> Tensor:
    """Do boxes a and b (corners (..., 3), broadcast) overlap by more than -margin?"""
    return ((lo_a < hi_b + margin) & (lo_b < hi_a + margin)).all(-1)


def _first(ok: Tensor) -> tuple[Tensor, Tensor]:
    """Index (B,) of the first True candidate of ok (B, K), and whether there is one."""
    return ok.int().argmax(1), ok.any(1)


def _take(values: Tensor, index: Tensor) -> Tensor:
    """values (B, K, ...) at index (B,) -> (B, ...)."""
    return values[torch.arange(values.shape[0], device=values.device), index]


class _Room:
    """The shell of one batch of rooms: type, size, spaces, openings (all (B, ...) tensors)."""

    def __init__(self, d: Draws, m: Materials) -> None:
        device = d.device
        self.type = d.choice(constant(ROOM_ODDS, device))
        low, high = constant(ROOM_WIDTH, device)[self.type].unbind(-1)
        self.width = d.uniform(low, high)
        low, high = constant(ROOM_DEPTH, device)[self.type].unbind(-1)
        self.depth = d.uniform(low, high)
        self.height = torch.where(self.type == 3, d.uniform(2.5, 3.2), d.uniform(2.35, 2.9))
        corridor = self.type == 5
        W, D, H = self.width, self.depth, self.height
        zero = torch.zeros_like(W)

        # L-shaped rooms: a wing beyond the wall x = W over part of its length
        self.wing = d.chance(0.45) & ~corridor
        wing_len = torch.minimum(D - 0.6, d.uniform(1.5, 4.0))
        self.wing_z0 = d.uniform(0.0, 1.0) * (D - wing_len)
        self.wing_z1 = self.wing_z0 + wing_len
        wing = _stack_box(W - 0.05, zero, self.wing_z0, W + d.uniform(1.5, 6.0), H, self.wing_z1)

        # a door opening on wall 0, 2 or 3 into a corridor or room beyond; one in three is a
        # wide opening (an arch, or an open-plan room running on)
        self.door = d.chance(torch.where(corridor, 0.85, 0.8))
        self.door_side = constant([0, 2, 3], device, torch.int64)[d.index(3)]
        along = self.wall_length(self.door_side)
        wide = d.chance(0.35) & ~corridor
        self.door_width = torch.where(wide, torch.minimum(d.uniform(1.2, 3.0), along - 0.6), d.uniform(0.78, 0.95))
        self.door_height = torch.where(wide, torch.minimum(d.uniform(2.1, 2.6), H - 0.05), d.uniform(1.98, 2.12))
        self.door_at = 0.15 + self.door_width / 2 + d.uniform() * (along - self.door_width - 0.3).clamp(min=0)
        thick = d.uniform(0.1, 0.2)  # walls; niches stop short of it, never reaching the room beyond
        half = self.door_width / 2
        passage = self.wall_box(self.door_side, self.door_at - half, self.door_at + half, -0.05, thick + 0.05,
                                zero, self.door_height)
        reach_a, reach_b = d.uniform(0.2, 3.0), d.uniform(0.2, 3.0)
        beyond = self.wall_box(self.door_side, self.door_at - half - reach_a, self.door_at + half + reach_b,
                               thick, thick + d.uniform(2.0, 6.0), zero, H)

        # up to two windows (not in corridors, not across the door or the wing)
        self.windows = []
        niches = []
        for chance in (0.6, 0.3):
            on = d.chance(torch.where(corridor, 0.05, chance))
            side = d.index(4)
            width = d.uniform(0.6, 2.0)
            length = self.wall_length(side)
            width = torch.minimum(width, length - 0.6)
            at = 0.3 + width / 2 + d.uniform() * (length - width - 0.6).clamp(min=0)
            sill = d.uniform(0.6, 1.1)
            top = torch.minimum(sill + d.uniform(1.0, 1.6), H - 0.15)
            depth = thick * d.uniform(0.5, 0.85)
            on = on & (width > 0.4) & ~((side == 1) & self.wing)
            on = on & ~(self.door & (side == self.door_side)
                        & ((at - self.door_at).abs() < (width + self.door_width) / 2 + 0.2))
            for other in self.windows:
                on = on & ~((side == other["side"]) & ((at - other["at"]).abs() < (width + other["width"]) / 2 + 0.2))
            self.windows.append({"on": on, "side": side, "width": width, "at": at, "sill": sill, "top": top})
            niches.append(_keep(self.wall_box(side, at - width / 2, at + width / 2, -0.02, depth, sill, top), on))

        main = _stack_box(zero, zero, zero, W, H, D)
        spaces = torch.stack([main, _keep(wing, self.wing), _keep(passage, self.door), _keep(beyond, self.door),
                              *niches], 1)
        self.space_lo, self.space_hi = spaces[..., :3], spaces[..., 3:]

        # looks of the spaces' faces: one paint for the main room and wing (sometimes an accent
        # wall), trim around the door, the room beyond its own, glass at the back of niches
        walls, accent = m.paint(), m.paint()
        floor = m.floor(self.type)
        ceiling = m.ceiling(d.chance(torch.where(self.type == 3, 0.7, 0.08)))
        accent_face = constant([0, 1, 4, 5], device, torch.int64)[d.index(4)]
        accent_on = d.chance(0.15)
        main_looks = torch.stack([walls, walls, floor, ceiling, walls, walls], 1)
        is_accent = (torch.arange(FACES, device=device)[None] == accent_face[:, None]) & accent_on[:, None]
        main_looks = torch.where(is_accent[..., None], accent[:, None], main_looks)
        trim = torch.where(d.chance(0.6)[:, None], m.painted(), m.wood())
        beyond_walls = torch.where(d.chance(0.5)[:, None], walls, m.paint())
        beyond_floor = torch.where(d.chance(0.6)[:, None], floor, m.floor(self.type))
        room_beyond = torch.stack([beyond_walls, beyond_walls, beyond_floor, m.ceiling(d.chance(0.1)),
                                   beyond_walls, beyond_walls], 1)
        self.day = d.chance(0.55)
        looks = [main_looks, main_looks, torch.stack([trim, trim, floor, trim, trim, trim], 1), room_beyond]
        sill = torch.where(d.chance(0.5)[:, None], trim, walls)
        for window in self.windows:
            glass = m.glass(self.day, window["width"], window["top"] - window["sill"])
            niche = torch.stack([walls, walls, sill, walls, walls, walls], 1)
            far_face = constant([0, 1, 4, 5], device, torch.int64)[window["side"]]
            is_glass = torch.arange(FACES, device=device)[None] == far_face[:, None]
            looks.append(torch.where(is_glass[..., None], glass[:, None], niche))
        self.looks = torch.stack(looks, 1)

    def wall_length(self, side: Tensor) -> Tensor:
        """Length (B,) or (B, K) of wall `side`: 0 and 1 run along z, 2 and 3 along x."""
        shape = (-1,) + (1,) * (side.dim() - 1)
        return torch.where(side < 2, self.depth.view(shape), self.width.view(shape))

    def wall_box(self, side: Tensor, a0: Tensor, a1: Tensor, out0: Tensor | float, out1: Tensor | float,
                 y0: Tensor, y1: Tensor) -> Tensor:
        """(B, 6) box spanning a0..a1 along wall `side` and out0..out1 outwards from it
        (negative: into the room)."""
        shape = (-1,) + (1,) * (side.dim() - 1)  # side may be (B,) or (B, K)
        W, D = self.width.view(shape), self.depth.view(shape)
        x = [torch.where(side == 0, -out1, W + out0), torch.where(side == 0, -out0, W + out1)]
        z = [torch.where(side == 2, -out1, D + out0), torch.where(side == 2, -out0, D + out1)]
        along_x = side >= 2
        return _stack_box(torch.where(along_x, a0, x[0]), y0, torch.where(along_x, z[0], a0),
                          torch.where(along_x, a1, x[1]), y1, torch.where(along_x, z[1], a1))


def _turn_boxes(boxes: Tensor, cos: Tensor, sin: Tensor, centre_x: Tensor, centre_z: Tensor) -> Tensor:
    """Boxes (B, K, 6) turned by a quarter-turn angle (cos, sin in {0, +-1}) about y, then
    moved to (centre_x, centre_z): still axis-aligned, corners re-sorted."""
    cos, sin = cos[:, None], sin[:, None]
    xa, za = rotate_y(boxes[..., 0], boxes[..., 2], cos, sin)
    xb, zb = rotate_y(boxes[..., 3], boxes[..., 5], cos, sin)
    cx, cz = centre_x[:, None], centre_z[:, None]
    turned = torch.stack([torch.minimum(xa, xb) + cx, boxes[..., 1], torch.minimum(za, zb) + cz,
                          torch.maximum(xa, xb) + cx, boxes[..., 4], torch.maximum(za, zb) + cz], -1)
    parked = boxes[..., 1] >= VOID
    return torch.where(parked[..., None], boxes, turned)


class _Occupancy:
    """Boxes (world, room frame) that new furniture must keep out of."""

    def __init__(self) -> None:
        self.boxes: list[Tensor] = []

    def add(self, box: Tensor, on: Tensor | None = None) -> None:
        """box (B, 6); where on is False nothing is added (it is parked in the void)."""
        self.boxes.append(box if on is None else _keep(box, on))

    def free(self, box: Tensor, margin: float = 0.03) -> Tensor:
        """(B, K) bool: which candidate boxes (B, K, 6) overlap none of the occupied ones."""
        ok = torch.ones(box.shape[:2], dtype=torch.bool, device=box.device)
        for other in self.boxes:
            ok &= ~_overlaps(box[..., :3], box[..., 3:], other[:, None, :3], other[:, None, 3:], -margin)
        return ok


def _inside_room(room: _Room, box: Tensor, margin: float = 0.0) -> Tensor:
    """(B, K): do boxes (B, K, 6) lie within the main room's floor plan?"""
    return ((box[..., 0] >= -margin) & (box[..., 2] >= -margin)
            & (box[..., 3] <= room.width[:, None] + margin) & (box[..., 5] <= room.depth[:, None] + margin))


def _against_wall(d: Draws, room: _Room, width: Tensor, depth: Tensor, candidates: int) -> dict[str, Tensor]:
    """Candidate spots (B, K) for something `width` wide and `depth` deep against a wall:
    the wall side, the centre of its footprint, and whether the wall is long enough."""
    side = (d.uniform(n=candidates) * 4).long().clamp(max=3)
    length = torch.where(side < 2, room.depth[:, None], room.width[:, None])
    w, dep = width[:, None], depth[:, None]
    along = 0.05 + w / 2 + d.uniform(n=candidates) * (length - w - 0.1).clamp(min=0)
    out = dep / 2 + d.uniform(0.005, 0.04, n=candidates)
    W, D = room.width[:, None], room.depth[:, None]
    x = torch.where(side == 0, out, torch.where(side == 1, W - out, along))
    z = torch.where(side == 2, out, torch.where(side == 3, D - out, along))
    half_x = torch.where(side < 2, dep / 2, w / 2)
    half_z = torch.where(side < 2, w / 2, dep / 2)
    return {"side": side, "x": x, "z": z, "half_x": half_x, "half_z": half_z, "fits": length >= w + 0.1}


