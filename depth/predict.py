"""The one inference path: a photo in, metric depth out. Used by the app, the CLI, evaluation
and the tests, so preprocessing lives here and nowhere else.

How a photo of any size and aspect ratio meets the network's fixed 304x228 input:

1. The photo is scaled, keeping its aspect ratio, to fit inside 320x240, the paper's
   half-resolution NYU frame (antialiased bilinear). A 640x480 photo becomes exactly the
   paper's 320x240, so objects appear at the scale the network was trained on; this assumes the
   photo's field of view matches the NYU camera's along its fitted side.
2. The network input is the centre 304x228 window of that, as in the paper's test protocol.
   Where the scaled photo is smaller than the window (photos wider than 4:3, or portrait), the
   missing rows or columns repeat the photo's edge pixels.
3. The 74x55 log-depth output covers input pixels [3.5, 299.5) x [3.5, 223.5). It is resampled
   to every pixel of the original photo by separable linear interpolation in log depth; the
   thin border the output grid does not reach (about 4% of each side for a 4:3 photo) takes
   the nearest predicted value. So every photo pixel gets a depth, at the photo's resolution.

Unlike the paper, the network also sees the input's mirror image by default, and both maps are
the mean (in log depth) of the two predictions, the mirrored one flipped back. A room mirrored
is still a room, so this averages away some of the network's left-right errors, for the cost
of a batch of two (the measured gain and cost: docs/benchmarks.md, "Inference and flip
averaging"). `flip_average=False` gives the paper's single pass.

Last, where the checkpoint stores contrast factors (`python -m depth calibrate`, see
`depth.contrast`), each map is stretched about its own mean log depth by its factor, before
the resampling of step 3: the maps then vary as much as held-out rooms of the training world,
and their scale stays as the network predicted it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import CheckpointError, load_checkpoint
from .contrast import contrast_factors, stretch
from .images import ImageSource, load_rgb, resize_rgb
from .model import (
    FRAME_HEIGHT,
    FRAME_WIDTH,
    INPUT_HEIGHT,
    INPUT_WIDTH,
    OUTPUT_HEIGHT,
    OUTPUT_OFFSET,
    OUTPUT_STRIDE,
    OUTPUT_WIDTH,
)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_WEIGHTS = ASSETS / "model.safetensors"  # the default network (see MODEL_CARD.md)
# Every network the project ships, the default first: the app offers a choice among them.
SHIPPED_WEIGHTS = (DEFAULT_WEIGHTS, ASSETS / "model-paper.safetensors")  # ImageNet-pretrained, then the paper network


# The two maps a network gives, by the name a checkpoint's info["output"] uses, and what
# reports and the page call each: the default output is one of them (DepthModel.output).
OUTPUT_NAMES = {"fine": "coarse + fine", "coarse": "coarse"}


def default_map(output: str, coarse: Any, fine: Any) -> Any:
    """Of a (coarse, fine) pair of anything (maps, files, colour images), the one `output`
    ("fine" or "coarse") names: the default output's."""
    return coarse if output == "coarse" else fine


class UntrainedWeightsWarning(UserWarning):
    """The loaded weights were never trained: their depth maps mean nothing."""


@dataclass
class Prediction:
    """Depth for one photo. All depths are float32 metres.

    image: (H, W, 3) uint8, the photo as the model saw it (upright, RGB).
    fine, coarse: (H, W) depth at the photo's resolution (fine = coarse + fine networks).
    fine_map, coarse_map: (55, 74) the networks' raw output grids.
    output: "fine" or "coarse", the map the weights stand behind (`depth`); "coarse" where
    their fine stage scored worse than the coarse net alone (see DepthModel.output).
    """

    image: np.ndarray
    fine: np.ndarray
    coarse: np.ndarray
    fine_map: np.ndarray
    coarse_map: np.ndarray
    output: str = "fine"

    @property
    def depth(self) -> np.ndarray:
        """(H, W) metres: the default output, `fine` or `coarse` as `output` says."""
        return default_map(self.output, self.coarse, self.fine)


@dataclass(frozen=True)
class _Placement:
    """Where a photo sits in the network input: input_x = photo_x * scale_x - offset_x."""

    height: int
    width: int
    scale_y: float
    scale_x: float
    offset_y: int
    offset_x: int


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`device` if given (validated), else CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {str(device)!r}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available here")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {str(device)!r}: use 'cpu' or 'cuda'")
    return device


class DepthModel:
    """A network on a device, ready to turn photos into metric depth.

    net: any module mapping (B, 3, 228, 304) images in [0, 1] to (coarse, fine) log depth
    (B, 1, 55, 74); normally an EigenDepthNet. info: provenance from the checkpoint.
    flip_average: average each map with the mirror image's (see the module docstring).
    """

    def __init__(
        self, net: torch.nn.Module, device: str | torch.device | None = None,
        info: dict[str, Any] | None = None, weights_path: Path | None = None, flip_average: bool = True,
    ) -> None:
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.info = dict(info or {})
        self.weights_path = weights_path
        self.flip_average = flip_average
        self.contrast = contrast_factors(self.info)  # {"coarse", "fine"}: 1.0 leaves the maps as made

    @property
    def trained(self) -> bool:
        return bool(self.info.get("trained", False))

    @property
    def output(self) -> str:
        """The default output of these weights: "fine" (coarse + fine networks, the paper's), or
        "coarse" when the checkpoint says its fine stage made maps worse (info["output"])."""
        return "coarse" if self.info.get("output") == "coarse" else "fine"

    def describe(self) -> str:
        """One line on which weights these are and what they learned from."""
        name = self.weights_path.name if self.weights_path else "in-memory weights"
        if not self.trained:
            return f"{name}: UNTRAINED (random initialisation) - its depth maps are meaningless"
        untrained_fine = "fine" not in self.info.get("stages", ("coarse", "fine"))
        why = "its fine stage is untrained" if untrained_fine else "its fine stage scored worse"
        output = "" if self.output == "fine" else f"; default output: the coarse map ({why})"
        contrast = ""
        if set(self.contrast.values()) != {1.0}:
            contrast = (f"; maps stretched x{self.contrast['coarse']:.2f} coarse, x{self.contrast['fine']:.2f} fine "
                        f"(contrast fitted on {self.info.get('contrast_fitted_on', 'held-out frames')})")
        recipe = self.info.get("recipe", {}).get("name")
        built = f" (recipe {recipe})" if recipe else ""
        return f"{name}{built}: trained on {self.info.get('trained_on', 'unknown data')}{output}{contrast}"

    def predict(self, image: ImageSource) -> Prediction:
        """Depth for one photo: a path, a PIL image or an (H, W, 3) uint8 array."""
        return self.predict_batch([image])[0]

    @torch.inference_mode()
    def predict_batch(self, images: Sequence[ImageSource], batch_size: int = 16) -> list[Prediction]:
        """Depth for many photos of any sizes, `batch_size` network inputs at a time.

        Every image is decoded first, so a bad one raises ValueError before any work is done.
        """
        rgbs = [load_rgb(image) for image in images]
        predictions: list[Prediction] = []
        for start in range(0, len(rgbs), batch_size):
            chunk = rgbs[start : start + batch_size]
            fitted = [_fit_to_input(self._to_tensor(rgb)) for rgb in chunk]
            inputs = torch.stack([x for x, _ in fitted])
            coarse_log, fine_log = self.forward(inputs)
            for rgb, (_, placement), c, f in zip(chunk, fitted, coarse_log.float(), fine_log.float()):
                predictions.append(
                    Prediction(
                        image=rgb,
                        fine=_to_photo(f[0], placement).exp().cpu().numpy(),
                        coarse=_to_photo(c[0], placement).exp().cpu().numpy(),
                        fine_map=f[0].exp().cpu().numpy(),
                        coarse_map=c[0].exp().cpu().numpy(),
                        output=self.output,
                    )
                )
        return predictions

    @torch.inference_mode()
    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, 228, 304) inputs in [0, 1] -> (coarse, fine) log depth, (B, 1, 55, 74) each:
        the network's maps, averaged with those of the mirrored inputs if `flip_average`, then
        stretched about their mean by the checkpoint's contrast factors (`depth.contrast`)."""
        batch = torch.cat([inputs, inputs.flip(-1)]) if self.flip_average else inputs
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            coarse_log, fine_log = self.net(batch)
        if self.flip_average:
            n = len(inputs)
            coarse_log, fine_log = ((m[:n].float() + m[n:].float().flip(-1)) / 2 for m in (coarse_log, fine_log))
        return stretch(coarse_log, self.contrast["coarse"]), stretch(fine_log, self.contrast["fine"])

    def _to_tensor(self, rgb: np.ndarray) -> torch.Tensor:
        if not rgb.flags.writeable:  # e.g. Gradio's webcam frames; torch wants writable memory
            rgb = rgb.copy()
        return torch.from_numpy(rgb).to(self.device).permute(2, 0, 1)


def load_model(
    weights: str | Path | None = None, device: str | torch.device | None = None, flip_average: bool = True,
) -> DepthModel:
    """Load a checkpoint (default: the weights shipped in assets/) onto `device`.

    device: 'cpu', 'cuda', 'cuda:N' or None for CUDA when available, else CPU.
    flip_average: also run the mirror image and average (False: the paper's single pass).
    Warns with UntrainedWeightsWarning when the checkpoint says it was never trained.
    Raises CheckpointError (a ValueError) naming the file for any problem with it.
    """
    path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    net, info = load_checkpoint(path)
    try:
        contrast_factors(info)
    except ValueError as error:
        raise CheckpointError(f"checkpoint {path}: {error}") from None
    model = DepthModel(net, device=device, info=info, weights_path=path, flip_average=flip_average)
    if not model.trained:
        warnings.warn(model.describe(), UntrainedWeightsWarning, stacklevel=2)
    return model


def _fit_to_input(image: torch.Tensor) -> tuple[torch.Tensor, _Placement]:
    """(3, H, W) uint8 photo -> (3, 228, 304) float input in [0, 1] and where the photo sits."""
    _, height, width = image.shape
    scale = min(FRAME_WIDTH / width, FRAME_HEIGHT / height)
    fit_w, fit_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = resize_rgb(image[None], fit_h, fit_w)
    offset_x, offset_y = (fit_w - INPUT_WIDTH) // 2, (fit_h - INPUT_HEIGHT) // 2
    # negative offsets: the window is larger than the photo there; repeat its edge pixels
    pad = (max(0, -offset_x), max(0, offset_x + INPUT_WIDTH - fit_w),
           max(0, -offset_y), max(0, offset_y + INPUT_HEIGHT - fit_h))
    padded = F.pad(resized, pad, mode="replicate") if any(pad) else resized
    top, left = max(0, offset_y), max(0, offset_x)
    window = padded[0, :, top : top + INPUT_HEIGHT, left : left + INPUT_WIDTH]
    placement = _Placement(height, width, fit_h / height, fit_w / width, offset_y, offset_x)
    return window, placement


def _to_photo(log_map: torch.Tensor, placement: _Placement) -> torch.Tensor:
    """Resample a (55, 74) output map to the photo's (H, W) grid, linearly, edges clamped."""
    rows = _interpolation_matrix(placement.height, placement.scale_y, placement.offset_y,
                                 OUTPUT_HEIGHT, log_map.device)
    cols = _interpolation_matrix(placement.width, placement.scale_x, placement.offset_x,
                                 OUTPUT_WIDTH, log_map.device)
    return rows @ log_map @ cols.T


def _interpolation_matrix(
    n_photo: int, scale: float, offset: int, n_grid: int, device: torch.device
) -> torch.Tensor:
    """(n_photo, n_grid) weights: row k linearly interpolates the grid at photo pixel k's centre."""
    photo_centres = torch.arange(n_photo, device=device, dtype=torch.float32) + 0.5
    input_coords = photo_centres * scale - offset
    # grid cell g spans input [OFFSET + STRIDE g, OFFSET + STRIDE (g + 1)), centre at g + 0.5
    grid_coords = (input_coords - OUTPUT_OFFSET) / OUTPUT_STRIDE - 0.5
    grid_coords = grid_coords.clamp(0, n_grid - 1)
    lower = grid_coords.floor().long().clamp(max=n_grid - 2)
    frac = grid_coords - lower
    weights = torch.zeros(n_photo, n_grid, device=device)
    weights.scatter_(1, lower[:, None], (1 - frac)[:, None])
    weights.scatter_add_(1, (lower + 1)[:, None], frac[:, None])
    return weights
