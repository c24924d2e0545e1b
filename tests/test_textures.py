"""Photo textures: the atlas is complete and licensed, tiles cover the size they claim, and
the renderer's rooms use them."""

import json
import math

import pytest
import torch

from depth.synthetic.atlas import LEVELS, TEXELS, TEXTURE_DIR, TILE_METRES, sample_texture, texture_atlas
from depth.synthetic.hashing import Draws, frame_keys
from depth.synthetic.layout import random_scenes
from depth.synthetic.materials import Look, make_look
from depth.synthetic.textures import surface_albedo


def test_every_texture_is_in_the_repository_with_a_cc0_licence():
    manifest = json.loads((TEXTURE_DIR / "manifest.json").read_text())
    assert len(manifest) == 98
    for entry in manifest:
        assert (TEXTURE_DIR / entry["file"]).is_file(), entry["file"]
        assert entry["license"].startswith("CC0"), entry
        assert entry["category"] in TILE_METRES and entry["source_repo"] and entry["author_or_origin"]
    assert (TEXTURE_DIR / "README.md").is_file()


def test_atlas_holds_every_texture_and_its_mip_levels():
    atlas = texture_atlas("cpu")
    assert atlas.count == 98 and len(atlas.files) == 98
    total = sum(atlas.count * (TEXELS >> level) ** 2 for level in range(LEVELS))
    assert atlas.texels.shape == (3, total)
    assert torch.isfinite(atlas.texels).all() and (atlas.texels >= 0).all()
    # texels are divided by their texture's mean, on every level (box filtering keeps the mean)
    for level in (0, 3, LEVELS - 1):
        side = TEXELS >> level
        start = int(atlas.level_start[level])
        first = atlas.texels[:, start:start + side * side]
        assert first.mean(1) == pytest.approx(torch.ones(3), abs=1e-4)
    assert ((atlas.mean > 0) & (atlas.mean <= 1)).all()
    spans = sorted(atlas.categories.values())
    assert spans[0][0] == 0 and sum(count for _, count in spans) == 98
    assert all(a + n == b for (a, n), (b, _) in zip(spans, spans[1:]))  # consecutive ranges


def _wall_albedo(u, v, size, texture=0, footprint=1e-4, angle=0.0):
    """Albedo (3, P) of points (u, v) (metres) of a grey wall with one texture tiled every `size` m."""
    atlas = texture_atlas("cpu")
    look = make_look(torch.full((1, 3), 0.5), texture=float(texture), texture_freq=1.0 / size,
                     texture_cos=math.cos(angle), texture_sin=math.sin(angle))
    points = u.numel()
    looks = look[:, :, None].expand(-1, -1, points)
    uv = torch.stack([u, v])[None]
    albedo = surface_albedo(looks, uv, torch.zeros(1, points), torch.zeros(1, points, dtype=torch.int32),
                            torch.full((4, 3), 0.5), torch.full((1, points), footprint), atlas.texels,
                            atlas.level_start)
    return albedo[0]


@pytest.mark.parametrize("size", [0.37, 1.25])
def test_one_tile_covers_the_physical_size_it_claims(size):
    generator = torch.Generator().manual_seed(0)
    u, v = torch.rand(500, generator=generator) * 3, torch.rand(500, generator=generator) * 3
    here = _wall_albedo(u, v, size)
    assert torch.allclose(here, _wall_albedo(u + size, v, size), atol=1e-5)
    assert torch.allclose(here, _wall_albedo(u, v - 2 * size, size), atol=1e-5)
    # within a tile the photo varies: a shift by a third of it is a different picture
    assert (here - _wall_albedo(u + size / 3, v, size)).abs().mean() > 0.01
    # and a tile holds TEXELS texels a side: a shift by one texel moves to its neighbour
    texel = size / TEXELS
    centre_u = (torch.floor(u / texel) + 0.5) * texel
    centre_v = (torch.floor(v / texel) + 0.5) * texel
    assert torch.allclose(_wall_albedo(centre_u, centre_v, size),
                          _wall_albedo(centre_u + 0.3 * texel, centre_v - 0.3 * texel, size), atol=1e-5)


def test_far_surfaces_read_the_coarse_mip_levels():
    atlas = texture_atlas("cpu")
    u = torch.linspace(0, 1, 200)
    v = torch.zeros(200) + 0.123
    # one pixel covering a whole tile reads the 1x1 level: the texture's mean, so the albedo
    far = _wall_albedo(u, v, 0.5, texture=5, footprint=0.5)
    assert torch.allclose(far, torch.full_like(far, 0.5), atol=1e-4)
    # nearer, the pattern varies less the further the surface: smoothed, not aliased
    spread = [_wall_albedo(u, v, 0.5, texture=5, footprint=f).std().item() for f in (1e-4, 0.02)]
    assert spread[0] > spread[1]
    index = torch.zeros(1, 1, dtype=torch.int64)
    one = sample_texture(atlas.texels, atlas.level_start, index, torch.tensor([[0.5]]), torch.tensor([[0.5]]),
                         torch.tensor([[1.0]]))
    assert all(torch.isfinite(c).all() for c in one)


def test_random_rooms_use_photo_textures_and_keep_procedural_ones():
    scene = random_scenes(Draws(frame_keys(7, torch.arange(64))))
    looks = torch.cat([scene.box_looks.flatten(0, 1), scene.space_looks.flatten(0, 2)])
    textured = looks[:, Look.TEXTURE] >= 0
    assert 0.15 < textured.float().mean() < 0.85  # both kinds in the mix
    index = looks[textured, Look.TEXTURE]
    assert (index == index.round()).all() and index.max() < 98
    assert len(index.unique()) > 40  # many different photos, not one texture set
    size = 1 / looks[textured, Look.TEXTURE_FREQ]
    assert size.min() >= min(low for low, _ in TILE_METRES.values()) - 1e-6
    assert size.max() <= max(high for _, high in TILE_METRES.values()) + 1e-6
    turn = looks[textured, Look.TEXTURE_COS] ** 2 + looks[textured, Look.TEXTURE_SIN] ** 2
    assert torch.allclose(turn, torch.ones_like(turn), atol=1e-5)
