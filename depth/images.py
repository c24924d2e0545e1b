"""Turning whatever a user hands us (a path, a PIL image, an array) into an RGB uint8 array."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

ImageSource = str | Path | Image.Image | np.ndarray

MAX_PIXELS = 50_000_000  # about 8200x6100: above any phone camera, far below a decompression bomb
MIN_SIDE = 16  # pixels; below this there is nothing to estimate depth from


def load_rgb(source: ImageSource, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode `source` into an (H, W, 3) uint8 RGB array, upright.

    Accepts a file path, a PIL image, or a uint8 array of shape (H, W), (H, W, 1), (H, W, 3)
    or (H, W, 4). EXIF orientation is applied; transparency is composited onto white; 16-bit
    and float greyscale are scaled to 8 bits; any other mode (L, P, CMYK, ...) is converted.
    Raises ValueError naming the problem for non-images, truncated files, empty images, images
    smaller than MIN_SIDE or larger than `max_pixels` (a file's size is read from its header,
    before decoding); FileNotFoundError for a missing path. `name` is the source as messages
    call it (default: the path, or "image" / "array").
    """
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, name or "array", max_pixels)
    if isinstance(source, Image.Image):
        return _pil_to_rgb(source, name or "image", max_pixels)
    if isinstance(source, (str, Path)):
        return _pil_to_rgb(_open(Path(source), name or str(source)), name or str(source), max_pixels)
    raise TypeError(f"expected a path, PIL image or numpy array, got {type(source).__name__}")


def _open(path: Path, name: str) -> Image.Image:
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such file")
    if not path.is_file():
        raise ValueError(f"{name}: not a file")
    with warnings.catch_warnings():
        # Pillow only warns between 89 and 179 megapixels; we refuse all of it, with our own limit
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ValueError(
                f"{name}: image is larger than the {MAX_PIXELS // 1_000_000}-megapixel limit ({error})"
            ) from None
        except UnidentifiedImageError:
            raise ValueError(f"{name}: not an image file Pillow can read") from None
        except OSError as error:
            raise ValueError(f"{name}: cannot be read: {error}") from None
    return image


def _check_size(width: int, height: int, name: str, max_pixels: int = MAX_PIXELS) -> None:
    if width == 0 or height == 0:
        raise ValueError(f"{name}: image is empty ({width}x{height} pixels)")
    if width * height > max_pixels:
        raise ValueError(
            f"{name}: image is {width}x{height} = {width * height / 1e6:.0f} megapixels, "
            f"more than the {max_pixels / 1e6:.0f}-megapixel limit"
        )
    if min(width, height) < MIN_SIDE:
        raise ValueError(
            f"{name}: image is {width}x{height} pixels; depth needs at least {MIN_SIDE}x{MIN_SIDE}"
        )


def _pil_to_rgb(image: Image.Image, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    _check_size(*image.size, name, max_pixels)  # before decoding: the header alone gives the size
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"{name}: image data is corrupt or truncated ({error})") from None
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a malformed EXIF block should not cost the user the photo
        pass
    _check_size(*image.size, name, max_pixels)

    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        return _grey_to_rgb(np.asarray(image, dtype=np.float64), image.mode)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    try:
        if has_alpha:
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        rgb = image.convert("RGB")
    except (ValueError, OSError) as error:
        raise ValueError(f"{name}: cannot convert image mode {image.mode} to RGB ({error})") from None
    return np.asarray(rgb, dtype=np.uint8).copy()


def _grey_to_rgb(values: np.ndarray, mode: str) -> np.ndarray:
    """Scale 16-bit, 32-bit or float greyscale to uint8 and repeat it into three channels.

    Integers keep their scale (16-bit: /257); float images have none to keep, so their own
    range, lowest to highest finite value, becomes 0-255."""
    finite = values[np.isfinite(values)]
    low, top = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if mode == "F":
        values = (values - low) * (255.0 / (top - low)) if top > low else np.zeros_like(values)
    elif mode.startswith("I;16") or 255 < top <= 65535:
        values = values / 257.0
    elif top > 65535:
        values = values * (255.0 / top)
    grey = np.clip(np.nan_to_num(values), 0, 255).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _array_to_rgb(array: np.ndarray, name: str, max_pixels: int) -> np.ndarray:
    if array.dtype != np.uint8:
        raise ValueError(f"{name}: image array must be uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        _check_size(array.shape[1], array.shape[0], name, max_pixels)
        return np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"{name}: image array must be (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    _check_size(array.shape[1], array.shape[0], name, max_pixels)
    if array.shape[2] == 4:
        return _pil_to_rgb(Image.fromarray(array), name, max_pixels)
    return np.ascontiguousarray(array)


def resize_rgb(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 3, H, W) uint8 or float -> (B, 3, height, width) float in [0, 1], antialiased bilinear.

    The one resampling used for photos at inference and for frames entering training, so the
    network sees images prepared the same way in both.
    """
    scaled = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    if scaled.shape[-2:] == (height, width):
        return scaled
    return F.interpolate(scaled, size=(height, width), mode="bilinear", antialias=True,
                         align_corners=False).clamp(0.0, 1.0)
