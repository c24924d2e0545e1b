"""Contrast calibration: how far a network's maps are stretched about their own mean log depth.

A network trained on a squared log error predicts, where it is unsure, the average of the
rooms it might be looking at, so its maps vary less than the scenes do: on the synthetic val
split the default's log depth varies about 0.8 times as much as the truth (`evaluate`'s
"spread"), and on real rooms, which it knows less well, less still. Users see such maps as
flat rooms and squashed point clouds. `depth.calibrate` measures that spread on frames of the
training world held out from training (by default 256 frames of the synthetic val split,
never the test split) and stores its inverse in the checkpoint's info as
{"coarse": factor, "fine": factor}. `DepthModel.forward` then stretches each map about its own
mean log depth by the factor, so the maps vary as much as the held-out rooms do while their
mean, and with it the scale, stays as the network predicted it.

The factor matches the spread (standard deviations), not the least-squares slope of true on
predicted log depth: the slope is what scores best on the frames it is fitted on, the spread
what keeps a map's relief when the photo is less familiar than those frames.
"""

from __future__ import annotations

import math
from typing import Any

import torch

MAPS = ("coarse", "fine")  # the networks' two outputs, each with its own factor
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
        if isinstance(factor, bool) or not (isinstance(factor, (int, float)) and in_range(factor)):
            raise ValueError(f"the checkpoint's {name} contrast factor {factor!r} is not a number in "
                             f"[{FACTOR_RANGE[0]}, {FACTOR_RANGE[1]}]")
    return {name: float(factor) for name, factor in factors.items()}


def in_range(factor: float) -> bool:
    return math.isfinite(factor) and FACTOR_RANGE[0] <= factor <= FACTOR_RANGE[1]


