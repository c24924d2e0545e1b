"""The sensors: the colour camera (exposure, blur, noise, JPEG) and the Kinect depth holes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.nyu import NYU_WIDTH
from .hashing import Draws, frame_seed, halves, hash_uniform, mix32, pixel_hash
from .materials import Look
from .raycast import _MISS, FAR, Surface, _unit
from .scene import constant
from .textures import _value_noise

MIN_DEPTH = 0.4  # metres: nearer readings are holes, as for a Kinect
MAX_DEPTH = 10.0  # metres: no valid reading is further (each frame draws its own range <= this)

# ----------------------------------------------------------------------------- the sensors

@dataclass
class Sensor:
    """Per-frame camera and depth-sensor settings, each a tensor with a leading batch axis B.

    exposure: (B,) exposure bias in stops around auto exposure. white_balance: (B, 3) RGB
    gains (colour cast). vignetting: (B,) light lost in the image corners (0..1). blur: (B,)
    Gaussian sigma, pixels of a 640-wide image. noise: (B,) noise sigma at mid grey (0..1
    scale). jpeg_quality: (B,) 1..100 (100: no compression artefacts). band: (B, 4) width of
    the depth border band at the left, top, right and bottom, as fractions of the image side.
    band_tilt: (B,) slope of the band edges. max_range: (B,) metres, at most MAX_DEPTH.
    speckle: (B,) share of pixels lost to small random holes. edge_loss: (B,) probability
    that a pixel at a depth edge is lost. depth_step: (B,) inverse-depth quantum, 1/m: a
    reading is quantised as a Kinect's disparity is, in steps of depth_step * z^2 metres at
    depth z (0: exact). key: (B,) int64, seeds the per-pixel noise.
    holes: False gives a perfect depth sensor (no holes at all), as for the ideal sensor.
    """

    exposure: Tensor
    white_balance: Tensor
    vignetting: Tensor
    blur: Tensor
    noise: Tensor
    jpeg_quality: Tensor
    band: Tensor
    band_tilt: Tensor
    max_range: Tensor
    speckle: Tensor
    edge_loss: Tensor
    depth_step: Tensor
    key: Tensor
    holes: bool = True


def ideal_sensor(batch: int, device: torch.device | str = "cpu") -> Sensor:
    """A sensor without effects: auto exposure only, no noise, blur, compression or holes."""
    zeros = torch.zeros(batch, device=device)
    return Sensor(exposure=zeros, white_balance=torch.ones(batch, 3, device=device), vignetting=zeros,
                  blur=zeros, noise=zeros, jpeg_quality=zeros + 100, band=torch.zeros(batch, 4, device=device),
                  band_tilt=zeros, max_range=zeros + MAX_DEPTH, speckle=zeros, edge_loss=zeros,
                  depth_step=zeros, key=torch.zeros(batch, dtype=torch.int64, device=device), holes=False)


def random_sensor(draws: Draws) -> Sensor:
    """Settings of a hand-held Kinect: NYU-like depth borders most of the time, a warm cast."""
    nyu_like = draws.chance(0.6)[:, None]
    nyu_band = torch.stack([draws.uniform(0.055, 0.068), draws.uniform(0.08, 0.095),
                            draws.uniform(0.045, 0.056), draws.uniform(0.012, 0.02)], -1)
    other_band = draws.uniform(0.0, 1.0, n=4) ** 2 * constant([0.06, 0.06, 0.05, 0.03], draws.device)
    warm = draws.uniform(-0.04, 0.16)  # most indoor pictures keep some of the lamps' warmth
    magenta = draws.uniform(-0.03, 0.08)
    white_balance = torch.stack([1 + warm, 1 - magenta, 1 - warm], -1) * draws.uniform(0.96, 1.04, n=3)
    quality = torch.where(draws.chance(0.2), torch.full_like(warm, 100.0), draws.uniform(55, 95))
    return Sensor(
        exposure=draws.triangular(-1.2, 0.5), white_balance=white_balance,
        vignetting=draws.uniform(0.15, 0.6), blur=draws.uniform(0.6, 1.6), noise=draws.uniform(0.008, 0.035),
        jpeg_quality=quality, band=torch.where(nyu_like, nyu_band, other_band),
        band_tilt=draws.uniform(-0.012, 0.012), max_range=draws.uniform(7.0, MAX_DEPTH),
        speckle=draws.uniform(0.0, 0.03), edge_loss=draws.uniform(0.2, 0.9),
        depth_step=draws.uniform(0.002, 0.0035),  # the Kinect's 1/8-pixel disparity: 2.9 mm at 1 m, 7 cm at 5 m
        key=mix32(draws.bits(1)[:, 0]),
    )


def _blur(image: Tensor, sigma: Tensor) -> Tensor:
    """Per-frame Gaussian blur of (B, C, H, W) with sigma (B,) pixels, a 5x5 separable kernel."""
    batch, channels, height, width = image.shape
    taps = torch.arange(-2, 3, device=image.device, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma.clamp(min=0.05)[:, None]) ** 2)
    kernel = (kernel / kernel.sum(-1, keepdim=True)).repeat_interleave(channels, 0)  # (B*C, 5)
    flat = image.reshape(1, batch * channels, height, width)
    flat = F.conv2d(F.pad(flat, (2, 2, 0, 0), mode="replicate"), kernel[:, None, None, :], groups=batch * channels)
    flat = F.conv2d(F.pad(flat, (0, 0, 2, 2), mode="replicate"), kernel[:, None, :, None], groups=batch * channels)
    return flat.view(batch, channels, height, width)


_JPEG_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
              14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
              49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
_TO_YCC = [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]  # JFIF
_TO_RGB = [[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]]
_LUMINANCE = [0.2126, 0.7152, 0.0722]  # Rec. 709 weights of linear R, G, B
_DCT = [[(math.sqrt(0.125) if i == 0 else 0.5) * math.cos((2 * j + 1) * i * math.pi / 16) for j in range(8)]
        for i in range(8)]  # the orthonormal 8-point DCT-II, row i = frequency i
_JPEG_CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
                47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def _jpeg(rgb: Tensor, quality: Tensor) -> Tensor:
    """JPEG's losses on (B, 3, H, W) RGB in 0..255: 4:2:0 chroma and 8x8 DCT quantisation.

    quality (B,) follows the IJG scaling of the standard tables; at 100 every step is 1.
    """
    batch, _, height, width = rgb.shape
    pad_h, pad_w = -height % 16, -width % 16
    rgb = F.pad(rgb, (0, pad_w, 0, pad_h), mode="replicate")
    to_ycc = constant(_TO_YCC, rgb.device)
    ycc = torch.einsum("ij,bjhw->bihw", to_ycc, rgb)
    chroma = F.interpolate(F.avg_pool2d(ycc[:, 1:], 2), scale_factor=2, mode="bilinear", align_corners=False)
    ycc = torch.cat([ycc[:, :1] - 128, chroma], 1)
    dct = constant(_DCT, rgb.device)
    scale = torch.where(quality < 50, 5000 / quality.clamp(min=1), 200 - 2 * quality)
    tables = constant([_JPEG_LUMA, _JPEG_CHROMA, _JPEG_CHROMA], rgb.device)
    steps = torch.floor((tables[None] * scale[:, None, None] + 50) / 100).clamp(1, 255).view(batch, 3, 1, 8, 1, 8)
    h, w = ycc.shape[-2:]
    blocks = ycc.view(batch, 3, h // 8, 8, w // 8, 8)
    coefficients = torch.einsum("ij,bchjwk,lk->bchiwl", dct, blocks, dct)
    coefficients = torch.round(coefficients / steps) * steps
    blocks = torch.einsum("ji,bchjwk,kl->bchiwl", dct, coefficients, dct)
    ycc = blocks.reshape(batch, 3, h, w)
    ycc = torch.cat([ycc[:, :1] + 128, ycc[:, 1:]], 1)
    to_rgb = constant(_TO_RGB, rgb.device)
    return torch.einsum("ij,bjhw->bihw", to_rgb, ycc)[..., :height, :width]


def colour_camera(radiance: Tensor, sensor: Sensor) -> Tensor:
    """Linear radiance (B, 3, H, W) to the image a cheap camera makes of it: uint8 RGB."""
    batch, _, height, width = radiance.shape
    radiance = _blur(radiance, sensor.blur * width / NYU_WIDTH)
    # auto exposure: the frame's mean log luminance to a mid grey, then the frame's bias
    luminance = (radiance * constant(_LUMINANCE, radiance.device)[:, None, None]).sum(1)
    key = torch.exp(torch.log(luminance + 1e-4).mean((1, 2)))
    gain = 0.16 * torch.exp2(sensor.exposure) / key
    rows = torch.linspace(-1, 1, height, device=radiance.device)[:, None] * (height / width)
    cols = torch.linspace(-1, 1, width, device=radiance.device)[None, :]
    corner = 1 + (height / width) ** 2
    falloff = 1 - sensor.vignetting[:, None, None] * (rows ** 2 + cols ** 2) / corner
    exposed = radiance * (gain[:, None, None] * falloff)[:, None] * sensor.white_balance[:, :, None, None]
    # sensor noise: shot noise grows with the signal; triangular noise per channel
    pixels = height * width
    noise = torch.stack([sum(halves(pixel_hash(sensor.key, 10 + c, pixels))) - 1.0 for c in range(3)], 1)
    noise = noise.view(batch, 3, height, width) * 2.45
    exposed = exposed + noise * sensor.noise[:, None, None, None] * torch.sqrt(exposed.clamp(min=0) + 0.02) * 2
    # a filmic curve (Narkowicz's ACES fit) and the display gamma
    x = exposed.clamp(min=0)
    toned = (x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14)
    encoded = toned.clamp(0, 1) ** (1 / 2.2) * 255
    return _jpeg(encoded, sensor.jpeg_quality).round().clamp(0, 255).to(torch.uint8)


def _blobs(key: Tensor, salt: int, height: int, width: int, size: float) -> tuple[Tensor, Tensor]:
    """Two independent (B, H, W) smooth noise fields in [0, 1), blobs about `size` pixels of a
    640-wide image (two octaves)."""
    scale = width / NYU_WIDTH * size
    rows = torch.arange(height, device=key.device, dtype=torch.float32)[:, None].expand(height, width) / scale
    cols = torch.arange(width, device=key.device, dtype=torch.float32)[None, :].expand(height, width) / scale
    seed = frame_seed(key, salt)[:, None, None]
    a1, b1 = _value_noise(cols[None], rows[None], seed)
    a2, b2 = _value_noise(cols[None] * 2.03, rows[None] * 2.03, seed ^ 0x3C6EF372)
    return (2 * a1 + a2) / 3, (2 * b1 + b2) / 3


def kinect_valid(surface: Surface, albedo: Tensor, sensor: Sensor, height: int, width: int, fx: float) -> Tensor:
    """(B, H, W) bool: where a Kinect would have read the depth of this frame.

    A structured-light sensor loses depth where its projector's pattern does not reach the
    surface (the shadow beside near objects, 7.5 cm of baseline), where the pattern is too
    faint (black, glossy or glass surfaces, grazing angles, far away) and along object edges;
    it sees nothing nearer than MIN_DEPTH or outside its field of view (the border band).
    """
    batch = surface.depth.shape[0]
    depth = surface.depth.view(batch, height, width)
    max_range = sensor.max_range[:, None, None]
    valid = (depth >= MIN_DEPTH) & (depth <= max_range) & surface.exact.view(batch, height, width)
    if not sensor.holes:
        return valid
    # projector shadow: the projector sits right of the camera; a pixel is in shadow when a
    # pixel to its right maps to a projector column at or left of its own
    column = torch.arange(width, device=depth.device, dtype=torch.float32)
    projector = column - fx * 0.075 / depth
    right_min = torch.flip(torch.cummin(torch.flip(projector, [-1]), -1).values, [-1])
    right_min = torch.cat([right_min[..., 1:], torch.full_like(right_min[..., :1], _MISS)], -1)
    valid &= projector < right_min + 0.5

    # ragged edges: pixels next to a depth jump of more than 3 %
    log_depth = torch.log(depth)[:, None]
    padded = F.pad(log_depth, (1, 1, 1, 1), mode="replicate")
    jumps = torch.stack([(padded[..., 1:-1, :-2] - log_depth).abs(), (padded[..., 1:-1, 2:] - log_depth).abs(),
                         (padded[..., :-2, 1:-1] - log_depth).abs(), (padded[..., 2:, 1:-1] - log_depth).abs()])
    edge = F.max_pool2d((jumps.amax(0) > 0.03).float(), 3, stride=1, padding=1)[:, 0] > 0
    pixel = hash_uniform(pixel_hash(sensor.key, 20, height * width)).view(batch, height, width)
    valid &= ~(edge & (pixel < sensor.edge_loss[:, None, None]))

    # weak returns: the surface's own dropout, dark albedo, grazing angles, long range
    weak = surface.look[:, Look.DROPOUT].view(batch, height, width)
    luminance = (albedo * constant(_LUMINANCE, albedo.device)[:, None]).sum(1)
    weak = weak + ((0.02 - luminance) / 0.02).clamp(0, 1).view(batch, height, width) * 0.5
    facing = (surface.normal * _unit(surface.direction)).sum(1).abs().view(batch, height, width)
    weak = weak + ((0.25 - facing) / 0.2).clamp(0, 1) * 0.8
    weak = weak + ((depth - 0.7 * max_range) / (0.3 * max_range)).clamp(0, 1) * 0.5
    blobs, speckles = _blobs(sensor.key, 21, height, width, 10.0)
    valid &= blobs >= weak

    # speckle: small irregular holes anywhere
    valid &= speckles >= sensor.speckle[:, None, None] * 2.5

    # the border band, its edges slightly tilted (the depth camera's view, registered to RGB)
    rows = torch.arange(height, device=depth.device, dtype=torch.float32)[:, None] / height - 0.5
    cols = (column / width - 0.5)[None, :]
    tilt = sensor.band_tilt[:, None, None]
    left, top, right, bottom = (b[:, None, None] for b in sensor.band.unbind(-1))
    inside = ((cols + 0.5 > left + tilt * rows) & (0.5 - cols > right - tilt * rows)
              & (rows + 0.5 > top - tilt * cols) & (0.5 - rows > bottom + tilt * cols))
    return valid & inside


def kinect_depth(true_depth: Tensor, valid: Tensor, sensor: Sensor) -> Tensor:
    """The depth a Kinect reports: (B, H, W) metres, 0 in holes (valid False), elsewhere the
    exact depth quantised in inverse depth (steps of sensor.depth_step, so they grow as z^2)."""
    step = sensor.depth_step[:, None, None]
    inverse = 1.0 / true_depth.clamp(min=MIN_DEPTH)
    quantised = 1.0 / (torch.round(inverse / step.clamp(min=1e-12)) * step).clamp(min=1.0 / FAR)
    return torch.where(valid, torch.where(step > 0, quantised, true_depth), 0.0)
