import numpy as np
import pytest
import torch
from safetensors import safe_open

from depth.__main__ import main
from depth.calibrate import fit_contrast, set_contrast
from depth.checkpoint import CheckpointError, checkpoint_files, load_info, save_checkpoint
from depth.contrast import contrast_factors, stretch
from depth.data import open_dataset
from depth.evaluate import evaluate
from depth.metrics import PAPER
from depth.predict import DepthModel, load_model

from .conftest import write_learnable_folder


@pytest.fixture(scope="module")
def frames_folder(tmp_path_factory):
    return str(write_learnable_folder(tmp_path_factory.mktemp("contrast"), 4, 1))


@pytest.fixture(scope="module")
def frames(frames_folder):
    return open_dataset("folder", frames_folder, "all")


@pytest.fixture
def steep_net(small_net):
    """small_net with its fine output scaled up: on `frames` both maps then vary less than the
    truth, by factors well inside the allowed range (coarse 2.5x, fine 1.7x flatter)."""
    with torch.no_grad():
        small_net.fine.conv3.weight.mul_(4)
        small_net.fine.conv3.bias.mul_(4)
    return small_net


def _std_and_mean(log_maps):
    return log_maps.std(dim=(-2, -1)), log_maps.mean(dim=(-2, -1))


def test_stretch_scales_each_maps_variation_about_its_own_mean():
    log_maps = torch.randn(3, 1, 55, 74) * torch.tensor([0.2, 0.5, 1.0]).view(3, 1, 1, 1) + torch.tensor(
        [0.0, 1.0, 2.0]).view(3, 1, 1, 1)
    stretched = stretch(log_maps, 1.25)
    std, mean = _std_and_mean(log_maps)
    new_std, new_mean = _std_and_mean(stretched)
    torch.testing.assert_close(new_mean, mean)  # the scale (geometric mean depth) stays
    torch.testing.assert_close(new_std, 1.25 * std)
    # the ordering of every pixel is kept, the deviations grow by the factor
    torch.testing.assert_close(stretched - new_mean[..., None, None], 1.25 * (log_maps - mean[..., None, None]))
    assert stretch(log_maps, 1.0) is log_maps


def test_the_model_applies_the_stored_factors_to_its_maps(small_net, photo):
    plain = DepthModel(small_net, device="cpu", info={"trained": True})
    stretched = DepthModel(small_net, device="cpu", info={"trained": True, "contrast": {"coarse": 1.5, "fine": 0.8}})
    assert plain.contrast == {"coarse": 1.0, "fine": 1.0}
    a, b = plain.predict(photo), stretched.predict(photo)
    for name, factor in (("coarse_map", 1.5), ("fine_map", 0.8)):
        log_a, log_b = np.log(getattr(a, name)), np.log(getattr(b, name))
        np.testing.assert_allclose(log_b - log_b.mean(), factor * (log_a - log_a.mean()), atol=1e-5)
        assert log_b.mean() == pytest.approx(log_a.mean(), abs=1e-5)
    # at the photo's resolution too: the resampling is linear in log depth
    log_a, log_b = np.log(a.fine), np.log(b.fine)
    assert np.std(log_b) == pytest.approx(0.8 * np.std(log_a), rel=1e-3)
    assert "stretched" in stretched.describe() and "stretched" not in plain.describe()


def test_fitted_factors_make_the_maps_vary_as_much_as_the_scenes(steep_net, frames):
    model = DepthModel(steep_net, device="cpu", info={"trained": True})
    before = evaluate(model, frames, PAPER, progress=False)["spread"]
    fitted = fit_contrast(model, frames, frames=4, progress=False)
    assert fitted["frames"] == 4
    assert fitted["coarse"] == pytest.approx(1 / before["coarse"], rel=1e-3) and fitted["coarse"] > 2
    assert fitted["fine"] == pytest.approx(1 / before["coarse + fine"], rel=1e-3) and fitted["fine"] > 1.5
    assert model.contrast == {"coarse": 1.0, "fine": 1.0}  # fitting leaves the model as it was
    model.contrast = {name: fitted[name] for name in ("coarse", "fine")}
    after = evaluate(model, frames, PAPER, progress=False)
    assert after["spread"]["coarse"] == pytest.approx(1.0, abs=2e-3)
    assert after["spread"]["coarse + fine"] == pytest.approx(1.0, abs=2e-3)
    # fitting again on a calibrated model sets its contrast aside: the same factors
    again = fit_contrast(model, frames, frames=4, progress=False)
    assert (again["coarse"], again["fine"]) == (fitted["coarse"], fitted["fine"])


def test_flat_maps_or_flat_scenes_cannot_be_calibrated(small_net, frames, tmp_path):
    model = DepthModel(small_net, device="cpu", info={"trained": True})
    with pytest.raises(ValueError, match=r"fine maps vary .* outside \[0.25, 4.0\]"):
        fit_contrast(model, frames, frames=4, progress=False)  # the random fine net is 6.7x too flat
    from depth.data.folder import write_frame, write_manifest

    wall = np.full((60, 80), 2.0)
    image = np.full((60, 80, 3), 128, np.uint8)
    write_manifest(tmp_path, [write_frame(tmp_path, "wall", image, wall, (65.0, 65.0, 40.0, 30.0))])
    with pytest.raises(ValueError, match="depth does not vary"):
        fit_contrast(model, open_dataset("folder", str(tmp_path), "all"), progress=False)


@pytest.mark.parametrize("stored, message", [
    ({"coarse": 9.0}, "coarse contrast factor 9.0"),
    ({"fine": "big"}, "fine contrast factor 'big'"),
    ({"fine": float("nan")}, "fine contrast factor nan"),
    ({"middle": 1.2}, "must map coarse and fine"),
    ([1.2, 1.1], "must map coarse and fine"),
])
def test_a_malformed_stored_contrast_is_a_clear_checkpoint_error(tmp_path, small_net, stored, message):
    with pytest.raises(ValueError, match=message):
        contrast_factors({"contrast": stored})
    path = save_checkpoint(tmp_path / "bad.safetensors", small_net, {"trained": True, "contrast": stored})
    with pytest.raises(CheckpointError, match=f"bad.safetensors.*{message}"):
        load_model(path, device="cpu")


def test_setting_the_contrast_rewrites_only_the_info(tmp_path, small_net):
    path = save_checkpoint(tmp_path / "split.safetensors", small_net, {"trained": True, "trained_on": "tests"},
                           fc_bits={"fc6": 8}, max_file_bytes=2**20)
    assert len(checkpoint_files(path)) > 1  # parts stay valid

    def tensors():
        out = {}
        for file in checkpoint_files(path):
            with safe_open(str(file), framework="pt") as f:
                out |= {key: f.get_tensor(key) for key in f.keys()}
        return out

    before = tensors()
    set_contrast(path, {"coarse": 1.2, "fine": 1.1, "frames": 4}, fitted_on="4 frames of tests")
    info = load_info(path)
    assert info == {"trained": True, "trained_on": "tests", "contrast": {"coarse": 1.2, "fine": 1.1},
                    "contrast_fitted_on": "4 frames of tests"}
    after = tensors()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert load_model(path, device="cpu").contrast == {"coarse": 1.2, "fine": 1.1}
    set_contrast(path, None)
    assert load_info(path) == {"trained": True, "trained_on": "tests"}


def test_calibrate_command_fits_stores_and_clears(tmp_path, steep_net, frames_folder, frames, capsys):
    path = str(save_checkpoint(tmp_path / "w.safetensors", steep_net, {"trained": True, "trained_on": "tests"}))
    assert main(["calibrate", path, "--data", "folder", "--data-path", frames_folder, "--split", "all",
                 "--frames", "4", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    info = load_info(path)
    assert info["contrast"]["coarse"] > 2 and info["contrast"]["fine"] > 1.5
    assert info["contrast_fitted_on"] == "4 frames of folder all"
    assert f"contrast x{info['contrast']['fine']:.4f}" in out
    report = evaluate(load_model(path, device="cpu"), frames, PAPER, progress=False)
    assert report["spread"]["coarse + fine"] == pytest.approx(1.0, abs=2e-3)
    assert main(["calibrate", path, "--clear"]) == 0
    assert "contrast" not in load_info(path)


@pytest.mark.parametrize("options, message", [
    (["--frames", "0"], "--frames must be at least 1"),
    (["--data", "nowhere"], "nowhere"),
])
def test_calibrate_rejects_bad_options_and_files_with_a_message(tmp_path, weights_file, capsys, options, message):
    assert main(["calibrate", weights_file, *options]) == 2
    assert message in capsys.readouterr().err
    assert main(["calibrate", str(tmp_path / "missing.safetensors"), "--clear"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "corrupt.safetensors").write_bytes(b"not a checkpoint")
    assert main(["calibrate", str(tmp_path / "corrupt.safetensors"), "--clear"]) == 2
    assert "not a readable safetensors file" in capsys.readouterr().err
    assert load_info(weights_file) == {"trained": True}  # the good checkpoint is untouched


@pytest.fixture
def weights_file(tmp_path, small_net):
    return str(save_checkpoint(tmp_path / "small.safetensors", small_net, {"trained": True}))
