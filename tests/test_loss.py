import math

import pytest
import torch

from depth.loss import best_log_scale, paper_valid_mask, scale_invariant_loss


def _batch(seed: int = 0, shape=(4, 1, 55, 74)):
    generator = torch.Generator().manual_seed(seed)
    pred = torch.randn(shape, generator=generator)
    target = torch.rand(shape, generator=generator) * 9 + 0.5
    mask = torch.rand(shape, generator=generator) > 0.3
    return pred, target, mask


def test_value_computed_by_hand():
    pred = torch.log(torch.tensor([[math.e, 1.0, math.e**2, 5.0]]))
    target = torch.tensor([[1.0, math.e, 1.0, 0.0]])  # last pixel has no depth
    mask = target > 0
    # d = [1, -1, 2]: (1/3)(1 + 1 + 4) - 0.5 (1/9)(2)^2 = 2 - 2/9
    assert scale_invariant_loss(pred, target, mask).item() == pytest.approx(2 - 2 / 9, rel=1e-6)


@pytest.mark.parametrize("scale", [1e-3, 0.5, 3.0, 1e4])
def test_lambda_one_is_invariant_to_scaling_the_prediction(scale):
    pred, target, mask = _batch()
    base = scale_invariant_loss(pred, target, mask, lam=1.0)
    scaled = scale_invariant_loss(pred + math.log(scale), target, mask, lam=1.0)
    assert scaled.item() == pytest.approx(base.item(), abs=1e-5)


def test_paper_lambda_penalises_half_of_a_global_scale_error():
    # shifting log depth by c changes each image's loss by (1 - lam)(2 c mean(d) + c^2)
    pred, target, mask = _batch()
    c = 0.7
    mean_d = [(pred[i] - target[i].log())[mask[i]].mean() for i in range(len(pred))]
    expected = torch.stack([(1 - 0.5) * (2 * c * m + c * c) for m in mean_d]).mean()
    change = scale_invariant_loss(pred + c, target, mask) - scale_invariant_loss(pred, target, mask)
    assert change.item() == pytest.approx(expected.item(), rel=1e-4)


def test_lambda_zero_is_masked_mean_squared_log_error():
    pred, target, mask = _batch()
    per_image = [((pred[i] - target[i].log())[mask[i]] ** 2).mean() for i in range(len(pred))]
    expected = torch.stack(per_image).mean()
    assert scale_invariant_loss(pred, target, mask, lam=0.0).item() == pytest.approx(expected.item(), rel=1e-5)


def test_batch_loss_is_mean_of_image_losses():
    pred, target, mask = _batch()
    single = [scale_invariant_loss(pred[i : i + 1], target[i : i + 1], mask[i : i + 1]) for i in range(4)]
    assert scale_invariant_loss(pred, target, mask).item() == pytest.approx(torch.stack(single).mean().item(), rel=1e-6)


def test_images_without_valid_pixels_are_left_out_of_the_mean():
    pred, target, mask = _batch()
    mask[1] = False
    kept = [scale_invariant_loss(pred[i : i + 1], target[i : i + 1], mask[i : i + 1]) for i in (0, 2, 3)]
    assert scale_invariant_loss(pred, target, mask).item() == pytest.approx(torch.stack(kept).mean().item(), rel=1e-6)
    none = scale_invariant_loss(pred, target, torch.zeros_like(mask))
    assert none.item() == 0.0


def test_masked_pixels_get_zero_gradient_even_without_depth():
    pred, target, mask = _batch()
    target[~mask] = 0.0  # log(0) must not leak into the graph
    pred.requires_grad_(True)
    scale_invariant_loss(pred, target, mask).backward()
    assert torch.isfinite(pred.grad).all()
    assert (pred.grad[~mask] == 0).all()
    assert (pred.grad[mask] != 0).any()


def test_computed_in_float32_under_low_precision_inputs():
    pred, target, mask = _batch()
    loss = scale_invariant_loss(pred.bfloat16(), target, mask)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(scale_invariant_loss(pred.bfloat16().float(), target, mask).item(), rel=1e-6)


def test_shape_mismatch_is_an_error():
    pred, target, mask = _batch()
    with pytest.raises(ValueError, match="shapes differ"):
        scale_invariant_loss(pred[:, 0], target, mask)


def test_paper_mask_drops_missing_and_each_images_extremes():
    depth = torch.tensor([[[0.0, 1.0, 2.0, 3.0, 3.0, float("nan")]],
                          [[5.0, 4.0, 0.0, 4.5, 6.0, 7.0]]])
    expected = torch.tensor([[[False, False, True, False, False, False]],
                             [[True, False, False, True, True, False]]])
    assert torch.equal(paper_valid_mask(depth), expected)


def test_the_best_scale_turns_the_mse_of_log_depth_into_the_lambda_1_error():
    torch.manual_seed(0)
    target = torch.rand(2, 55, 74) * 4 + 0.5
    prediction = torch.log(target) + 0.3 * torch.randn(2, 55, 74) + torch.tensor([0.4, -0.7])[:, None, None]
    valid = torch.rand(2, 55, 74) > 0.2
    alpha = best_log_scale(prediction, target, valid)
    assert alpha.shape == (2,)
    aligned = prediction + alpha[:, None, None]  # times e^alpha
    mse_aligned = scale_invariant_loss(aligned, target, valid, lam=0.0)
    assert torch.isclose(mse_aligned, scale_invariant_loss(prediction, target, valid, lam=1.0), rtol=1e-5)
    for shift in (-0.05, 0.05):  # any other scale does worse
        assert scale_invariant_loss(aligned + shift, target, valid, lam=0.0) > mse_aligned
    assert torch.allclose(best_log_scale(aligned, target, valid), torch.zeros(2), atol=1e-6)


