"""The paper's error metrics (Table 1) plus log10, and the two evaluation protocols.

Every metric is computed per image over its valid pixels; a dataset's figure is the mean of its
images' figures (the convention of most public evaluation code since Eigen et al.).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

METRIC_NAMES = (
    "delta1", "delta2", "delta3", "abs_rel", "sq_rel", "rmse", "rmse_log", "si_log", "log10",
)
# Lower is better for all but the threshold accuracies.
HIGHER_IS_BETTER = {"delta1", "delta2", "delta3"}


@dataclass(frozen=True)
class Protocol:
    """Which pixels are scored and how predictions are bounded.

    crop: (top, bottom, left, right) in the 480x640 frame, scaled with the image size; None = all.
    min_depth, max_depth: ground truth outside [min_depth, max_depth] m is not scored, and
    predictions are clipped to that range.
    """

    name: str
    description: str
    min_depth: float = 1e-3
    max_depth: float = math.inf
    crop: tuple[int, int, int, int] | None = None


# Eigen et al. 2014: every pixel with ground truth, at the input resolution.
PAPER = Protocol("paper", "Eigen 2014: all pixels with depth, full frame")
# Later work: the "Eigen crop" of the 640x480 frame and depths capped at 10 m.
EIGEN_CROP = Protocol(
    "eigen_crop", "Eigen crop rows 45:471, cols 41:601 of 480x640, depth in [0.001, 10] m",
    min_depth=1e-3, max_depth=10.0, crop=(45, 471, 41, 601),
)
PROTOCOLS = {p.name: p for p in (PAPER, EIGEN_CROP)}


def evaluation_mask(gt_depth: np.ndarray, protocol: Protocol = PAPER) -> np.ndarray:
    """Bool (H, W) mask of the pixels scored under `protocol` for ground truth (H, W) metres."""
    gt = np.asarray(gt_depth)
    mask = np.isfinite(gt) & (gt >= protocol.min_depth) & (gt <= protocol.max_depth) & (gt > 0)
    if protocol.crop is not None:
        height, width = gt.shape
        top, bottom, left, right = protocol.crop
        sy, sx = height / 480, width / 640
        region = np.zeros_like(mask)
        region[round(top * sy) : round(bottom * sy), round(left * sx) : round(right * sx)] = True
        mask &= region
    return mask


def _scored_pixels(
    pred_depth: np.ndarray, gt_depth: np.ndarray, protocol: Protocol
) -> tuple[np.ndarray, np.ndarray]:
    """Prediction (clipped to the protocol's range) and ground truth (N,) metres at the scored
    pixels; the errors of `compute_metrics`."""
    pred = np.asarray(pred_depth, dtype=np.float64)
    gt = np.asarray(gt_depth, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} must be equal (H, W)")
    mask = evaluation_mask(gt, protocol)
    if not mask.any():
        raise ValueError(f"no valid ground-truth pixel under protocol {protocol.name!r}")
    bad = int(np.count_nonzero(~np.isfinite(pred[mask])))
    if bad:
        raise ValueError(f"prediction is not finite (NaN or inf) at {bad} of {int(mask.sum())} scored pixels")
    return np.clip(pred[mask], protocol.min_depth, protocol.max_depth), gt[mask]


def compute_metrics(
    pred_depth: np.ndarray, gt_depth: np.ndarray, protocol: Protocol = PAPER
) -> dict[str, float]:
    """All metrics for one image. pred_depth, gt_depth: (H, W) metres, the same shape.

    Returns a dict keyed by METRIC_NAMES. Raises ValueError if the shapes differ, no pixel is
    valid under the protocol, or the prediction is not finite at a scored pixel (a diverged
    network: NaN would pass silently through the means and zero the threshold accuracies).
    """
    p, g = _scored_pixels(pred_depth, gt_depth, protocol)
    ratio = np.maximum(p / g, g / p)
    log_diff = np.log(p) - np.log(g)
    return {
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25**2)),
        "delta3": float(np.mean(ratio < 1.25**3)),
        "abs_rel": float(np.mean(np.abs(p - g) / g)),
        "sq_rel": float(np.mean((p - g) ** 2 / g)),
        "rmse": float(np.sqrt(np.mean((p - g) ** 2))),
        "rmse_log": float(np.sqrt(np.mean(log_diff**2))),
        # sqrt of the lambda = 1 scale-invariant error: the variance of the log differences
        "si_log": float(np.sqrt(max(np.mean(log_diff**2) - np.mean(log_diff) ** 2, 0.0))),
        "log10": float(np.mean(np.abs(np.log10(p) - np.log10(g)))),
    }


def scale_metrics(
    pred_depth: np.ndarray, gt_depth: np.ndarray, protocol: Protocol = PAPER
) -> dict[str, float]:
    """How far one map's metres are off, apart from its shape (not a paper metric):

    log_ratio: the mean over scored pixels of log(pred / truth), so exp(log_ratio) is the
        geometric mean of prediction over truth (2.0: everything placed twice as far);
    delta1: δ<1.25 as predicted; delta1_scaled: δ<1.25 after the map is divided by that ratio
        (its best scale in log space, the paper's alpha), so the gap between the two is what
        wrong metres cost and delta1_scaled is what the shape alone scores.
    Same inputs and errors as `compute_metrics`.
    """
    p, g = _scored_pixels(pred_depth, gt_depth, protocol)
    log_ratio = float(np.mean(np.log(p) - np.log(g)))
    scaled = p / math.exp(log_ratio)
    return {"log_ratio": log_ratio, "delta1": float(np.mean(np.maximum(p / g, g / p) < 1.25)),
            "delta1_scaled": float(np.mean(np.maximum(scaled / g, g / scaled) < 1.25))}


def scale_summary(per_image: list[dict[str, float]]) -> dict[str, float | None]:
    """Over images of `scale_metrics`: "ratio" (the geometric mean of their ratios),
    "log_ratio_std" (how much the log ratio varies from image to image, sample std; None for
    one image), and the means of delta1 and delta1_scaled."""
    log_ratios = np.array([m["log_ratio"] for m in per_image])
    return {"ratio": float(np.exp(log_ratios.mean())),
            "log_ratio_std": float(np.std(log_ratios, ddof=1)) if len(per_image) > 1 else None,
            "delta1": float(np.mean([m["delta1"] for m in per_image])),
            "delta1_scaled": float(np.mean([m["delta1_scaled"] for m in per_image]))}


def mean_metrics(per_image: list[dict[str, float]]) -> dict[str, float]:
    """Dataset figures: the mean over images of each metric."""
    if not per_image:
        raise ValueError("no images to average")
    return {name: float(np.mean([m[name] for m in per_image])) for name in METRIC_NAMES}


def standard_errors(per_image: list[dict[str, float]]) -> dict[str, float | None]:
    """How far each of `mean_metrics` could move with other images of the same kind: the
    standard error of the mean over images (sample standard deviation / sqrt(n)); None for
    fewer than two images. A gap between two models under about twice it is within the noise
    of these images (`evaluate.compare_reports` pairs them image by image, which resolves more)."""
    if len(per_image) < 2:
        return {name: None for name in METRIC_NAMES}
    n = len(per_image)
    return {name: float(np.std([m[name] for m in per_image], ddof=1) / np.sqrt(n)) for name in METRIC_NAMES}


def log_depth_spread(
    pred_depth: np.ndarray, gt_depth: np.ndarray, protocol: Protocol = PAPER
) -> tuple[float, float]:
    """How much log depth varies across one image: the standard deviations of the prediction's
    and the ground truth's log depth over the scored pixels, (pred, truth). Not a paper metric:
    it tells a flat map from a wrong one. A map whose log depth varies less than the scene's
    (an uncertain network regresses towards its training rooms' mean) scores a worse SI log
    even where it orders near and far correctly. Same inputs and errors as `compute_metrics`."""
    p, g = _scored_pixels(pred_depth, gt_depth, protocol)
    return float(np.std(np.log(p))), float(np.std(np.log(g)))
