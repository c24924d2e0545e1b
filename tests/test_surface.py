import json
import struct

import numpy as np
import pytest

from demo.surface import MAX_JUMP, depth_surface, write_surface
from depth.geometry import NYU_INTRINSICS


def test_a_wall_becomes_two_triangles_per_grid_cell_facing_the_camera(photo):
    wall = np.full((480, 640), 2.0, np.float32)
    surface = depth_surface(photo, wall, NYU_INTRINSICS, stride=4)
    assert surface.vertices.shape == (120 * 160, 3) and surface.colours.dtype == np.uint8
    assert len(surface.triangles) == 2 * 119 * 159
    np.testing.assert_allclose(surface.vertices[:, 2], -2.0)  # viewer axes: the scene lies along -z
    a, b, c = (surface.vertices[surface.triangles[:, i]] for i in range(3))
    normals = np.cross(b - a, c - a)
    assert (normals[:, 2] > 0).all()  # counter-clockwise seen from the camera at +z: front faces


def test_triangles_across_a_depth_edge_or_a_hole_are_left_out(photo):
    depth = np.full((480, 640), 3.0, np.float32)
    depth[:, 320:] = 3.0 * (1 + 2 * MAX_JUMP)  # a step: the triangles bridging it go
    depth[:8, :8] = 0  # no depth: no triangles there
    surface = depth_surface(photo, depth, NYU_INTRINSICS, stride=8)
    z = -surface.vertices[:, 2][surface.triangles]
    assert (z.max(1) <= z.min(1) * (1 + MAX_JUMP)).all()
    assert len(surface.triangles) == 2 * 59 * 79 - 2 * 59 - 2  # one column of cells bridged, one cell a hole
    with pytest.raises(ValueError, match="no surface"):
        depth_surface(photo, np.zeros((480, 640), np.float32), NYU_INTRINSICS)


def test_the_glb_holds_positions_linear_colours_and_triangles_unlit(tmp_path, photo):
    surface = depth_surface(photo, np.full((480, 640), 2.0, np.float32), NYU_INTRINSICS, stride=16)
    data = write_surface(surface, tmp_path / "room.glb").read_bytes()
    magic, version, length = struct.unpack_from("<III", data)
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    json_length, json_type = struct.unpack_from("<II", data, 12)
    document = json.loads(data[20:20 + json_length])
    binary = data[20 + json_length + 8:]
    assert json_type == 0x4E4F534A and document["materials"][0]["extensions"] == {"KHR_materials_unlit": {}}
    views = document["bufferViews"]
    positions = np.frombuffer(binary, np.float32, len(surface.vertices) * 3, views[0]["byteOffset"]).reshape(-1, 3)
    colours = np.frombuffer(binary, np.float32, len(surface.vertices) * 3, views[1]["byteOffset"]).reshape(-1, 3)
    indices = np.frombuffer(binary, np.uint32, surface.triangles.size, views[2]["byteOffset"]).reshape(-1, 3)
    np.testing.assert_array_equal(positions, surface.vertices)
    np.testing.assert_array_equal(indices, surface.triangles)
    srgb = surface.colours / 255.0  # glTF's vertex colours are linear
    np.testing.assert_allclose(colours, np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="needs the .glb extension"):
        write_surface(surface, tmp_path / "room.obj")
    with pytest.raises(ValueError, match="cannot write the surface"):
        write_surface(surface, tmp_path / "missing" / "room.glb")
