"""Indoor scenes as batched tensors, and a random generator of NYU-like rooms.

A `Scene` holds B independent scenes as tensors with a leading batch axis; the renderer in
`synthetic.py` only ever reads these tensors, so a scene can be written by hand (see
`simple_scene`, used by the tests) as well as drawn at random (`random_scenes`).

Coordinates: world metres, y up, floor at y = 0. A room's walls are parallel to the x and z
axes; the camera (see synthetic.py) looks along its own +z with y down and x right.

The scene model:

- Room shell: S "space" boxes, axis-aligned, whose union is the free space of the rooms. The
  camera stands in space 0 (the main room); rays leave the union through walls, floor and
  ceiling. Other spaces make an L-shaped room (a wing overlapping the main room), a door
  opening (a passage through the wall thickness) into a room or corridor beyond, and window
  niches whose far face is the glass. Spaces must overlap to connect, and a ray passes into
  at most two spaces beyond the ones it starts in (see synthetic.SPACE_CHAIN). Each space
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

The generator (`random_scenes`) draws NYU's kinds of rooms (bedrooms, living rooms,
kitchens, offices, dining rooms, corridors) of real sizes; places the hand-held camera
(0.8-1.8 m high, pitch -25..+10 degrees, a few degrees of roll) first, mostly near a wall
looking in; then furniture from templates (beds, sofas, armchairs, bookcases, cabinets,
wardrobes, desks with monitors, TV stands, kitchen runs) against the walls, a table with
chairs standing at any angle, closed doors, pictures, curtains, rugs, skirting boards,
clutter on tops and floors, lamps and ceiling lights, each at the first of a few random
spots that is clear of the camera and of what came before; and often turns the camera
towards a piece of furniture. Rooms are at most 10 m long and what lies beyond a door at
most 8 m more, so every ray ends well within synthetic.FAR.

Every tensor has a fixed shape whatever the scene: unused box and cylinder slots are parked
at `VOID`, high above every room, where no ray reaches them before it leaves the room. This
keeps the renderer free of data-dependent shapes, so torch.compile can fuse it.

Random numbers come from a counter-based hash (`Draws`): the i-th number drawn for a frame is
a pure function of the frame's key and i, so frame k is the same whether rendered alone or in
any batch, on any device, and no generator state is carried between calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

# ----------------------------------------------------------------------------- random numbers

_MASK32 = 0xFFFFFFFF


def mix32(x: Tensor) -> Tensor:
    """A 32-bit integer hash (Mueller's) of int64 values in [0, 2**32), or of int32 values
    holding the same 32 bits: the result has the input's dtype and the same bits either way.

    int64 products stay < 2**59 and are masked; int32 products wrap, which is the same modulo
    2**32, and int32 is several times faster on CPU (per-pixel hashes use it). The `& 0xFFFF`
    after each shift makes int32's arithmetic shift a logical one.
    """
    for _ in range(2):
        x = (((x >> 16) & 0xFFFF) ^ x) * 0x45D9F3B
        if x.dtype == torch.int64:
            x = x & _MASK32
    return ((x >> 16) & 0xFFFF) ^ x


def hash_uniform(x: Tensor) -> Tensor:
    """Uniform floats in [0, 1) from hash values (24 bits, exact in float32; int64 or int32)."""
    return ((x >> 8) & 0xFFFFFF).float() * (1.0 / (1 << 24))


def frame_keys(stream: int, indices: Tensor) -> Tensor:
    """(B,) int64 keys, one per frame: `stream` in the high 32 bits, the frame index in the low.

    Different (stream, index) pairs always give different keys, so disjoint streams (the
    train, val and test splits) can never produce the same frame.
    """
    if not 0 <= stream < 2**31:
        raise ValueError(f"stream must be in [0, 2**31), got {stream}")
    return (indices.long() & _MASK32) | (stream << 32)


class Draws:
    """Counter-based random numbers for a batch of frames.

    Every call takes the next n numbers of each frame's sequence: number i of the frame with
    key k is mix32(mix32(lo(k) ^ mix32(i)) ^ hi(k)), with lo and hi hashes of the key's
    halves. The generator draws in the same order for every frame (it has no data-dependent
    branches), so a frame's scene depends only on its key. Numbers are hashed BLOCK at a time
    (one vectorised step for many draws); that changes no value.
    """

    BLOCK = 512

    def __init__(self, keys: Tensor) -> None:
        self.keys = keys
        self.lo = mix32(keys & _MASK32)[:, None]
        self.hi = mix32(((keys >> 32) & _MASK32) ^ 0x9E3779B9)[:, None]
        self.count = 0
        self._block = self._hash(0, 0)
        self._uniforms = hash_uniform(self._block)  # the block as uniforms, made once for many draws
        self._block_start = 0

    @property
    def batch(self) -> int:
        return self.lo.shape[0]

    @property
    def device(self) -> torch.device:
        return self.lo.device

    def _hash(self, start: int, n: int) -> Tensor:
        i = torch.arange(start, start + n, device=self.device, dtype=torch.int64)
        return mix32(mix32(self.lo ^ mix32(i)) ^ self.hi)

    def _take(self, n: int) -> int:
        """Advance by n numbers; returns their offset in the current block."""
        offset = self.count - self._block_start
        if offset + n > self._block.shape[1]:
            self._block_start, offset = self.count, 0
            self._block = self._hash(self.count, max(n, self.BLOCK))
            self._uniforms = hash_uniform(self._block)
        self.count += n
        return offset

    def bits(self, n: int) -> Tensor:
        """(B, n) int64 hash values in [0, 2**32): numbers count .. count + n - 1."""
        offset = self._take(n)
        return self._block[:, offset:offset + n]

    def uniform(self, low: float | Tensor = 0.0, high: float | Tensor = 1.0, n: int | None = None) -> Tensor:
        """Uniform floats in [low, high) (hash_uniform of the numbers): shape (B,) or, with n, (B, n)."""
        offset = self._take(1 if n is None else n)
        u = self._uniforms[:, offset] if n is None else self._uniforms[:, offset:offset + n]
        return low + (high - low) * u

    def triangular(self, low: float, high: float, n: int | None = None) -> Tensor:
        """The mean of two uniforms: values in [low, high), most often near the middle."""
        return 0.5 * (self.uniform(low, high, n) + self.uniform(low, high, n))

    def chance(self, p: float | Tensor) -> Tensor:
        """(B,) bool, True with probability p (a float or a (B,) tensor)."""
        return self.uniform() < p

    def choice(self, probs: Tensor) -> Tensor:
        """(B,) int64 index drawn from per-frame probabilities (B, K) or shared ones (K,)."""
        cumulative = torch.cumsum(probs, -1)
        cumulative = cumulative / cumulative[..., -1:]
        u = self.uniform()[:, None]
        return (u >= cumulative).sum(-1).clamp(max=probs.shape[-1] - 1)

    def index(self, k: int) -> Tensor:
        """(B,) int64 uniform in 0..k-1."""
        return (self.uniform() * k).long().clamp(max=k - 1)


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


# ----------------------------------------------------------------------------- colours

def srgb_to_linear(srgb: Tensor) -> Tensor:
    """sRGB 0..255 values to linear reflectance 0..1 (the 2.2 gamma approximation)."""
    return (srgb / 255.0).clamp(0, 1) ** 2.2


# Colours (sRGB) that real rooms are made of; each draw jitters them a little.
PALETTES: dict[str, list[tuple[int, int, int]]] = {
    "paint": [(244, 241, 234), (236, 232, 221), (230, 224, 210), (218, 207, 186), (208, 207, 202),
              (194, 187, 174), (240, 229, 190), (200, 212, 220), (192, 202, 182), (236, 210, 186),
              (214, 204, 216), (222, 226, 228), (170, 150, 128), (150, 160, 170), (190, 128, 100),
              (120, 130, 110), (232, 220, 200), (210, 196, 170)],
    "ceiling": [(246, 245, 240), (238, 236, 230), (232, 230, 224), (242, 238, 226)],
    "wood": [(198, 160, 112), (214, 182, 132), (180, 128, 74), (150, 84, 52), (104, 68, 46),
             (66, 44, 32), (164, 152, 136), (190, 150, 100), (128, 86, 56), (222, 196, 156)],
    "painted": [(242, 242, 238), (228, 226, 220), (204, 204, 200), (160, 160, 158), (60, 60, 62),
                (36, 36, 38), (214, 204, 186), (120, 130, 140), (176, 190, 180), (150, 40, 40)],
    "fabric": [(132, 130, 128), (74, 74, 80), (190, 176, 152), (112, 82, 62), (52, 62, 92),
               (150, 52, 46), (84, 112, 84), (72, 100, 142), (226, 216, 196), (198, 160, 64),
               (112, 82, 112), (170, 170, 172), (40, 40, 44), (210, 190, 170)],
    "bedding": [(240, 240, 236), (232, 226, 214), (200, 212, 228), (226, 200, 200), (190, 200, 180),
                (150, 160, 180), (240, 230, 200), (120, 120, 130)],
    "carpet": [(182, 166, 142), (140, 138, 134), (110, 118, 134), (120, 96, 76), (100, 110, 92),
               (160, 150, 140), (90, 86, 84), (150, 110, 100)],
    "tile": [(226, 224, 218), (204, 194, 178), (128, 128, 126), (182, 162, 142), (170, 104, 74),
             (240, 240, 240), (60, 62, 66), (196, 200, 204)],
    "stone": [(230, 228, 222), (60, 60, 62), (150, 146, 140), (200, 190, 176), (120, 100, 90),
              (20, 20, 22)],
    "metal": [(190, 190, 196), (120, 120, 124), (46, 46, 48), (26, 26, 28), (182, 150, 96)],
    "books": [(150, 30, 30), (36, 52, 100), (30, 90, 60), (26, 26, 28), (232, 228, 216),
              (220, 180, 50), (210, 100, 40), (110, 70, 50), (130, 130, 130), (120, 170, 200),
              (90, 30, 50), (60, 120, 120), (190, 170, 140), (200, 60, 80), (70, 70, 110),
              (240, 240, 240)],
    "sky": [(200, 222, 245), (235, 240, 245), (180, 190, 200), (150, 180, 140), (245, 245, 240),
            (120, 150, 110), (210, 215, 220)],
    "frame": [(24, 24, 24), (240, 240, 238), (150, 110, 70), (190, 160, 90), (90, 60, 40)],
    "cardboard": [(190, 150, 100), (170, 130, 90), (210, 180, 130), (240, 236, 226)],
    "lampshade": [(250, 240, 220), (245, 235, 210), (236, 226, 200), (255, 248, 235)],
}


class Palettes:
    """The palettes as linear-RGB tensors on one device, and draws from them."""

    def __init__(self, device: torch.device) -> None:
        self.tables = {
            name: srgb_to_linear(constant(colours, device))
            for name, colours in PALETTES.items()
        }

    def draw(self, draws: Draws, name: str, jitter: float = 0.08) -> Tensor:
        """(B, 3) linear RGB: a palette colour, its brightness and hue jittered by up to `jitter`."""
        table = self.tables[name]
        colour = table[draws.index(table.shape[0])]
        brightness = 1.0 + jitter * (2 * draws.uniform() - 1)
        tint = 1.0 + 0.5 * jitter * (2 * draws.uniform(n=3) - 1)
        colour = colour * brightness[:, None] * tint
        # real paints and fabrics are rarely pure: pull a little towards grey, up to 80 % white
        grey = colour.mean(-1, keepdim=True)
        return (grey + (colour - grey) * 0.85).clamp(0.002, 0.8)


# ----------------------------------------------------------------------------- looks

class Look:
    """Field indices of an appearance vector (the last axis of every `*_looks` tensor).

    Lengths are metres on the surface. Surface coordinates (u, v) run along a face from the
    corner of its box (for room faces: from the room's corner), v up on vertical faces.
    """

    ALBEDO = slice(0, 3)  # linear RGB reflectance
    SECOND = slice(3, 6)  # grout, frame and shadowed-gap colour of the cell pattern
    CELL_U = 6  # cell size along u: tiles, planks, drawers, book spines, window panes
    CELL_V = 7  # cell size along v
    STAGGER = 8  # each row of cells shifted by this fraction of a cell times a random number
    CELL_TINT = 9  # random brightness change per cell (+-)
    CELL_PALETTE = 10  # chance that a cell takes a random book colour instead of the albedo
    CELL_FILL = 11  # cells fill from their bottom to a random height in [fill, 1] (book heights)
    GROUT_WIDTH = 12  # width of the lines between cells
    GROUT_MIX = 13  # how much of the SECOND colour those lines show
    GRAIN_AMP = 14  # wood grain or fabric folds: relative brightness amplitude
    GRAIN_FREQ = 15  # grain lines per metre
    GRAIN_AXIS = 16  # 0: the lines run along v, 1: along u
    NOISE_AMP = 17  # relative amplitude of fractal noise (plaster, carpet, wear)
    NOISE_FREQ = 18  # its base frequency, per metre
    GLOSS = 19  # specular reflectance
    SHININESS = 20  # Blinn-Phong exponent
    EMISSION = 21  # emitted radiance, as a multiple of the albedo (windows, lamp shades, screens)
    DROPOUT = 22  # probability that a Kinect reads no depth here (glass, black screens, metal)
    PICTURE = 23  # 1: show a painting or poster inside the frame of the first cell
    PATTERN_FACE = 24  # face index (0..5) that carries the cells/picture; -1: every face
    SIZE = 25


_DEFAULT_LOOK = [0.0] * Look.SIZE
for _field, _value in ((Look.CELL_U, 1e3), (Look.CELL_V, 1e3), (Look.CELL_FILL, 1.0), (Look.SHININESS, 20.0),
                       (Look.PATTERN_FACE, -1.0)):
    _DEFAULT_LOOK[_field] = _value


def make_look(albedo: Tensor, **fields: float | Tensor) -> Tensor:
    """(B, Look.SIZE) appearance vectors: albedo (B, 3) plus named fields (floats or (B,) tensors).

    Unnamed fields default to a plain matte surface: one huge cell, no pattern, no emission.
    Names are the lower-case `Look` attributes; `second` is a (B, 3) colour.
    """
    look = constant(_DEFAULT_LOOK, albedo.device).expand(albedo.shape[0], -1).clone()
    look[:, Look.ALBEDO] = albedo
    look[:, Look.SECOND] = fields.pop("second", albedo * 0.5)
    for name, value in fields.items():
        look[:, getattr(Look, name.upper())] = value
    return look


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

    @property
    def batch(self) -> int:
        return self.space_lo.shape[0]

    @property
    def device(self) -> torch.device:
        return self.space_lo.device


def rotate_y(x: Tensor, z: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor]:
    """Turn (x, z) by the angle with this cos and sin about the vertical axis (R_y)."""
    return cos * x + sin * z, -sin * x + cos * z


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
    )


# ----------------------------------------------------------------------------- materials

class Materials:
    """Looks (B, F) of the materials rooms are made of, each call a fresh random variant."""

    def __init__(self, draws: Draws) -> None:
        self.d = draws
        self.palettes = Palettes(draws.device)

    def colour(self, name: str, jitter: float = 0.08) -> Tensor:
        return self.palettes.draw(self.d, name, jitter)

    def paint(self) -> Tensor:
        """Wall paint: mottled a little, nearly matte."""
        d = self.d
        return make_look(self.colour("paint", 0.05), noise_amp=d.uniform(0.015, 0.06),
                         noise_freq=d.uniform(1.0, 4.0), gloss=d.uniform(0.0, 0.04), shininess=8.0)

    def ceiling(self, tiled: Tensor) -> Tensor:
        """Plain white plaster, or (tiled) an office grid of 60 cm tiles in thin metal rails."""
        d = self.d
        size = torch.where(d.chance(0.5), 0.6, 1.2)
        return make_look(self.colour("ceiling", 0.03), second=self.colour("metal", 0.05) * 0.8,
                         cell_u=torch.where(tiled, 0.6, 1e3), cell_v=torch.where(tiled, size, 1e3),
                         grout_width=0.012, grout_mix=torch.where(tiled, 0.8, 0.0),
                         noise_amp=torch.where(tiled, d.uniform(0.03, 0.08), d.uniform(0.01, 0.03)),
                         noise_freq=torch.where(tiled, 25.0, 2.0), cell_tint=0.02)

    def wood(self, grain_axis: float | Tensor = 0.0) -> Tensor:
        d = self.d
        return make_look(self.colour("wood", 0.1), grain_amp=d.uniform(0.04, 0.16), grain_freq=d.uniform(15, 50),
                         grain_axis=grain_axis, noise_amp=d.uniform(0.02, 0.06), noise_freq=d.uniform(3, 10),
                         gloss=d.uniform(0.02, 0.2), shininess=d.uniform(15, 60))

    def painted(self) -> Tensor:
        """Laminate or painted wood."""
        d = self.d
        return make_look(self.colour("painted", 0.05), noise_amp=d.uniform(0.01, 0.03), noise_freq=5.0,
                         gloss=d.uniform(0.03, 0.25), shininess=d.uniform(20, 80))

    def body(self) -> Tensor:
        """Furniture: wood (60 %) or painted."""
        return torch.where(self.d.chance(0.6)[:, None], self.wood(), self.painted())

    def fronts(self, body: Tensor, cells: Tensor, face: Tensor) -> Tensor:
        """The body's look with drawer or door gaps (cells (B, 2), metres) on one face."""
        look = body.clone()
        look[:, Look.SECOND] = body[:, Look.ALBEDO] * 0.25
        look[:, Look.CELL_U], look[:, Look.CELL_V] = cells[:, 0], cells[:, 1]
        look[:, Look.GROUT_WIDTH] = self.d.uniform(0.003, 0.008)
        look[:, Look.GROUT_MIX] = self.d.uniform(0.6, 1.0)
        look[:, Look.PATTERN_FACE] = face
        return look

    def fabric(self, name: str = "fabric") -> Tensor:
        d = self.d
        return make_look(self.colour(name, 0.1), noise_amp=d.uniform(0.05, 0.14), noise_freq=d.uniform(15, 60),
                         grain_amp=d.uniform(0.0, 0.05), grain_freq=d.uniform(4, 12), gloss=0.01, shininess=5.0)

    def blanket(self) -> Tensor:
        """Bedding: plain, striped (grain as stripes) or checked (cells from the palette)."""
        d = self.d
        look = self.fabric("bedding")
        pattern = d.index(3)
        look[:, Look.GRAIN_AMP] = torch.where(pattern == 1, d.uniform(0.1, 0.3), look[:, Look.GRAIN_AMP])
        look[:, Look.GRAIN_FREQ] = torch.where(pattern == 1, d.uniform(3, 10), look[:, Look.GRAIN_FREQ])
        checked = pattern == 2
        size = d.uniform(0.08, 0.3)
        look[:, Look.CELL_U] = torch.where(checked, size, 1e3)
        look[:, Look.CELL_V] = torch.where(checked, size, 1e3)
        look[:, Look.CELL_TINT] = torch.where(checked, 0.25, 0.0)
        return look

    def books(self, shelf_pitch: Tensor, shelf: Tensor, face: Tensor) -> Tensor:
        """Rows of book spines standing on shelves `shelf_pitch` apart (shelf: their look)."""
        d = self.d
        return make_look(self.colour("books"), second=shelf[:, Look.ALBEDO], cell_u=d.uniform(0.025, 0.045),
                         cell_v=shelf_pitch, stagger=1.0, cell_tint=0.2, cell_palette=d.uniform(0.7, 1.0),
                         cell_fill=d.uniform(0.55, 0.8), grout_width=0.004, grout_mix=0.8,
                         noise_amp=0.04, noise_freq=30.0, pattern_face=face, gloss=0.03)

    def screen(self, face: Tensor) -> Tensor:
        """A television or monitor: black glass, often showing a picture; Kinect loses most of it."""
        d = self.d
        on = d.chance(0.3)
        look = make_look(self.colour("metal", 0.03) * 0.3, second=self.colour("metal", 0.03) * 0.3,
                         gloss=0.5, shininess=120.0, dropout=torch.where(on, 0.3, 0.7), pattern_face=face,
                         cell_u=d.uniform(0.5, 1.2), cell_v=d.uniform(0.3, 0.7), grout_width=0.015,
                         grout_mix=1.0, picture=on.float(), emission=torch.where(on, d.uniform(1.0, 3.0), 0.0))
        return look

    def dark(self) -> Tensor:
        return make_look(self.colour("metal", 0.05) * torch.where(self.d.chance(0.5), 0.4, 1.0)[:, None],
                         gloss=0.1, shininess=30.0, dropout=0.15)

    def metal(self) -> Tensor:
        return make_look(self.colour("metal", 0.05), gloss=self.d.uniform(0.2, 0.6), shininess=60.0, dropout=0.2)

    def stone(self) -> Tensor:
        """Countertops: speckled stone or laminate."""
        d = self.d
        return make_look(self.colour("stone", 0.05), noise_amp=d.uniform(0.05, 0.2), noise_freq=d.uniform(20, 80),
                         gloss=d.uniform(0.1, 0.4), shininess=80.0)

    def tiles(self, face: Tensor | float = -1.0, size: Tensor | None = None) -> Tensor:
        """Ceramic tiles with grout lines."""
        d = self.d
        size = d.uniform(0.1, 0.3) if size is None else size
        grout = self.colour("tile", 0.05) * 0.5 + 0.5 * self.colour("ceiling", 0.02) * d.uniform(0.3, 1.0)[:, None]
        return make_look(self.colour("tile", 0.05), second=grout, cell_u=size,
                         cell_v=size * torch.where(d.chance(0.3), 0.5, 1.0),
                         stagger=torch.where(d.chance(0.2), 0.5, 0.0), cell_tint=d.uniform(0.01, 0.06),
                         grout_width=d.uniform(0.002, 0.005), grout_mix=0.8, noise_amp=0.02, noise_freq=8.0,
                         gloss=d.uniform(0.1, 0.4), shininess=100.0, pattern_face=face)

    def appliance(self, face: Tensor, cells: Tensor) -> Tensor:
        """Fridges and ovens: white or steel, glossy, doors as cells."""
        d = self.d
        white = d.chance(0.5)
        colour = torch.where(white[:, None], self.colour("ceiling", 0.03), self.colour("metal", 0.05))
        return make_look(colour, second=colour * 0.3, cell_u=cells[:, 0], cell_v=cells[:, 1], grout_width=0.004,
                         grout_mix=0.9, gloss=d.uniform(0.2, 0.5), shininess=80.0, pattern_face=face,
                         dropout=torch.where(white, 0.0, 0.25))

    def floor(self, room_type: Tensor) -> Tensor:
        """Wood planks, tiles, carpet or vinyl, with the odds of each room type."""
        d = self.d
        odds = constant(FLOOR_ODDS, d.device)[room_type]
        kind = d.choice(odds)
        planks = self.wood(grain_axis=1.0)
        width, length = d.uniform(0.09, 0.22), d.uniform(0.6, 2.0)
        planks[:, Look.CELL_U], planks[:, Look.CELL_V] = width, length
        planks[:, Look.STAGGER] = 1.0
        planks[:, Look.CELL_TINT] = d.uniform(0.05, 0.2)
        planks[:, Look.SECOND] = planks[:, Look.ALBEDO] * 0.4
        planks[:, Look.GROUT_WIDTH], planks[:, Look.GROUT_MIX] = 0.0015, 0.7
        planks[:, Look.GLOSS] = d.uniform(0.05, 0.35)
        tiles = self.tiles(size=d.uniform(0.25, 0.6))
        carpet = make_look(self.colour("carpet", 0.1), noise_amp=d.uniform(0.08, 0.2), noise_freq=d.uniform(40, 120),
                           gloss=0.0, shininess=2.0)
        office_tiles = d.chance(0.4)  # carpet tiles, 50 cm, each laid a little differently
        carpet[:, Look.CELL_U] = torch.where(office_tiles, 0.5, 1e3)
        carpet[:, Look.CELL_V] = torch.where(office_tiles, 0.5, 1e3)
        carpet[:, Look.CELL_TINT] = 0.04
        vinyl = make_look(self.colour("tile", 0.08), noise_amp=d.uniform(0.03, 0.1), noise_freq=d.uniform(2, 10),
                          gloss=d.uniform(0.1, 0.3), shininess=40.0)
        options = torch.stack([planks, tiles, carpet, vinyl], 1)
        return options[torch.arange(d.batch, device=d.device), kind]

    def glass(self, day: Tensor, width: Tensor, height: Tensor) -> Tensor:
        """A window pane seen from inside: bright sky or foliage by day, dark by night, with
        glazing bars; the Kinect reads nothing through it."""
        d = self.d
        columns = torch.where(width > 1.1, 2.0, 1.0) + (d.chance(0.3) & (width > 1.6)).float()
        rows = torch.where(d.chance(0.4), 2.0, 1.0)
        sky = self.colour("sky", 0.1)
        night = self.colour("metal", 0.05) * 0.3 + constant([0.0, 0.005, 0.02], d.device)
        return make_look(torch.where(day[:, None], sky, night), second=self.colour("frame", 0.05),
                         cell_u=width / columns, cell_v=height / rows, grout_width=d.uniform(0.02, 0.045),
                         grout_mix=1.0, noise_amp=torch.where(day, 0.25, 0.05), noise_freq=d.uniform(2, 6),
                         emission=torch.where(day, d.uniform(3.0, 9.0), 0.0), dropout=1.0,
                         gloss=torch.where(day, 0.0, 0.6), shininess=200.0)

    def picture(self, width: Tensor, height: Tensor, face: Tensor) -> Tensor:
        """A framed painting, poster or photo (or, 1 in 5, a whiteboard) on a wall."""
        d = self.d
        board = d.chance(0.2)
        frame = self.colour("frame", 0.05)
        look = make_look(frame, second=frame, cell_u=width, cell_v=height,
                         grout_width=torch.where(board, 0.015, d.uniform(0.01, 0.06)), grout_mix=1.0,
                         picture=torch.where(board, 0.0, 1.0), pattern_face=face, gloss=d.uniform(0.05, 0.3),
                         shininess=60.0, noise_amp=0.02, noise_freq=10.0)
        look[:, Look.ALBEDO] = torch.where(board[:, None], self.colour("ceiling", 0.02), frame)
        return look

    def lampshade(self, lit: Tensor) -> Tensor:
        d = self.d
        return make_look(self.colour("lampshade", 0.04), noise_amp=0.05, noise_freq=30.0,
                         emission=torch.where(lit, d.uniform(1.5, 5.0), 0.0))

    def cardboard(self) -> Tensor:
        d = self.d
        return make_look(self.colour("cardboard", 0.1), noise_amp=d.uniform(0.03, 0.08), noise_freq=15.0,
                         grain_amp=0.03, grain_freq=100.0)


# ----------------------------------------------------------------------------- the generator

ROOM_TYPES = ("bedroom", "living", "kitchen", "office", "dining", "corridor")
ROOM_ODDS = [0.24, 0.22, 0.16, 0.14, 0.14, 0.10]
# width (x) and depth (z) ranges, metres, per room type
ROOM_WIDTH = [(2.8, 4.6), (3.4, 6.5), (2.4, 4.5), (3.0, 6.5), (3.0, 5.2), (1.3, 2.2)]
ROOM_DEPTH = [(3.0, 5.0), (3.8, 7.0), (3.0, 5.5), (3.5, 7.5), (3.4, 6.0), (5.0, 9.5)]
FLOOR_ODDS = [  # planks, tiles, carpet, vinyl
    [0.45, 0.05, 0.45, 0.05], [0.5, 0.15, 0.3, 0.05], [0.2, 0.5, 0.0, 0.3],
    [0.15, 0.1, 0.6, 0.15], [0.55, 0.25, 0.15, 0.05], [0.3, 0.3, 0.3, 0.1]]

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

SPACES = 6  # main room, wing, door passage, room beyond, two window niches
WALL_PIECES, PIECE_BOXES = 5, 6
CLUTTER = 8
CYLINDERS = 10
LIGHTS = 2
CAMERA_CLEARANCE = 0.45  # metres around the camera kept free of furniture
_FACE_OF_SIDE = [1, 0, 5, 4]  # wall side 0..3 (x=0, x=W, z=0, z=D) -> face index of a piece's front
_SIDE_TURN = [(0.0, 1.0), (0.0, -1.0), (1.0, 0.0), (-1.0, 0.0)]  # (cos, sin): piece +z to the wall's normal


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
        self.wing = d.chance(0.3) & ~corridor
        wing_len = torch.minimum(D - 0.6, d.uniform(1.5, 4.0))
        self.wing_z0 = d.uniform(0.0, 1.0) * (D - wing_len)
        self.wing_z1 = self.wing_z0 + wing_len
        wing = _stack_box(W - 0.05, zero, self.wing_z0, W + d.uniform(1.2, 3.0), H, self.wing_z1)

        # a door opening on wall 0, 2 or 3 into a corridor or room beyond
        self.door = d.chance(torch.where(corridor, 0.8, 0.6))
        self.door_side = constant([0, 2, 3], device, torch.int64)[d.index(3)]
        self.door_width, self.door_height = d.uniform(0.78, 0.95), d.uniform(1.98, 2.12)
        along = self.wall_length(self.door_side)
        self.door_at = 0.15 + self.door_width / 2 + d.uniform() * (along - self.door_width - 0.3).clamp(min=0)
        thick = d.uniform(0.1, 0.2)  # walls; niches stop short of it, never reaching the room beyond
        half = self.door_width / 2
        passage = self.wall_box(self.door_side, self.door_at - half, self.door_at + half, -0.05, thick + 0.05,
                                zero, self.door_height)
        reach_a, reach_b = d.uniform(0.2, 3.0), d.uniform(0.2, 3.0)
        beyond = self.wall_box(self.door_side, self.door_at - half - reach_a, self.door_at + half + reach_b,
                               thick, thick + d.uniform(1.2, 4.0), zero, H)

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


def _camera(d: Draws, room: _Room) -> tuple[Tensor, Tensor]:
    """Camera position (B, 3) and yaw, pitch, roll (B, 3): a person holding a Kinect, mostly
    standing near a wall and looking into the room, sometimes anywhere, looking anywhere."""
    W, D = room.width, room.depth
    corridor = room.type == 5
    side = torch.where(corridor & d.chance(0.8), 2 + d.index(2), d.index(4))
    length = torch.where(side < 2, D, W)
    extent = torch.where(side < 2, W, D)
    along = 0.4 + d.uniform() * (length - 0.8)
    back = 0.3 + d.uniform() * (torch.minimum(extent - 1.1, torch.full_like(extent, 1.3))).clamp(min=0)
    x = torch.where(side == 0, back, torch.where(side == 1, W - back, along))
    z = torch.where(side == 2, back, torch.where(side == 3, D - back, along))
    facing = constant([0.5 * math.pi, -0.5 * math.pi, 0.0, math.pi], d.device)[side]
    yaw = facing + d.uniform(-1.0, 1.0) * torch.where(corridor, 0.35, 0.8)
    anywhere = d.chance(0.2) & ~corridor
    x = torch.where(anywhere, 0.5 + d.uniform() * (W - 1.0), x)
    z = torch.where(anywhere, 0.5 + d.uniform() * (D - 1.0), z)
    yaw = torch.where(anywhere, d.uniform(-math.pi, math.pi), yaw)
    height = d.triangular(0.8, 1.8)
    pitch = torch.deg2rad(d.triangular(-25.0, 10.0))
    roll = torch.deg2rad(d.triangular(-4.0, 4.0))
    return torch.stack([x, height, z], -1), torch.stack([yaw, pitch, roll], -1)


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

    # where the set stands: its footprint, turned by its yaw, clear of the camera, the walls
    # and the furniture
    boxes = torch.stack(boxes, 1)
    placed = boxes[..., 1] < VOID - 1
    reach_x = torch.where(placed, torch.maximum(-boxes[..., 0], boxes[..., 3]), 0.0).amax(1)
    reach_z = torch.where(placed, torch.maximum(-boxes[..., 2], boxes[..., 5]), 0.0).amax(1)
    yaw = torch.where(d.chance(0.8), d.index(4) * (0.5 * math.pi) + torch.deg2rad(d.uniform(-8.0, 8.0)),
                      d.uniform(-math.pi, math.pi))
    cos, sin = torch.cos(yaw).abs(), torch.sin(yaw).abs()
    half_x = (cos * reach_x + sin * reach_z)[:, None]
    half_z = (sin * reach_x + cos * reach_z)[:, None]
    candidates = 10
    x = half_x + 0.1 + d.uniform(n=candidates) * (room.width[:, None] - 2 * half_x - 0.2).clamp(min=0)
    z = half_z + 0.1 + d.uniform(n=candidates) * (room.depth[:, None] - 2 * half_z - 0.2).clamp(min=0)
    footprint = torch.stack([x - half_x, torch.zeros_like(x), z - half_z, x + half_x,
                             h[:, None].expand_as(x), z + half_z], -1)
    pick, found = _first(occupied.free(footprint, margin=0.0) & _inside_room(room, footprint))
    on = on & found
    occupied.add(_take(footprint, pick), on)
    pivot = torch.stack([_take(x, pick), torch.zeros_like(w), _take(z, pick)], -1)

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
    books, electronics, cushions. Boxes (B, CLUTTER, 6) in the room frame, looks (B, CLUTTER, F)."""
    boxes, looks = [], []
    zero = torch.zeros(d.batch, device=d.device)
    for _ in range(CLUTTER):
        thing = d.index(4)
        size = torch.stack([
            torch.stack([d.uniform(0.2, 0.5), d.uniform(0.15, 0.45), d.uniform(0.2, 0.45)], -1),
            torch.stack([d.uniform(0.15, 0.3), d.uniform(0.03, 0.15), d.uniform(0.2, 0.28)], -1),
            torch.stack([d.uniform(0.2, 0.45), d.uniform(0.05, 0.2), d.uniform(0.15, 0.35)], -1),
            torch.stack([d.uniform(0.3, 0.5), d.uniform(0.1, 0.2), d.uniform(0.3, 0.5)], -1)], 1)
        size = _take(size, thing)
        half = torch.maximum(size[:, 0], size[:, 2]) / 2
        x, z, y, on_top = _spot_on(d, tops, [0] * len(tops), half, zero, torch.zeros(d.batch, 3, device=d.device))
        spots = _against_wall(d, room, size[:, 0], size[:, 2], candidates=3)
        footprint = torch.stack([spots["x"] - spots["half_x"], torch.zeros_like(spots["x"]),
                                 spots["z"] - spots["half_z"], spots["x"] + spots["half_x"],
                                 size[:, 1, None].expand_as(spots["x"]), spots["z"] + spots["half_z"]], -1)
        pick, on_floor = _first(occupied.free(footprint))
        floor = d.chance(0.35) | ~on_top
        box = torch.where(floor[:, None], _take(footprint, pick),
                          _stack_box(x - size[:, 0] / 2, y, z - size[:, 2] / 2, x + size[:, 0] / 2, y + size[:, 1],
                                     z + size[:, 2] / 2))
        on = d.chance(0.8) & torch.where(floor, on_floor, on_top)
        occupied.add(box, on & floor)
        boxes.append(_keep(box, on))
        book = make_look(m.colour("books", 0.1), gloss=0.1, shininess=30.0)
        options = torch.stack([m.cardboard(), book, m.dark(), m.fabric()], 1)
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
        spots = _against_wall(d, room, 2 * radius + 0.1, 2 * radius + 0.1, candidates=3)
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


_LIGHT_COLOURS = [(1.0, 0.8, 0.58), (1.0, 0.88, 0.72), (1.0, 0.95, 0.88), (0.92, 0.96, 1.0)]  # warm .. cool


def _lights(d: Draws, room: _Room, panel_on: Tensor, panel_centre: Tensor, lamps: dict) -> dict[str, Tensor]:
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


def _aim(d: Draws, position: Tensor, ypr: Tensor, pieces: list[dict[str, Tensor]]) -> Tensor:
    """Two times in three, turn the camera towards a random piece of furniture (people point
    cameras at things); turning it leaves it where it is, clear of everything."""
    centres = torch.stack([p["centre"] for p in pieces], 1)  # (B, K, 3)
    placed = torch.stack([p["placed"] for p in pieces], 1)
    choice = (d.uniform(n=len(pieces)) * placed.float()).argmax(1)
    to = _take(centres, choice) - position
    yaw = torch.atan2(to[:, 0], to[:, 2]) + d.uniform(-0.4, 0.4)
    pitch = torch.atan2(to[:, 1], torch.sqrt(to[:, 0] ** 2 + to[:, 2] ** 2)) + d.uniform(-0.15, 0.1)
    pitch = pitch.clamp(math.radians(-30), math.radians(12))
    aim = d.chance(0.67) & placed.any(1)
    return torch.where(aim[:, None], torch.stack([yaw, pitch, ypr[:, 2]], -1), ypr)


def random_scenes(draws: Draws) -> Scene:
    """One random NYU-like room per frame of `draws` (B frames): see the module docstring.

    The room type (bedroom, living room, kitchen, office, dining room, corridor) sets the
    odds of its size, floor and furniture. The camera is placed first; every later piece is
    tried at a few random spots and kept at the first one clear of the camera, the door, the
    windows and the pieces before it, or left out.
    """
    d, m = draws, Materials(draws)
    room = _Room(d, m)
    camera_pos, camera_ypr = _camera(d, room)
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
    lights = _lights(d, room, panel_on, panel_centre, lamps)
    camera_ypr = _aim(d, camera_pos, camera_ypr, all_tops)

    room_aligned = torch.cat([piece_boxes, door_boxes, picture_boxes, curtain_boxes, rug_box, panel_box,
                              clutter_boxes, baseboard_boxes], 1)
    boxes = torch.cat([room_aligned, set_boxes], 1)
    looks = torch.cat([piece_looks, door_looks, picture_looks, curtain_looks, rug_look, panel_look, clutter_looks,
                       baseboard_looks, set_looks], 1)
    return Scene(
        space_lo=room.space_lo, space_hi=room.space_hi, space_looks=room.looks,
        box_lo=boxes[..., :3], box_hi=boxes[..., 3:], box_looks=looks,
        group_sizes=(room_aligned.shape[1], set_boxes.shape[1]),
        group_yaw=torch.stack([zero, set_yaw], 1),
        group_pivot=torch.stack([torch.zeros_like(set_pivot), set_pivot], 1),
        cylinders=cylinders, cylinder_looks=cylinder_looks,
        light_pos=lights["pos"], light_rgb=lights["rgb"], light_radius=lights["radius"],
        light_spot=lights["spot"], ambient=lights["ambient"],
        camera_pos=camera_pos, camera_ypr=camera_ypr, key=d.keys,
    )
