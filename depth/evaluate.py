"""Evaluation over a dataset: `python -m depth evaluate --weights W --data NAME ...`.

Every frame goes through the one inference path (`DepthModel.predict_batch`), so what is
scored is exactly what users get: depth at the frame's own resolution. (Eigen et al. upsampled
their 74x55 output with nearest neighbours; ours is the library's linear resampling in log
depth.) Metrics are per image over the pixels the protocol scores, averaged over images, each
mean with its standard error; `compare_reports` pairs two reports on the same frames.

The mean-depth baseline predicts, for every frame, the training set's mean depth at each
output cell; a trained checkpoint stores that map, and it runs through the same path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .data import DepthDataset
from .metrics import (
    HIGHER_IS_BETTER,
    METRIC_NAMES,
    Protocol,
    compute_metrics,
    evaluation_mask,
    log_depth_spread,
    mean_metrics,
    scale_metrics,
    scale_summary,
    standard_errors,
)
from .model import OUTPUT_HEIGHT, OUTPUT_WIDTH
from .predict import OUTPUT_NAMES, DepthModel

# NYU Depth v2 test set, Eigen et al. 2014, Table 1 (their protocol: "paper").
PAPER_TABLE1 = {
    "mean-depth baseline (paper)": (0.418, 0.711, 0.874, 0.408, 0.581, 1.244, 0.430, 0.304),
    "Make3D (paper)": (0.447, 0.745, 0.897, 0.349, 0.492, 1.214, 0.409, 0.325),
    "coarse (paper)": (0.618, 0.891, 0.969, 0.228, 0.223, 0.871, 0.283, 0.221),
    "coarse + fine (paper)": (0.611, 0.887, 0.971, 0.215, 0.212, 0.907, 0.285, 0.219),
}


class MeanDepthNet(torch.nn.Module):
    """Stands in for the network: the same log-depth map (55, 74) for every image."""

    def __init__(self, mean_depth_map: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("log_map", torch.as_tensor(np.log(mean_depth_map), dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_map = self.log_map.expand(images.shape[0], 1, OUTPUT_HEIGHT, OUTPUT_WIDTH)
        return log_map, log_map


def mean_depth_baseline(model: DepthModel) -> DepthModel | None:
    """The mean-depth baseline stored with `model`'s weights, or None if it has none."""
    mean_map = model.info.get("mean_depth_map")
    if mean_map is None:
        return None
    mean_map = np.asarray(mean_map, dtype=np.float32)
    if mean_map.shape != (OUTPUT_HEIGHT, OUTPUT_WIDTH) or not (mean_map > 0).all():
        raise ValueError(f"the checkpoint's mean_depth_map has shape {mean_map.shape} or non-positive values")
    return DepthModel(MeanDepthNet(mean_map), device=model.device, info={"trained": True}, flip_average=False)


def evaluate(
    model: DepthModel, dataset: DepthDataset, protocol: Protocol, limit: int | None = None,
    batch_size: int = 8, progress: bool = True,
) -> dict[str, Any]:
    """Mean metrics of coarse, coarse + fine and (if available) the mean-depth baseline.

    Frames with no pixel scored under the protocol are skipped and counted.
    Returns {"protocol", "protocol_description", "weights", "frames", "skipped", "results":
    {row name: {metric: value}}, "standard_error": {row name: {metric: value or None}},
    "per_frame": [{"frame": name, row name: {metric: value}}], "spread": {row name: ratio},
    "scale": {row name: scale summary}, "fine_stage": ...}.

    Each per-frame row also has "scale": {row name: `metrics.scale_metrics`}, and "scale"
    summarises them over the frames (`metrics.scale_summary`): wrong metres told apart from a
    wrong shape. The standard errors say how much the means could move with other frames of
    the same kind (`metrics.standard_errors`); per_frame lets two reports on the same frames be
    compared frame by frame. A row's spread is its maps' standard deviation of log depth, mean
    over frames, over the same mean of the ground truth's (`metrics.log_depth_spread`): 1 when
    the maps vary as much as the scenes,
    below 1 when they are flatter; None when no frame's ground truth varies.
    """
    count = len(dataset) if limit is None else min(limit, len(dataset))
    baseline = mean_depth_baseline(model)
    rows: dict[str, list[dict[str, float]]] = {"coarse": [], "coarse + fine": []}
    if baseline is not None:
        rows["mean-depth baseline"] = []
    spreads: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
    per_frame: list[dict[str, Any]] = []
    skipped = 0
    with tqdm(total=count, desc="evaluating", unit="frame", disable=not progress) as bar:
        for start in range(0, count, batch_size):
            samples = [dataset[i] for i in range(start, min(start + batch_size, count))]
            images = [sample.image for sample in samples]
            predictions = model.predict_batch(images, batch_size=batch_size)
            baselines = baseline.predict_batch(images, batch_size=batch_size) if baseline else [None] * len(samples)
            for sample, prediction, mean in zip(samples, predictions, baselines):
                bar.update(1)
                if not evaluation_mask(sample.depth, protocol).any():
                    skipped += 1
                    continue
                maps = {"coarse": prediction.coarse, "coarse + fine": prediction.fine}
                if mean is not None:
                    maps["mean-depth baseline"] = mean.fine
                per_frame.append({"frame": sample.name, "scale": {}})
                for name, depth_map in maps.items():
                    per_frame[-1][name] = compute_metrics(depth_map, sample.depth, protocol)
                    per_frame[-1]["scale"][name] = scale_metrics(depth_map, sample.depth, protocol)
                    rows[name].append(per_frame[-1][name])
                    spreads[name].append(log_depth_spread(depth_map, sample.depth, protocol))
    if not rows["coarse"]:
        raise ValueError(f"no frame has ground truth scored under protocol {protocol.name!r}")
    results = {name: mean_metrics(per_image) for name, per_image in rows.items()}
    spread = {}
    for name, pairs in spreads.items():
        predicted, truth = np.sum(pairs, axis=0)
        # a flat wall's std comes out as rounding error (1e-17), not 0
        spread[name] = float(predicted / truth) if truth > 1e-6 else None
    return {
        "protocol": protocol.name, "protocol_description": protocol.description,
        "weights": model.describe(), "flip_average": model.flip_average, "frames": count - skipped, "skipped": skipped,
        "results": results, "standard_error": {name: standard_errors(per_image) for name, per_image in rows.items()},
        "per_frame": per_frame, "spread": spread, "fine_stage": fine_stage_verdict(results, model.output),
        "scale": {name: scale_summary([frame["scale"][name] for frame in per_frame]) for name in rows},
    }


def fine_stage_verdict(results: dict[str, dict[str, float]], output: str) -> dict[str, Any]:
    """Whether the fine stage helps here, as the paper's does: coarse + fine must score no worse
    on SI log than coarse alone. The weights' default output (`output`, "fine" or "coarse")
    should then be the better map; "output_is_better" says whether it is (ties favour fine)."""
    coarse, fine = results["coarse"]["si_log"], results["coarse + fine"]["si_log"]
    helps = fine <= coarse
    return {"si_log_coarse": coarse, "si_log_fine": fine, "helps": helps, "output": output,
            "output_is_better": helps == (output == "fine")}


def compare_reports(before: dict[str, Any], after: dict[str, Any], row: str = "coarse + fine") -> dict[str, Any]:
    """Two `evaluate` reports on the same frames, compared frame by frame (paired).

    For each metric of `row`: the mean over frames of after - before ("difference") and its
    standard error (of the per-frame differences), and on how many frames `after` is better.
    Pairing removes what the frames share (some rooms are harder for every model), so it
    resolves smaller gaps than the two reports' own standard errors. Raises ValueError when
    a report has no per-frame rows or the row, or when the frames differ.
    """
    tables = []
    for name, report in (("first", before), ("second", after)):
        if not report.get("per_frame"):
            raise ValueError(f"the {name} report has no per-frame rows (written before 2026-12-05?): evaluate again")
        frames = {frame["frame"]: frame for frame in report["per_frame"]}
        if len(frames) != len(report["per_frame"]):
            raise ValueError(f"the {name} report names two frames alike: frames cannot be paired by name")
        if any(row not in frame for frame in frames.values()):
            raise ValueError(f"the {name} report has no row {row!r}")
        tables.append(frames)
    if tables[0].keys() != tables[1].keys():
        raise ValueError(f"the reports score different frames ({len(tables[0])} and {len(tables[1])}; "
                         f"{len(tables[0].keys() ^ tables[1].keys())} not in both)")
    names = sorted(tables[0])
    differences = [{m: tables[1][n][row][m] - tables[0][n][row][m] for m in METRIC_NAMES} for n in names]
    errors = standard_errors(differences)
    sign = {m: 1 if m in HIGHER_IS_BETTER else -1 for m in METRIC_NAMES}  # +1: a rise is better
    better = {m: sum(sign[m] * d[m] > 0 for d in differences) for m in METRIC_NAMES}
    comparison = {"row": row, "frames": len(names), "before": before.get("weights"), "after": after.get("weights"),
                  "difference": mean_metrics(differences), "standard_error": errors, "after_better_on": better}
    if all("scale" in table[n] for table in tables for n in names):  # reports from 2026-12-08 on
        comparison["scale"] = _compare_scale([[table[n]["scale"][row] for n in names] for table in tables],
                                             [report.get("scale", {}).get(row) for report in (before, after)])
    return comparison


def _compare_scale(frames: list[list[dict[str, float]]], summaries: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Paired scale figures of two reports' frames: how far off their metres are (|log ratio|,
    lower is better) and delta1_scaled (the shape alone, higher is better), each as the mean
    per-frame difference (second - first), its standard error and frames better."""
    first, second = frames
    result: dict[str, Any] = {"summaries": summaries}
    for name, value, higher in (("abs_log_ratio", lambda m: abs(m["log_ratio"]), False),
                                ("delta1_scaled", lambda m: m["delta1_scaled"], True)):
        diffs = np.array([value(b) - value(a) for a, b in zip(first, second)])
        error = float(np.std(diffs, ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else None
        result[name] = {"difference": float(diffs.mean()), "standard_error": error,
                        "after_better_on": int(np.sum(diffs > 0 if higher else diffs < 0))}
    return result


def format_comparison(comparison: dict[str, Any]) -> str:
    """A compare_reports result as a Markdown table: difference, its standard error, frames better."""
    lines = [f"Row: {comparison['row']}; {comparison['frames']} frames, paired",
             f"First: {comparison['before']}", f"Second: {comparison['after']}", "",
             "| metric | second - first | ± standard error | second better on |", "|---|---|---|---|"]
    for m in METRIC_NAMES:
        error = comparison["standard_error"][m]
        lines.append(f"| {m} ({'higher' if m in HIGHER_IS_BETTER else 'lower'} is better) | "
                     f"{comparison['difference'][m]:+.4f} | {'-' if error is None else f'{error:.4f}'} | "
                     f"{comparison['after_better_on'][m]} of {comparison['frames']} |")
    if scale := comparison.get("scale"):
        lines += ["", "Scale (metres apart from shape; per frame, paired):"]
        for label, summary in zip(("first", "second"), scale["summaries"]):
            if summary:
                lines.append(f"- {label}: {_scale_words(summary)}")
        for name, words in (("abs_log_ratio", "|log scale ratio| (lower is better)"),
                            ("delta1_scaled", "δ<1.25 after each frame's best scale (higher is better)")):
            row, error = scale[name], scale[name]["standard_error"]
            lines.append(f"- {words}: {row['difference']:+.4f} ± {'-' if error is None else f'{error:.4f}'}, "
                         f"second better on {row['after_better_on']} of {comparison['frames']}")
    lines += ["", "A difference within about twice its standard error is not told apart by these frames."]
    return "\n".join(lines)


def _scale_words(summary: dict[str, Any]) -> str:
    spread = summary["log_ratio_std"]
    return (f"scale ratio x{summary['ratio']:.2f} (geometric mean of prediction over truth), log ratio varies by "
            f"{'-' if spread is None else f'{spread:.3f}'} from frame to frame; δ<1.25 {summary['delta1']:.3f} as "
            f"predicted, {summary['delta1_scaled']:.3f} after each frame's best scale")


PER_FRAME_ROWS = 40  # frames listed by format_table; more stay in the JSON report


def _per_frame_scale(report: dict[str, Any]) -> list[str]:
    """The default output's scale per frame, as table lines (none for more than PER_FRAME_ROWS frames)."""
    row = OUTPUT_NAMES[report["fine_stage"]["output"]]
    frames = report["per_frame"]
    if len(frames) > PER_FRAME_ROWS:
        return [f"(per-frame scale of {len(frames)} frames: in the JSON report, per_frame)"]
    lines = ["", f"Per frame ({row}):", "", "| frame | scale ratio | SI log | δ<1.25 | δ<1.25 after best scale |",
             "|---|---|---|---|---|"]
    for frame in frames:
        scale = frame["scale"][row]
        lines.append(f"| {frame['frame']} | x{np.exp(scale['log_ratio']):.2f} | {frame[row]['si_log']:.3f} | "
                     f"{scale['delta1']:.3f} | {scale['delta1_scaled']:.3f} |")
    return lines + [""]


def figure_rows(model: DepthModel, dataset: DepthDataset, count: int) -> list[dict[str, np.ndarray]]:
    """The first `count` frames as rows of `visualize.figure4`: "image" (H, W, 3) uint8,
    "coarse", "fine" and "truth" (H, W) metres (truth 0 = no reading)."""
    samples = [dataset[i] for i in range(min(count, len(dataset)))]
    predictions = model.predict_batch([sample.image for sample in samples])
    return [{"image": sample.image, "coarse": prediction.coarse, "fine": prediction.fine,
             "truth": sample.depth}
            for sample, prediction in zip(samples, predictions)]


def format_table(report: dict[str, Any]) -> str:
    """The report as a Markdown table in the layout of the paper's Table 1, paper rows below."""
    header = ["", "d<1.25", "d<1.25^2", "d<1.25^3", "abs rel", "sq rel", "RMSE", "RMSE log", "SI log", "log10"]
    arrows = ["", *("higher" if m in HIGHER_IS_BETTER else "lower" for m in METRIC_NAMES)]
    lines = [
        f"Protocol: {report['protocol']} ({report['protocol_description']}); "
        f"{report['frames']} frames ({report['skipped']} without scored depth skipped)",
        f"Weights: {report['weights']}",
        "Maps: " + ("mean of the photo's and its mirror image's (flip averaging)" if report.get("flip_average")
                    else "one pass, as in the paper"),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        "| " + " | ".join(arrows) + " |",
    ]
    # reports written before 2026-12-05 have none; one frame has none to give (None)
    errors = {name: row for name, row in report.get("standard_error", {}).items() if None not in row.values()}
    for name, metrics in report["results"].items():
        lines.append(f"| {name} (ours) | " + " | ".join(f"{metrics[m]:.3f}" for m in METRIC_NAMES) + " |")
        if name in errors:
            lines.append("| ± standard error | " + " | ".join(f"{errors[name][m]:.3f}" for m in METRIC_NAMES) + " |")
    for name, values in PAPER_TABLE1.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + " | - |")
    lines.append("")
    lines.append("Paper rows: NYU Depth v2 test set (654 frames), the paper's protocol; compare like with like.")
    if errors:
        lines.append("± standard error: of the mean over frames, how far a row could move with other frames of "
                     "the same kind; a gap between two models under about twice it is not told apart by these "
                     "frames (`python -m depth compare` pairs two reports frame by frame).")
    if report.get("spread"):  # reports written before 2026-12-03 have none
        ratios = ", ".join(f"{name} {'-' if ratio is None else f'{ratio:.2f}'}" for name, ratio in report["spread"].items())
        lines.append(f"Depth spread (the maps' standard deviation of log depth over the ground truth's, "
                     f"each a mean over frames; below 1: flatter than the scenes): {ratios}.")
    if report.get("scale"):  # reports written before 2026-12-08 have none
        lines.append("Scale (wrong metres apart from a wrong shape):")
        lines += [f"- {name}: {_scale_words(summary)}" for name, summary in report["scale"].items()]
        lines += _per_frame_scale(report)
    verdict = report["fine_stage"]
    effect = "helps (no worse than coarse alone)" if verdict["helps"] else "makes depth worse than coarse alone"
    lines.append(f"Fine stage: SI log {verdict['si_log_fine']:.3f} with it, {verdict['si_log_coarse']:.3f} "
                 f"without: it {effect}.")
    default = "coarse + fine" if verdict["output"] == "fine" else "the coarse map"
    if verdict["output_is_better"]:
        lines.append(f"Default output of these weights: {default}, the better of the two here.")
    else:
        better = "coarse" if verdict["output"] == "fine" else "fine"
        lines.append(f"Default output of these weights: {default}, the WORSE of the two here; "
                     f"`python -m depth export --output {better}` makes the other the default.")
    return "\n".join(lines)
