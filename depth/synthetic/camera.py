"""The camera: the hand-held Kinect pose, NYU intrinsics and camera rays."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..data.nyu import NYU_HEIGHT, NYU_INTRINSICS, NYU_WIDTH
from ..geometry import scale_intrinsics
from .hashing import Draws
from .rooms import _Room, _take
from .scene import Scene, constant


def hand_held_pose(d: Draws, room: _Room) -> tuple[Tensor, Tensor]:
    """Camera position (B, 3) and yaw, pitch, roll (B, 3): a person holding a Kinect, mostly
    standing near a wall and looking into the room, sometimes anywhere, looking across it."""
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
    yaw = facing + d.uniform(-1.0, 1.0) * torch.where(corridor, 0.35, 0.7)
    anywhere = d.chance(0.2) & ~corridor
    x = torch.where(anywhere, 0.5 + d.uniform() * (W - 1.0), x)
    z = torch.where(anywhere, 0.5 + d.uniform() * (D - 1.0), z)
    # from anywhere, people look across the room rather than into the nearest wall
    across = torch.atan2(W - 2 * x, D - 2 * z) + d.uniform(-0.9, 0.9)
    yaw = torch.where(anywhere, across, yaw)
    height = d.triangular(0.8, 1.8)
    pitch = torch.deg2rad(d.triangular(-30.0, 10.0))
    roll = torch.deg2rad(d.triangular(-6.0, 6.0))
    return torch.stack([x, height, z], -1), torch.stack([yaw, pitch, roll], -1)


def _aim(d: Draws, position: Tensor, ypr: Tensor, pieces: list[dict[str, Tensor]]) -> Tensor:
    """Half the time, turn the camera towards a random piece of furniture at least 1.5 m away
    (people point cameras at things, from a few steps back); turning it leaves it where it
    is, clear of everything."""
    centres = torch.stack([p["centre"] for p in pieces], 1)  # (B, K, 3)
    offsets = centres - position[:, None]
    placed = torch.stack([p["placed"] for p in pieces], 1) & (offsets[..., 0] ** 2 + offsets[..., 2] ** 2 > 1.5**2)
    choice = (d.uniform(n=len(pieces)) * placed.float()).argmax(1)
    to = _take(centres, choice) - position
    yaw = torch.atan2(to[:, 0], to[:, 2]) + d.uniform(-0.4, 0.4)
    pitch = torch.atan2(to[:, 1], torch.sqrt(to[:, 0] ** 2 + to[:, 2] ** 2)) + d.uniform(-0.15, 0.1)
    pitch = pitch.clamp(math.radians(-30), math.radians(12))
    aim = d.chance(0.5) & placed.any(1)
    return torch.where(aim[:, None], torch.stack([yaw, pitch, ypr[:, 2]], -1), ypr)


# ----------------------------------------------------------------------------- camera

def nyu_intrinsics(height: int = NYU_HEIGHT, width: int = NYU_WIDTH) -> tuple[float, float, float, float]:
    """NYU's Kinect RGB intrinsics (fx, fy, cx, cy), in pixels of a height x width image."""
    return scale_intrinsics(NYU_INTRINSICS, (NYU_WIDTH, NYU_HEIGHT), (width, height))


def _pixel_grid(height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Row and column indices (H * W,) of every pixel, row-major."""
    rows = torch.arange(height, device=device).repeat_interleave(width)
    return rows, torch.arange(width, device=device).repeat(height)


def camera_rays(
    scene: Scene, rows: Tensor, columns: Tensor, intrinsics: tuple[float, float, float, float]
) -> tuple[Tensor, Tensor]:
    """World rays through pixels (rows, columns (P,) indices): origin (B, 1, 3) and direction
    (B, P, 3).

    Directions are not normalised: their camera-frame z is 1, so a hit's ray parameter t is
    its depth along the optical axis.
    """
    fx, fy, cx, cy = intrinsics
    x_cam = ((columns.float() - cx) / fx)[None, :, None]  # (1, P, 1)
    y_cam = ((rows.float() - cy) / fy)[None, :, None]
    right, down, forward = camera_axes(scene.camera_ypr)
    direction = x_cam * right[:, None] + y_cam * down[:, None] + forward[:, None]
    return scene.camera_pos[:, None, :], direction


def camera_axes(ypr: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The camera's right, down and forward unit vectors in the world, each (B, 3).

    Yaw 0 looks along world +z (right is then world -x, a right-handed camera); positive
    yaw turns towards +x, positive pitch looks up, positive roll turns the camera clockwise
    about its optical axis (its right side dips).
    """
    yaw, pitch, roll = ypr.unbind(-1)
    zero = torch.zeros_like(yaw)
    forward = torch.stack([torch.sin(yaw) * torch.cos(pitch), torch.sin(pitch),
                           torch.cos(yaw) * torch.cos(pitch)], -1)
    level_right = torch.stack([-torch.cos(yaw), zero, torch.sin(yaw)], -1)
    up = torch.linalg.cross(level_right, forward)
    cos_r, sin_r = torch.cos(roll)[:, None], torch.sin(roll)[:, None]
    right = cos_r * level_right - sin_r * up
    down = -sin_r * level_right - cos_r * up
    return right, down, forward




def _face_open_space(d: Draws, position: Tensor, ypr: Tensor, room: _Room, nearest: float = 1.5) -> Tensor:
    """Turn a camera that looks at a wall of the main room less than `nearest` metres ahead
    (along the floor) towards the room's centre, give or take 0.4 rad: people filming a room
    step back from a blank wall. The pose (B, 3) otherwise stays as it is."""
    yaw = ypr[:, 0]
    ahead_x, ahead_z = torch.sin(yaw), torch.cos(yaw)
    x, z = position[:, 0], position[:, 2]

    def to_wall(p: Tensor, step: Tensor, size: Tensor) -> Tensor:  # distance to the wall across this axis
        gap = torch.where(step > 0, size - p, p)
        return gap / step.abs().clamp(min=1e-6)

    ahead = torch.minimum(to_wall(x, ahead_x, room.width), to_wall(z, ahead_z, room.depth))
    centre = torch.atan2(room.width / 2 - x, room.depth / 2 - z) + d.uniform(-0.4, 0.4)
    turned = torch.stack([centre, ypr[:, 1], ypr[:, 2]], -1)
    return torch.where((ahead < nearest)[:, None], turned, ypr)
