"""A surface from a photo and its metric depth: the depth grid triangulated, for the 3D view.

Each 2x2 block of neighbouring (strided) pixels with depth gives two triangles, unless a
triangle spans a depth edge: one whose corners differ in depth by more than MAX_JUMP of the
nearest of them is left out, so a chair in front of a wall does not become a sheet draped from
one to the other. The depth comes from a 74x55 grid, so a surface on a grid of 160 or so
columns loses none of its shape.

The mesh is written as binary glTF (.glb) with one colour per vertex and an unlit material
(KHR_materials_unlit), in the viewer's axes like the point cloud's copy
(pointcloud.write_viewer_ply): x right, y up, the camera on the +z side looking down -z.
Unlit, because gr.Model3D's viewer (Babylon.js) lights meshes with an environment it does not
have offline: a lit surface shows almost black, while the points show the photo's colours.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depth.geometry import Intrinsics, backproject

# 10% between the nearest and farthest corner of a triangle: at stride 4 on a 640-wide photo
# neighbouring pixels of a floor 5 m away, seen at 30 degrees, differ by under 5%; the
# network's maps change smoothly, so an edge between objects shows as a steep but continuous
# ramp, of which only the steepest triangles go.
MAX_JUMP = 0.1


@dataclass(frozen=True)
class Surface:
    """A triangle mesh. vertices: (V, 3) float32 metres in the viewer's axes; colours: (V, 3)
    uint8 RGB; triangles: (T, 3) int64 vertex indices, counter-clockwise seen from the camera."""

    vertices: np.ndarray
    colours: np.ndarray
    triangles: np.ndarray


def depth_surface(image: np.ndarray, depth: np.ndarray, intrinsics: Intrinsics, stride: int = 1) -> Surface:
    """The surface of a photo's depth on every stride-th row and column.

    image: (H, W, 3) uint8 RGB. depth: (H, W) metres, 0 or non-finite = no depth.
    intrinsics: (fx, fy, cx, cy) in pixels of this image.
    Raises ValueError when the shapes disagree or no triangle is left.
    """
    if np.shape(depth) != np.shape(image)[:2]:
        raise ValueError(f"depth {np.shape(depth)} does not match image {np.shape(image)[:2]}")
    points, pixels = backproject(depth, intrinsics, stride)
    height, width = np.shape(depth)
    vertex = np.full((-(-height // stride), -(-width // stride)), -1, dtype=np.int64)  # grid -> vertex, -1 = none
    vertex[pixels // width // stride, pixels % width // stride] = np.arange(len(points))

    top_left, top_right = vertex[:-1, :-1], vertex[:-1, 1:]
    bottom_left, bottom_right = vertex[1:, :-1], vertex[1:, 1:]
    # counter-clockwise as the camera sees them (the front faces): rows run down the screen
    triangles = np.concatenate([np.stack([top_left, bottom_left, bottom_right], -1).reshape(-1, 3),
                                np.stack([top_left, bottom_right, top_right], -1).reshape(-1, 3)])
    triangles = triangles[(triangles >= 0).all(1)]
    z = points[:, 2][triangles]
    triangles = triangles[z.max(1) <= z.min(1) * (1 + MAX_JUMP)]
    if len(triangles) == 0:
        raise ValueError("the depth map leaves no surface to draw (too few neighbouring pixels with depth)")
    return Surface(vertices=points * np.float32([1, -1, -1]),
                   colours=np.asarray(image).reshape(-1, 3)[pixels], triangles=triangles)


def write_surface(surface: Surface, path: str | Path) -> Path:
    """Write the surface as binary glTF 2.0 (.glb): float32 positions, linear float32 vertex
    colours (the photo's sRGB decoded, as glTF asks), uint32 indices, an unlit material.
    Returns the path; ValueError for another extension, or a folder that cannot be written."""
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise ValueError(f"{path}: a binary glTF file needs the .glb extension")
    srgb = surface.colours / 255.0
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    blobs = [np.ascontiguousarray(surface.vertices, np.float32).tobytes(),
             np.ascontiguousarray(linear, np.float32).tobytes(),
             np.ascontiguousarray(surface.triangles, np.uint32).tobytes()]
    offsets = np.cumsum([0] + [len(blob) for blob in blobs]).tolist()  # each a multiple of 4 bytes
    vertex_count = len(surface.vertices)
    document = {
        "asset": {"version": "2.0", "generator": "depth demo.surface"},
        "extensionsUsed": ["KHR_materials_unlit"],
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "COLOR_0": 1}, "indices": 2, "material": 0}]}],
        "materials": [{"pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1], "metallicFactor": 0},
                       "extensions": {"KHR_materials_unlit": {}}}],
        "buffers": [{"byteLength": offsets[-1]}],
        "bufferViews": [{"buffer": 0, "byteOffset": offsets[i], "byteLength": len(blob),
                         "target": 34963 if i == 2 else 34962} for i, blob in enumerate(blobs)],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": vertex_count, "type": "VEC3",
             "min": surface.vertices.min(0).tolist(), "max": surface.vertices.max(0).tolist()},
            {"bufferView": 1, "componentType": 5126, "count": vertex_count, "type": "VEC3"},
            {"bufferView": 2, "componentType": 5125, "count": surface.triangles.size, "type": "SCALAR"},
        ],
    }
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary = b"".join(blobs)
    chunks = [struct.pack("<II", len(text), 0x4E4F534A) + text, struct.pack("<II", len(binary), 0x004E4942) + binary]
    glb = struct.pack("<III", 0x46546C67, 2, 12 + sum(len(chunk) for chunk in chunks)) + b"".join(chunks)
    try:
        path.write_bytes(glb)
    except OSError as error:
        raise ValueError(f"{path}: cannot write the surface ({error.strerror or error})") from None
    return path
