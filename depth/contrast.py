"""Contrast calibration: how far a network's maps are stretched about their own mean log depth.

A network trained on a squared log error predicts, where it is unsure, the average of the
rooms it might be looking at, so its maps vary less than the scenes do: on the synthetic val
split the default's log depth varies about 0.8 times as much as the truth (`evaluate`'s
"spread"), and on real rooms, which it knows less well, less still. Users see such maps as
flat rooms and squashed point clouds. `fit_contrast` measures that spread on frames of the
training world held out from training (by default 256 frames of the synthetic val split,
never the test split) and `set_contrast` stores its inverse in the checkpoint's info as
{"coarse": factor, "fine": factor}. `DepthModel.forward` then stretches each map about its own
mean log depth by the factor, so the maps vary as much as the held-out rooms do while their
mean, and with it the scale, stays as the network predicted it.

The factor matches the spread (standard deviations), not the least-squares slope of true on
predicted log depth: the slope is what scores best on the frames it is fitted on, the spread
what keeps a map's relief when the photo is less familiar than those frames.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .checkpoint import CheckpointError, load_info, replace_info
from .data import DepthDataset
from .metrics import PAPER

if TYPE_CHECKING:
    from .predict import DepthModel

MAPS = ("coarse", "fine")  # the networks' two outputs, each with its own factor
_REPORT_ROWS = {"coarse": "coarse", "fine": "coarse + fine"}  # evaluate's row of each map
FACTOR_RANGE = (0.25, 4.0)  # beyond these a "calibration" would be rewriting the map, not its contrast


def stretch(log_depth: torch.Tensor, factor: float) -> torch.Tensor:
    """(B, 1, H, W) log depth -> the same maps, each stretched about its own mean by `factor`."""
    if factor == 1.0:
        return log_depth
    mean = log_depth.mean(dim=(-2, -1), keepdim=True)
    return mean + factor * (log_depth - mean)


def contrast_factors(info: dict[str, Any]) -> dict[str, float]:
    """{"coarse": factor, "fine": factor} from a checkpoint's info (1.0 where it stores none).

    Raises ValueError naming the problem when the stored contrast is malformed or out of range.
    """
    stored = info.get("contrast") or {}
    if not isinstance(stored, dict) or set(stored) - set(MAPS):
        raise ValueError(f"the checkpoint's contrast must map {' and '.join(MAPS)} to factors, got {stored!r}")
    factors = {name: stored.get(name, 1.0) for name in MAPS}
    for name, factor in factors.items():
        if isinstance(factor, bool) or not (isinstance(factor, (int, float)) and _in_range(factor)):
            raise ValueError(f"the checkpoint's {name} contrast factor {factor!r} is not a number in "
                             f"[{FACTOR_RANGE[0]}, {FACTOR_RANGE[1]}]")
    return {name: float(factor) for name, factor in factors.items()}


def fit_contrast(model: DepthModel, dataset: DepthDataset, frames: int = 256, progress: bool = True,
                 clamp: bool = False) -> dict[str, Any]:
    """The contrast factors that make `model`'s maps vary as much as `dataset`'s scenes.

    The maps are taken as the network makes them (the model's own contrast set aside while
    fitting), through the one inference path, over the first `frames` frames (paper protocol).
    Returns {"coarse": factor, "fine": factor, "frames": scored frames, "spread": {map: the
    maps' spread over the truth's before stretching}}. Raises ValueError when the frames' depth
    does not vary (no spread to match) or a factor falls outside FACTOR_RANGE, unless `clamp`
    (for the barely trained networks of a scaled-down recipe check): then it is the range's end.
    """
    from .evaluate import evaluate  # evaluate imports predict, which imports this module

    stored, model.contrast = model.contrast, dict.fromkeys(MAPS, 1.0)
    try:
        report = evaluate(model, dataset, PAPER, limit=frames, progress=progress)
    finally:
        model.contrast = stored
    spread = {name: report["spread"][row] for name, row in _REPORT_ROWS.items()}
    fitted: dict[str, Any] = {"frames": report["frames"], "spread": spread}
    for name, ratio in spread.items():
        if ratio is None:
            raise ValueError(f"the {report['frames']} frames' depth does not vary: there is no contrast to match")
        if clamp and ratio > 0:
            ratio = 1.0 / min(max(1.0 / ratio, FACTOR_RANGE[0]), FACTOR_RANGE[1])
        if not (ratio > 0 and _in_range(1.0 / ratio)):
            raise ValueError(f"the {name} maps vary {ratio:.3g} times as much as these frames' depth: a factor of "
                             f"{1 / ratio if ratio else float('inf'):.3g} is outside [{FACTOR_RANGE[0]}, "
                             f"{FACTOR_RANGE[1]}]; were these weights trained on frames like these?")
        fitted[name] = round(1.0 / ratio, 4)
    return fitted


def _in_range(factor: float) -> bool:
    return math.isfinite(factor) and FACTOR_RANGE[0] <= factor <= FACTOR_RANGE[1]


def set_contrast(weights: str | Path, factors: dict[str, float] | None, fitted_on: str = "") -> None:
    """Store contrast `factors` ({"coarse", "fine"}) in the checkpoint's info, in place (the
    weights are not touched); None removes them. `fitted_on` says on which frames."""
    info = load_info(weights)
    info.pop("contrast", None)
    info.pop("contrast_fitted_on", None)
    if factors is not None:
        info["contrast"] = {name: factors[name] for name in MAPS}
        contrast_factors(info)
        if fitted_on:
            info["contrast_fitted_on"] = fitted_on
    try:
        replace_info(weights, info)
    except OSError as error:
        raise CheckpointError(f"checkpoint {weights} cannot be rewritten: {error}") from None
