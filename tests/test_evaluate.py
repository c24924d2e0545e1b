import json

import numpy as np
import pytest

import depth
from depth.__main__ import main as cli
from depth.checkpoint import save_checkpoint
from depth.data import open_dataset
from depth.data.folder import write_frame, write_manifest
from depth.evaluate import PAPER_TABLE1, compare_reports, evaluate, figure_rows, format_table
from depth.metrics import (
    EIGEN_CROP,
    METRIC_NAMES,
    PAPER,
    compute_metrics,
    log_depth_spread,
    mean_metrics,
    scale_metrics,
    scale_summary,
)

from .conftest import REAL_RGBD


@pytest.fixture
def weights(tmp_path, small_net):
    info = {"trained": True, "trained_on": "tests", "mean_depth_map": np.full((55, 74), 2.0).tolist()}
    return save_checkpoint(tmp_path / "w.safetensors", small_net, info)


def test_scores_are_the_metrics_of_the_inference_path(weights, learnable_folders):
    model = depth.load_model(weights, device="cpu")
    dataset = open_dataset("folder", str(learnable_folders[1]))
    report = evaluate(model, dataset, EIGEN_CROP, batch_size=3, progress=False)
    assert report["frames"] == len(dataset) == 4 and report["skipped"] == 0
    assert set(report["results"]) == {"coarse", "coarse + fine", "mean-depth baseline"}
    by_hand = {"coarse": [], "coarse + fine": [], "mean-depth baseline": []}
    spreads = {name: [] for name in by_hand}
    for index in range(len(dataset)):
        sample = dataset[index]
        prediction = model.predict(sample.image)
        # the stored mean map is 2 m everywhere, so the baseline predicts 2 m at every pixel
        maps = {"coarse": prediction.coarse, "coarse + fine": prediction.fine,
                "mean-depth baseline": np.full(sample.depth.shape, 2.0)}
        for name, depth_map in maps.items():
            by_hand[name].append(compute_metrics(depth_map, sample.depth, EIGEN_CROP))
            spreads[name].append(log_depth_spread(depth_map, sample.depth, EIGEN_CROP))
    assert [frame["frame"] for frame in report["per_frame"]] == [dataset[i].name for i in range(len(dataset))]
    for name, rows in by_hand.items():
        for metric, value in mean_metrics(rows).items():
            assert report["results"][name][metric] == pytest.approx(value, rel=1e-5), (name, metric)
            per_frame = [frame[name][metric] for frame in report["per_frame"]]
            np.testing.assert_allclose(per_frame, [row[metric] for row in rows], rtol=1e-5)
            error = np.std(per_frame, ddof=1) / np.sqrt(len(per_frame))
            assert report["standard_error"][name][metric] == pytest.approx(error, rel=1e-6, abs=1e-12)
        predicted, truth = np.mean(spreads[name], axis=0)
        assert report["spread"][name] == pytest.approx(predicted / truth, rel=1e-5), name
    assert report["spread"]["mean-depth baseline"] == pytest.approx(0.0, abs=1e-9)  # a constant map has none
    for index, frame in enumerate(report["per_frame"]):
        sample = dataset[index]
        expected = scale_metrics(np.full(sample.depth.shape, 2.0), sample.depth, EIGEN_CROP)
        assert frame["scale"]["mean-depth baseline"] == pytest.approx(expected)
        assert frame["scale"]["coarse"]["delta1"] == pytest.approx(frame["coarse"]["delta1"])
    summary = scale_summary([frame["scale"]["coarse"] for frame in report["per_frame"]])
    assert report["scale"]["coarse"] == pytest.approx(summary)


def test_scale_metrics_tell_wrong_metres_from_a_wrong_shape():
    truth = np.array([[1.0, 2.0], [4.0, 8.0]])
    doubled = scale_metrics(2 * truth, truth)  # the right shape, twice as far
    assert doubled["log_ratio"] == pytest.approx(np.log(2)) and doubled["delta1"] == 0.0
    assert doubled["delta1_scaled"] == 1.0
    shape = np.array([[1.0, 2.0], [4.0, 16.0]])  # one pixel twice as far: by hand, the ratio 2^(1/4)
    by_hand = scale_metrics(shape, truth)
    assert by_hand["log_ratio"] == pytest.approx(np.log(2) / 4) and by_hand["delta1"] == 0.75
    scaled = shape / 2 ** 0.25
    ratios = np.maximum(scaled / truth, truth / scaled)
    assert by_hand["delta1_scaled"] == pytest.approx(np.mean(ratios < 1.25))  # 1.19 off on three, 1.68 on one
    summary = scale_summary([doubled, by_hand])
    assert summary["ratio"] == pytest.approx(np.exp((np.log(2) + np.log(2) / 4) / 2))
    assert summary["log_ratio_std"] == pytest.approx(np.std([np.log(2), np.log(2) / 4], ddof=1))
    assert scale_summary([doubled])["log_ratio_std"] is None


def test_frames_without_scored_depth_are_skipped_and_counted(weights, tmp_path):
    image = np.full((240, 320, 3), 120, np.uint8)
    entries = [write_frame(tmp_path / "d", "empty", image, np.zeros((240, 320))),
               write_frame(tmp_path / "d", "far", image, np.full((240, 320), 2.5))]
    write_manifest(tmp_path / "d", entries)
    model = depth.load_model(weights, device="cpu")
    report = evaluate(model, open_dataset("folder", str(tmp_path / "d")), PAPER, progress=False)
    assert (report["frames"], report["skipped"]) == (1, 1)
    assert report["spread"]["coarse"] is None  # a flat wall's depth does not vary: no spread to compare
    assert "Depth spread" in format_table(report) and "coarse -," in format_table(report)
    assert "standard error" not in format_table(report)  # one frame: no spread over frames to give


def test_table_and_json_from_the_command_line(weights, learnable_folders, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert cli(["evaluate", "--weights", str(weights), "--data", "folder", "--data-path", str(learnable_folders[1]),
                "--protocol", "eigen_crop", "--json", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["protocol"] == "eigen_crop" and report["frames"] == 4
    assert printed == format_table(report) + "\n"
    for name in [*report["results"], *PAPER_TABLE1]:
        assert name in printed
    assert f"{report['results']['coarse + fine']['abs_rel']:.3f}" in printed
    verdict = report["fine_stage"]  # the paper's rule: the fine stage must not make maps worse
    assert verdict["helps"] == (verdict["si_log_fine"] <= verdict["si_log_coarse"])
    assert verdict["si_log_coarse"] == report["results"]["coarse"]["si_log"]
    assert f"Fine stage: SI log {verdict['si_log_fine']:.3f} with it" in printed
    assert f"coarse + fine {report['spread']['coarse + fine']:.2f}" in printed.split("Depth spread")[1]
    assert report["flip_average"] and "flip averaging" in printed  # the maps users get, by default
    error = report["standard_error"]["coarse + fine"]["si_log"]
    assert "| ± standard error |" in printed and f" {error:.3f} |" in printed.split("coarse + fine (ours)")[1]
    assert cli(["evaluate", "--weights", str(weights), "--data", "folder", "--data-path", str(learnable_folders[1]),
                "--json", str(out), "--device", "cpu", "--no-flip-average"]) == 0
    assert "one pass, as in the paper" in capsys.readouterr().out and not json.loads(out.read_text())["flip_average"]


def _report(weights: str, frames: dict[str, float]) -> dict:
    """A stand-in evaluate report: per-frame rows whose every metric is the given value."""
    return {"weights": weights, "per_frame": [{"frame": name, "coarse + fine": dict.fromkeys(METRIC_NAMES, value)}
                                              for name, value in frames.items()]}


def test_compare_pairs_the_frames_of_two_reports():
    first = _report("A", {"a": 0.30, "b": 0.20, "c": 0.25})
    second = _report("B", {"c": 0.24, "a": 0.28, "b": 0.20})  # listed in another order: matched by name
    comparison = compare_reports(first, second)
    assert comparison["frames"] == 3 and (comparison["before"], comparison["after"]) == ("A", "B")
    differences = [-0.02, 0.0, -0.01]
    assert comparison["difference"]["si_log"] == pytest.approx(np.mean(differences))
    assert comparison["standard_error"]["si_log"] == pytest.approx(np.std(differences, ddof=1) / np.sqrt(3))
    # lower SI log is better: B wins on a and c, ties on b; higher delta1 is better: B loses on a and c
    assert comparison["after_better_on"]["si_log"] == 2 and comparison["after_better_on"]["delta1"] == 0
    with pytest.raises(ValueError, match="different frames"):
        compare_reports(first, _report("C", {"a": 0.3, "b": 0.2}))
    with pytest.raises(ValueError, match="no per-frame rows"):
        compare_reports({"results": {}}, second)
    twice = _report("D", {"a": 0.3, "b": 0.2, "c": 0.2})
    twice["per_frame"][2]["frame"] = "a"
    with pytest.raises(ValueError, match="names two frames alike"):
        compare_reports(twice, second)
    with pytest.raises(ValueError, match="no row 'coarse'"):
        compare_reports(first, second, row="coarse")


def test_compare_from_the_command_line(weights, learnable_folders, tmp_path, capsys):
    reports = [tmp_path / "flip.json", tmp_path / "one-pass.json"]
    for out, flip in zip(reports, ("--flip-average", "--no-flip-average")):
        assert cli(["evaluate", "--weights", str(weights), "--data", "folder", "--data-path",
                    str(learnable_folders[1]), "--json", str(out), "--device", "cpu", flip]) == 0
    capsys.readouterr()
    assert cli(["compare", *map(str, reports), "--row", "coarse"]) == 0
    printed = capsys.readouterr().out
    comparison = compare_reports(*(json.loads(path.read_text()) for path in reports), row="coarse")
    assert "Row: coarse; 4 frames, paired" in printed
    assert f"| si_log (lower is better) | {comparison['difference']['si_log']:+.4f} |" in printed
    assert "|log scale ratio| (lower is better): " + f"{comparison['scale']['abs_log_ratio']['difference']:+.4f}" in printed
    assert "δ<1.25 after each frame's best scale (higher is better)" in printed and "scale ratio x" in printed
    (tmp_path / "broken.json").write_text("{not json")
    assert cli(["compare", str(reports[0]), str(tmp_path / "broken.json")]) == 2
    assert "error:" in capsys.readouterr().err
    assert cli(["compare", str(reports[0]), str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_figure4_of_the_first_frames(weights, learnable_folders, tmp_path):
    from PIL import Image

    dataset = open_dataset("folder", str(learnable_folders[1]))
    model = depth.load_model(weights, device="cpu")
    rows = figure_rows(model, dataset, 2)
    assert len(rows) == 2
    np.testing.assert_allclose(rows[1]["fine"], model.predict(dataset[1].image).fine, rtol=1e-5)  # batch of 2 vs 1
    np.testing.assert_array_equal(rows[1]["truth"], dataset[1].depth)
    figure = tmp_path / "fig" / "figure4.png"
    assert cli(["evaluate", "--weights", str(weights), "--data", "folder", "--data-path", str(learnable_folders[1]),
                "--device", "cpu", "--figure", str(figure), "--figure-frames", "3"]) == 0
    width, height = Image.open(figure).size
    assert width > 1000 and 600 < height < 900  # four columns, three rows


def test_bad_dataset_is_a_clean_error(weights, tmp_path, capsys):
    assert cli(["evaluate", "--weights", str(weights), "--data", "folder", "--data-path", str(tmp_path / "none")]) == 2
    assert "none" in capsys.readouterr().err
    assert cli(["evaluate", "--weights", str(weights), "--data", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err


@pytest.mark.skipif(not REAL_RGBD.is_dir(), reason="shared real RGB-D frames not present")
def test_real_frames_evaluate_with_the_default_weights(tmp_path, capsys):
    out = tmp_path / "real.json"
    assert cli(["evaluate", "--data", "folder", "--data-path", str(REAL_RGBD), "--json", str(out), "--device", "cpu"]) == 0
    report = json.loads(out.read_text())
    assert report["frames"] == 7
    assert all(np.isfinite(list(metrics.values())).all() for metrics in report["results"].values())


def test_the_fine_stage_verdict_names_the_better_map():
    from depth.evaluate import fine_stage_verdict

    worse_fine = {"coarse": {"si_log": 0.22}, "coarse + fine": {"si_log": 0.26}}
    assert fine_stage_verdict(worse_fine, "fine") == {
        "si_log_coarse": 0.22, "si_log_fine": 0.26, "helps": False, "output": "fine", "output_is_better": False}
    assert fine_stage_verdict(worse_fine, "coarse")["output_is_better"]
    tie = {"coarse": {"si_log": 0.2}, "coarse + fine": {"si_log": 0.2}}
    assert fine_stage_verdict(tie, "fine")["helps"] and fine_stage_verdict(tie, "fine")["output_is_better"]
