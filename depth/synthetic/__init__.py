"""Synthetic indoor RGB-D frames: NYU-like rooms and a batched ray caster that renders them.

The only training data this project can have: rooms rendered with exact metric depth and a
camera and depth sensor made to look like NYU Depth v2's hand-held Kinect.

Camera: a pinhole with the Kinect RGB intrinsics (`camera.nyu_intrinsics`, NYU's 640x480 values scaled
to the image). In camera coordinates x points right, y down and z along the optical axis; the
ray of pixel (u, v) (column, row; integer values are pixel centres) is
((u - cx) / fx, (v - cy) / fy, 1), turned into the world (y up) by the camera's yaw (about the
world y axis), pitch (positive looks up) and roll. Because that ray has z = 1, the ray
parameter t of a hit is its depth: the z distance along the optical axis, as Kinect and NYU
store it.

Rendering a batch (`render`, in stages that `Stages.compiled()` can compile one by one):

1. Camera rays (`raycast.trace`): one per pixel, intersected with the room shell (the exit from the
   union of the free-space boxes), the boxes (slab test, in the frame of their group) and
   the cylinders. To keep the work per pixel small, the screen is cut into 16 x 16 tiles and
   only (tile, object) pairs whose object's projection can reach the tile are tested: each
   frame tests a fixed budget of such pairs, nearest the camera first; a depth bound from
   the pairs left out proves each hit exact (the rare unproven pixel becomes a depth hole).
   The nearest hit gives the exact depth and the surface.
2. Shading: the albedo from the surface coordinates and the surface's look: a photo texture
   of a real material read from a mip-mapped atlas at the pixel's footprint (atlas.py), under
   procedural patterns (cells for tiles, planks, drawers, book spines and window panes, wood
   grain, noise, pictures);
   direct light from each point light, with shadow rays aimed at random points of the light
   (soft shadows) and one short random ray for ambient occlusion, cast from every 4th pixel
   of every 4th row (at 320 x 240) against the same boxes, cylinders and room shell by the
   same intersection code, then smoothed and brought back to every pixel without crossing
   depth edges; bounce light as one radiosity step in the mean; Blinn-Phong highlights;
   emission (windows, lamp shades, screens).
3. Camera: optical blur, auto exposure with a random bias, vignetting, white balance and
   colour cast, shot noise, a filmic tone curve and JPEG-like losses (4:2:0 chroma and
   8 x 8 DCT quantisation).
4. Depth sensor: Kinect-like holes (depth 0): a border band where the depth camera sees
   nothing, the projector's shadow beside near objects, ragged object edges, glass, black and
   glossy surfaces, grazing angles, readings nearer than MIN_DEPTH or beyond the frame's range
   (at most MAX_DEPTH), and small random speckles. Where there is a reading it is the exact
   depth quantised as a Kinect's disparity is (steps growing as depth squared: about 3 mm at
   1 m, 7 cm at 5 m); `Frames.true_depth` keeps the exact depth.

Everything is batched tensor code, the same on CPU and CUDA, laid out for eager CPU speed
too: per-pixel values are contiguous (B, P) rows (vectors channel-first), hashes int32, and
selections arithmetic rather than torch.where. On a GPU and under torch.compile every shape is
fixed and nothing waits for the device (no `.item()`); eager on a CPU, where that costs
nothing, the lists of objects to test are cut to what the frames of a pass use
(`_nearest_pairs`, `_used_first`), with the same result. The per-frame parameters come from
counter-based hashes, so frame k of a stream is the same alone or in any batch (up to float
rounding of a few transcendental functions).

Where things are, one concern a file:

    atlas.py      the CC0 photo textures of assets/textures in one mip-mapped tensor; sampling
    scene.py      the Scene tensors every stage reads (boxes, cylinders, spaces, looks, lights)
    hashing.py    counter-based random numbers: frame k is the same alone or in any batch
    materials.py  palettes, the appearance vector `Look`, the looks of paint, wood, fabric...
    textures.py   surface colour per pixel: procedural patterns (cells, grain, noise, pictures)
    rooms.py      room shells: types and sizes, doors, wings, windows; box helpers of layout
    furniture.py  beds, sofas, shelves, tables with chairs, doors, pictures, clutter, lamps
    layout.py     the random room generator (`random_scenes`) and hand-made scenes
    camera.py     the hand-held Kinect pose, NYU intrinsics, camera rays
    raycast.py    where a ray hits a box, a cylinder or the room shell; `trace`
    lighting.py   placing the lights; shadow and occlusion rays; shading
    sensor.py     the colour camera (exposure, blur, noise, JPEG) and the Kinect depth holes
    frames.py     `render`, the frame source, the "synthetic" dataset, `write_folder`
"""

from .camera import nyu_intrinsics
from .frames import (
    SPLITS,
    Frames,
    Stages,
    SyntheticDataset,
    SyntheticFrames,
    render,
    render_keys,
    stream_id,
    write_folder,
)
from .layout import random_scenes, simple_scene
from .raycast import trace
from .scene import Scene
from .sensor import MAX_DEPTH, MIN_DEPTH, Sensor, ideal_sensor, random_sensor

__all__ = [
    "MAX_DEPTH", "MIN_DEPTH", "SPLITS", "Frames", "Scene", "Sensor", "Stages", "SyntheticDataset", "SyntheticFrames",
    "ideal_sensor", "nyu_intrinsics", "random_scenes", "random_sensor", "render", "render_keys", "simple_scene",
    "stream_id", "trace", "write_folder",
]
