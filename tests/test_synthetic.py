"""The synthetic renderer: exact geometry, determinism, the Kinect model, the dataset and export."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from depth.data import open_dataset
from depth.synthetic import (
    MAX_DEPTH,
    MIN_DEPTH,
    SyntheticFrames,
    ideal_sensor,
    nyu_intrinsics,
    random_scenes,
    render,
    simple_scene,
    stream_id,
    trace,
    write_folder,
)
from depth.synthetic.camera import camera_rays
from depth.synthetic.hashing import Draws, frame_keys, mix32
from depth.synthetic.raycast import FAR, _blocked, _hit, _object_intervals, _room_exit
from depth.synthetic.rooms import ROOM_NAMES

SMALL = (60, 80)  # height, width: fast, and not a multiple of the culling tile


def exact_depth(scene, height=SMALL[0], width=SMALL[1], intrinsics=None):
    intrinsics = intrinsics or nyu_intrinsics(height, width)
    return trace(scene, height, width, intrinsics).depth.view(-1, height, width)


def test_nyu_intrinsics_scale_with_the_image():
    assert nyu_intrinsics(480, 640) == pytest.approx((518.8579, 519.4696, 325.5824, 253.7362))
    fx, fy, cx, cy = nyu_intrinsics(240, 320)
    assert (fx, fy) == pytest.approx((518.8579 / 2, 519.4696 / 2))
    assert (cx, cy) == pytest.approx(((325.5824 + 0.5) / 2 - 0.5, (253.7362 + 0.5) / 2 - 0.5))


def test_camera_facing_a_wall_sees_its_distance_everywhere():
    # a wall parallel to the image plane has the same z-depth at every pixel
    scene = simple_scene((4.0, 3.0, 6.0), camera_pos=(2.0, 1.5, 1.0))
    depth = exact_depth(scene, intrinsics=(400.0, 400.0, 39.5, 29.5))  # narrow view: only the far wall
    assert torch.allclose(depth, torch.full_like(depth, 5.0), rtol=1e-5)


def test_wall_and_box_faces_have_the_right_normals():
    scene = simple_scene((4.0, 3.0, 6.0), camera_pos=(2.0, 1.5, 1.0),
                         boxes=[((1.5, 1.0, 3.2), (2.5, 2.0, 3.6))])
    height, width = SMALL
    surface = trace(scene, height, width, nyu_intrinsics(height, width))
    normal = surface.normal[0].view(3, height, width)
    facing_camera = torch.tensor([0.0, 0.0, -1.0])
    assert torch.allclose(normal[:, height // 2, width // 2], facing_camera)  # the box's front face
    assert torch.allclose(normal[:, 2, width // 2], torch.tensor([0.0, -1.0, 0.0]))  # the ceiling


def test_surface_normals_are_unit_and_face_the_camera():
    scene = random_scenes(Draws(frame_keys(stream_id(0, "train"), torch.arange(4))))
    surface = trace(scene, *SMALL, nyu_intrinsics(*SMALL))
    length = surface.normal.norm(dim=1)
    assert torch.allclose(length, torch.ones_like(length), atol=1e-5)
    assert ((surface.normal * surface.direction).sum(1) <= 1e-6).all()


def test_mix32_hashes_int32_to_the_same_bits_as_int64():
    values = torch.randint(0, 2**32, (10_000,))
    assert torch.equal(mix32(values.int()).long() & 0xFFFFFFFF, mix32(values))


def test_box_in_front_of_the_wall_at_its_distance():
    scene = simple_scene((4.0, 3.0, 6.0), camera_pos=(2.0, 1.5, 1.0),
                         boxes=[((1.5, 1.0, 3.2), (2.5, 2.0, 3.6))])
    depth = exact_depth(scene)[0]
    height, width = SMALL
    assert depth[height // 2, width // 2] == pytest.approx(2.2, rel=1e-5)  # the box's front face
    assert depth[2, 2] > 2.2  # beside it: the room


@pytest.mark.parametrize("pitch_degrees", [-25.0, -10.0, 5.0])
def test_floor_matches_its_analytic_depth_for_a_pitched_camera(pitch_degrees):
    height_m, pitch = 1.3, math.radians(pitch_degrees)
    scene = simple_scene((40.0, 3.0, 40.0), camera_pos=(20.0, height_m, 20.0), camera_ypr=(0.7, pitch, 0.0))
    rows, cols = SMALL
    depth = exact_depth(scene)[0]
    fx, fy, cx, cy = nyu_intrinsics(rows, cols)
    # camera-frame ray (x, y, 1) has world height change sin(pitch) - y cos(pitch) per unit depth
    y = (torch.arange(rows, dtype=torch.float32) - cy) / fy
    drop = y * math.cos(pitch) - math.sin(pitch)
    expected = height_m / drop.clamp(min=1e-6)
    floor_rows = (drop > 0) & (expected < 12.0)  # rows that see the floor well before the walls
    assert floor_rows.sum() >= 10
    assert torch.allclose(depth[floor_rows], expected[floor_rows, None].expand(-1, cols), rtol=1e-4)


def test_culled_camera_rays_agree_with_testing_every_object():
    scene = random_scenes(Draws(frame_keys(stream_id(0, "train"), torch.arange(3))))
    height, width = SMALL
    intrinsics = nyu_intrinsics(height, width)
    surface = trace(scene, height, width, intrinsics)
    rows = torch.arange(height).repeat_interleave(width)
    origin, direction = camera_rays(scene, rows, torch.arange(width).repeat(height), intrinsics)
    room, _ = _room_exit(origin, direction, scene.space_lo, scene.space_hi)
    brute = room  # the nearest of the room shell and every box and cylinder, none left out
    for entry, exit in _object_intervals(scene, origin, direction):
        brute = torch.minimum(brute, _hit(entry, exit).amin(1))
    assert surface.exact.float().mean() > 0.99
    assert torch.allclose(surface.depth[surface.exact], brute[surface.exact], rtol=1e-5)


def test_shadow_rays_are_blocked_by_a_box_between_point_and_light():
    scene = simple_scene((4.0, 3.0, 4.0), camera_pos=(2.0, 1.5, 0.5), boxes=[((1.5, 1.0, 1.5), (2.5, 1.2, 2.5))])
    start = torch.tensor([[[2.0, 0.01, 2.0], [0.5, 0.01, 0.5]]])
    light = scene.light_pos[:, :1].expand(-1, 2, -1)
    assert _blocked(scene, start, light).tolist() == [[True, False]]


def test_same_seed_same_frames_other_seed_other_frames():
    a = SyntheticFrames(seed=3, height=SMALL[0], width=SMALL[1]).render(torch.arange(2))
    b = SyntheticFrames(seed=3, height=SMALL[0], width=SMALL[1]).render(torch.arange(2))
    c = SyntheticFrames(seed=4, height=SMALL[0], width=SMALL[1]).render(torch.arange(2))
    assert torch.equal(a.image, b.image) and torch.equal(a.depth, b.depth)
    assert not torch.equal(a.image, c.image) and not torch.equal(a.true_depth, c.true_depth)
    assert not torch.equal(a.image[0], a.image[1])


def test_a_frame_is_the_same_alone_and_inside_a_batch():
    source = SyntheticFrames(seed=0, height=SMALL[0], width=SMALL[1])
    alone = source.render(torch.tensor([5]))
    batch = source.render(torch.tensor([2, 9, 5, 7]))
    assert torch.allclose(alone.true_depth[0], batch.true_depth[2], rtol=1e-5, atol=1e-5)
    assert (alone.image[0].int() - batch.image[2].int()).abs().float().mean() < 0.5
    assert (alone.valid[0] != batch.valid[2]).float().mean() < 0.002


def test_fixed_shapes_give_the_frames_of_the_trimmed_cpu_path(monkeypatch):
    # eager CPU rendering trims pair budgets and object lists to what the frames use; a GPU
    # and torch.compile keep fixed shapes: the frames must not depend on which path ran
    source = SyntheticFrames(seed=2, height=SMALL[0], width=SMALL[1])
    trimmed = source.render(torch.arange(4))
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    fixed = source.render(torch.arange(4))
    assert torch.allclose(trimmed.true_depth, fixed.true_depth, rtol=1e-5, atol=1e-5)
    assert torch.equal(trimmed.valid, fixed.valid)
    assert (trimmed.image.int() - fixed.image.int()).abs().float().mean() < 0.05


def test_frames_are_finite_within_range_and_mostly_valid():
    frames = SyntheticFrames(seed=1, height=120, width=160).render(torch.arange(8))
    assert frames.image.dtype == torch.uint8 and frames.image.shape == (8, 3, 120, 160)
    assert torch.isfinite(frames.true_depth).all() and torch.isfinite(frames.depth).all()
    assert (frames.true_depth > 0).all() and (frames.true_depth <= FAR).all()
    readings = frames.depth[frames.valid]
    assert readings.min() >= MIN_DEPTH and readings.max() <= MAX_DEPTH
    assert torch.equal(frames.valid, frames.depth > 0)
    share = frames.valid.float().mean((1, 2))
    assert (share > 0.4).all() and (share < 0.99).all()  # every frame has holes
    assert 0.6 <= share.mean() <= 0.95
    assert frames.image.float().std() > 10  # not blank


def test_ideal_sensor_has_no_holes_inside_the_range():
    scene = simple_scene((4.0, 3.0, 6.0), camera_pos=(2.0, 1.5, 1.0))
    frames = render(scene, ideal_sensor(1), *SMALL)
    assert frames.valid.all() and torch.equal(frames.depth, frames.true_depth)


def test_frame_source_contract():
    source = open_dataset("synthetic", split="val", n=10, height=48, width=64).frame_source("cpu")
    assert len(source) == 10
    images, depth = source.frames(torch.tensor([0, 3]))
    assert images.shape == (2, 3, 240, 320) and images.dtype == torch.uint8
    assert depth.shape == (2, 240, 320) and depth.dtype == torch.float32
    with pytest.raises(IndexError):
        source.frames(torch.tensor([10]))


def test_dataset_samples_and_disjoint_splits():
    train = open_dataset("synthetic", split="train", n=3, height=48, width=64)
    test = open_dataset("synthetic", split="test", n=3, height=48, width=64)
    assert len(train) == 3 and len(open_dataset("synthetic", n=0)) == 2**31
    sample = train[1]
    assert sample.image.shape == (48, 64, 3) and sample.depth.shape == (48, 64)
    assert sample.intrinsics == pytest.approx(nyu_intrinsics(48, 64))
    assert np.array_equal(sample.valid, sample.depth > 0)
    assert not np.array_equal(sample.image, test[1].image)
    # the streams never share a frame: their keys are disjoint by construction
    streams = {split: stream_id(0, split) for split in ("train", "val", "test")}
    assert len(set(streams.values())) == 3
    keys = {split: set(frame_keys(s, torch.arange(1000)).tolist()) for split, s in streams.items()}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["val"] and not keys["val"] & keys["test"]
    with pytest.raises(ValueError, match="split"):
        open_dataset("synthetic", split="holdout")
    with pytest.raises(IndexError):
        train[3]


def test_write_folder_round_trips_through_png(tmp_path):
    out = write_folder(tmp_path / "rooms", n=2, split="test", seed=5, height=48, width=64)
    manifest = json.loads((out / "manifest.json").read_text())["frames"]
    assert len(manifest) == 2
    assert {"name", "intrinsics", "dataset", "source", "license"} <= set(manifest[0])
    assert manifest[0]["intrinsics"] == pytest.approx(list(nyu_intrinsics(48, 64)))
    frames = SyntheticFrames(seed=5, split="test", height=48, width=64).render(torch.arange(2))
    for i, entry in enumerate(manifest):
        rgb = np.asarray(Image.open(out / f"{entry['name']}_rgb.png"))
        millimetres = np.asarray(Image.open(out / f"{entry['name']}_depth.png")).astype(np.int64)
        assert np.array_equal(rgb, frames.image[i].permute(1, 2, 0).numpy())
        assert np.array_equal(millimetres, np.round(frames.depth[i].numpy().astype(np.float64) * 1000))
        assert entry["room"] == ROOM_NAMES[int(frames.room_type[i])]  # the kind of room the generator drew
    preview = Image.open(out / "preview.png")
    assert preview.width >= 2 * 64 and preview.height >= 48
    sample = open_dataset("folder", out)[0]  # the folder reader reads the layout back
    assert np.allclose(sample.depth, frames.depth[0].numpy(), atol=5e-4)


def test_kinect_depth_is_quantised_in_steps_that_grow_with_distance():
    from depth.synthetic.sensor import kinect_depth

    true = torch.linspace(0.5, 9.0, 4000).view(1, 1, -1)
    valid = torch.ones_like(true, dtype=torch.bool)
    valid[..., :10] = False
    sensor = ideal_sensor(1)
    assert torch.equal(kinect_depth(true, valid, sensor)[valid], true[valid])  # the ideal sensor is exact
    sensor.depth_step = torch.tensor([0.003])
    reported = kinect_depth(true, valid, sensor)
    assert (reported[~valid] == 0).all()
    error = (reported - true)[valid].abs()
    assert (error <= 0.5 * 0.003 * true[valid] ** 2 * 1.05 + 1e-6).all()
    levels = reported[valid].unique()
    near, far = levels[(levels > 0.95) & (levels < 1.05)], levels[(levels > 4.8) & (levels < 5.2)]
    assert near.diff().mean() == pytest.approx(0.003, rel=0.1)
    assert far.diff().mean() == pytest.approx(0.003 * 25, rel=0.1)


def test_rendered_depth_is_quantised_and_never_far_from_the_truth():
    frames = SyntheticFrames(seed=3, split="test", device="cpu").render(torch.arange(4))
    valid = frames.valid
    assert (frames.depth[~valid] == 0).all()
    truth = frames.true_depth[valid]
    assert ((frames.depth[valid] - truth).abs() <= 0.5 * 0.0035 * truth**2 * 1.05 + 1e-6).all()
    assert (frames.depth[valid] != truth).float().mean() > 0.5


def test_random_rooms_have_turned_furniture_inside_the_room():
    scene = random_scenes(Draws(frame_keys(11, torch.arange(128))))
    assert len(scene.group_sizes) == 3  # room-aligned boxes, the table set, the free-standing piece
    free = slice(sum(scene.group_sizes[:2]), None)
    placed = scene.box_lo[:, free, 1] < 900
    stands = placed.any(1)
    assert 0.1 < stands.float().mean() < 0.6
    yaw = scene.group_yaw[stands, 2]
    off_axis = torch.remainder(yaw, math.pi / 2)
    assert ((off_axis > 0.1) & (off_axis < math.pi / 2 - 0.1)).float().mean() > 0.5  # at any angle
    pivot = scene.group_pivot[stands, 2]
    room_hi = scene.space_hi[stands, 0]
    assert ((pivot[:, 0] > 0) & (pivot[:, 0] < room_hi[:, 0]) & (pivot[:, 2] > 0) & (pivot[:, 2] < room_hi[:, 2])).all()


def test_a_camera_facing_a_near_wall_turns_to_the_room():
    from depth.synthetic.camera import _face_open_space

    class Room:  # a 4 x 6 m floor plan
        width, depth = torch.tensor([4.0, 4.0]), torch.tensor([6.0, 6.0])

    position = torch.tensor([[2.0, 1.5, 5.0], [2.0, 1.5, 1.0]])
    facing_the_far_wall = torch.tensor([[0.0, 0.0, 0.0], [0.0, -0.2, 0.05]])  # yaw 0 looks along +z
    turned = _face_open_space(Draws(frame_keys(0, torch.arange(2))), position, facing_the_far_wall, Room())
    assert turned[0, 0].abs() > math.pi - 0.41  # 1 m from the wall: turned round towards the centre
    assert torch.equal(turned[1], facing_the_far_wall[1])  # 5 m of room ahead: left alone
