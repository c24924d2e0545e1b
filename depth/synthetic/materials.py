"""Materials: colour palettes, the appearance vector (`Look`) and the looks rooms are made of."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .atlas import TILE_METRES, texture_atlas
from .hashing import Draws
from .scene import constant

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
    TEXTURE = 25  # index of a photo texture in the atlas (see atlas.py) multiplying the albedo; -1: none
    TEXTURE_FREQ = 26  # tiles of it per metre
    TEXTURE_COS = 27  # cos and sin of the angle the tile is turned by on the surface
    TEXTURE_SIN = 28
    SIZE = 29


_DEFAULT_LOOK = [0.0] * Look.SIZE
for _field, _value in ((Look.CELL_U, 1e3), (Look.CELL_V, 1e3), (Look.CELL_FILL, 1.0), (Look.SHININESS, 20.0),
                       (Look.PATTERN_FACE, -1.0), (Look.TEXTURE, -1.0), (Look.TEXTURE_FREQ, 1.0),
                       (Look.TEXTURE_COS, 1.0)):
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


# ----------------------------------------------------------------------------- materials

FLOOR_ODDS = [  # planks, tiles, carpet, vinyl
    [0.45, 0.05, 0.45, 0.05], [0.5, 0.15, 0.3, 0.05], [0.2, 0.5, 0.0, 0.3],
    [0.15, 0.1, 0.6, 0.15], [0.55, 0.25, 0.15, 0.05], [0.3, 0.3, 0.3, 0.1]]


# how a photo texture may turn on a surface: 0 upright only, 1 by quarter turns, 2 any angle
_TURNS = {"brick": 0, "wallpaper": 0, "ceiling": 1, "floor_tiles": 1, "parquet": 1, "wood_floor": 1,
          "wood_furniture": 1, "carpet": 2, "concrete": 2, "fabric": 2, "marble_stone": 2, "metal": 2,
          "misc_clutter": 2, "plaster_paint": 2}


class Materials:
    """Looks (B, F) of the materials rooms are made of, each call a fresh random variant."""

    def __init__(self, draws: Draws) -> None:
        self.d = draws
        self.palettes = Palettes(draws.device)
        self.atlas = texture_atlas(draws.device)

    def photo(self, look: Tensor, odds: dict[str, float], recolour: float = 0.3, cells: bool = True) -> Tensor:
        """The look with a photo texture drawn from the categories' odds (the rest of the
        probability: none, the look stays procedural or flat).

        The texture is tiled at a scale drawn from its category's range (atlas.TILE_METRES) and
        turned: floors and furniture by a quarter turn or not, brick and wallpaper stay upright,
        the rest any way. It shows its photographed colour with the brightness and tint varied,
        or (with chance `recolour`) the look's own colour. Procedural grain and noise are damped
        under it; cells=False also removes the look's cells (a photo of planks has its own).
        """
        d, atlas = self.d, self.atlas
        names = list(odds)
        spans = constant([atlas.categories[name] for name in names], d.device, torch.int64)
        sizes = constant([TILE_METRES[name] for name in names], d.device)
        turns = constant([_TURNS[name] for name in names], d.device)
        choice = d.choice(constant([*odds.values(), max(0.0, 1.0 - sum(odds.values()))], d.device))
        on = choice < len(names)
        choice = choice.clamp(max=len(names) - 1)
        first, count = spans[choice].unbind(-1)
        index = first + (d.uniform() * count).long().clamp(max=count - 1)
        low, high = sizes[choice].unbind(-1)
        size = d.uniform(low, high)
        quarter = torch.floor(d.uniform(0.0, 4.0)) * (0.5 * math.pi)
        angle = torch.where(turns[choice] == 0, 0.0, torch.where(turns[choice] == 1, quarter,
                                                                 d.uniform(0.0, 2 * math.pi)))
        brightness = d.uniform(0.7, 1.3)[:, None] * (1 + 0.16 * (d.uniform(n=3) - 0.5))
        photographed = (atlas.mean[index] * brightness).clamp(0.005, 0.85)
        keep_colour = d.chance(recolour)
        textured = look.clone()
        textured[:, Look.ALBEDO] = torch.where(keep_colour[:, None], look[:, Look.ALBEDO], photographed)
        textured[:, Look.TEXTURE] = index.float()
        textured[:, Look.TEXTURE_FREQ] = 1.0 / size
        textured[:, Look.TEXTURE_COS], textured[:, Look.TEXTURE_SIN] = torch.cos(angle), torch.sin(angle)
        textured[:, Look.GRAIN_AMP] = look[:, Look.GRAIN_AMP] * 0.2
        textured[:, Look.NOISE_AMP] = look[:, Look.NOISE_AMP] * 0.3
        if not cells:
            textured[:, Look.CELL_U], textured[:, Look.CELL_V] = 1e3, 1e3
            textured[:, Look.GROUT_MIX] = 0.0
        return torch.where(on[:, None], textured, look)

    def colour(self, name: str, jitter: float = 0.08) -> Tensor:
        return self.palettes.draw(self.d, name, jitter)

    def paint(self) -> Tensor:
        """Wall paint: mottled a little, nearly matte."""
        d = self.d
        look = make_look(self.colour("paint", 0.05), noise_amp=d.uniform(0.015, 0.06),
                         noise_freq=d.uniform(1.0, 4.0), gloss=d.uniform(0.0, 0.04), shininess=8.0)
        return self.photo(look, {"plaster_paint": 0.3, "wallpaper": 0.12, "concrete": 0.05, "brick": 0.05},
                          recolour=0.5)

    def ceiling(self, tiled: Tensor) -> Tensor:
        """Plain white plaster, or (tiled) an office grid of 60 cm tiles in thin metal rails."""
        d = self.d
        size = torch.where(d.chance(0.5), 0.6, 1.2)
        look = make_look(self.colour("ceiling", 0.03), second=self.colour("metal", 0.05) * 0.8,
                         cell_u=torch.where(tiled, 0.6, 1e3), cell_v=torch.where(tiled, size, 1e3),
                         grout_width=0.012, grout_mix=torch.where(tiled, 0.8, 0.0),
                         noise_amp=torch.where(tiled, d.uniform(0.03, 0.08), d.uniform(0.01, 0.03)),
                         noise_freq=torch.where(tiled, 25.0, 2.0), cell_tint=0.02)
        photo_tiles = self.photo(look, {"ceiling": 0.5}, recolour=0.0, cells=False)
        plaster = self.photo(look, {"plaster_paint": 0.25}, recolour=0.7)
        return torch.where(tiled[:, None], photo_tiles, plaster)

    def wood(self, grain_axis: float | Tensor = 0.0) -> Tensor:
        d = self.d
        look = make_look(self.colour("wood", 0.1), grain_amp=d.uniform(0.04, 0.16), grain_freq=d.uniform(15, 50),
                         grain_axis=grain_axis, noise_amp=d.uniform(0.02, 0.06), noise_freq=d.uniform(3, 10),
                         gloss=d.uniform(0.02, 0.2), shininess=d.uniform(15, 60))
        return self.photo(look, {"wood_furniture": 0.6}, recolour=0.15)

    def painted(self) -> Tensor:
        """Laminate or painted wood."""
        d = self.d
        look = make_look(self.colour("painted", 0.05), noise_amp=d.uniform(0.01, 0.03), noise_freq=5.0,
                         gloss=d.uniform(0.03, 0.25), shininess=d.uniform(20, 80))
        return self.photo(look, {"marble_stone": 0.05, "metal": 0.05, "misc_clutter": 0.05}, recolour=0.5)

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
        look = make_look(self.colour(name, 0.1), noise_amp=d.uniform(0.05, 0.14), noise_freq=d.uniform(15, 60),
                         grain_amp=d.uniform(0.0, 0.05), grain_freq=d.uniform(4, 12), gloss=0.01, shininess=5.0)
        return self.photo(look, {"fabric": 0.5, "carpet": 0.1}, recolour=0.4)

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
        look = make_look(self.colour("metal", 0.05), gloss=self.d.uniform(0.2, 0.6), shininess=60.0, dropout=0.2)
        return self.photo(look, {"metal": 0.5}, recolour=0.3)

    def stone(self) -> Tensor:
        """Countertops: speckled stone or laminate."""
        d = self.d
        look = make_look(self.colour("stone", 0.05), noise_amp=d.uniform(0.05, 0.2), noise_freq=d.uniform(20, 80),
                         gloss=d.uniform(0.1, 0.4), shininess=80.0)
        return self.photo(look, {"marble_stone": 0.65, "wood_furniture": 0.1}, recolour=0.1)

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
        planks = self.photo(planks, {"wood_floor": 0.5, "parquet": 0.25}, recolour=0.1, cells=False)
        tiles = self.photo(tiles, {"floor_tiles": 0.45, "marble_stone": 0.15}, recolour=0.1, cells=False)
        carpet = self.photo(carpet, {"carpet": 0.6}, recolour=0.3)
        vinyl = self.photo(vinyl, {"concrete": 0.25, "floor_tiles": 0.2, "marble_stone": 0.1}, recolour=0.2,
                           cells=False)
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
        look = make_look(self.colour("cardboard", 0.1), noise_amp=d.uniform(0.03, 0.08), noise_freq=15.0,
                         grain_amp=0.03, grain_freq=100.0)
        return self.photo(look, {"misc_clutter": 0.4, "fabric": 0.1}, recolour=0.3)


