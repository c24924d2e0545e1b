"""Rendering frames: render, the frame source, the synthetic dataset and folder writing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data import Sample, make_sample, register_dataset
from ..data.nyu import NYU_HEIGHT, NYU_WIDTH
from ..model import FRAME_HEIGHT, FRAME_WIDTH
from .atlas import texture_atlas
from .camera import nyu_intrinsics
from .hashing import Draws, frame_keys, frame_seed, mix32
from .layout import random_scenes
from .lighting import light_visibility, shade
from .materials import Palettes
from .raycast import trace
from .rooms import ROOM_NAMES
from .scene import Scene
from .sensor import Sensor, colour_camera, kinect_depth, kinect_valid, random_sensor
from .textures import pixel_footprint, surface_albedo

SPLITS = ("train", "val", "test")
MIN_SIDE, MAX_SIDE = 8, 4096  # pixels: the frame sizes the renderer accepts

# ----------------------------------------------------------------------------- rendering

@dataclass
class Frames:
    """A rendered batch. image: (B, 3, H, W) uint8 RGB. depth: (B, H, W) float32 metres along
    the optical axis as the Kinect reports it (quantised, see sensor.kinect_depth), 0 in holes.
    valid: (B, H, W) bool, depth > 0. true_depth: (B, H, W) the exact depth everywhere, holes
    included. intrinsics: (fx, fy, cx, cy) in pixels."""

    image: Tensor
    depth: Tensor
    valid: Tensor
    true_depth: Tensor
    intrinsics: tuple[float, float, float, float]
    room_type: Tensor | None = None  # (B,) int64 index into rooms.ROOM_TYPES; -1 or None: no kind of room


@dataclass(frozen=True)
class Stages:
    """The stages of `render`. `Stages.compiled()` runs each through torch.compile on its own:
    fused kernels on a GPU, and small graphs compile far faster than one graph of it all."""

    trace: Callable = trace
    texture: Callable = surface_albedo
    visibility: Callable = light_visibility
    shade: Callable = shade
    camera: Callable = colour_camera
    kinect: Callable = kinect_valid

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
    surface_seed = mix32(frame_seed(scene.key, 0)[:, None] ^ mix32(surface.surface.int()))
    palette = Palettes(scene.device).tables["books"]
    atlas = texture_atlas(scene.device)
    footprint = pixel_footprint(surface, intrinsics[0])
    albedo = stages.texture(surface.look, surface.uv, surface.face, surface_seed, palette, footprint,
                            atlas.texels, atlas.level_start)
    visibility = stages.visibility(scene, surface, height, width, shadow_step)
    radiance = stages.shade(scene, surface, albedo, visibility)
    image = stages.camera(radiance.view(batch, 3, height, width), sensor)
    valid = stages.kinect(surface, albedo, sensor, height, width, intrinsics[0])
    true_depth = surface.depth.view(batch, height, width)
    return Frames(image=image, depth=kinect_depth(true_depth, valid, sensor), valid=valid,
                  true_depth=true_depth, intrinsics=tuple(float(v) for v in intrinsics), room_type=scene.room_type)


def render_keys(
    keys: Tensor, height: int = FRAME_HEIGHT, width: int = FRAME_WIDTH, stages: Stages = Stages(),
    frames_per_pass: int | None = None,
) -> Frames:
    """Frames of random scenes, one per key (B,) int64 (see hashing.frame_keys).

    The scenes are generated all at once and rendered frames_per_pass at a time (default: all).
    """
    draws = Draws(keys)
    scene, sensor = random_scenes(draws), random_sensor(draws)
    step = frames_per_pass or len(keys)
    parts = [render(_frames_of(scene, start, step), _frames_of(sensor, start, step), height, width, stages=stages)
             for start in range(0, len(keys), step)]
    names = ("image", "depth", "valid", "true_depth")
    return Frames(*(torch.cat([getattr(part, name) for part in parts]) for name in names), parts[0].intrinsics,
                  room_type=torch.cat([part.room_type for part in parts]))


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
                          frames.true_depth[:count], frames.room_type[:count]))
        image, depth, valid, true_depth, room_type = (torch.cat(p) for p in zip(*parts))
        return Frames(image, depth, valid, true_depth, nyu_intrinsics(self.height, self.width), room_type)

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
    from ..data.folder import write_frame, write_manifest
    from ..visualize import colorize

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
                "dataset": "synthetic rooms (depth.synthetic)",
                "room": ROOM_NAMES[int(frames.room_type[offset])],
                "source": f"rendered by depth.synthetic: split {split}, seed {seed}, frame {index}, "
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
