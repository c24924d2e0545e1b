import math

import numpy as np
import pytest

from depth.metrics import (
    EIGEN_CROP,
    METRIC_NAMES,
    PAPER,
    compute_metrics,
    evaluation_mask,
    log_depth_spread,
    mean_metrics,
    standard_errors,
)


def test_values_computed_by_hand():
    gt = np.array([[1.0, 2.0], [4.0, 0.0]])  # the 0 has no depth and is not scored
    pred = np.array([[1.1, 1.5], [5.0, 3.0]])
    m = compute_metrics(pred, gt, PAPER)
    # ratios max(p/g, g/p): 1.1, 4/3, 1.25 (1.25 is not < 1.25)
    assert m["delta1"] == pytest.approx(1 / 3)
    assert m["delta2"] == m["delta3"] == 1.0
    assert m["abs_rel"] == pytest.approx((0.1 / 1 + 0.5 / 2 + 1.0 / 4) / 3)  # 0.2
    assert m["sq_rel"] == pytest.approx((0.01 / 1 + 0.25 / 2 + 1.0 / 4) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((0.01 + 0.25 + 1.0) / 3))
    d = [math.log(1.1), math.log(0.75), math.log(1.25)]
    assert m["rmse_log"] == pytest.approx(math.sqrt(sum(x * x for x in d) / 3))
    assert m["si_log"] == pytest.approx(math.sqrt(sum(x * x for x in d) / 3 - (sum(d) / 3) ** 2))
    assert m["log10"] == pytest.approx(sum(abs(x) / math.log(10) for x in d) / 3)
    assert set(m) == set(METRIC_NAMES)


def test_perfect_prediction():
    gt = np.random.default_rng(0).uniform(0.5, 8, (48, 64))
    m = compute_metrics(gt.copy(), gt, PAPER)
    assert m["delta1"] == 1.0
    assert all(m[k] == pytest.approx(0.0, abs=1e-7) for k in METRIC_NAMES if not k.startswith("delta"))


def test_si_log_ignores_global_scale_and_others_do_not():
    rng = np.random.default_rng(1)
    gt = rng.uniform(0.5, 8, (48, 64))
    pred = gt * rng.uniform(0.8, 1.25, gt.shape)
    a, b = compute_metrics(pred, gt), compute_metrics(pred * 2.0, gt)
    assert b["si_log"] == pytest.approx(a["si_log"])
    assert b["abs_rel"] > a["abs_rel"] + 0.5


def test_log_depth_spread_tells_a_flat_map_and_ignores_scale():
    rng = np.random.default_rng(2)
    gt = rng.uniform(0.5, 8, (48, 64))
    gt[0, :5] = 0.0  # not scored
    truth = np.log(gt[gt > 0]).std()
    flat = np.sqrt(gt) * 3.0  # log depth at half the scene's variation, any scale
    assert log_depth_spread(flat, gt) == pytest.approx((0.5 * truth, truth))
    assert log_depth_spread(np.full_like(gt, 2.0), gt) == pytest.approx((0.0, truth))
    with pytest.raises(ValueError, match="must be equal"):
        log_depth_spread(gt[:10], gt)


def test_eigen_crop_and_range():
    gt = np.full((480, 640), 2.0)
    gt[100, 100] = 12.0  # beyond 10 m: not scored under the crop protocol
    mask = evaluation_mask(gt, EIGEN_CROP)
    assert mask.sum() == (471 - 45) * (601 - 41) - 1
    assert not mask[44, 300] and mask[45, 300] and mask[470, 300] and not mask[471, 300]
    assert not mask[300, 40] and mask[300, 41] and mask[300, 600] and not mask[300, 601]
    assert evaluation_mask(gt, PAPER).all()
    # predictions are clipped to the protocol's range: 50 m counts as 10 m against 2 m
    pred = np.full_like(gt, 2.0)
    pred[200, 200] = 50.0
    m = compute_metrics(pred, gt, EIGEN_CROP)
    assert m["rmse"] == pytest.approx(math.sqrt(8.0**2 / mask.sum()))


def test_eigen_crop_scales_with_resolution():
    mask = evaluation_mask(np.ones((240, 320)), EIGEN_CROP)
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (22, 236, 20, 300)


def test_errors():
    with pytest.raises(ValueError, match="must be equal"):
        compute_metrics(np.ones((4, 4)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="no valid"):
        compute_metrics(np.ones((4, 4)), np.zeros((4, 4)))
    diverged = np.ones((4, 4))
    diverged[0, :2] = [np.nan, np.inf]
    with pytest.raises(ValueError, match="not finite .* at 2 of 16"):
        compute_metrics(diverged, np.ones((4, 4)))
    with pytest.raises(ValueError, match="no images"):
        mean_metrics([])


def test_standard_errors_of_the_mean_over_images():
    rows = [dict.fromkeys(METRIC_NAMES, value) for value in (0.2, 0.3, 0.4)]
    errors = standard_errors(rows)
    assert errors["si_log"] == pytest.approx(0.1 / math.sqrt(3))  # sample std 0.1, three images
    assert set(errors) == set(METRIC_NAMES)
    assert standard_errors(rows[:1]) == dict.fromkeys(METRIC_NAMES)  # one image: no spread to measure


def test_dataset_figure_is_the_mean_over_images():
    gt = np.array([[1.0, 2.0]])
    first, second = compute_metrics(np.array([[1.0, 2.0]]), gt), compute_metrics(np.array([[2.0, 4.0]]), gt)
    assert mean_metrics([first, second])["abs_rel"] == pytest.approx(0.5)
    assert mean_metrics([first, second])["rmse"] == pytest.approx((0 + math.sqrt(2.5)) / 2)
