"""Furniture and clutter: beds, sofas, shelves, tables with chairs, doors, pictures, lamps."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .hashing import Draws
from .materials import Look, Materials, make_look
from .rooms import (
    _against_wall,
    _first,
    _inside_room,
    _keep,
    _Occupancy,
    _odds,
    _Room,
    _stack_box,
    _take,
    _turn_boxes,
    _void_like,
)
from .scene import VOID, constant, rotate_y

# furniture against the walls
NONE, BED, SOFA, ARMCHAIR, BOOKCASE, CABINET, WARDROBE, DESK, TV_STAND, KITCHEN = range(10)
# (width, height, depth) ranges of each piece, metres
PIECE_SIZE = {
    NONE: ((0.5, 0.5), (0.5, 0.5), (0.5, 0.5)),
    BED: ((0.9, 1.9), (0.45, 0.62), (1.95, 2.15)),
    SOFA: ((1.5, 2.5), (0.75, 0.95), (0.8, 1.0)),
    ARMCHAIR: ((0.7, 0.95), (0.75, 1.0), (0.75, 0.95)),
    BOOKCASE: ((0.6, 1.6), (0.9, 2.1), (0.28, 0.4)),
    CABINET: ((0.4, 1.8), (0.45, 1.2), (0.35, 0.55)),
    WARDROBE: ((0.8, 2.0), (1.8, 2.3), (0.5, 0.65)),
    DESK: ((0.9, 1.8), (0.72, 0.77), (0.55, 0.8)),
    TV_STAND: ((0.9, 1.8), (0.4, 0.6), (0.35, 0.5)),
    KITCHEN: ((1.6, 3.6), (0.88, 0.94), (0.58, 0.65)),
}
# odds of each piece per room type: the first slot (the room's main piece), then the others
FIRST_PIECE = [
    {BED: 0.9, WARDROBE: 0.1}, {SOFA: 0.85, BOOKCASE: 0.15}, {KITCHEN: 1.0},
    {DESK: 0.8, BOOKCASE: 0.2}, {CABINET: 0.6, BOOKCASE: 0.2, NONE: 0.2}, {CABINET: 0.3, NONE: 0.7}]
OTHER_PIECES = [
    {CABINET: 0.35, WARDROBE: 0.15, BOOKCASE: 0.14, DESK: 0.14, ARMCHAIR: 0.06, TV_STAND: 0.06, NONE: 0.1},
    {ARMCHAIR: 0.22, TV_STAND: 0.2, BOOKCASE: 0.22, CABINET: 0.2, SOFA: 0.06, DESK: 0.04, NONE: 0.06},
    {KITCHEN: 0.35, CABINET: 0.3, BOOKCASE: 0.05, DESK: 0.03, NONE: 0.27},
    {DESK: 0.35, BOOKCASE: 0.28, CABINET: 0.27, ARMCHAIR: 0.03, NONE: 0.07},
    {CABINET: 0.4, BOOKCASE: 0.25, ARMCHAIR: 0.05, TV_STAND: 0.05, NONE: 0.25},
    {CABINET: 0.3, BOOKCASE: 0.2, NONE: 0.5}]
TEMPLATES = 10
# look kinds of the boxes of a piece
BODY, FRONT, FABRIC, FABRIC2, BEDDING, BLANKET, BOOKS, SCREEN, DARK, METAL, STONE, TILES, APPLIANCE = range(13)
KINDS = 13

WALL_PIECES, PIECE_BOXES = 5, 6
CLUTTER = 20
CYLINDERS = 16
CAMERA_CLEARANCE = 0.45  # metres around the camera kept free of furniture
_FACE_OF_SIDE = [1, 0, 5, 4]  # wall side 0..3 (x=0, x=W, z=0, z=D) -> face index of a piece's front
_SIDE_TURN = [(0.0, 1.0), (0.0, -1.0), (1.0, 0.0), (-1.0, 0.0)]  # (cos, sin): piece +z to the wall's normal


Template = tuple[list[Tensor], list[int], Tensor, Tensor]

# Furniture templates. Each builds one piece for every frame in its own frame: x across its
# width (centred), y up from the floor, z out from the wall it stands against (back at
# -depth/2). It returns PIECE_BOXES boxes (B, 6) (unused ones parked), the look kind of each,
# the size (B, 2) of the cells of its FRONT or BOOKS look, and the top surface others can
# stand on (B, 5): x0, z0, x1, z1, y (y < 0: none).

def _no_top(w: Tensor) -> Tensor:
    return torch.stack([w, w, w, w, torch.full_like(w, -1.0)], -1)


def _no_piece(d: Draws, w: Tensor, h: Tensor, dep: Tensor) -> Template:
    void = _void_like(_stack_box(w, w, w, w, w, w))
    return [void] * PIECE_BOXES, [BODY] * PIECE_BOXES, torch.stack([w, h], -1), _no_top(w)


def _bed(d: Draws, w: Tensor, h: Tensor, dep: Tensor) -> Template:
    hw, back, front = w / 2, -dep / 2, dep / 2
    frame_top = h - d.uniform(0.15, 0.25)
    wide = w > 1.25
    pillow_top = h + d.uniform(0.1, 0.16)
    boxes = [
        _stack_box(-hw, 0.0, back + 0.05, hw, frame_top, front),
        _stack_box(-hw + 0.02, frame_top, back + 0.07, hw - 0.02, h, front - 0.02),
        _stack_box(-hw - 0.02, 0.0, back, hw + 0.02, h + d.uniform(0.3, 0.7), back + d.uniform(0.04, 0.08)),
        _stack_box(-hw + 0.08, h - 0.02, back + 0.1, torch.where(wide, -0.04, hw - 0.08), pillow_top, back + 0.5),
        _keep(_stack_box(0.04, h - 0.02, back + 0.1, hw - 0.08, pillow_top, back + 0.5), wide),
        _stack_box(-hw - 0.03, frame_top + 0.02, back + d.uniform(0.5, 0.8), hw + 0.03, h + 0.04, front + 0.03),
    ]
    return boxes, [BODY, BEDDING, BODY, FABRIC2, FABRIC2, BLANKET], torch.stack([w, h], -1), _no_top(w)


def _sofa(d: Draws, w: Tensor, h: Tensor, dep: Tensor) -> Template:
    """Sofas and armchairs: base, back, two arms, seat and back cushions."""
    hw, back, front = w / 2, -dep / 2, dep / 2
    seat, arm_w = d.uniform(0.4, 0.46), d.uniform(0.1, 0.22)
    arm_h, back_t = d.uniform(0.55, 0.68), d.uniform(0.15, 0.25)
    boxes = [
        _stack_box(-hw, 0.0, back, hw, seat - 0.12, front),
        _stack_box(-hw, 0.0, back, hw, h, back + back_t),
        _stack_box(-hw, 0.0, back, -hw + arm_w, arm_h, front),
        _stack_box(hw - arm_w, 0.0, back, hw, arm_h, front),
        _stack_box(-hw + arm_w, seat - 0.12, back + back_t, hw - arm_w, seat, front - 0.02),
        _stack_box(-hw + arm_w, seat, back + back_t, hw - arm_w, h - 0.06, back + back_t + d.uniform(0.1, 0.18)),
    ]
    return boxes, [FABRIC, FABRIC, FABRIC, FABRIC, FABRIC2, FABRIC2], torch.stack([w, h], -1), _no_top(w)


def _bookcase(d: Draws, w: Tensor, h: Tensor, dep: Tensor) -> Template:
    """Sides, top, plinth and back; the books fill all shelves but sometimes the top one."""
    hw, back, front = w / 2, -dep / 2, dep / 2
    t, plinth, pitch = d.uniform(0.018, 0.03), d.uniform(0.04, 0.1), d.uniform(0.26, 0.4)
    shelves = torch.floor((h - plinth - t) / pitch).clamp(min=1)
    filled = (shelves - d.chance(0.4).float()).clamp(min=1)
    books_top = torch.minimum(plinth + filled * pitch, h - t)
    boxes = [
        _stack_box(-hw, 0.0, back, -hw + t, h, front),
        _stack_box(hw - t, 0.0, back, hw, h, front),
        _stack_box(-hw, h - t, back, hw, h, front),
        _stack_box(-hw + t, 0.0, back + 0.01, hw - t, plinth, front - 0.01),
        _stack_box(-hw + t, plinth, back, hw - t, h - t, back + 0.012),
        _stack_box(-hw + t, plinth, back + 0.012, hw - t, books_top, front - d.uniform(0.01, 0.05)),
    ]
    return boxes, [BODY, BODY, BODY, BODY, BODY, BOOKS], torch.stack([w, pitch], -1), \
        torch.stack([-hw, back, hw, front, h], -1)


def _cabinet(d: Draws, w: Tensor, h: Tensor, dep: Tensor) -> Template:
    """Nightstands, dressers, sideboards, filing cabinets: a body with drawers or doors on
    the front, a top slab, on legs or a plinth."""
    hw, back, front = w / 2, -dep / 2, dep / 2
    legs = d.chance(0.5)
    leg_h = torch.where(legs, d.uniform(0.08, 0.16), 0.0)
    top_t, over = d.uniform(0.02, 0.04), d.uniform(0.0, 0.03)
    rows = torch.round(h / d.uniform(0.18, 0.4)).clamp(1, 5)
    columns = torch.round(w / d.uniform(0.4, 0.9)).clamp(1, 4)

    def leg(sx: int, sz: int) -> Tensor:
        x = (-hw + 0.02, -hw + 0.055) if sx < 0 else (hw - 0.055, hw - 0.02)
        z = (back + 0.02, back + 0.055) if sz < 0 else (front - 0.055, front - 0.02)
        return _keep(_stack_box(x[0], 0.0, z[0], x[1], leg_h + 0.01, z[1]), legs)

    boxes = [
        _stack_box(-hw, leg_h, back, hw, h - top_t, front),
        _stack_box(-hw - over, h - top_t, back, hw + over, h, front + over),
        leg(-1, -1), leg(1, -1), leg(-1, 1), leg(1, 1),
    ]
    cells = torch.stack([w / columns, (h - top_t - leg_h) / rows], -1)
    return boxes, [FRONT, BODY, METAL, METAL, METAL, METAL], cells, torch.stack([-hw, back, hw, front, h], -1)


def _wardrobe(d: Draws, w: Tensor, h: Tensor, dep: Tensor) -> Template:
    hw, back, front = w / 2, -dep / 2, dep / 2
    columns = torch.where(w > 1.3, 3.0, 2.0)
    void = _void_like(_stack_box(w, w, w, w, w, w))
    boxes = [
        _stack_box(-hw, 0.06, back, hw, h - 0.05, front),
        _stack_box(-hw - 0.02, h - 0.05, back, hw + 0.02, h, front + 0.02),
        _stack_box(-hw + 0.02, 0.0, back, hw - 0.02, 0.06, front - 0.03),
        void, void, void,
    ]
    return boxes, [FRONT, BODY, DARK, BODY, BODY, BODY], torch.stack([w / columns, h - 0.11], -1), \
        torch.stack([-hw, back, hw, front, h], -1)


def _desk(d: Draws, w: Tensor, h: Tensor, dep: Tensor) -> Template:
    """A top on a side panel and a drawer unit (or a second panel), often with a monitor."""
    hw, back, front = w / 2, -dep / 2, dep / 2
    drawers = d.chance(0.5)
    monitor = d.chance(0.6)
    screen_w, screen_h = d.uniform(0.22, 0.35), d.uniform(0.28, 0.4)
    right_panel = _stack_box(hw - 0.05, 0.0, back + 0.03, hw - 0.02, h - 0.03, front - 0.03)
    drawer_unit = _stack_box(hw - 0.45, 0.0, back + 0.02, hw - 0.02, h - 0.03, front - 0.02)
    boxes = [
        _stack_box(-hw, h - 0.03, back, hw, h, front),
        _stack_box(-hw + 0.02, 0.0, back + 0.03, -hw + 0.05, h - 0.03, front - 0.03),
        torch.where(drawers[:, None], drawer_unit, right_panel),
        _keep(_stack_box(-screen_w, h + 0.12, back + 0.12, screen_w, h + 0.12 + screen_h, back + 0.15), monitor),
        _keep(_stack_box(-0.03, h, back + 0.08, 0.03, h + 0.13, back + 0.15), monitor),
        _keep(_stack_box(-0.22, h, front - 0.3, 0.22, h + 0.02, front - 0.15), monitor),
    ]
    cells = torch.stack([torch.full_like(w, 0.43), (h - 0.03) / 3], -1)
    right_edge = torch.where(monitor, -screen_w - 0.05, hw)
    return boxes, [BODY, BODY, FRONT, SCREEN, DARK, DARK], cells, torch.stack([-hw, back, right_edge, front, h], -1)


def _tv_stand(d: Draws, w: Tensor, h: Tensor, dep: Tensor) -> Template:
    hw, back, front = w / 2, -dep / 2, dep / 2
    tv_w = torch.minimum(w - 0.1, d.uniform(0.7, 1.3)) / 2
    tv_h, tv_z = tv_w * 2 * 0.58, back + 0.12
    columns = torch.round(w / d.uniform(0.4, 0.7)).clamp(1, 4)
    void = _void_like(_stack_box(w, w, w, w, w, w))
    boxes = [
        _stack_box(-hw, 0.0, back, hw, h, front),
        _stack_box(-tv_w, h + 0.07, tv_z, tv_w, h + 0.07 + tv_h, tv_z + d.uniform(0.03, 0.07)),
        _stack_box(-tv_w / 3, h, tv_z - 0.05, tv_w / 3, h + 0.07, tv_z + 0.1),
        _keep(_stack_box(hw - 0.4, h, front - 0.3, hw - 0.05, h + 0.08, front - 0.05), d.chance(0.5)),
        void, void,
    ]
    cells = torch.stack([w / columns, h], -1)
    return boxes, [FRONT, SCREEN, DARK, DARK, BODY, BODY], cells, torch.stack([-hw, front - 0.2, hw, front, h], -1)


def _kitchen(d: Draws, w: Tensor, h: Tensor, dep: Tensor) -> Template:
    """Base cabinets under a counter, a tiled backsplash, wall cabinets, often a fridge at
    one end and a microwave on the counter."""
    hw, back, front = w / 2, -dep / 2, dep / 2
    fridge = d.chance(0.6)
    end = torch.where(fridge, hw - 0.72, hw)
    upper_low = h + d.uniform(0.5, 0.6)
    oven_x = -hw + d.uniform(0.05, 1.0) * (end + hw - 0.55).clamp(min=0)
    boxes = [
        _stack_box(-hw, 0.0, back, end, h - 0.04, front - 0.02),
        _stack_box(-hw, h - 0.04, back, end, h, front + 0.02),
        _stack_box(-hw, h, back, end, upper_low, back + 0.01),
        _stack_box(-hw, upper_low, back, end, upper_low + d.uniform(0.55, 0.7), back + d.uniform(0.3, 0.36)),
        _keep(_stack_box(hw - 0.7, 0.0, back, hw, d.uniform(1.65, 1.95), front), fridge),
        _keep(_stack_box(oven_x, h, back + 0.03, oven_x + 0.48, h + 0.28, back + 0.4), d.chance(0.5)),
    ]
    cells = torch.stack([d.uniform(0.4, 0.6), (h - 0.04) / torch.where(d.chance(0.3), 2.0, 1.0)], -1)
    return boxes, [FRONT, STONE, TILES, FRONT, APPLIANCE, APPLIANCE], cells, \
        torch.stack([-hw, back + 0.05, end, front, h], -1)


_TEMPLATES = [_no_piece, _bed, _sofa, _sofa, _bookcase, _cabinet, _wardrobe, _desk, _tv_stand, _kitchen]


def _piece(d: Draws, kind: Tensor, w: Tensor, h: Tensor, dep: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Every template built for every frame, then each frame's `kind` picked: boxes (B, 6, 6),
    look kinds (B, 6), cells (B, 2) and top surface (B, 5)."""
    built = [template(d, w, h, dep) for template in _TEMPLATES]
    boxes = torch.stack([torch.stack(b[0], 1) for b in built], 1)
    kinds = constant([b[1] for b in built], d.device, torch.int64)
    cells = torch.stack([b[2] for b in built], 1)
    tops = torch.stack([b[3] for b in built], 1)
    return _take(boxes, kind), kinds[kind], _take(cells, kind), _take(tops, kind)


def _piece_looks(d: Draws, m: Materials, cells: Tensor, face: Tensor) -> Tensor:
    """(B, KINDS, F): the looks of one piece, one per look kind (BODY, FRONT, ...)."""
    body, fabric = m.body(), m.fabric()
    similar = fabric.clone()
    similar[:, Look.ALBEDO] = fabric[:, Look.ALBEDO] * d.uniform(0.75, 1.1)[:, None]
    fabric2 = torch.where(d.chance(0.6)[:, None], similar, m.fabric())
    appliance_cells = torch.stack([torch.full_like(cells[:, 0], 0.7), d.uniform(0.55, 1.1)], -1)
    looks = [body, m.fronts(body, cells, face), fabric, fabric2, m.fabric("bedding"), m.blanket(),
             m.books(cells[:, 1], body, face), m.screen(face), m.dark(), m.metal(), m.stone(),
             m.tiles(face), m.appliance(face, appliance_cells)]
    return torch.stack(looks, 1)


def _wall_pieces(
    d: Draws, m: Materials, room: _Room, occupied: _Occupancy, slots: range,
) -> tuple[Tensor, Tensor, list[dict[str, Tensor]]]:
    """Pieces of furniture against the walls, one per slot (slot 0: the room's main piece):
    boxes (B, 6 * slots, 6), looks (B, 6 * slots, F) and the top surfaces they offer (list of
    dicts: rect (B, 5) x0, z0, x1, z1, y; on)."""
    device = d.device
    first, other = _odds(FIRST_PIECE, TEMPLATES, device), _odds(OTHER_PIECES, TEMPLATES, device)
    sizes = constant([PIECE_SIZE[k] for k in range(TEMPLATES)], device)  # (T, 3, 2)
    turns = constant(_SIDE_TURN, device)
    faces = constant(_FACE_OF_SIDE, device)
    boxes, looks, tops = [], [], []
    for slot in slots:
        kind = d.choice((first if slot == 0 else other)[room.type])
        low, high = sizes[kind].unbind(-1)
        w, h, dep = (low + (high - low) * d.uniform(n=3)).unbind(-1)
        spots = _against_wall(d, room, w, dep, candidates=8)
        footprint = torch.stack([spots["x"] - spots["half_x"], torch.zeros_like(spots["x"]),
                                 spots["z"] - spots["half_z"], spots["x"] + spots["half_x"],
                                 h[:, None].expand_as(spots["x"]), spots["z"] + spots["half_z"]], -1)
        pick, found = _first(spots["fits"] & occupied.free(footprint))
        on = found & (kind != NONE)
        side = _take(spots["side"], pick)
        local, kinds, cells, top = _piece(d, kind, w, h, dep)
        cos, sin = turns[side].unbind(-1)
        x, z = _take(spots["x"], pick), _take(spots["z"], pick)
        boxes.append(_keep(_turn_boxes(local, cos, sin, x, z), on))
        piece_looks = _piece_looks(d, m, cells, faces[side])
        looks.append(torch.gather(piece_looks, 1, kinds[..., None].expand(-1, -1, Look.SIZE)))
        occupied.add(_take(footprint, pick), on)
        top_box = torch.stack([top[:, 0], top[:, 4], top[:, 1], top[:, 2], top[:, 4], top[:, 3]], -1)
        rect = _turn_boxes(top_box[:, None], cos, sin, x, z)[:, 0]
        tops.append({"rect": torch.stack([rect[:, 0], rect[:, 2], rect[:, 3], rect[:, 5], top[:, 4]], -1),
                     "on": on & (top[:, 4] > 0), "centre": torch.stack([x, h / 2, z], -1), "placed": on})
    return torch.cat(boxes, 1), torch.cat(looks, 1), tops


def _place_turned(
    d: Draws, room: _Room, occupied: _Occupancy, boxes: Tensor, yaw: Tensor, height: Tensor,
) -> tuple[Tensor, Tensor]:
    """Where a group of boxes (B, K, 6) in its own frame (centred on its pivot), turned by yaw
    (B,), stands on the floor: at the first of 10 random spots whose turned footprint (up to
    `height`) is inside the main room and clear of the camera, the walls' openings and the
    furniture. Returns the pivot (B, 3) and whether a spot was found (B,); the footprint is
    added to `occupied` where one was."""
    placed = boxes[..., 1] < VOID - 1
    reach_x = torch.where(placed, torch.maximum(-boxes[..., 0], boxes[..., 3]), 0.0).amax(1)
    reach_z = torch.where(placed, torch.maximum(-boxes[..., 2], boxes[..., 5]), 0.0).amax(1)
    cos, sin = torch.cos(yaw).abs(), torch.sin(yaw).abs()
    half_x = (cos * reach_x + sin * reach_z)[:, None]
    half_z = (sin * reach_x + cos * reach_z)[:, None]
    candidates = 10
    x = half_x + 0.1 + d.uniform(n=candidates) * (room.width[:, None] - 2 * half_x - 0.2).clamp(min=0)
    z = half_z + 0.1 + d.uniform(n=candidates) * (room.depth[:, None] - 2 * half_z - 0.2).clamp(min=0)
    footprint = torch.stack([x - half_x, torch.zeros_like(x), z - half_z, x + half_x,
                             height[:, None].expand_as(x), z + half_z], -1)
    pick, found = _first(occupied.free(footprint, margin=0.0) & _inside_room(room, footprint))
    occupied.add(_take(footprint, pick), found)
    return torch.stack([_take(x, pick), torch.zeros_like(yaw), _take(z, pick)], -1), found


def _free_standing(
    d: Draws, m: Materials, room: _Room, occupied: _Occupancy,
) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Tensor]]:
    """An armchair or a sofa standing in the room at any angle (box group 2), as people set
    them facing a television or a window: boxes (B, PIECE_BOXES, 6) in its own frame, looks,
    yaw (B,), pivot (B, 3) and a piece record (centre, placed) for aiming the camera."""
    device = d.device
    on = d.chance(constant([0.3, 0.75, 0.05, 0.35, 0.15, 0.0], device)[room.type])
    kind = torch.where(d.chance(0.6), ARMCHAIR, SOFA)
    low, high = constant([PIECE_SIZE[k] for k in range(TEMPLATES)], device)[kind].unbind(-1)
    w, h, dep = (low + (high - low) * d.uniform(n=3)).unbind(-1)
    local, kinds, cells, _ = _piece(d, kind, w, h, dep)
    yaw = d.uniform(-math.pi, math.pi)
    pivot, found = _place_turned(d, room, occupied, local, yaw, h)
    on = on & found
    piece_looks = _piece_looks(d, m, cells, torch.full_like(w, 5.0))
    looks = torch.gather(piece_looks, 1, kinds[..., None].expand(-1, -1, Look.SIZE))
    piece = {"centre": pivot + torch.stack([torch.zeros_like(h), h / 2, torch.zeros_like(h)], -1), "placed": on}
    return _keep(local, on), looks, yaw, pivot, piece


def _table_set(
    d: Draws, m: Materials, room: _Room, occupied: _Occupancy,
) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Tensor]]:
    """A table with up to two chairs and three things on it, turned together (box group 1).

    Returns boxes (B, 20, 6) in the set's frame, looks (B, 20, F), yaw (B,), pivot (B, 3) and
    the table top (a dict like a wall piece's top, in the set's frame).
    """
    device = d.device
    on = d.chance(constant([0.15, 0.75, 0.6, 0.5, 0.95, 0.0], device)[room.type])
    coffee = room.type == 1
    w = torch.where(coffee, d.uniform(0.8, 1.3), d.uniform(0.8, 1.8))
    dep = torch.minimum(torch.where(coffee, d.uniform(0.45, 0.7), d.uniform(0.7, 1.0)), w)
    h = torch.where(coffee, d.uniform(0.38, 0.48), d.uniform(0.72, 0.77))
    top_t, leg, inset = d.uniform(0.025, 0.05), d.uniform(0.04, 0.08), d.uniform(0.02, 0.1)
    hw, hd = w / 2, dep / 2
    boxes = [_stack_box(-hw, h - top_t, -hd, hw, h, hd)]
    kinds = [0]
    for sx in (-1, 1):
        for sz in (-1, 1):
            cx, cz = sx * (hw - inset - leg / 2), sz * (hd - inset - leg / 2)
            boxes.append(_stack_box(cx - leg / 2, 0.0, cz - leg / 2, cx + leg / 2, h - top_t, cz + leg / 2))
            kinds.append(1)

    # chairs, facing the table from one of its sides; in its own frame a chair faces +z
    cw, cd = d.uniform(0.4, 0.5), d.uniform(0.4, 0.5)
    seat, seat_t = d.uniform(0.42, 0.48), d.uniform(0.03, 0.08)
    back_h, back_t = d.uniform(0.35, 0.5), d.uniform(0.02, 0.05)
    leg_s = d.uniform(0.025, 0.04)
    hcw, hcd = cw / 2, cd / 2
    chair = [_stack_box(-hcw, seat - seat_t, -hcd, hcw, seat, hcd),
             _stack_box(-hcw, seat, -hcd, hcw, seat + back_h, -hcd + back_t)]
    for sx in (-1, 1):
        for sz in (-1, 1):
            cx, cz = sx * (hcw - leg_s / 2), sz * (hcd - leg_s / 2)
            chair.append(_stack_box(cx - leg_s / 2, 0.0, cz - leg_s / 2,
                                    cx + leg_s / 2, seat - seat_t, cz + leg_s / 2))
    chair = torch.stack(chair, 1)  # (B, 6, 6)
    turns = constant([(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)], device)
    previous = None
    for chance in (0.95, 0.85):
        chair_on = on & ~coffee & d.chance(chance)
        side = torch.where(d.chance(0.75), d.index(2), 2 + d.index(2))  # -z, +z, -x, +x side of the table
        if previous is not None:  # the second chair mostly across the table from the first
            side = torch.where(d.chance(0.6), previous[0] ^ 1, side)
        half_side = torch.where(side < 2, hw, hd)
        offset = (2 * d.uniform() - 1) * (half_side - hcw).clamp(min=0)
        tuck = d.uniform(-0.25, 0.1)
        out = torch.where(side < 2, hd, hw) + hcd - tuck
        x = torch.where(side < 2, offset, torch.where(side == 2, -out, out))
        z = torch.where(side < 2, torch.where(side == 0, -out, out), offset)
        if previous is not None:  # two chairs on the same side must not overlap
            chair_on = chair_on & ~((side == previous[0]) & ((offset - previous[1]).abs() < cw + 0.05) & previous[2])
        previous = (side, offset, chair_on)
        cos, sin = turns[side].unbind(-1)
        boxes.extend(_keep(_turn_boxes(chair, cos, sin, x, z), chair_on).unbind(1))
        kinds.extend([2, 3, 3, 3, 3, 3])

    # things on the table: a runner, books, a box or a closed laptop
    things = []
    for chance in (0.5, 0.5, 0.4):
        thing = d.index(4)
        runner = thing == 0
        size = torch.stack([
            torch.where(runner, 0.8 * w, torch.where(thing == 3, 0.33, d.uniform(0.12, 0.35))),
            torch.where(runner, 0.004, torch.where(thing == 3, 0.02, torch.where(thing == 1, d.uniform(0.02, 0.1),
                                                                                 d.uniform(0.05, 0.25)))),
            torch.where(runner, d.uniform(0.3, 0.4), torch.where(thing == 3, 0.23, d.uniform(0.12, 0.3))),
        ], -1)
        x = torch.where(runner, 0.0, (2 * d.uniform() - 1) * (hw - size[:, 0] / 2 - 0.03).clamp(min=0))
        z = torch.where(runner, 0.0, (2 * d.uniform() - 1) * (hd - size[:, 2] / 2 - 0.03).clamp(min=0))
        half_x, half_z = size[:, 0] / 2, size[:, 2] / 2
        box = _stack_box(x - half_x, h, z - half_z, x + half_x, h + size[:, 1], z + half_z)
        boxes.append(_keep(box, on & d.chance(chance)))
        things.append(4 + thing)

    boxes = torch.stack(boxes, 1)
    yaw = torch.where(d.chance(0.8), d.index(4) * (0.5 * math.pi) + torch.deg2rad(d.uniform(-8.0, 8.0)),
                      d.uniform(-math.pi, math.pi))
    pivot, found = _place_turned(d, room, occupied, boxes, yaw, h)
    on = on & found

    top_look = m.body()
    leg_look = torch.where(d.chance(0.6)[:, None], top_look, m.metal())
    chair_look = torch.where(d.chance(0.5)[:, None], top_look, m.body())
    seat_look = torch.where(d.chance(0.4)[:, None], m.fabric(), chair_look)
    runner_look = m.blanket()
    book_look = make_look(m.colour("books", 0.1), gloss=0.1, shininess=30.0)
    options = torch.stack([top_look, leg_look, seat_look, chair_look, runner_look, book_look, m.cardboard(),
                           m.dark()], 1)
    kinds = torch.cat([constant(kinds, device, torch.int64).expand(d.batch, -1), torch.stack(things, 1)], 1)
    looks = torch.gather(options, 1, kinds[..., None].expand(-1, -1, Look.SIZE))
    boxes = _keep(boxes, on)
    table_top = {"rect": torch.stack([-hw + 0.05, -hd + 0.05, hw - 0.05, hd - 0.05, h], -1), "on": on,
                 "centre": pivot + torch.stack([torch.zeros_like(h), h, torch.zeros_like(h)], -1), "placed": on}
    return boxes, looks, yaw, pivot, table_top


def _closed_door(d: Draws, m: Materials, room: _Room, occupied: _Occupancy) -> tuple[Tensor, Tensor]:
    """A closed door on a wall: its frame and its leaf, 2 boxes (B, 2, 6) and looks."""
    candidates = 4
    on = d.chance(torch.where(room.type == 5, 0.9, 0.45))
    side = (d.uniform(n=candidates) * 4).long().clamp(max=3)
    width = d.uniform(0.78, 0.92)[:, None]
    height = torch.minimum(d.uniform(1.98, 2.1), room.height - 0.15)[:, None]
    length = room.wall_length(side)
    at = 0.15 + width / 2 + d.uniform(n=candidates) * (length - width - 0.3).clamp(min=0)
    zero = torch.zeros_like(at)
    clearance = room.wall_box(side, at - width / 2 - 0.1, at + width / 2 + 0.1, -0.7, 0.0, zero, height + 0.08)
    pick, found = _first((length > width + 0.3) & occupied.free(clearance))
    on = on & found
    occupied.add(_take(clearance, pick), on)
    frame = room.wall_box(side, at - width / 2 - 0.07, at + width / 2 + 0.07, -0.018, 0.0, zero, height + 0.07)
    leaf = room.wall_box(side, at - width / 2, at + width / 2, -0.04, 0.0, zero, height)
    boxes = _keep(torch.stack([_take(frame, pick), _take(leaf, pick)], 1), on)
    face = constant(_FACE_OF_SIDE, d.device)[_take(side, pick)]
    panels = torch.stack([width[:, 0] / torch.where(d.chance(0.5), 1.0, 2.0),
                          height[:, 0] / torch.where(d.chance(0.5), 1.0, 3.0)], -1)
    leaf_look = m.fronts(m.body(), panels, face)
    leaf_look[:, Look.GROUT_MIX] *= d.uniform(0.2, 0.6)
    trim = torch.where(d.chance(0.6)[:, None], m.painted(), m.wood())
    return boxes, torch.stack([trim, leaf_look], 1)


def _pictures(d: Draws, m: Materials, room: _Room, occupied: _Occupancy) -> tuple[Tensor, Tensor]:
    """Up to three framed pictures, posters or whiteboards on the walls: (B, 3, 6) and looks."""
    candidates = 4
    faces = constant(_FACE_OF_SIDE, d.device)
    boxes, looks = [], []
    for chance in (0.85, 0.6, 0.4):
        width = d.uniform(0.3, 1.2)
        height = torch.minimum(d.uniform(0.25, 0.9), room.height - 0.9)
        centre = torch.minimum(d.uniform(1.25, 1.7), room.height - 0.15 - height / 2)
        side = (d.uniform(n=candidates) * 4).long().clamp(max=3)
        length = room.wall_length(side)
        w = width[:, None]
        at = 0.2 + w / 2 + d.uniform(n=candidates) * (length - w - 0.4).clamp(min=0)
        box = room.wall_box(side, at - w / 2, at + w / 2, -d.uniform(0.015, 0.04)[:, None], 0.0,
                            (centre - height / 2)[:, None], (centre + height / 2)[:, None])
        pick, found = _first((length > w + 0.4) & occupied.free(box))
        on = d.chance(chance) & found
        box = _take(box, pick)
        occupied.add(box, on)
        boxes.append(_keep(box, on))
        looks.append(m.picture(width, height, faces[_take(side, pick)]))
    return torch.stack(boxes, 1), torch.stack(looks, 1)


def _curtains(d: Draws, m: Materials, room: _Room, occupied: _Occupancy) -> tuple[Tensor, Tensor]:
    """Two curtains beside the first window, to the floor where nothing stands there."""
    window = room.windows[0]
    on = window["on"] & d.chance(0.55)
    side, at, width = window["side"], window["at"], window["width"]
    panel, thick = d.uniform(0.25, 0.55), d.uniform(0.06, 0.12)
    top = torch.minimum(window["top"] + d.uniform(0.05, 0.25), room.height - 0.02)
    boxes = []
    for edge in (-1, 1):
        centre = at + edge * (width / 2 + 0.2 * panel)
        long_box = room.wall_box(side, centre - panel / 2, centre + panel / 2, -thick - 0.03, -0.03,
                                 torch.full_like(top, 0.02), top)
        short_box = long_box.clone()
        short_box[:, 1] = window["sill"] - 0.12
        reaches_floor = d.chance(0.6) & occupied.free(long_box[:, None])[:, 0]
        boxes.append(_keep(torch.where(reaches_floor[:, None], long_box, short_box), on))
    look = m.fabric()
    look[:, Look.GRAIN_AMP], look[:, Look.GRAIN_FREQ] = d.uniform(0.12, 0.3), d.uniform(5, 10)
    look[:, Look.GRAIN_AXIS] = 0.0  # folds hang vertically
    return torch.stack(boxes, 1), torch.stack([look, look], 1)


def _baseboards(d: Draws, m: Materials, room: _Room) -> tuple[Tensor, Tensor]:
    """Skirting boards along the four walls of the main room (not the walls with the door
    opening or the wing, which they would block): (B, 4, 6) boxes and looks."""
    on = d.chance(0.7)
    height, thick = d.uniform(0.05, 0.14), d.uniform(0.01, 0.02)
    zero = torch.zeros_like(height)
    boxes = []
    for side in range(4):
        side_t = torch.full_like(room.type, side)
        keep = on & ~(room.door & (room.door_side == side)) & ~(room.wing & (side == 1))
        boxes.append(_keep(room.wall_box(side_t, zero, room.wall_length(side_t), -thick, 0.0, zero, height), keep))
    look = torch.where(d.chance(0.7)[:, None], m.painted(), m.wood())
    return torch.stack(boxes, 1), look[:, None].expand(-1, 4, -1)


def _rug(d: Draws, m: Materials, room: _Room) -> tuple[Tensor, Tensor]:
    """A rug on the floor: a border and a pattern, a centimetre thick. (B, 1, 6) and look."""
    on = d.chance(constant([0.5, 0.55, 0.1, 0.15, 0.3, 0.3], d.device)[room.type])
    width = torch.minimum(d.uniform(1.2, 2.6), room.width - 0.6).clamp(min=0.6)
    depth = torch.minimum(d.uniform(1.6, 3.4), room.depth - 0.6).clamp(min=0.6)
    x = room.width / 2 + (2 * d.uniform() - 1) * 0.3 * (room.width - width).clamp(min=0)
    z = room.depth / 2 + (2 * d.uniform() - 1) * 0.3 * (room.depth - depth).clamp(min=0)
    box = _stack_box(x - width / 2, 0.0, z - depth / 2, x + width / 2, d.uniform(0.006, 0.015), z + depth / 2)
    box = _keep(box, on)
    look = m.fabric("carpet")
    look[:, Look.SECOND] = m.colour("fabric")
    look[:, Look.CELL_U], look[:, Look.CELL_V] = width, depth
    look[:, Look.GROUT_WIDTH], look[:, Look.GROUT_MIX] = d.uniform(0.03, 0.15), d.uniform(0.6, 1.0)
    look[:, Look.PICTURE] = d.chance(0.5).float() * d.uniform(0.5, 0.9)
    look[:, Look.PATTERN_FACE] = 3.0  # the top
    return box[:, None], look[:, None]


def _ceiling_panel(d: Draws, m: Materials, room: _Room) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A flush luminous ceiling panel (offices, kitchens, corridors): box (B, 1, 6), look, on
    (B,) and the panel's centre (B, 3)."""
    on = d.chance(constant([0.05, 0.05, 0.6, 0.85, 0.1, 0.7], d.device)[room.type])
    long = d.chance(0.6)
    a, b = torch.where(long, 0.6, 0.3), torch.where(long, 0.3, 0.3)
    x = room.width * d.uniform(0.3, 0.7)
    z = room.depth * d.uniform(0.3, 0.7)
    box = _keep(_stack_box(x - a, room.height - 0.035, z - b, x + a, room.height, z + b), on)
    look = make_look(m.colour("ceiling", 0.02), second=m.colour("metal", 0.05), emission=d.uniform(3.0, 8.0),
                     cell_u=d.uniform(0.08, 0.2), cell_v=d.uniform(0.08, 0.2), grout_width=0.008,
                     grout_mix=d.uniform(0.1, 0.4), pattern_face=2.0)
    return box[:, None], look[:, None], on, torch.stack([x, room.height, z], -1)


def _spot_on(d: Draws, tops: list[dict[str, Tensor]], groups: list[int], half: Tensor,
             set_yaw: Tensor, set_pivot: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A random spot on a random top surface with room for something `half` (B,) wide each
    way: world x, z, the surface height y (all (B,)), and whether there was one."""
    rects = torch.stack([t["rect"] for t in tops], 1)  # (B, S, 5)
    room_enough = (((rects[..., 2] - rects[..., 0]) > 2 * half[:, None])
                   & ((rects[..., 3] - rects[..., 1]) > 2 * half[:, None]))
    usable = torch.stack([t["on"] for t in tops], 1) & room_enough
    choice = (d.uniform(n=len(tops)) * usable.float()).argmax(1)
    found = usable.any(1)
    x0, z0, x1, z1, y = _take(rects, choice).unbind(-1)
    x = x0 + half + d.uniform() * (x1 - x0 - 2 * half).clamp(min=0)
    z = z0 + half + d.uniform() * (z1 - z0 - 2 * half).clamp(min=0)
    on_set = constant(groups, d.device, torch.int64)[choice] == 1
    # a spot on the turned table set: from the set's frame to the world
    wx, wz = rotate_y(x, z, torch.cos(set_yaw), torch.sin(set_yaw))
    x = torch.where(on_set, wx + set_pivot[:, 0], x)
    z = torch.where(on_set, wz + set_pivot[:, 2], z)
    return x, z, y, found


def _clutter(
    d: Draws, m: Materials, room: _Room, occupied: _Occupancy, tops: list[dict[str, Tensor]],
) -> tuple[Tensor, Tensor]:
    """CLUTTER things on furniture tops or on the floor by a wall: cardboard boxes, stacks of
    books, electronics, cushions, bags, bins and baskets. Boxes (B, CLUTTER, 6) in the room
    frame, looks (B, CLUTTER, F)."""
    boxes, looks = [], []
    zero = torch.zeros(d.batch, device=d.device)
    for _ in range(CLUTTER):
        thing = d.index(6)
        size = torch.stack([
            torch.stack([d.uniform(0.2, 0.5), d.uniform(0.15, 0.45), d.uniform(0.2, 0.45)], -1),
            torch.stack([d.uniform(0.15, 0.3), d.uniform(0.03, 0.15), d.uniform(0.2, 0.28)], -1),
            torch.stack([d.uniform(0.2, 0.45), d.uniform(0.05, 0.2), d.uniform(0.15, 0.35)], -1),
            torch.stack([d.uniform(0.3, 0.5), d.uniform(0.1, 0.2), d.uniform(0.3, 0.5)], -1),
            torch.stack([d.uniform(0.25, 0.45), d.uniform(0.3, 0.55), d.uniform(0.15, 0.3)], -1),
            torch.stack([d.uniform(0.25, 0.45), d.uniform(0.2, 0.45), d.uniform(0.25, 0.4)], -1)], 1)
        size = _take(size, thing)
        half = torch.maximum(size[:, 0], size[:, 2]) / 2
        x, z, y, on_top = _spot_on(d, tops, [0] * len(tops), half, zero, torch.zeros(d.batch, 3, device=d.device))
        spots = _against_wall(d, room, size[:, 0], size[:, 2], candidates=6)
        footprint = torch.stack([spots["x"] - spots["half_x"], torch.zeros_like(spots["x"]),
                                 spots["z"] - spots["half_z"], spots["x"] + spots["half_x"],
                                 size[:, 1, None].expand_as(spots["x"]), spots["z"] + spots["half_z"]], -1)
        pick, on_floor = _first(occupied.free(footprint))
        floor = d.chance(torch.where(thing >= 4, 0.9, 0.4)) | ~on_top
        box = torch.where(floor[:, None], _take(footprint, pick),
                          _stack_box(x - size[:, 0] / 2, y, z - size[:, 2] / 2, x + size[:, 0] / 2, y + size[:, 1],
                                     z + size[:, 2] / 2))
        on = d.chance(0.8) & torch.where(floor, on_floor, on_top)
        occupied.add(box, on & floor)
        boxes.append(_keep(box, on))
        book = make_look(m.colour("books", 0.1), gloss=0.1, shininess=30.0)
        options = torch.stack([m.cardboard(), book, m.dark(), m.fabric(), m.fabric(), m.painted()], 1)
        looks.append(_take(options, thing))
    return torch.stack(boxes, 1), torch.stack(looks, 1)


def _cylinders(
    d: Draws, m: Materials, room: _Room, occupied: _Occupancy, tops: list[dict[str, Tensor]], groups: list[int],
    set_yaw: Tensor, set_pivot: Tensor, set_on: Tensor, panel_on: Tensor,
) -> tuple[Tensor, Tensor, dict]:
    """The CYLINDERS vertical cylinders (B, CYLINDERS, 5) and their looks: a floor lamp (pole
    and shade), a table lamp (stem and shade), small things (cups, vases, bottles, plant pots)
    and a round ceiling fixture or pendant. Also returns the lamps for the lights."""
    device = d.device
    zero = torch.zeros(d.batch, device=device)
    # a floor lamp by a wall
    spots = _against_wall(d, room, torch.full_like(zero, 0.5), torch.full_like(zero, 0.5), candidates=4)
    footprint = torch.stack([spots["x"] - 0.25, torch.zeros_like(spots["x"]), spots["z"] - 0.25,
                             spots["x"] + 0.25, torch.full_like(spots["x"], 1.9), spots["z"] + 0.25], -1)
    pick, found = _first(occupied.free(footprint))
    floor_lamp = d.chance(constant([0.35, 0.45, 0.05, 0.15, 0.15, 0.1], device)[room.type]) & found
    occupied.add(_take(footprint, pick), floor_lamp)
    x, z = _take(spots["x"], pick), _take(spots["z"], pick)
    pole_h, shade_h = d.uniform(1.3, 1.7), d.uniform(0.2, 0.35)
    rows = [torch.stack([x, z, d.uniform(0.012, 0.02), zero, pole_h], -1),
            torch.stack([x, z, d.uniform(0.15, 0.25), pole_h - 0.05, pole_h - 0.05 + shade_h], -1)]
    on = [floor_lamp, floor_lamp]
    floor_lamp_light = torch.stack([x, pole_h - 0.11, z], -1)

    # a table lamp on a nightstand, desk or cabinet
    x, z, y, found = _spot_on(d, tops, groups, torch.full_like(zero, 0.18), set_yaw, set_pivot)
    table_lamp = d.chance(torch.where(room.type == 0, 0.55, 0.3)) & found & (y < 1.3)
    stem_h = d.uniform(0.2, 0.35)
    rows += [torch.stack([x, z, d.uniform(0.02, 0.06), y, y + stem_h], -1),
             torch.stack([x, z, d.uniform(0.1, 0.17), y + stem_h - 0.03,
                          y + stem_h - 0.03 + d.uniform(0.15, 0.24)], -1)]
    on += [table_lamp, table_lamp]
    table_lamp_light = torch.stack([x, y + stem_h - 0.07, z], -1)

    # lamps are lit at night, and now and then by day
    lit_floor = floor_lamp & d.chance(torch.where(room.day, 0.2, 0.8))
    lit_table = table_lamp & d.chance(torch.where(room.day, 0.2, 0.8))
    looks = [m.metal(), m.lampshade(lit_floor), torch.where(d.chance(0.5)[:, None], m.metal(), m.painted()),
             m.lampshade(lit_table)]

    # cups, vases and bottles on tops; plant pots on the floor by a wall
    for _ in range(CYLINDERS - 5):
        thing = d.index(4)
        radius = torch.stack([d.uniform(0.035, 0.045), d.uniform(0.05, 0.1), d.uniform(0.03, 0.04),
                              d.uniform(0.12, 0.2)], -1)
        height = torch.stack([d.uniform(0.08, 0.11), d.uniform(0.15, 0.35), d.uniform(0.2, 0.3),
                              d.uniform(0.2, 0.45)], -1)
        radius, height = _take(radius, thing), _take(height, thing)
        x, z, y, on_top = _spot_on(d, tops, groups, radius + 0.02, set_yaw, set_pivot)
        spots = _against_wall(d, room, 2 * radius + 0.1, 2 * radius + 0.1, candidates=6)
        footprint = torch.stack([spots["x"] - radius[:, None], torch.zeros_like(spots["x"]),
                                 spots["z"] - radius[:, None], spots["x"] + radius[:, None],
                                 height[:, None].expand_as(spots["x"]), spots["z"] + radius[:, None]], -1)
        pick, on_floor = _first(occupied.free(footprint))
        pot = thing == 3
        x = torch.where(pot, _take(spots["x"], pick), x)
        z = torch.where(pot, _take(spots["z"], pick), z)
        y = torch.where(pot, 0.0, y)
        placed = d.chance(0.65) & torch.where(pot, on_floor, on_top)
        occupied.add(_take(footprint, pick), placed & pot)
        rows.append(torch.stack([x, z, radius, y, y + height], -1))
        on.append(placed)
        ceramic = make_look(torch.where(d.chance(0.5)[:, None], m.colour("ceiling", 0.03), m.colour("books", 0.1)),
                            gloss=d.uniform(0.2, 0.5), shininess=80.0)
        bottle = make_look(m.colour("books", 0.1) * 0.5, gloss=0.6, shininess=150.0, dropout=0.5)
        terracotta = make_look(m.colour("tile", 0.1), noise_amp=0.05, noise_freq=20.0)
        looks.append(_take(torch.stack([ceramic, ceramic, bottle, terracotta], 1), thing))

    # a round ceiling fixture, or a pendant over the table
    pendant = set_on & ((room.type == 2) | (room.type == 4)) & d.chance(0.6)
    x = torch.where(pendant, set_pivot[:, 0], room.width * d.uniform(0.3, 0.7))
    z = torch.where(pendant, set_pivot[:, 2], room.depth * d.uniform(0.3, 0.7))
    radius = d.uniform(0.12, 0.3) * torch.where(pendant, 1.3, 1.0)
    top = room.height - torch.where(pendant, d.uniform(0.5, 0.9), 0.0)
    bottom = top - d.uniform(0.05, 0.14) * torch.where(pendant, 2.5, 1.0)
    rows.append(torch.stack([x, z, radius, bottom, top], -1))
    on.append(~panel_on)
    diffuser = make_look(m.colour("ceiling", 0.02), emission=d.uniform(3.0, 8.0))
    looks.append(torch.where(pendant[:, None], m.lampshade(torch.ones_like(pendant)), diffuser))
    fixture_light = torch.stack([x, bottom - 0.08, z], -1)

    void = constant([0.0, 0.0, 0.05, VOID, VOID + 0.1], device)
    cylinders = torch.where(torch.stack(on, 1)[..., None], torch.stack(rows, 1), void)
    lamps = {"floor": (floor_lamp_light, lit_floor), "table": (table_lamp_light, lit_table), "fixture": fixture_light}
    return cylinders, torch.stack(looks, 1), lamps

