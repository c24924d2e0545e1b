"""How deep and how varied a dataset's rooms are: `python -m depth stats DIR`.

The summary Eigen et al. 2014 published for NYU Depth v2 is the mean-depth baseline row of
their Table 1: the per-pixel mean depth map of a set, predicted for every frame of it and
scored with the paper's metrics. A set of shallow, alike rooms scores well against its own
mean; NYU's deep and varied rooms score d<1.25 0.418, abs rel 0.408, RMSE 1.244 m and SI log
0.304. This module computes the same row for any dataset (with the depth percentiles), so a
rendered world, or a user's own data, can be compared with NYU's.

The mean map is taken at the first frame's resolution; frames of another size are resampled
to it (nearest neighbour, holes stay holes). A pixel that no frame measures takes the mean
of all measured depth. Metrics use the paper protocol (every pixel with depth).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from .data import DepthDataset
from .evaluate import PAPER_TABLE1
from .metrics import METRIC_NAMES, PAPER, compute_metrics, mean_metrics

NYU_BASELINE = dict(zip(METRIC_NAMES, PAPER_TABLE1["mean-depth baseline (paper)"]))
# the four figures a rendered world is held to (issue: within 12 % of NYU's)
COMPARED = ("delta1", "abs_rel", "rmse", "si_log")
TOLERANCE = 0.12
HISTOGRAM_EDGES = np.linspace(0.0, 20.0, 2001)  # metres: percentiles to the nearest centimetre


def _on_grid(depth: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Depth (H, W) metres resampled to `shape` by nearest neighbour (0 stays 0)."""
    if depth.shape == shape:
        return depth
    return np.asarray(Image.fromarray(depth.astype(np.float32)).resize(shape[::-1], Image.NEAREST))


def dataset_stats(dataset: DepthDataset, limit: int | None = None, progress: bool = True) -> dict[str, Any]:
    """The mean-depth baseline of `dataset` scored on its own frames, and depth percentiles.

    Returns {"frames", "shape" (H, W of the mean map), "valid_fraction", "depth_percentiles"
    {"p10", "median", "p90", "max"} (metres, over every valid pixel of every frame;
    percentiles to 1 cm, depth beyond 20 m not counted in them), "mean_depth"
    (metres), "baseline" {metric: value} (mean over frames), "nyu" {metric: value} and "within"
    {metric: bool}: COMPARED metrics within TOLERANCE of NYU's (relative)}.
    """
    count = len(dataset) if limit is None else min(limit, len(dataset))
    if count < 1:
        raise ValueError("the dataset has no frames")
    shape = np.asarray(dataset[0].depth).shape

    def frames(desc: str):  # the frames twice, one at a time: a big set need not fit in memory
        for index in tqdm(range(count), desc=desc, unit="frame", disable=not progress):
            depth = _on_grid(np.asarray(dataset[index].depth, dtype=np.float32), shape)
            yield depth, np.isfinite(depth) & (depth > 0)

    total, measured = np.zeros(shape), np.zeros(shape, dtype=np.int64)
    histogram = np.zeros(len(HISTOGRAM_EDGES) - 1, dtype=np.int64)
    largest = 0.0
    for depth, valid in frames("mean map"):
        total += np.where(valid, depth, 0)
        measured += valid
        histogram += np.histogram(depth[valid], HISTOGRAM_EDGES)[0]
        largest = max(largest, float(depth[valid].max(initial=0)))
    if not measured.any():
        raise ValueError("no frame of the dataset has any depth")
    mean_depth = total.sum() / measured.sum()
    mean_map = np.where(measured > 0, total / np.maximum(measured, 1), mean_depth).astype(np.float32)
    baseline = mean_metrics([compute_metrics(mean_map, depth, PAPER) for depth, valid in frames("scoring")
                             if valid.any()])
    cumulative = np.cumsum(histogram) / histogram.sum()
    p10, median, p90 = (float(HISTOGRAM_EDGES[1:][np.searchsorted(cumulative, q)]) for q in (0.1, 0.5, 0.9))
    return {
        "frames": count, "shape": list(shape), "valid_fraction": float(measured.sum() / (count * measured.size)),
        "depth_percentiles": {"p10": p10, "median": median, "p90": p90, "max": largest},
        "mean_depth": float(mean_depth), "baseline": baseline, "nyu": NYU_BASELINE,
        "within": {m: bool(abs(baseline[m] - NYU_BASELINE[m]) <= TOLERANCE * NYU_BASELINE[m]) for m in COMPARED},
    }


def format_stats(stats: dict[str, Any]) -> str:
    """The statistics as Markdown: the baseline row beside NYU's, then the depth percentiles."""
    names = ("delta1", "delta2", "delta3", "abs_rel", "sq_rel", "rmse", "rmse_log", "si_log")
    header = ["", "d<1.25", "d<1.25^2", "d<1.25^3", "abs rel", "sq rel", "RMSE", "RMSE log", "SI log"]
    ours = stats["baseline"]
    lines = [
        f"{stats['frames']} frames, mean map {stats['shape'][1]}x{stats['shape'][0]}, "
        f"{stats['valid_fraction']:.1%} of pixels with depth (paper protocol)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        "| mean-depth baseline, this set | " + " | ".join(f"{ours[m]:.3f}" for m in names) + " |",
        "| mean-depth baseline, NYU (Eigen 2014) | " + " | ".join(f"{NYU_BASELINE[m]:.3f}" for m in names) + " |",
        "| this set / NYU | " + " | ".join(f"{ours[m] / NYU_BASELINE[m]:.2f}" for m in names) + " |",
        "",
        f"Within {TOLERANCE:.0%} of NYU: "
        + ", ".join(f"{m} {'yes' if ok else 'no'}" for m, ok in stats["within"].items()),
        "Depth over all valid pixels: "
        + ", ".join(f"{k} {v:.2f} m" for k, v in stats["depth_percentiles"].items())
        + f", mean {stats['mean_depth']:.2f} m",
    ]
    return "\n".join(lines)
