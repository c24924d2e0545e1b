"""The Scene: B indoor scenes as tensors, the only thing the renderer reads.

A `Scene` holds B independent scenes as tensors with a leading batch axis; the renderer in
the renderer (raycast.py and on) only ever reads these tensors, so a scene can be written by hand (see
`layout.simple_scene`, used by the tests) as well as drawn at random (`random_scenes`).

Coordinates: world metres, y up, floor at y = 0. A room's walls are parallel to the x and z
axes; the camera (see camera.py) looks along its own +z with y down and x right.

The scene model:

- Room shell: S "space" boxes, axis-aligned, whose union is the free space of the rooms. The
  camera stands in space 0 (the main room); rays leave the union through walls, floor and
  ceiling. Other spaces make an L-shaped room (a wing overlapping the main room), a door
  opening (a passage through the wall thickness) into a room or corridor beyond, and window
  niches whose far face is the glass. Spaces must overlap to connect, and a ray passes into
  at most two spaces beyond the ones it starts in (see raycast.SPACE_CHAIN). Each space
  face has its own look (6 per space, ordered -x, +x, -y, +y, -z, +z).
- Boxes: N solid boxes, each axis-aligned in the frame of its group. Group 0 is the room
  frame; group g > 0 is turned by `group_yaw[:, g]` about a vertical axis through
  `group_pivot[:, g]` (a dining set standing at an angle). Box slots are split among groups
  by the static `group_sizes`. Furniture is built from boxes.
- Cylinders: C solid vertical cylinders (lamps, cups, vases, pots, ceiling fixtures).
- Looks: every box, cylinder and space face has an appearance vector; `Look` names its fields
  (albedo, a cell pattern for tiles, planks, drawers and book spines, wood grain, noise,
  gloss, emission, a picture pattern, and how often a Kinect loses depth on it).
- Lights: L point lights with a radius (soft shadows) and a downward bias, plus ambient light.
- Camera: position and yaw, pitch, roll.

Every tensor has a fixed shape whatever the scene: unused box and cylinder slots are parked
at `VOID`, high above every room, where no ray reaches them before it leaves the room. This
keeps the renderer free of data-dependent shapes, so torch.compile can fuse it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# ----------------------------------------------------------------------------- constants

_CONSTANTS: dict[tuple, Tensor] = {}


def _frozen(values: object) -> object:
    return tuple(_frozen(v) for v in values) if isinstance(values, (list, tuple)) else values


def constant(values: object, device: torch.device | str, dtype: torch.dtype = torch.float32) -> Tensor:
    """A table of numbers (nested lists) as a tensor on `device`, made once and reused.

    Making it anew for every batch would copy it from the host every time, and on a GPU every
    such copy waits for all the work queued before it.
    """
    if torch.compiler.is_compiling():  # a compiled graph holds its constants itself
        return torch.tensor(values, dtype=dtype, device=device)
    key = (_frozen(values), str(torch.device(device)), dtype)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(values, dtype=dtype, device=device)
    return _CONSTANTS[key]


# ----------------------------------------------------------------------------- the scene

VOID = 1000.0  # height (m) where unused boxes and cylinders are parked, far above every room
FACES = 6  # faces of a box, ordered -x, +x, -y, +y, -z, +z: index 2 * axis + (1 if + side)


@dataclass
class Scene:
    """B scenes as tensors (see the module docstring). Shapes: S spaces, N boxes, C cylinders,
    L lights, G box groups, F = Look.SIZE.

    space_lo, space_hi: (B, S, 3) corners of the free-space boxes; space 0 holds the camera.
    space_looks: (B, S, 6, F).
    box_lo, box_hi: (B, N, 3) corners, in the frame of each box's group.
    box_looks: (B, N, F).
    group_sizes: how many consecutive box slots belong to each group (static ints, sum N).
    group_yaw: (B, G) radians; group_pivot: (B, G, 3) world point the group turns about.
        A world point p is at R_y(-yaw) (p - pivot) in the group frame (R_y as in `rotate_y`).
    cylinders: (B, C, 5) vertical cylinders: centre x, centre z, radius, bottom y, top y.
    cylinder_looks: (B, C, F).
    light_pos: (B, L, 3); light_rgb: (B, L, 3) linear intensity (irradiance at 1 m, head on);
    light_radius: (B, L) metres: the light glows over the lower half of a sphere this big
        around its position (soft shadows); light_spot: (B, L) exponent of a downward
        cosine lobe (0: the same in all directions; 1 or more: a ceiling light).
    ambient: (B, 3) linear irradiance from all directions (light bounced around the room).
    camera_pos: (B, 3); camera_ypr: (B, 3) yaw, pitch (+ looks up), roll, radians.
    key: (B,) int64 per-frame key, seeds the texture patterns.
    room_type: (B,) int64 index into rooms.ROOM_TYPES (-1: a hand-made scene).
    """

    space_lo: Tensor
    space_hi: Tensor
    space_looks: Tensor
    box_lo: Tensor
    box_hi: Tensor
    box_looks: Tensor
    group_sizes: tuple[int, ...]
    group_yaw: Tensor
    group_pivot: Tensor
    cylinders: Tensor
    cylinder_looks: Tensor
    light_pos: Tensor
    light_rgb: Tensor
    light_radius: Tensor
    light_spot: Tensor
    ambient: Tensor
    camera_pos: Tensor
    camera_ypr: Tensor
    key: Tensor
    room_type: Tensor

    @property
    def batch(self) -> int:
        return self.space_lo.shape[0]

    @property
    def device(self) -> torch.device:
        return self.space_lo.device


def rotate_y(x: Tensor, z: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor]:
    """Turn (x, z) by the angle with this cos and sin about the vertical axis (R_y)."""
    return cos * x + sin * z, -sin * x + cos * z




