import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import depth
from depth.__main__ import main
from depth.checkpoint import save_checkpoint

from .conftest import REAL_RGBD


@pytest.fixture
def weights(tmp_path, small_net):
    return str(save_checkpoint(tmp_path / "small.safetensors", small_net, {"trained": True, "trained_on": "tests"}))


def test_predict_writes_every_output(tmp_path, weights, photo):
    Image.fromarray(photo).save(tmp_path / "room.jpg", quality=95)
    Image.fromarray(photo[:300, :200]).save(tmp_path / "corner.png")
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "room.jpg"), str(tmp_path / "corner.png"),
                 "--out", str(out), "--weights", weights, "--device", "cpu"]) == 0

    model = depth.load_model(weights, device="cpu")
    expected = model.predict(tmp_path / "room.jpg")
    fine = np.load(out / "room_depth.npy")
    coarse = np.load(out / "room_coarse.npy")
    assert fine.dtype == coarse.dtype == np.float32 and fine.shape == coarse.shape == (480, 640)
    np.testing.assert_array_equal(fine, expected.fine)
    np.testing.assert_array_equal(coarse, expected.coarse)
    png = np.asarray(Image.open(out / "room_depth.png"))
    assert png.dtype == np.uint16 and png.shape == (480, 640)
    np.testing.assert_array_equal(png, np.round(fine.astype(np.float64) * 1000).astype(np.uint16))  # millimetres
    colour = Image.open(out / "room_color.png")
    assert colour.mode == "RGB" and colour.size == (640, 480)
    assert np.load(out / "corner_depth.npy").shape == (300, 200)


def test_no_flip_average_writes_the_papers_single_pass(tmp_path, weights, photo):
    Image.fromarray(photo).save(tmp_path / "room.png")
    for flag, flip_average in (("--flip-average", True), ("--no-flip-average", False)):
        out = tmp_path / flag
        assert main(["predict", str(tmp_path / "room.png"), "--out", str(out), "--weights", weights,
                     "--device", "cpu", flag]) == 0
        expected = depth.load_model(weights, device="cpu", flip_average=flip_average).predict(tmp_path / "room.png")
        np.testing.assert_array_equal(np.load(out / "room_depth.npy"), expected.fine)
    assert not np.array_equal(np.load(tmp_path / "--flip-average" / "room_depth.npy"),
                              np.load(tmp_path / "--no-flip-average" / "room_depth.npy"))


def test_weights_whose_fine_stage_is_worse_default_to_the_coarse_map(tmp_path, small_net, photo, capsys):
    Image.fromarray(photo).save(tmp_path / "room.png")
    coarse_first = save_checkpoint(tmp_path / "c.safetensors", small_net, {"trained": True, "output": "coarse"})
    assert main(["predict", str(tmp_path / "room.png"), "--out", str(tmp_path / "out"),
                 "--weights", str(coarse_first), "--device", "cpu"]) == 0
    assert "hold the coarse map" in capsys.readouterr().err
    expected = depth.load_model(coarse_first, device="cpu").predict(photo)
    assert expected.output == "coarse" and expected.depth is expected.coarse
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "room_depth.npy"), expected.coarse)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "room_fine.npy"), expected.fine)
    assert "default output: the coarse map" in depth.load_model(coarse_first, device="cpu").describe()


def test_bad_files_are_reported_in_one_line_and_the_rest_still_run(tmp_path, weights, photo, capsys):
    (tmp_path / "fake.jpg").write_text("not an image")
    Image.fromarray(photo).save(tmp_path / "good.png")
    code = main(["predict", str(tmp_path / "fake.jpg"), str(tmp_path / "good.png"),
                 "--out", str(tmp_path / "out"), "--weights", weights])
    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {tmp_path / 'fake.jpg'}: not an image file Pillow can read"]
    assert (tmp_path / "out" / "good_depth.npy").exists()


def test_bad_weights_device_colormap_and_duplicate_names(tmp_path, photo, capsys):
    Image.fromarray(photo).save(tmp_path / "a.png")
    (tmp_path / "broken.safetensors").write_bytes(b"\0" * 50)
    args = ["predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "out")]
    assert main(args + ["--weights", str(tmp_path / "broken.safetensors")]) == 2
    assert "broken.safetensors is not a readable safetensors file" in capsys.readouterr().err
    assert main(args + ["--device", "toaster"]) == 2
    assert "unknown device 'toaster'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything was written
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--colormap", "rainbowz"])
    assert exit_info.value.code == 2 and "unknown colormap 'rainbowz'" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    Image.fromarray(photo).save(tmp_path / "b" / "a.png")
    assert main(args[:2] + [str(tmp_path / "b" / "a.png")] + args[2:]) == 2
    assert "several inputs are named ['a']" in capsys.readouterr().err


@pytest.mark.skipif(not REAL_RGBD.is_dir(), reason="shared real RGB-D frames not present")
def test_command_line_on_real_photos_with_default_weights(tmp_path):
    """As a user runs it: a real process, the shipped weights, real indoor photos."""
    photos = sorted(REAL_RGBD.glob("*_rgb.png"))[:2]
    result = subprocess.run([sys.executable, "-m", "depth", "predict", *map(str, photos), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trained = depth.load_model(device="cpu").trained
    assert ("UNTRAINED" in result.stderr) == (not trained)
    for photo in photos:
        fine = np.load(tmp_path / f"{photo.stem}_depth.npy")
        assert fine.shape == Image.open(photo).size[::-1] and np.isfinite(fine).all() and (fine > 0).all()


def test_export_halves_the_file_and_keeps_config_info_and_predictions(tmp_path, weights, small_net, photo, capsys):
    out = tmp_path / "half.safetensors"
    assert main(["export", weights, str(out), "--dtype", "float16"]) == 0
    assert "float16" in capsys.readouterr().err
    assert out.stat().st_size < 0.55 * (tmp_path / "small.safetensors").stat().st_size
    full, half = depth.load_model(weights, device="cpu"), depth.load_model(out, device="cpu")
    assert half.info == full.info and half.net.config == full.net.config
    np.testing.assert_allclose(half.predict(photo).fine, full.predict(photo).fine, rtol=5e-3)
    assert main(["export", weights, str(out), "--fc-int4", "--max-file-mib", "0.5"]) == 0
    assert (tmp_path / "half-2.safetensors").exists()
    np.testing.assert_allclose(depth.load_model(out, device="cpu").predict(photo).fine, full.predict(photo).fine,
                               rtol=0.05)
    assert main(["export", weights, str(out), "--trained-on", "synthetic rooms"]) == 0
    assert depth.load_model(out, device="cpu").describe().endswith("trained on synthetic rooms")
    assert main(["export", weights, str(out), "--fc-int4", "fc6"]) == 0  # fc7, which writes log depth, kept
    from safetensors import safe_open
    with safe_open(str(out), "pt") as stored:
        assert {"coarse.fc6.weight.int4", "coarse.fc7.weight"} <= set(stored.keys())
    np.testing.assert_allclose(depth.load_model(out, device="cpu").predict(photo).fine, full.predict(photo).fine,
                               rtol=0.05)
    assert main(["export", weights, str(out), "--fc-int8", "fc6"]) == 0
    assert "8-bit fc6 weights" in capsys.readouterr().err
    with safe_open(str(out), "pt") as stored:
        assert {"coarse.fc6.weight.int8", "coarse.fc7.weight"} <= set(stored.keys())
    np.testing.assert_allclose(depth.load_model(out, device="cpu").predict(photo).fine, full.predict(photo).fine,
                               rtol=5e-3)
    assert main(["export", weights, str(out), "--fc-int4", "fc9"]) == 2
    assert "8- and 4-bit storage apply to fc6, fc7, not fc9" in capsys.readouterr().err
    assert main(["export", weights, str(out), "--fc-int8", "fc6", "--fc-int4"]) == 2
    assert "--fc-int8 and --fc-int4 both name fc6: choose one" in capsys.readouterr().err
    assert main(["export", weights, str(out), "--output", "coarse"]) == 0
    assert depth.load_model(out, device="cpu").output == "coarse"
    assert main(["export", str(tmp_path / "missing.safetensors"), str(tmp_path / "x.safetensors")]) == 2
    assert "missing.safetensors does not exist" in capsys.readouterr().err


def test_synth_writes_a_folder_dataset(tmp_path):
    out = tmp_path / "rooms"
    assert main(["synth", "--n", "2", "--out", str(out), "--width", "80", "--height", "60", "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.glob("*_rgb.png")) == ["synthetic_train0_00000_rgb.png",
                                                              "synthetic_train0_00001_rgb.png"]
    assert (out / "manifest.json").is_file() and (out / "preview.png").is_file()


def test_synth_compile_reaches_the_renderer(tmp_path, monkeypatch):
    import depth.synthetic as synthetic

    options = {}
    monkeypatch.setattr(synthetic, "write_folder", lambda out, n, **kwargs: options.update(kwargs) or out)
    assert main(["synth", "--n", "1", "--out", str(tmp_path), "--compile", "--device", "cpu"]) == 0
    assert options["compile"] is True


@pytest.mark.parametrize("options, message", [
    (["--n", "0"], "number of frames must be at least 1"),
    (["--n", "1", "--width", "0"], "frames must be 8 to 4096 pixels a side, got 0x480"),
    (["--n", "1", "--height", "100000"], "got 640x100000"),
    (["--n", "1", "--device", "nonsense"], "unknown device 'nonsense'"),
])
def test_synth_rejects_bad_options_with_a_message(tmp_path, capsys, options, message):
    assert main(["synth", "--out", str(tmp_path / "rooms"), *options]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "rooms").exists()


@pytest.mark.parametrize("options, message", [
    (["--batch-size", "-4"], "--batch-size must be at least 1, got -4"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--batch-size", "8", "--coarse-samples", "4"], "--coarse-samples 4 is less than one batch"),
    (["--fine-samples", "5"], "--fine-samples 5 is less than one batch"),
    (["--coarse-samples", "0", "--fine-samples", "0", "--init", "x.safetensors"], "both 0: the run would train nothing"),
    (["--coarse-samples", "-10"], "--coarse-samples -10 is less than one batch"),
    (["--log-every", "0"], "--log-every must be at least 1"),
    (["--val-every", "0"], "--val-every must be at least 1"),
    (["--train-frames", "-5"], "--train-frames must not be negative"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["--optimizer", "lbfgs"], "unknown --optimizer 'lbfgs'; choose one of sgd, adamw"),
])
def test_train_rejects_senseless_options_before_any_work(tmp_path, capsys, options, message):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--device", "cpu", "--train-frames", "8", *options]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()  # no folder, so no weights marked trained


def test_train_rejects_an_empty_out(capsys):
    assert main(["train", "--out", " ", "--device", "cpu"]) == 2
    assert "--out must name a run folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "synth", "train", "export"])
@pytest.mark.parametrize("problem", ["a file", "unwritable"])
def test_an_output_that_is_a_file_or_unwritable_is_exit_2_with_a_message(tmp_path, weights, photo, capsys,
                                                                          command, problem):
    Image.fromarray(photo).save(tmp_path / "room.png")
    if problem == "a file":
        out = tmp_path / "taken"
        out.write_text("already here")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        if os.access(locked, os.W_OK):  # root ignores permissions, but not those of /sys
            locked = Path("/sys/depth-test-unwritable")
        out = locked / "inside"
    argv = {"predict": ["predict", str(tmp_path / "room.png"), "--out", str(out), "--weights", weights, "--device", "cpu"],
            "synth": ["synth", "--n", "1", "--width", "64", "--height", "48", "--out", str(out), "--device", "cpu"],
            "train": ["train", "--out", str(out), "--device", "cpu", "--train-frames", "8", "--val-frames", "2",
                      "--baseline-frames", "2", "--fc-width", "16", "--batch-size", "2", "--coarse-samples", "2",
                      "--fine-samples", "2"],
            "export": ["export", weights, str(out / "w.safetensors") if problem == "a file" else str(out)]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and str(out if problem == "a file" else locked) in err


def test_help_names_every_command_and_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "{predict,train,evaluate,compare,export,calibrate,synth,stats}" in top and "predict|train|evaluate" not in top
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    train_help = " ".join(capsys.readouterr().out.split())
    assert '--device STR "" = CUDA when available, else CPU' in train_help and "default: ''" not in train_help
    assert "--batch-size INT default: 32" in train_help
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "whether the fine stage helps" in " ".join(capsys.readouterr().out.split())


def test_predict_writes_into_depth_out_by_default(tmp_path, weights, photo, monkeypatch):
    Image.fromarray(photo).save(tmp_path / "room.png")
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "room.png", "--weights", weights, "--device", "cpu"]) == 0
    assert (tmp_path / "depth_out" / "room_depth.npy").is_file()


def test_colour_pngs_can_carry_a_colour_bar_in_metres(tmp_path, weights, photo):
    from depth.visualize import colour_bar, depth_range

    Image.fromarray(photo).save(tmp_path / "room.png")
    assert main(["predict", str(tmp_path / "room.png"), "--out", str(tmp_path / "out"), "--weights", weights,
                 "--device", "cpu", "--colorbar"]) == 0
    picture = np.asarray(Image.open(tmp_path / "out" / "room_color.png"))
    near, far = depth_range(np.load(tmp_path / "out" / "room_depth.npy"))
    bar = colour_bar(near, far, "inferno_r", 640)
    assert picture.shape == (480 + bar.shape[0], 640, 3)
    np.testing.assert_array_equal(picture[480:], bar)
