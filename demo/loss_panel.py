"""The scale-invariant loss, interactive: a prediction multiplied by a global scale, scored
against ground truth at several λ, with its per-pixel error before and after the best scale.

Every value comes from depth.loss (the training loss, its mask and eq. 1's alpha) and
depth.metrics (the evaluation metrics); nothing here re-implements a formula.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from depth.loss import best_log_scale, paper_valid_mask, scale_invariant_loss
from depth.metrics import compute_metrics
from depth.visualize import figure_pixels

MIN_SCALE, MAX_SCALE = 0.25, 4.0  # the scale slider's range
ERROR_LIMIT = 1.0  # the error maps' colour range: log error from -1 to 1 (a factor e either way)


@dataclass(frozen=True)
class LossReadout:
    """One prediction, scaled, against ground truth.

    scale: the global factor the prediction was multiplied by; lam: the chosen λ.
    mse_log, si_error, training_loss, chosen_loss: depth.loss.scale_invariant_loss at λ = 0, 1,
    0.5 and `lam`, over the training mask (depth.loss.paper_valid_mask).
    best_scale: e^alpha (depth.loss.best_log_scale) of the network's own prediction: at that
    scale the MSE of log depth is smallest, and equals the λ = 1 error.
    metrics: depth.metrics.compute_metrics of the scaled prediction (paper protocol).
    error: (H, W) log(scaled prediction / truth), NaN outside the mask.
    """

    scale: float
    lam: float
    mse_log: float
    si_error: float
    training_loss: float
    chosen_loss: float
    best_scale: float
    metrics: dict[str, float]
    error: np.ndarray


def loss_readout(prediction: np.ndarray, truth: np.ndarray, scale: float, lam: float) -> LossReadout:
    """Score `prediction` (H, W) metres times `scale` against `truth` (H, W) metres (0 = no reading)."""
    if not (np.isfinite(scale) and MIN_SCALE <= scale <= MAX_SCALE):
        raise ValueError(f"the scale must be from {MIN_SCALE} to {MAX_SCALE}, got {scale}")
    if not (np.isfinite(lam) and 0.0 <= lam <= 1.0):
        raise ValueError(f"λ must be from 0 to 1, got {lam}")
    own_log = torch.from_numpy(np.log(np.asarray(prediction, dtype=np.float32)))[None]
    pred_log = own_log + float(np.log(scale))
    target = torch.from_numpy(np.asarray(truth, dtype=np.float32))[None]
    mask = paper_valid_mask(target)
    if not mask.any():
        raise ValueError("this ground truth has no valid pixel to score")

    def loss(value: float) -> float:
        return float(scale_invariant_loss(pred_log, target, mask, lam=value))

    target_log = torch.log(torch.where(mask, target, 1.0))
    error = torch.where(mask, pred_log - target_log, float("nan"))[0].numpy()
    return LossReadout(
        scale=float(scale), lam=float(lam), mse_log=loss(0.0), si_error=loss(1.0), training_loss=loss(0.5),
        chosen_loss=loss(lam), best_scale=float(best_log_scale(own_log, target, mask)[0].exp()),
        metrics=compute_metrics(pred_log[0].exp().numpy(), truth), error=error,
    )


def readout_table(readout: LossReadout) -> pd.DataFrame:
    """The readout as rows of (quantity, value, what it measures)."""
    metrics = readout.metrics
    rows = [
        ("MSE of log depth (λ = 0)", readout.mse_log, "changes with every scale"),
        ("scale-invariant error (λ = 1)", readout.si_error, "the same at every scale"),
        ("training loss (λ = 0.5)", readout.training_loss, "the paper's choice: half of each"),
        (f"loss at λ = {readout.lam:.2f}", readout.chosen_loss, "the slider's λ"),
        ("best scale e^α", readout.best_scale, "at this scale the MSE is smallest: the λ = 1 error"),
        ("SI log (metric)", metrics["si_log"], "√ of the λ = 1 error, over the scored pixels"),
        ("δ<1.25 (metric)", metrics["delta1"], "pixels within 25% of the truth: needs the right scale"),
        ("abs rel (metric)", metrics["abs_rel"], "mean |pred − truth| / truth"),
    ]
    return pd.DataFrame(rows, columns=["quantity", "value", "what it shows"])


def error_figure(readout: LossReadout) -> np.ndarray:
    """(H, W, 3) uint8: the per-pixel log error at this scale, and after the best scale e^α
    (what the λ = 1 error sees), red too far, blue too near, grey unscored."""
    figure = Figure(figsize=(9.0, 3.6), dpi=100, layout="constrained")
    axes = figure.subplots(1, 2)
    shift = np.log(readout.best_scale) - np.log(readout.scale)  # from this scale to the best one
    panels = ((readout.error, f"log(prediction / truth) at scale {readout.scale:.2f}"),
              (readout.error + shift, f"at the best scale e^α = {readout.best_scale:.2f} (what λ = 1 sees)"))
    colormap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#9a9a9a")
    for axis, (error, title) in zip(axes, panels):
        image = axis.imshow(error, cmap=colormap, vmin=-ERROR_LIMIT, vmax=ERROR_LIMIT, interpolation="nearest")
        axis.set_title(title, fontsize=9)
        axis.set_axis_off()
    figure.colorbar(image, ax=list(axes), shrink=0.85, label="log error (red: too far)")
    return figure_pixels(figure)
