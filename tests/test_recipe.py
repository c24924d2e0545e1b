"""Recipes: the reader's errors, each shipped recipe end to end at a small --scale, kill and
resume to identical weights, --dry-run, and the shipped checkpoints' record of their recipe."""

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import depth
from depth.__main__ import main as cli
from depth.checkpoint import checkpoint_files, load_info
from depth.recipe import RECIPES, RecipeError, load_recipe

REPO = Path(__file__).resolve().parents[1]
SCALE = "0.001"  # 20 frames, about 100 samples: every stage runs, in seconds

GOOD = """
[train]
data = "synthetic"
train_frames = 8
batch_size = 4
[[stage]]
name = "coarse"
kind = "coarse"
coarse_samples = 8
"""


def _recipe(tmp_path, text: str) -> str:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return str(path)


def test_a_good_recipe_reads_into_train_configs(tmp_path):
    recipe = load_recipe(_recipe(tmp_path, GOOD))
    (stage,) = recipe.stages
    assert stage.kind == "coarse" and stage.step.config.coarse_samples == 8 and stage.step.config.fine_samples == 0
    assert stage.step.config.batch_size == 4 and recipe.sha256 == hashlib.sha256((tmp_path / "r.toml").read_bytes()).hexdigest()


@pytest.mark.parametrize("text, message", [
    (GOOD + "colour = 1\n", "unknown key 'colour'"),
    (GOOD.replace("batch_size = 4", "batch_sise = 4"), "unknown key 'batch_sise' (did you mean 'batch_size'?)"),
    (GOOD.replace("batch_size = 4", "out = 'x'"), "unknown key 'out' (set by the command line"),
    (GOOD.replace('kind = "coarse"', 'kind = "bake"'), "unknown kind 'bake'; the kinds are pool, coarse, fine"),
    (GOOD.replace("batch_size = 4", "batch_size = '4'"), "batch_size must be int, got '4'"),
    (GOOD.replace("coarse_samples = 8", "coarse_samples = 2"), "--coarse-samples 2 is less than one batch"),
    (GOOD.replace("coarse_samples = 8", "lr_coarse_fc = 0.1"), "must say how long it trains (coarse_samples)"),
    (GOOD + "fine_samples = 8\n", "fine_samples belongs to a fine stage"),
    (GOOD + '[[stage]]\nname = "pool"\nkind = "pool"\n', "the last stage must write a network"),
    (GOOD.replace('name = "coarse"\nkind = "coarse"\ncoarse_samples = 8', 'name = "fine"\nkind = "fine"\nfine_samples = 8'),
     "needs a network before it: start with a coarse stage"),
    (GOOD + '[[stage]]\nname = "export"\nkind = "export"\nfc_int8 = ["fc9"]\n', "apply to fc6 and fc7, not fc9"),
    (GOOD + '[[stage]]\nname = "coarse"\nkind = "coarse"\ncoarse_samples = 8\n', "stage names must be unique"),
    ("[train\n", "not valid TOML"),
])
def test_recipe_errors_are_one_line_exit_2(tmp_path, capsys, text, message):
    path = _recipe(tmp_path, text)
    with pytest.raises(RecipeError, match="r.toml"):
        load_recipe(path)
    assert cli(["train", "--recipe", path, "--out", str(tmp_path / "run"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_a_pool_stage_of_rooms_rendered_on_the_fly_keeps_nothing(tmp_path):
    from depth.stages import Context, Pool

    recipe = load_recipe(_recipe(tmp_path, GOOD.replace("train_frames = 8", "train_frames = 0")))
    assert Pool().run(Context(recipe.train, tmp_path / "pools"), tmp_path, None) is None
    assert not (tmp_path / "pools").exists()


def test_unknown_recipe_and_options_beside_a_recipe_are_refused(tmp_path, capsys):
    assert cli(["train", "--recipe", "nonesuch", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "no recipe 'nonesuch'" in err and "the recipes are: default, paper, paper-nyu" in err
    assert cli(["train", "--recipe", "paper", "--batch-size", "8", "--out", str(tmp_path / "b")]) == 2
    assert "--batch-size: a recipe run takes its settings from the recipe file" in capsys.readouterr().err
    assert cli(["train", "--scale", "0.5", "--out", str(tmp_path / "c")]) == 2
    assert "--dry-run and --scale apply to --recipe runs" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["default", "paper", "paper-nyu"])
def test_the_shipped_recipes_read(name):
    recipe = load_recipe(name)
    assert [stage.kind for stage in recipe.stages][:3] == ["pool", "coarse", "fine"]
    full, scaled = recipe.stages[1].step.config, load_recipe(name, 0.002).stages[1].step.config
    assert scaled.coarse_samples == max(1, round(full.coarse_samples * 0.002 / full.batch_size)) * full.batch_size
    assert scaled.train_frames == round(full.train_frames * 0.002) and scaled.batch_size == full.batch_size


@pytest.fixture(scope="module")
def pools(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pools")


def _run(name: str, out: Path, pools: Path) -> list[str]:
    return ["train", "--recipe", name, "--scale", SCALE, "--out", str(out), "--pools", str(pools), "--device", "cpu"]


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory, pools) -> Path:
    out = tmp_path_factory.mktemp("paper") / "run"
    assert cli(_run("paper", out, pools)) == 0
    return out


def _weights(path: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for file in checkpoint_files(path):
        tensors |= load_file(file)
    return tensors


@pytest.mark.parametrize("name", ["paper", "default"])
def test_each_shipped_recipe_runs_end_to_end_to_a_checkpoint_naming_it(name, paper_run, pools, tmp_path):
    out = paper_run if name == "paper" else tmp_path / "run"
    if name != "paper":
        assert cli(_run(name, out, pools)) == 0
    model = depth.load_model(out / "model.safetensors", device="cpu")
    recipe = model.info["recipe"]
    assert recipe["name"] == name and recipe["file"] == f"recipes/{name}.toml" and recipe["scale"] == float(SCALE)
    assert recipe["sha256"] == hashlib.sha256((RECIPES / f"{name}.toml").read_bytes()).hexdigest()
    assert [s["name"] for s in recipe["stages"]] == ["pool", "coarse", "fine", "export", "calibrate"]
    assert f"(recipe {name})" in model.describe() and model.trained and "contrast" in model.info
    expected_backbone = {"paper": "eigen", "default": "efficientnet-lite0"}[name]
    assert model.net.config.backbone == expected_backbone
    assert model.predict(torch.rand(96, 128, 3).mul(255).byte().numpy()).depth.shape == (96, 128)
    expected_parts = {"paper": 2, "default": 3}[name]  # split into files of at most 16 MiB, as they ship
    files = checkpoint_files(out / "model.safetensors")
    assert len(files) == expected_parts and max(f.stat().st_size for f in files) <= 16 * 2**20


def test_rerunning_a_finished_recipe_skips_every_stage(paper_run, pools, capsys):
    before = (paper_run / "model.safetensors").read_bytes()
    started = time.perf_counter()
    assert cli(_run("paper", paper_run, pools)) == 0
    assert time.perf_counter() - started < 10
    assert (paper_run / "model.safetensors").read_bytes() == before


def test_a_run_folder_of_another_recipe_or_scale_is_refused(paper_run, pools, capsys):
    assert cli(["train", "--recipe", "paper", "--scale", "0.002", "--out", str(paper_run), "--pools", str(pools)]) == 2
    assert "holds a run of recipe 'paper'" in capsys.readouterr().err


def test_a_recipe_killed_inside_a_stage_and_between_stages_ends_with_the_same_weights(paper_run, pools, tmp_path):
    out = tmp_path / "cut"
    command = [sys.executable, "-m", "depth", *_run("paper", out, pools)]

    def kill_when(path: Path) -> None:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 240
        while not path.exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()

    kill_when(out / "02-coarse" / "state.pt")  # inside the coarse stage, after its first checkpoint
    assert not (out / "02-coarse" / "done.json").exists(), "the coarse stage finished before it was killed"
    kill_when(out / "02-coarse" / "done.json")  # between the coarse and fine stages (or just into fine)
    assert not (out / "model.safetensors").exists(), "the run finished before it was killed"
    assert cli(_run("paper", out, pools)) == 0  # the same command resumes
    reference, resumed = _weights(paper_run / "model.safetensors"), _weights(out / "model.safetensors")
    assert reference.keys() == resumed.keys()
    assert all(torch.equal(reference[key], resumed[key]) for key in reference)
    assert load_info(out / "model.safetensors")["contrast"] == load_info(paper_run / "model.safetensors")["contrast"]


TINY = """
[train]
data = "synthetic"
train_frames = 4000
val_frames = 200
fc_width = 16
batch_size = 2
val_every = 800
[[stage]]
name = "pool"
kind = "pool"
[[stage]]
name = "coarse"
kind = "coarse"
coarse_samples = 2000
[[stage]]
name = "fine"
kind = "fine"
fine_samples = 1000
[[stage]]
name = "export"
kind = "export"
fc_int8 = ["fc6"]
[[stage]]
name = "calibrate"
kind = "calibrate"
frames = 100
"""


def test_dry_run_prints_each_stage_with_a_measured_time_and_trains_nothing(tmp_path, capsys):
    out = tmp_path / "dry"
    path = _recipe(tmp_path, TINY)
    assert cli(["train", "--recipe", path, "--dry-run", "--out", str(out), "--pools", str(tmp_path / "pools"),
                "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[2:-1]}
    assert list(rows) == ["pool", "coarse", "fine", "export", "calibrate"]
    assert "4,000 frames of synthetic train" in rows["pool"] and "frames/s" in rows["pool"]
    assert "2,000 samples, batch 2" in rows["coarse"] and "samples/s" in rows["coarse"]
    assert "1,000 samples, batch 2" in rows["fine"] and "100 frames of synthetic val" in rows["calibrate"]
    assert lines[-1].startswith("total: about ") and " min on this machine (" in lines[-1]
    assert not out.exists() and not (tmp_path / "pools").exists()


def test_dry_run_of_a_shipped_recipe_marks_the_finished_stages(paper_run, pools, capsys):
    assert cli(["train", "--recipe", "paper", "--scale", SCALE, "--dry-run", "--out", str(paper_run),
                "--pools", str(pools)]) == 0
    printed = capsys.readouterr().out
    assert all(f"{stage}" in printed for stage in ("pool", "coarse", "fine", "export", "calibrate"))
    assert printed.count(" done") == 5 and "total: about < 1 min" in printed


def test_the_shipped_checkpoints_recipe_sha256_is_the_recipe_files():
    recorded = [load_info(weights).get("recipe") for weights in depth.SHIPPED_WEIGHTS]
    if not any(recorded):
        pytest.skip("the shipped networks predate the recipes; their rebuild is pending (MODEL_CARD.md)")
    for record in recorded:
        assert record["scale"] == 1.0
        assert record["sha256"] == hashlib.sha256((REPO / record["file"]).read_bytes()).hexdigest()
