"""`python -m depth stats`: the mean-depth baseline of a folder, checked against a hand computation."""

import json

import numpy as np
import pytest

from depth.__main__ import main
from depth.data import open_dataset
from depth.data.folder import write_frame, write_manifest
from depth.stats import NYU_BASELINE, dataset_stats, format_stats


@pytest.fixture
def tiny_folder(tmp_path):
    """Three 4x6 frames: a near, a far and a sloping one, with a hole."""
    depths = [np.full((4, 6), 1.0), np.full((4, 6), 4.0), np.tile(np.linspace(1.0, 3.5, 6), (4, 1))]
    depths[2][0, 0] = 0.0  # no reading
    image = np.zeros((4, 6, 3), np.uint8)
    entries = [write_frame(tmp_path, f"f{i}", image, d.astype(np.float32)) for i, d in enumerate(depths)]
    write_manifest(tmp_path, entries)
    return tmp_path, depths


def test_stats_match_a_hand_computation(tiny_folder):
    folder, depths = tiny_folder
    stats = dataset_stats(open_dataset("folder", str(folder)), progress=False)
    stack = np.stack(depths)
    valid = stack > 0
    mean_map = (stack * valid).sum(0) / valid.sum(0)  # every pixel has a reading in some frame
    abs_rel, rmse, delta1, si = [], [], [], []
    for depth, ok in zip(stack, valid):
        pred, gt = mean_map[ok], depth[ok]
        abs_rel.append(np.mean(np.abs(pred - gt) / gt))
        rmse.append(np.sqrt(np.mean((pred - gt) ** 2)))
        delta1.append(np.mean(np.maximum(pred / gt, gt / pred) < 1.25))
        d = np.log(pred) - np.log(gt)
        si.append(np.sqrt(np.mean(d**2) - np.mean(d) ** 2))
    assert stats["frames"] == 3 and stats["shape"] == [4, 6]
    assert stats["baseline"]["abs_rel"] == pytest.approx(np.mean(abs_rel), rel=1e-5)
    assert stats["baseline"]["rmse"] == pytest.approx(np.mean(rmse), rel=1e-5)
    assert stats["baseline"]["delta1"] == pytest.approx(np.mean(delta1), rel=1e-5)
    assert stats["baseline"]["si_log"] == pytest.approx(np.mean(si), rel=1e-4)
    values = stack[valid]
    assert stats["mean_depth"] == pytest.approx(values.mean(), rel=1e-5)
    assert stats["valid_fraction"] == pytest.approx(valid.mean())
    assert stats["depth_percentiles"]["median"] == pytest.approx(np.median(values), abs=0.011)
    assert stats["depth_percentiles"]["max"] == pytest.approx(4.0)
    assert stats["within"]["rmse"] == (abs(np.mean(rmse) - NYU_BASELINE["rmse"]) <= 0.12 * NYU_BASELINE["rmse"])
    assert "mean-depth baseline, NYU (Eigen 2014) | 0.418" in format_stats(stats)


def test_stats_command_prints_the_table_and_writes_json(tiny_folder, tmp_path, capsys):
    folder, _ = tiny_folder
    out = tmp_path / "stats" / "s.json"
    assert main(["stats", str(folder), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mean-depth baseline, this set" in printed and "Within 12% of NYU" in printed
    assert json.loads(out.read_text())["frames"] == 3


def test_stats_command_errors_are_messages(tmp_path, capsys):
    assert main(["stats", str(tmp_path / "missing")]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["stats", str(tmp_path), "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err
