import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import depth
from depth.__main__ import main as cli
from depth.model import EigenDepthNet, ModelConfig
from depth.train import TrainConfig
from depth.train import main as train

REPO = Path(__file__).resolve().parents[1]


def _config(learnable_folders, out, **changes) -> TrainConfig:
    train_folder, _ = learnable_folders
    # validation on the training frames: a 16-step fine stage shows learning there, not yet
    # on held-out frames
    base = dict(out=str(out), data="folder", data_path=str(train_folder),
                train_frames=0, val_frames=4, fc_width=16, batch_size=4, coarse_samples=4 * 24,
                fine_samples=4 * 16, log_every=4, val_every=4 * 8, checkpoint_every=4 * 8, device="cpu")
    base.update(changes)
    return TrainConfig(**base)


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _args(cfg: TrainConfig) -> list[str]:
    return [f"--{key.replace('_', '-')}={value}" for key, value in vars(cfg).items() if not isinstance(value, bool)]


@pytest.fixture(scope="module")
def trained_run(learnable_folders, tmp_path_factory):
    # The paper's coarse rates move the coarse net over thousands of steps (its loss is a mean
    # over 4070 outputs); this 24-step run raises them so that stage visibly learns too.
    cfg = _config(learnable_folders, tmp_path_factory.mktemp("run") / "run",
                  lr_coarse_conv=0.03, lr_coarse_fc=3.0)
    return cfg, train(cfg)


def test_both_stages_train_and_the_loss_goes_down(trained_run):
    cfg, weights = trained_run
    run = Path(cfg.out)
    rows = [row for row in _rows(run) if row["kind"] == "train"]
    coarse = [row["loss"] for row in rows if row["stage"] == "coarse"]
    fine = [row["loss"] for row in rows if row["stage"] == "fine"]
    assert len(coarse) == 24 // cfg.log_every and len(fine) == 16 // cfg.log_every
    assert fine[-1] < fine[0] and fine[-1] < 0.7 * coarse[0]
    # on fixed validation frames: the coarse net improves at every validation of stage 1, and
    # the fine net ends better than the coarse net it refines
    validations = [row for row in _rows(run) if row["kind"] == "val"]
    coarse_errors = [row["coarse"]["si_log"] for row in validations if row["stage"] == "coarse"]
    assert len(coarse_errors) == 3 and coarse_errors[0] > coarse_errors[1] > coarse_errors[2]
    assert validations[-1]["fine"]["abs_rel"] < validations[-1]["coarse"]["abs_rel"]
    assert json.loads((run / "config.json").read_text()) == vars(cfg)
    assert weights == run / "model.safetensors" and (run / "coarse.safetensors").exists()


def test_the_trained_checkpoint_reloads_to_identical_predictions(trained_run, photo):
    cfg, weights = trained_run
    state = torch.load(Path(cfg.out) / "state.pt", weights_only=True)
    net = EigenDepthNet(ModelConfig(fc_width=cfg.fc_width, dropout=cfg.dropout))
    net.load_state_dict(state["model"])
    loaded = depth.load_model(weights, device="cpu")
    assert loaded.trained and "folder" in loaded.info["trained_on"]
    assert np.asarray(loaded.info["mean_depth_map"]).shape == (55, 74)
    reference = depth.DepthModel(net, device="cpu").predict(photo)
    prediction = loaded.predict(photo)
    np.testing.assert_array_equal(prediction.fine, reference.fine)
    np.testing.assert_array_equal(prediction.coarse, reference.coarse)


def test_a_run_stopped_after_a_checkpoint_resumes_to_the_same_weights_and_log(learnable_folders, tmp_path, monkeypatch):
    """Stopped between a checkpoint (every 3 steps) and the next log row (every 4), the resumed
    run logs the loss of all four steps, as the run never stopped does, and ends with its weights."""
    from depth import train as training

    short = dict(log_every=4, checkpoint_every=4 * 3, val_every=10**6, coarse_samples=4 * 5, fine_samples=4)
    train(_config(learnable_folders, tmp_path / "whole", **short))
    cut = _config(learnable_folders, tmp_path / "cut", **short)
    log = training._log

    def stop_at_step_4(run, rank, **row):
        if row["kind"] == "train" and row["step"] == 4:
            raise KeyboardInterrupt  # as a kill would, with state.pt at step 3
        log(run, rank, **row)

    monkeypatch.setattr(training, "_log", stop_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train(cut)
    monkeypatch.setattr(training, "_log", log)
    assert torch.load(tmp_path / "cut" / "state.pt", weights_only=True)["step"] == 3
    train(cut)
    whole, resumed = _rows(tmp_path / "whole"), _rows(tmp_path / "cut")
    assert [(r["step"], r["loss"]) for r in resumed if r["kind"] == "train"] == \
           [(r["step"], r["loss"]) for r in whole if r["kind"] == "train"]
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_resuming_with_a_different_config_is_refused(trained_run, capsys):
    cfg, _ = trained_run
    changed = TrainConfig(**{**vars(cfg), "batch_size": 8})
    assert cli(["train", *_args(changed)]) == 2
    assert "batch_size: 4 -> 8" in capsys.readouterr().err


def test_validation_frames_come_from_their_own_folder(learnable_folders, tmp_path, capsys):
    missing = tmp_path / "no-such-val-folder"
    cfg = _config(learnable_folders, tmp_path / "run", val_path=str(missing))
    assert cli(["train", *_args(cfg)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "run" / "state.pt").exists()


def test_unknown_and_malformed_options_are_rejected(capsys):
    with pytest.raises(SystemExit):
        cli(["train", "--no-such-option", "1"])
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["train", "--batch-size", "many"])
    assert "invalid int value: 'many'" in capsys.readouterr().err


def test_two_process_data_parallel_matches_one_process(learnable_folders, tmp_path):
    """torchrun with 2 CPU processes (gloo): each takes half of every batch; without dropout the
    averaged gradients equal the single process's, so the weights agree to rounding."""
    short = dict(dropout=0.0, coarse_samples=4 * 3, fine_samples=4 * 2)
    train(_config(learnable_folders, tmp_path / "single", **short))
    double = _config(learnable_folders, tmp_path / "double", **short)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "depth", "train", *_args(double)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = load_file(tmp_path / "single" / "model.safetensors"), load_file(tmp_path / "double" / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("pool_frames", [0, 6], ids=["rendered-on-the-fly", "fixed-pool"])
def test_trains_on_synthetic_rooms_by_dataset_name(tmp_path, pool_frames):
    cfg = TrainConfig(out=str(tmp_path / "run"), data="synthetic", train_frames=pool_frames, val_frames=2,
                      baseline_frames=2,
                      fc_width=16, batch_size=2, coarse_samples=2 * 2, fine_samples=2 * 1, log_every=1,
                      val_every=10**9, checkpoint_every=10**9, device="cpu")
    weights = train(cfg)
    rows = [row for row in _rows(Path(cfg.out)) if row["kind"] == "train"]
    assert len(rows) == 3 and all(np.isfinite(row["loss"]) for row in rows)
    assert depth.load_model(weights, device="cpu").info["trained_on"] == "synthetic, split train"


def test_compile_compiles_the_renderer_only_where_it_pays_off(monkeypatch):
    from depth import train
    from depth.synthetic import SyntheticDataset

    asked = []
    monkeypatch.setattr(SyntheticDataset, "frame_source",
                        lambda self, device, compile=False: asked.append(compile) or self.source)
    monkeypatch.setattr(train.TensorPool, "from_source", lambda source, count, device: source)
    cfg = train.TrainConfig(compile=True)
    for count in (8, train.COMPILED_RENDERER_FRAMES, 0):  # small pool, big pool, on the fly
        train.load_frames(cfg, "", "val", count, torch.device("cpu"))
    assert asked == [False, True, True]


def test_a_pool_file_is_rendered_once_and_then_mapped(monkeypatch, tmp_path):
    from depth import train
    from depth.synthetic import SyntheticDataset

    cfg = train.TrainConfig()
    first = train.load_frames(cfg, "", "val", 3, torch.device("cpu"), keep=str(tmp_path / "pool"))
    monkeypatch.setattr(SyntheticDataset, "frame_source", lambda *args, **kwargs: pytest.fail("rendered again"))
    mapped = train.load_frames(cfg, "", "val", 3, torch.device("cpu"), keep=str(tmp_path / "pool"))
    assert torch.equal(mapped.frames(torch.arange(3))[1], first.frames(torch.arange(3))[1])
    with pytest.raises(ValueError, match="keeps the frames of"):  # another split's frames
        train.load_frames(cfg, "", "test", 3, torch.device("cpu"), keep=str(tmp_path / "pool"))


def test_bf16_pays_on_cuda_and_bf16_cpus_only():
    from depth.train import bf16_pays

    assert bf16_pays(torch.device("cuda"))
    assert not bf16_pays(torch.device("meta"))
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert bf16_pays(torch.device("cpu")) == native


def test_one_bf16_channels_last_training_step_on_the_cpu_is_finite_and_learns():
    from depth.data.augment import random_params
    from depth.loss import scale_invariant_loss
    from depth.model import EigenDepthNet, ModelConfig
    from depth.train import prepare_batch, stage_forward

    torch.manual_seed(0)
    net = EigenDepthNet(ModelConfig(fc_width=64)).to(memory_format=torch.channels_last)
    frames = torch.randint(0, 256, (4, 3, 240, 320), dtype=torch.uint8)
    depth = torch.rand(4, 240, 320) * 4 + 1
    images, target, valid = prepare_batch(frames, depth, random_params(4, torch.Generator().manual_seed(1)),
                                          channels_last=True)
    assert images.is_contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.coarse.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(3):
        prediction = stage_forward("coarse", net.coarse, net.coarse, images, bf16=True)
        assert prediction.dtype == torch.bfloat16
        loss = scale_invariant_loss(prediction[:, 0], target, valid)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in net.coarse.parameters() if p.grad is not None)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_init_starts_from_a_checkpoints_weights_and_checks_its_width(tmp_path):
    from depth.checkpoint import save_checkpoint
    from depth.model import EigenDepthNet, ModelConfig
    from depth.train import TrainConfig, initial_network

    torch.manual_seed(123)
    trained = EigenDepthNet(ModelConfig(fc_width=64))
    path = save_checkpoint(tmp_path / "w.safetensors", trained, {"trained": True}, dtype=torch.float16)
    start = initial_network(TrainConfig(fc_width=64, init=str(path)))
    for name, value in trained.state_dict().items():
        assert torch.equal(start.state_dict()[name], value.half().float()), name  # float16 storage
    # without --init, the seed decides, and not the weights' previous state
    fresh = [initial_network(TrainConfig(fc_width=64, seed=5)).state_dict() for _ in range(2)]
    assert all(torch.equal(fresh[0][k], fresh[1][k]) for k in fresh[0])
    assert not torch.equal(fresh[0]["coarse.fc7.weight"], start.state_dict()["coarse.fc7.weight"])
    with pytest.raises(ValueError, match="--fc-width 64"):
        initial_network(TrainConfig(fc_width=128, init=str(path)))
    with pytest.raises(ValueError, match="missing.safetensors"):
        initial_network(TrainConfig(fc_width=64, init=str(tmp_path / "missing.safetensors")))


def test_init_from_the_shipped_weights():
    from depth.predict import DEFAULT_WEIGHTS
    from depth.train import TrainConfig, initial_network

    shipped = dict(fc_width=1024, backbone="efficientnet-lite0", init=str(DEFAULT_WEIGHTS))
    net = initial_network(TrainConfig(**shipped, fine_reads_backbone=True))
    assert all(torch.isfinite(p).all() for p in net.parameters())
    with pytest.raises(ValueError, match="pass --fine-reads-backbone"):
        initial_network(TrainConfig(**shipped))  # it would drop the fine net's detail layers


def test_learning_rate_decays_at_the_end():
    from depth.train import lr_factor

    assert [lr_factor("none", s, 10) for s in (0, 9)] == [1.0, 1.0]
    assert lr_factor("cosine", 0, 11) == pytest.approx(1.0)
    assert lr_factor("cosine", 5, 11) == pytest.approx(0.5)
    assert lr_factor("cosine", 10, 11) == pytest.approx(0.0, abs=1e-12)
    cosine = [lr_factor("cosine", s, 100) for s in range(100)]
    assert all(a >= b for a, b in zip(cosine, cosine[1:]))
    assert [lr_factor("step", s, 10) for s in (0, 7, 8, 9)] == [1.0, 1.0, 0.1, 0.1]
    with pytest.raises(ValueError, match="lr_decay"):
        lr_factor("linear", 0, 10)


def test_a_cosine_run_logs_its_decaying_rate(tmp_path):
    from depth.train import TrainConfig, main

    cfg = TrainConfig(out=str(tmp_path / "run"), data="synthetic", train_frames=16, val_frames=4, fc_width=32,
                      batch_size=4, coarse_samples=40, fine_samples=4, log_every=2, val_every=10**9,
                      checkpoint_every=10**9, device="cpu", lr_decay="cosine", baseline_frames=8)
    main(cfg)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    factors = [row["lr_factor"] for row in rows if row["kind"] == "train" and row["stage"] == "coarse"]
    assert factors[0] > 0.9 and factors[-1] == pytest.approx(0.0, abs=1e-9)
    assert all(a > b for a, b in zip(factors, factors[1:]))


def test_pick_on_val_keeps_the_best_validated_weights_of_each_stage(tmp_path):
    from depth.checkpoint import load_checkpoint
    from depth.train import TrainConfig, main

    run = tmp_path / "run"
    cfg = TrainConfig(out=str(run), data="synthetic", train_frames=16, val_frames=4, fc_width=32, batch_size=4,
                      coarse_samples=48, fine_samples=24, lr_coarse_fc=3.0, lr_fine_middle=1.0, log_every=3,
                      val_every=8, checkpoint_every=10**9, device="cpu", pick="val", baseline_frames=8)
    main(cfg)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for stage, output, file in (("coarse", "coarse", "coarse.safetensors"), ("fine", "fine", "model.safetensors")):
        vals = [row for row in rows if row["kind"] == "val" and row["stage"] == stage]
        best = min(vals, key=lambda row: row[output]["si_log"])
        _, info = load_checkpoint(run / file)
        assert info["picked"] == {"on": "val", "samples": best["samples"], "si_log": best[output]["si_log"]}
        if stage == "fine":  # with these rates the fine net gets worse after its first validation
            assert best["samples"] < vals[-1]["samples"]
        # the map users get: coarse after stage 1; after stage 2 fine only where it helped on val
        helped = best["fine"]["si_log"] <= best["coarse"]["si_log"]
        assert info["output"] == ("fine" if stage == "fine" and helped else "coarse")
    coarse, _ = load_checkpoint(run / "coarse.safetensors")
    final, _ = load_checkpoint(run / "model.safetensors")
    for name, value in coarse.coarse.state_dict().items():  # stage 2 refined the best coarse net
        assert torch.equal(final.coarse.state_dict()[name], value), name


def test_a_diverging_run_stops_with_a_message(tmp_path):
    from depth.train import TrainConfig, main

    cfg = TrainConfig(out=str(tmp_path / "run"), data="synthetic", train_frames=8, val_frames=4, fc_width=32,
                      batch_size=4, coarse_samples=40, fine_samples=4, lr_coarse_fc=1e12, lr_coarse_conv=1e12,
                      log_every=2, val_every=10**9, checkpoint_every=10**9, device="cpu", baseline_frames=4)
    with pytest.raises(ValueError, match="loss became (nan|-?inf).*too high"):
        main(cfg)
    assert not (tmp_path / "run" / "coarse.safetensors").exists()


def test_an_empty_training_state_names_the_reason(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "state.pt").write_bytes(b"")
    assert cli(["train", "--out", str(tmp_path / "run"), "--device", "cpu", "--train-frames", "8"]) == 2
    assert "the training state is unreadable (the file is empty); delete it" in capsys.readouterr().err


def test_an_adamw_run_trains_both_stages_with_finite_losses(tmp_path):
    from depth.train import TrainConfig, main, make_optimizer

    cfg = TrainConfig(out=str(tmp_path / "run"), data="synthetic", train_frames=8, val_frames=4, fc_width=32,
                      batch_size=4, coarse_samples=16, fine_samples=8, optimizer="adamw", lr_coarse_conv=1e-4,
                      lr_coarse_fc=5e-4, lr_fine_outer=1e-4, lr_fine_middle=3e-4, weight_decay=0.01, log_every=2,
                      val_every=10**9, checkpoint_every=10**9, device="cpu", baseline_frames=4)
    main(cfg)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if row["kind"] == "train"]
    assert {row["stage"] for row in rows if row["kind"] == "train"} == {"coarse", "fine"}
    assert losses and all(np.isfinite(losses))
    optimizer = make_optimizer(cfg, [{"params": [torch.nn.Parameter(torch.zeros(3))], "lr": 1e-3}])
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"]
    assert optimizer.param_groups[0]["weight_decay"] == 0.01


def test_coarse_6_has_its_own_rate_and_validation_counts_its_live_units(learnable_folders):
    from depth.train import _param_groups, load_frames, validate

    net = EigenDepthNet(ModelConfig(fc_width=16))
    cfg = TrainConfig(lr_coarse_conv=1e-3, lr_coarse_fc=5e-4, lr_coarse_fc6=1e-5)
    groups = _param_groups(net, "coarse", cfg)
    rates = {id(p): group["lr"] for group in groups for p in group["params"]}
    assert rates[id(net.coarse.fc6.weight)] == 1e-5 and rates[id(net.coarse.fc7.weight)] == 5e-4
    assert rates[id(net.coarse.features[0].weight)] == 1e-3
    default = _param_groups(net, "coarse", TrainConfig(lr_coarse_fc=5e-4))  # 0: the rate of coarse 6-7
    assert {group["lr"] for group in default[1:]} == {5e-4}

    frames = load_frames(TrainConfig(data="folder", train_frames=0), str(learnable_folders[1]), "val", 0,
                     torch.device("cpu"))
    with torch.no_grad():
        net.coarse.fc6.bias.fill_(-1e6)  # every unit dead, but four
        net.coarse.fc6.bias[:4] = 10.0  # live, and the maps stay finite
    results = validate(net, frames, torch.device("cpu"))
    assert results["coarse6_live"] == 4 / 16 and set(results) == {"coarse", "fine", "coarse6_live"}


def test_init_grows_a_network_to_read_the_backbone_and_starts_where_it_was(tmp_path):
    from depth.checkpoint import save_checkpoint
    from depth.model import EigenDepthNet, ModelConfig
    from depth.train import TrainConfig, initial_network

    torch.manual_seed(7)
    start = EigenDepthNet(ModelConfig(fc_width=32, backbone="efficientnet-lite0")).eval()
    path = save_checkpoint(tmp_path / "start.safetensors", start, {"trained": True})
    options = dict(fc_width=32, backbone="efficientnet-lite0", init=str(path))
    grown = initial_network(TrainConfig(**options, fine_reads_backbone=True)).eval()
    assert grown.fine.conv2.in_channels == 96 and grown.fine.detail.weight.abs().sum() > 0
    images = torch.rand(2, 3, 228, 304)
    with torch.no_grad():
        for before, after in zip(start(images), grown(images)):
            assert torch.allclose(before, after, atol=1e-5)
    # a network that reads the backbone cannot shrink back
    path = save_checkpoint(tmp_path / "grown.safetensors", grown, {"trained": True})
    with pytest.raises(ValueError, match="--fine-reads-backbone"):
        initial_network(TrainConfig(fc_width=32, backbone="efficientnet-lite0", init=str(path)))


def test_coarse_samples_0_trains_the_fine_stage_of_an_init_alone(tmp_path, capsys):
    from depth.__main__ import main as cli
    from depth.checkpoint import load_checkpoint, save_checkpoint
    from depth.model import EigenDepthNet, ModelConfig

    torch.manual_seed(3)
    start = EigenDepthNet(ModelConfig(fc_width=32, backbone="efficientnet-lite0"))
    path = save_checkpoint(tmp_path / "start.safetensors", start, {"trained": True})
    options = ["train", "--data", "synthetic", "--train-frames", "8", "--val-frames", "4", "--baseline-frames", "4",
               "--fc-width", "32", "--backbone", "efficientnet-lite0", "--frozen-blocks", "16",
               "--batch-size", "4", "--fine-samples", "8", "--coarse-samples", "0", "--device", "cpu",
               "--fine-reads-backbone", "--pick", "val", "--val-every", "4"]
    assert cli([*options, "--out", str(tmp_path / "alone")]) == 2
    assert "--coarse-samples 0 is less than one batch" in capsys.readouterr().err
    assert cli([*options, "--out", str(tmp_path / "run"), "--init", str(path)]) == 0
    trained, info = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert not (tmp_path / "run" / "coarse.safetensors").exists()
    assert all(torch.equal(v, trained.coarse.state_dict()[k]) for k, v in start.coarse.state_dict().items())
    assert not torch.equal(trained.fine.conv1.weight, start.fine.conv1.weight)
    assert trained.config.fine_reads_backbone and info["picked"]["on"] == "val"
