import math

import pytest
import torch

from depth.data.augment import (
    AugmentConfig,
    AugmentParams,
    augment,
    identity_params,
    output_targets,
    random_params,
)


def _frames(batch=3, seed=0):
    """Random images and a depth that encodes the source column: depth = 1 + x / 100 m."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, 3, 240, 320), dtype=torch.uint8, generator=generator)
    x = torch.arange(320, dtype=torch.float32) + 0.5
    depth = (1 + x / 100).expand(batch, 240, 320).clone()
    return images, depth


def _params(batch=3, scale=1.0, angle=0.0, crop=(0.5, 0.5), color=(1.0, 1.0, 1.0), flip=False):
    return AugmentParams(
        scale=torch.full((batch,), scale), angle=torch.full((batch,), angle),
        crop=torch.tensor(crop).expand(batch, 2).clone(), color=torch.tensor(color).expand(batch, 3).clone(),
        flip=torch.full((batch,), flip),
    )


def test_identity_is_the_centre_crop():
    images, depth = _frames()
    rgb, crop_depth = augment(images, depth, identity_params(3))
    assert rgb.shape == (3, 3, 228, 304) and crop_depth.shape == (3, 228, 304)
    torch.testing.assert_close(rgb, images[:, :, 6:234, 8:312].float() / 255)
    assert torch.equal(crop_depth, depth[:, 6:234, 8:312])


@pytest.mark.parametrize("scale", [1.0, 1.2, 1.5])
def test_scaling_zooms_the_frame_and_divides_depth_by_s(scale):
    images, depth = _frames()
    _, left = augment(images, depth, _params(scale=scale, crop=(0.0, 0.5)))
    # crop column u sees source column (u + 0.5) / s; depth there is 1 + x / 100, divided by s
    source_x = (torch.arange(304) + 0.5) / scale
    expected = (1 + source_x / 100) / scale
    # nearest-neighbour sampling: within half a source pixel
    assert (left[0, 100] - expected).abs().max() <= 0.5 / 100 / scale + 1e-6
    constant = torch.full_like(depth, 3.0)
    _, scaled = augment(images, constant, _params(scale=scale))
    torch.testing.assert_close(scaled, torch.full_like(scaled, 3.0 / scale))


def test_flip_gives_the_mirror_image_for_any_parameters():
    images, depth = _frames()
    generator = torch.Generator().manual_seed(3)
    params = random_params(3, generator)
    params.flip[:] = False
    rgb, crop_depth = augment(images, depth, params)
    params.flip[:] = True
    rgb_flipped, depth_flipped = augment(images, depth, params)
    torch.testing.assert_close(rgb_flipped, rgb.flip(-1))
    torch.testing.assert_close(depth_flipped, crop_depth.flip(-1))


def test_colour_scales_channels_and_leaves_depth_alone():
    images, depth = _frames()
    rgb, crop_depth = augment(images, depth, _params())
    rgb_c, depth_c = augment(images, depth, _params(color=(0.8, 1.0, 1.2)))
    assert torch.equal(depth_c, crop_depth)
    torch.testing.assert_close(rgb_c[:, 0], rgb[:, 0] * 0.8)
    torch.testing.assert_close(rgb_c[:, 2], (rgb[:, 2] * 1.2).clamp(max=1.0))


def test_rotation_turns_image_and_depth_together_and_masks_what_came_from_outside():
    images, depth = _frames(batch=1)
    depth[:, :, :20] = 0.0  # a hole along the left edge of the frame
    images[:, :, :, :20] = 0  # the image is black exactly there
    params = _params(batch=1, angle=math.radians(5), crop=(0.0, 0.0))
    rgb, crop_depth = augment(images, depth, params)
    hole = crop_depth == 0
    black = rgb.amax(dim=1) == 0
    assert hole.any() and black.any()
    # where the image shows the black band, depth has its hole (rotation moved both alike);
    # bilinear image edges may blur by a pixel, so compare away from the band's border
    assert (hole | ~black).float().mean() > 0.995
    # the crop's top-right corner, rotated 5 degrees about the frame centre, maps to source
    # (292.5, -11.5): above the frame, so no depth there although the frame has depth at x=292
    assert crop_depth[0, 0, -1] == 0 and crop_depth[0, 20, -1] > 0


def test_random_parameters_stay_in_the_papers_ranges():
    generator = torch.Generator().manual_seed(0)
    params = random_params(4000, generator, AugmentConfig())
    assert params.scale.min() >= 1.0 and params.scale.max() <= 1.5
    assert params.angle.abs().max() <= math.radians(5)
    assert params.color.min() >= 0.8 and params.color.max() <= 1.2
    assert 0.45 < params.flip.float().mean() < 0.55
    assert params.crop.min() >= 0 and params.crop.max() <= 1
    again = random_params(4000, torch.Generator().manual_seed(0))
    assert torch.equal(params.scale, again.scale) and torch.equal(params.flip, again.flip)


def test_output_targets_are_centred_on_the_output_cells():
    x = torch.arange(304, dtype=torch.float32) + 0.5
    depth = (1 + x / 100).expand(2, 228, 304).clone()
    target, valid = output_targets(depth)
    assert target.shape == valid.shape == (2, 55, 74) and valid.all()
    # cell j spans input [4j + 3.5, 4j + 7.5): its centre is at 4j + 5.5
    expected = 1 + (4 * torch.arange(74) + 5.5) / 100
    torch.testing.assert_close(target[0, 10], expected)


def test_output_targets_leave_out_holes_and_the_extremes():
    depth = torch.full((1, 228, 304), 2.0)
    depth[0, :, 100:140] = 0.0  # a hole 40 pixels wide: whole cells without depth
    depth[0, 50, 50] = 0.5  # the image's minimum: excluded like a hole
    depth[0, 60, 60] = 9.0  # the maximum: excluded
    target, valid = output_targets(depth)
    assert not valid[0, :, 26:33].any()  # cells fully inside the hole
    assert valid[0, :, :24].all()
    assert torch.equal(target[valid], torch.full_like(target[valid], 2.0))


