"""The random room generator (`random_scenes`) and hand-made scenes (`simple_scene`).

The generator (`random_scenes`) draws NYU's kinds of rooms (bedrooms, living rooms,
kitchens, offices, dining rooms, corridors) of real sizes, deep and often open: L-shaped
rooms with wings up to 6 m, doorways into rooms and corridors beyond; places the hand-held
camera (0.8-1.8 m high, pitch -30..+10 degrees, up to 6 degrees of roll) first, mostly near a
wall looking in, otherwise anywhere looking across the room; then furniture from templates
(beds, sofas, armchairs, bookcases, cabinets, wardrobes, desks with monitors, TV stands,
kitchen runs) against the walls, a table with chairs and an armchair or sofa standing at any
angle, closed doors, pictures, curtains, rugs, skirting boards, 20 pieces of clutter on tops
and floors (boxes, books, electronics, cushions, bags, bins), cups, bottles, vases and plant
pots, lamps and ceiling lights, each at the first of a few random spots that is clear of the
camera and of what came before; half the time turns the camera towards a piece of
furniture at least 1.5 m away, and away from a wall less than 1.5 m ahead. Surfaces are photo
textures (atlas.py) or procedural looks (materials.py). Rooms are at most 10 m long and a wing
or what lies beyond a door adds at most 6 m more, so every ray ends well within raycast.FAR.

`python -m depth stats` measures how deep and varied the result is, beside NYU.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .camera import _aim, _face_open_space, hand_held_pose
from .furniture import (
    CAMERA_CLEARANCE,
    WALL_PIECES,
    _baseboards,
    _ceiling_panel,
    _closed_door,
    _clutter,
    _curtains,
    _cylinders,
    _free_standing,
    _pictures,
    _rug,
    _table_set,
    _wall_pieces,
)
from .hashing import Draws
from .lighting import place_lights
from .materials import Materials, make_look
from .rooms import _Occupancy, _Room, _stack_box
from .scene import FACES, VOID, Scene


def random_scenes(draws: Draws) -> Scene:
    """One random NYU-like room per frame of `draws` (B frames): see the module docstring.

    The room type (bedroom, living room, kitchen, office, dining room, corridor) sets the
    odds of its size, floor and furniture. The camera is placed first; every later piece is
    tried at a few random spots and kept at the first one clear of the camera, the door, the
    windows and the pieces before it, or left out.
    """
    d, m = draws, Materials(draws)
    room = _Room(d, m)
    camera_pos, camera_ypr = hand_held_pose(d, room)
    W, H = room.width, room.height
    zero = torch.zeros_like(W)

    occupied = _Occupancy()
    clearance = CAMERA_CLEARANCE
    occupied.add(_stack_box(camera_pos[:, 0] - clearance, zero, camera_pos[:, 2] - clearance,
                            camera_pos[:, 0] + clearance, H, camera_pos[:, 2] + clearance))
    half = room.door_width / 2
    occupied.add(room.wall_box(room.door_side, room.door_at - half - 0.1, room.door_at + half + 0.1, -0.9, 0.1,
                               zero, H), room.door)
    for window in room.windows:
        occupied.add(room.wall_box(window["side"], window["at"] - window["width"] / 2,
                                   window["at"] + window["width"] / 2, -0.15, 0.1, window["sill"], window["top"]),
                     window["on"])
    occupied.add(_stack_box(W - 0.8, zero, room.wing_z0, W + 0.1, H, room.wing_z1), room.wing)

    door_boxes, door_looks = _closed_door(d, m, room, occupied)
    main_boxes, main_looks, main_tops = _wall_pieces(d, m, room, occupied, range(1))
    set_boxes, set_looks, set_yaw, set_pivot, table_top = _table_set(d, m, room, occupied)
    free_boxes, free_looks, free_yaw, free_pivot, free_piece = _free_standing(d, m, room, occupied)
    other_boxes, other_looks, other_tops = _wall_pieces(d, m, room, occupied, range(1, WALL_PIECES))
    piece_boxes, piece_looks = torch.cat([main_boxes, other_boxes], 1), torch.cat([main_looks, other_looks], 1)
    tops = main_tops + other_tops
    picture_boxes, picture_looks = _pictures(d, m, room, occupied)
    curtain_boxes, curtain_looks = _curtains(d, m, room, occupied)
    rug_box, rug_look = _rug(d, m, room)
    baseboard_boxes, baseboard_looks = _baseboards(d, m, room)
    panel_box, panel_look, panel_on, panel_centre = _ceiling_panel(d, m, room)
    clutter_boxes, clutter_looks = _clutter(d, m, room, occupied, tops)
    all_tops, groups = tops + [table_top], [0] * len(tops) + [1]
    cylinders, cylinder_looks, lamps = _cylinders(d, m, room, occupied, all_tops, groups, set_yaw, set_pivot,
                                                  table_top["on"], panel_on)
    lights = place_lights(d, room, panel_on, panel_centre, lamps)
    camera_ypr = _aim(d, camera_pos, camera_ypr, all_tops + [free_piece])
    camera_ypr = _face_open_space(d, camera_pos, camera_ypr, room)

    room_aligned = torch.cat([piece_boxes, door_boxes, picture_boxes, curtain_boxes, rug_box, panel_box,
                              clutter_boxes, baseboard_boxes], 1)
    boxes = torch.cat([room_aligned, set_boxes, free_boxes], 1)
    looks = torch.cat([piece_looks, door_looks, picture_looks, curtain_looks, rug_look, panel_look, clutter_looks,
                       baseboard_looks, set_looks, free_looks], 1)
    return Scene(
        space_lo=room.space_lo, space_hi=room.space_hi, space_looks=room.looks,
        box_lo=boxes[..., :3], box_hi=boxes[..., 3:], box_looks=looks,
        group_sizes=(room_aligned.shape[1], set_boxes.shape[1], free_boxes.shape[1]),
        group_yaw=torch.stack([zero, set_yaw, free_yaw], 1),
        group_pivot=torch.stack([torch.zeros_like(set_pivot), set_pivot, free_pivot], 1),
        cylinders=cylinders, cylinder_looks=cylinder_looks,
        light_pos=lights["pos"], light_rgb=lights["rgb"], light_radius=lights["radius"],
        light_spot=lights["spot"], ambient=lights["ambient"],
        camera_pos=camera_pos, camera_ypr=camera_ypr, key=d.keys, room_type=room.type,
    )


def simple_scene(
    room_size: tuple[float, float, float],
    camera_pos: tuple[float, float, float],
    camera_ypr: tuple[float, float, float] = (0.0, 0.0, 0.0),
    boxes: list[tuple[tuple[float, float, float], tuple[float, float, float]]] = (),
    device: torch.device | str = "cpu",
    box_slots: int = 4,
    cylinder_slots: int = 1,
) -> Scene:
    """One hand-made scene (B = 1): a plain room [0, W] x [0, H] x [0, D] with one light.

    room_size: (W, H, D) metres. boxes: (lo, hi) corners in the room frame, at most box_slots;
    the other slots (and every cylinder) are parked. The light hangs from the ceiling centre.
    """
    device = torch.device(device)
    width, height, depth = room_size
    if len(boxes) > box_slots:
        raise ValueError(f"{len(boxes)} boxes do not fit in {box_slots} slots")

    def t(values: object) -> Tensor:
        return torch.tensor(values, dtype=torch.float32, device=device)

    grey = t([[0.5, 0.5, 0.5]])
    box_lo = t([[0.0, VOID, 0.0]]).repeat(box_slots, 1)
    box_hi = box_lo + 0.1
    for slot, (lo, hi) in enumerate(boxes):
        box_lo[slot], box_hi[slot] = t(lo), t(hi)
    cylinders = t([[0.0, 0.0, 0.05, VOID, VOID + 0.1]]).repeat(cylinder_slots, 1)
    return Scene(
        space_lo=t([[[0.0, 0.0, 0.0]]]), space_hi=t([[[width, height, depth]]]),
        space_looks=make_look(grey).expand(FACES, -1)[None, None].clone(),
        box_lo=box_lo[None], box_hi=box_hi[None],
        box_looks=make_look(grey).expand(box_slots, -1)[None].clone(),
        group_sizes=(box_slots,), group_yaw=t([[0.0]]), group_pivot=t([[[0.0, 0.0, 0.0]]]),
        cylinders=cylinders[None], cylinder_looks=make_look(grey).expand(cylinder_slots, -1)[None].clone(),
        light_pos=t([[[width / 2, height - 0.1, depth / 2]]]), light_rgb=t([[[4.0, 4.0, 4.0]]]),
        light_radius=t([[0.1]]), light_spot=t([[0.0]]), ambient=t([[0.2, 0.2, 0.2]]),
        camera_pos=t([camera_pos]), camera_ypr=t([camera_ypr]),
        key=torch.zeros(1, dtype=torch.int64, device=device),
        room_type=torch.full((1,), -1, dtype=torch.int64, device=device),  # no kind of room
    )
