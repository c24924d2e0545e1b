"""Fitting the contrast factors (`python -m depth calibrate`) and writing them into a checkpoint.

`depth.contrast` says what the factors are and applies them at run time; this module measures
them through `depth.evaluate` (which sits above the inference path) and rewrites the
checkpoint's info.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError, load_info, replace_info
from .contrast import FACTOR_RANGE, MAPS, contrast_factors, in_range
from .data import DepthDataset
from .evaluate import evaluate
from .metrics import PAPER
from .predict import DepthModel

_REPORT_ROWS = {"coarse": "coarse", "fine": "coarse + fine"}  # evaluate's row of each map


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
        if not (ratio > 0 and in_range(1.0 / ratio)):
            raise ValueError(f"the {name} maps vary {ratio:.3g} times as much as these frames' depth: a factor of "
                             f"{1 / ratio if ratio else float('inf'):.3g} is outside [{FACTOR_RANGE[0]}, "
                             f"{FACTOR_RANGE[1]}]; were these weights trained on frames like these?")
        fitted[name] = round(1.0 / ratio, 4)
    return fitted


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
