"""The folder layout: RGB images beside 16-bit depth PNGs, listed in `manifest.json`.

This module is the contract for every writer of the layout (the synthetic renderer included)
and the reader registered as "folder":

    FOLDER/
      manifest.json
      NAME_rgb.png      RGB image, 8 bits per channel (any format Pillow reads; PNG is lossless)
      NAME_depth.png    16-bit single-channel PNG, the same width and height as the image

`manifest.json` is either a JSON list of frame entries or an object

    {"depth_scale": 0.001, "frames": [entry, ...]}

where depth_scale is metres per depth unit (default 0.001: millimetres, up to 65.535 m). A
depth value v means v * depth_scale metres along the optical axis (z); 0 means no reading.
Each entry is an object with:

    name         required and unique; an identifier, and the stem of the default file names
    intrinsics   [fx, fy, cx, cy] in pixels of the stored image, or null (or absent) if unknown
    rgb, depth   optional file names relative to the folder (default NAME_rgb.png, NAME_depth.png)
    depth_scale  optional: this frame's metres per unit, overriding the folder's

Other keys (source, licence, notes) are ignored. A folder is one split: the reader accepts any
split name and ignores it, so keep training and test frames in separate folders.
`write_frame` and `write_manifest` write the layout. The PNG decoding here (`decode_frame`)
is shared with the other readers of image + depth PNG pairs (see nyu.py).
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import Sample, make_sample, register_dataset

MANIFEST = "manifest.json"
DEFAULT_DEPTH_SCALE = 0.001  # metres per unit: millimetres, like Kinect-style depth PNGs


@dataclass(frozen=True)
class FolderFrame:
    """One manifest entry, checked, with its files resolved against the folder."""

    name: str
    rgb: Path
    depth: Path
    intrinsics: tuple[float, float, float, float] | None
    depth_scale: float


@register_dataset("folder")
class FolderDataset:
    """The frames of a folder in the layout above; `split` is accepted and ignored."""

    def __init__(self, path: str | Path | None, split: str = "all") -> None:
        if path is None:
            raise ValueError("the folder dataset needs the path of a folder with manifest.json")
        self.root = Path(path)
        self.frames = read_manifest(self.root)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Sample:
        frame = self.frames[index]
        image, depth = decode_frame(frame.rgb.read_bytes(), frame.depth.read_bytes(),
                                    str(frame.rgb), str(frame.depth))
        if depth.dtype != np.uint16:
            raise ValueError(f"{frame.depth}: depth PNG must be 16-bit, got {depth.dtype.itemsize * 8}-bit")
        return make_sample(image, depth * frame.depth_scale, frame.intrinsics, frame.name)


def read_manifest(folder: str | Path) -> list[FolderFrame]:
    """Parse and check `folder`/manifest.json; every frame's files must exist.

    Raises FileNotFoundError for a missing folder, manifest or frame file, and ValueError
    naming the manifest and the frame for anything malformed.
    """
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no such file (a depth folder needs a manifest)")
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{manifest}: not valid JSON: {error}") from None
    return _frames(data, folder, manifest)


def write_frame(
    folder: str | Path,
    name: str,
    image: np.ndarray,
    depth: np.ndarray,
    intrinsics: tuple[float, float, float, float] | None = None,
    depth_scale: float = DEFAULT_DEPTH_SCALE,
) -> dict[str, Any]:
    """Write NAME_rgb.png and NAME_depth.png into `folder`; returns the frame's manifest entry.

    image: (H, W, 3) uint8 RGB. depth: (H, W) metres; 0 or non-finite = no reading. Depth is
    stored as round(depth / depth_scale) in 16 bits: a positive depth too small to round to 1
    unit is kept as 1 unit (not turned into "no reading"); one beyond 65535 units raises.
    The entry carries depth_scale, so it stays right whatever the manifest's default is.
    """
    folder = Path(folder)
    sample = make_sample(image, depth, intrinsics, name)  # checks types and shapes
    depth_scale = _depth_scale(depth_scale, name)
    depth, valid = sample.depth.astype(np.float64), sample.valid
    units = np.round(depth / depth_scale)
    if units.max(initial=0) > 65535:
        raise ValueError(
            f"{name}: depth up to {depth[valid].max():.3f} m does not fit 16 bits at "
            f"{depth_scale} m per unit (at most {65535 * depth_scale:.3f} m)"
        )
    units = np.where(valid, np.maximum(units, 1), 0).astype(np.uint16)
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sample.image).save(folder / f"{name}_rgb.png")
    Image.fromarray(units).save(folder / f"{name}_depth.png")
    intrinsics = None if sample.intrinsics is None else list(sample.intrinsics)
    return {"name": name, "intrinsics": intrinsics, "depth_scale": depth_scale}


def write_manifest(
    folder: str | Path, entries: list[dict[str, Any]], depth_scale: float = DEFAULT_DEPTH_SCALE
) -> Path:
    """Write `folder`/manifest.json as {"depth_scale", "frames": entries}, atomically.

    The manifest is checked as `read_manifest` would before it is written, so a writer learns
    at once (ValueError, FileNotFoundError) if an entry is malformed or names a missing file.
    """
    folder = Path(folder)
    manifest = folder / MANIFEST
    data = {"depth_scale": depth_scale, "frames": entries}
    text = json.dumps(data, indent=1)
    _frames(json.loads(text), folder, manifest)
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, manifest)  # readers never see a half-written manifest
    return manifest


def decode_frame(
    rgb: bytes, depth: bytes, rgb_source: str, depth_source: str
) -> tuple[np.ndarray, np.ndarray]:
    """Decode an image and its depth PNG from file contents, checking they are the same size.

    Returns the image, (H, W, 3) uint8 RGB, and the depth PNG's raw values, (H, W) uint16 for a
    16-bit PNG or uint8 for an 8-bit one: what a value means is the caller's format. The
    sources name the files in error messages (ValueError for anything unreadable or mismatched).
    """
    with _open_image(rgb, rgb_source) as picture:
        try:
            image = np.array(picture.convert("RGB"), dtype=np.uint8)  # a writable copy
        except (OSError, ValueError) as error:
            raise ValueError(f"{rgb_source}: cannot convert {picture.mode} to RGB: {error}") from None
    with _open_image(depth, depth_source) as picture:
        if picture.format != "PNG":
            raise ValueError(f"{depth_source}: depth must be a PNG (lossless), got {picture.format}")
        if picture.mode == "L":
            values = np.asarray(picture, dtype=np.uint8)
        elif picture.mode.startswith("I;16") or picture.mode == "I":
            # Pillow reads 16-bit greyscale PNGs as I;16 (older versions: I); PNG has no 32-bit grey
            values = np.asarray(picture).astype(np.uint16)
        else:
            raise ValueError(
                f"{depth_source}: depth PNG must be single-channel 8- or 16-bit greyscale, "
                f"got mode {picture.mode}"
            )
    if values.shape != image.shape[:2]:
        raise ValueError(
            f"{depth_source}: depth is {values.shape[1]}x{values.shape[0]} but its image "
            f"{rgb_source} is {image.shape[1]}x{image.shape[0]}"
        )
    return image, values


def _frames(data: Any, folder: Path, manifest: Path) -> list[FolderFrame]:
    """The checked frames of a manifest's parsed JSON `data`."""
    if isinstance(data, list):
        entries, folder_scale = data, DEFAULT_DEPTH_SCALE
    elif isinstance(data, dict) and isinstance(data.get("frames"), list):
        entries = data["frames"]
        folder_scale = _depth_scale(data.get("depth_scale", DEFAULT_DEPTH_SCALE), f"{manifest}")
    else:
        raise ValueError(f"{manifest}: expected a list of frames or an object with a 'frames' list")

    frames, seen = [], set()
    for number, entry in enumerate(entries):
        where = f"{manifest}: frame {number}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} is not an object: {entry!r}")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where} has no 'name' (a non-empty string)")
        where = f"{manifest}: frame {number} ({name})"
        if name in seen:
            raise ValueError(f"{where}: the name appears twice")
        seen.add(name)
        frame = FolderFrame(
            name=name,
            rgb=folder / _relative(entry.get("rgb", f"{name}_rgb.png"), f"{where}: 'rgb'"),
            depth=folder / _relative(entry.get("depth", f"{name}_depth.png"), f"{where}: 'depth'"),
            intrinsics=_intrinsics(entry.get("intrinsics"), where),
            depth_scale=_depth_scale(entry.get("depth_scale", folder_scale), where),
        )
        for path in (frame.rgb, frame.depth):
            if not path.is_file():
                raise FileNotFoundError(f"{where} names {path}, which does not exist")
        frames.append(frame)
    return frames


def _open_image(data: bytes, source: str) -> Image.Image:
    try:
        picture = Image.open(io.BytesIO(data))
        picture.load()
    except UnidentifiedImageError:
        raise ValueError(f"{source}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"{source}: image data is corrupt or truncated ({error})") from None
    return picture


def _relative(value: Any, where: str) -> PurePosixPath:
    path = PurePosixPath(value) if isinstance(value, str) and value else None
    if path is None or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{where} must be a file name inside the folder, got {value!r}")
    return path


def _intrinsics(value: Any, where: str) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list) or len(value) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise ValueError(f"{where}: intrinsics must be [fx, fy, cx, cy] or null, got {value!r}")
    return tuple(float(v) for v in value)


def _depth_scale(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: depth_scale must be a positive number of metres per unit, got {value!r}")
    return float(value)
