"""The scale-invariant loss of Eigen et al. 2014 (eq. 4), the scale that aligns a prediction
with its target (eq. 1's alpha), and the paper's training mask."""

from __future__ import annotations

import torch


def paper_valid_mask(depth: torch.Tensor) -> torch.Tensor:
    """The paper's training mask for a batch of depth maps.

    depth: (B, H, W) or (B, 1, H, W) metres, 0 or non-finite where the sensor gave no reading.
    Returns a bool tensor of the same shape: True where depth is finite, positive, and not equal
    to that image's minimum or maximum valid depth (the raw Kinect data saturates there).
    """
    valid = torch.isfinite(depth) & (depth > 0)
    flat = depth.flatten(1)
    flat_valid = valid.flatten(1)
    lowest = torch.where(flat_valid, flat, float("inf")).amin(dim=1)
    highest = torch.where(flat_valid, flat, float("-inf")).amax(dim=1)
    extreme = (flat == lowest[:, None]) | (flat == highest[:, None])
    return (flat_valid & ~extreme).view_as(depth)


def scale_invariant_loss(
    pred_log_depth: torch.Tensor,
    target_depth: torch.Tensor,
    valid_mask: torch.Tensor,
    lam: float = 0.5,
) -> torch.Tensor:
    """Scale-invariant log error, per image, averaged over the batch.

    With d_i = log y_i - log y*_i over the n valid pixels of one image:
        L = (1/n) sum d_i^2 - (lam / n^2) (sum d_i)^2.
    lam = 1 is the scale-invariant error itself, lam = 0 the mean squared log error; the paper
    trains with lam = 0.5.

    pred_log_depth: (B, H, W) or (B, 1, H, W), natural log of depth in metres.
    target_depth: same shape, metres. valid_mask: same shape, bool.
    Returns a float32 scalar: the mean over images that have at least one valid pixel (0 if
    none has). Computed in float32 even under autocast; masked pixels get exactly zero gradient.
    """
    diff, n = _log_differences(pred_log_depth, target_depth, valid_mask)
    has_pixels = (n > 0).float()
    n = n.clamp(min=1).float()
    per_image = (diff**2).sum(dim=1) / n - lam * diff.sum(dim=1) ** 2 / n**2
    # a masked mean rather than indexing: no host sync, so the GPU queue never drains here
    return (per_image * has_pixels).sum() / has_pixels.sum().clamp(min=1)


def best_log_scale(
    pred_log_depth: torch.Tensor, target_depth: torch.Tensor, valid_mask: torch.Tensor
) -> torch.Tensor:
    """alpha of the paper's eq. 1, per image: (1/n) sum (log y*_i - log y_i) over valid pixels.

    e^alpha is the global scale that best aligns the prediction with the target in log space:
    the lam = 1 error of a prediction is the mean squared log error of the prediction times
    e^alpha. Shapes as for `scale_invariant_loss`; returns (B,) float32 (0 for an image
    without valid pixels).
    """
    diff, n = _log_differences(pred_log_depth, target_depth, valid_mask)
    return -diff.sum(dim=1) / n.clamp(min=1).float()


def _log_differences(
    pred_log_depth: torch.Tensor, target_depth: torch.Tensor, valid_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(d (B, N) float32, 0 where masked; n (B,) valid pixels), N = H * W."""
    if not (pred_log_depth.shape == target_depth.shape == valid_mask.shape):
        raise ValueError(
            f"shapes differ: prediction {tuple(pred_log_depth.shape)}, "
            f"target {tuple(target_depth.shape)}, mask {tuple(valid_mask.shape)}"
        )
    mask = valid_mask.bool().flatten(1)
    pred = pred_log_depth.float().flatten(1)
    # where() before log keeps log(0) of masked pixels out of the graph (no NaN gradients)
    target_log = torch.log(torch.where(mask, target_depth.float().flatten(1), 1.0))
    return torch.where(mask, pred - target_log, 0.0), mask.sum(dim=1)
