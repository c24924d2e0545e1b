"""Two-stage training, as in the paper: `python -m depth train [--field value ...]`.

Stage 1 trains the coarse network for `coarse_samples` samples; stage 2 freezes it and trains
the fine network for `fine_samples`. SGD with momentum 0.9 and the paper's per-layer learning
rates (or AdamW, `optimizer`). Every run writes to its folder `out`:

    config.json         the resolved TrainConfig
    metrics.jsonl       one JSON object per logged step ("train") and per validation ("val")
    state.pt            the latest training state (weights, optimiser, stage, step): resume
    coarse.safetensors  the network after stage 1
    model.safetensors   the final network, loadable with depth.load_model()

Running the same command again resumes from state.pt exactly: the batches (drawn
STEPS_PER_DRAW steps at a time) and the dropout masks depend only on (seed, stage, step), so
a killed run continues with the same next batch it would have drawn. Under `torchrun` each process takes its slice of every
batch (DistributedDataParallel; NCCL on CUDA, gloo on CPU).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from . import synthetic
from .anatomy import record_layers
from .checkpoint import load_checkpoint, save_checkpoint
from .data import FrameSource, open_dataset
from .data.augment import AugmentParams, augment, identity_params, output_targets, random_params
from .data.pool import TensorPool, check_pool_fits
from .loss import scale_invariant_loss
from .metrics import compute_metrics, mean_metrics
from .model import EigenDepthNet, ModelConfig
from .predict import resolve_device

STAGES = ("coarse", "fine")
OUTPUT_FILES = {"coarse": "coarse.safetensors", "fine": "model.safetensors"}
# Batches drawn and augmented together. At batch 32 on a GPU a step's data path costs kernel
# launches, not arithmetic (about 0.8 ms of host time per step, compiled, against a 5-6 ms
# step), so STEPS_PER_DRAW steps share one set of launches.
STEPS_PER_DRAW = 8
# With compile on, the synthetic renderer is compiled too for pools this big (or rendering on
# the fly): compiling it takes minutes once, and pays off only over many frames.
COMPILED_RENDERER_FRAMES = 20_000


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on. Defaults are the paper's schedule on synthetic rooms."""

    out: str = "runs/eigen"  # run folder
    data: str = "synthetic"  # dataset name (see depth.data.dataset_names())
    data_path: str = ""  # file or folder for datasets read from disk
    val_path: str = ""  # validation file or folder, "" = data_path (a folder is one split)
    train_split: str = "train"
    val_split: str = "val"  # NYU readers have only "train" and "test"
    train_frames: int = 120_000  # frames decoded or rendered once into the pool; 0 = all (disk)
    pool_file: str = ""  # folder keeping the training pool: written once, then mapped by later runs of the same frames
    val_frames: int = 256
    baseline_frames: int = 1024  # training frames averaged into the mean-depth baseline map
    init: str = ""  # checkpoint to start from (warm start); "" = random weights from seed
    fc_width: int = 4096
    dropout: float = 0.5
    backbone: str = "eigen"  # "eigen" (the paper's coarse 1-5) or "efficientnet-lite0" (ImageNet-pretrained)
    frozen_blocks: int = 0  # efficientnet-lite0: the stem and this many of its 16 blocks are not trained
    lr_backbone: float = 0.001  # efficientnet-lite*: its learning rate (lr_coarse_conv is the paper net's)
    fine_reads_backbone: bool = False  # efficientnet-lite0: fine 2 also reads its stride-8 and -16 maps (not the paper's)
    batch_size: int = 32
    coarse_samples: int = 2_000_000  # 0 with --init: keep its coarse net and train the fine stage alone
    fine_samples: int = 1_500_000  # 0: train the coarse stage alone (the run's output is then coarse.safetensors)
    lr_coarse_conv: float = 0.001  # coarse 1-5
    lr_coarse_fc: float = 0.1  # coarse 6-7
    lr_coarse_fc6: float = 0.0  # coarse 6 alone, 0 = lr_coarse_fc; wide inputs need less (AdamW on Lite0's 25,600: 2e-5)
    lr_fine_outer: float = 0.001  # fine 1 and fine 3
    lr_fine_middle: float = 0.01  # fine 2
    momentum: float = 0.9  # SGD's
    optimizer: str = "sgd"  # "sgd" with momentum (the paper), or "adamw" (its rates are ~100x smaller: set the lr fields)
    weight_decay: float = 0.0  # decoupled (AdamW) or L2 (SGD) weight decay
    pick: str = "last"  # each stage's output: its "last" weights, or those that scored best on "val" (SI log)
    lr_decay: str = "none"  # "none" (the paper: no schedule stated), "cosine" to 0, or "step" (x0.1 for the last 20%)
    loss_lambda: float = 0.5
    seed: int = 0
    device: str = ""  # "" = CUDA when available, else CPU
    compile: bool = False  # torch.compile the networks, and the renderer of big synthetic pools (CUDA)
    mixed_precision: bool = True  # bf16 autocast and channels-last memory where they pay (see bf16_pays)
    log_every: int = 100  # steps
    val_every: int = 100_000  # samples
    checkpoint_every: int = 100_000  # samples


# Fields that may change between a run and its resumption without changing its results.
RESUMABLE_CHANGES = {"device", "compile", "pool_file", "log_every", "val_every", "checkpoint_every", "baseline_frames"}


def main(cfg: TrainConfig) -> Path:
    """Run (or resume) training; returns the path of the run's output: model.safetensors, or
    coarse.safetensors for a coarse stage alone (fine_samples 0)."""
    rank, world = _init_distributed()
    device = _device_for(cfg.device, rank, world)
    check_options(cfg)  # every option that makes no sense is an error before any work
    run = Path(cfg.out)
    if run.exists() and not run.is_dir():
        raise ValueError(f"--out {run} is a file, not a run folder")
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} must divide among {world} processes")

    keep = Path(cfg.pool_file) if cfg.pool_file else None
    if cfg.train_frames and not (keep and (keep / "pool.json").is_file()):  # a pool to build: will it fit?
        check_pool_fits(cfg.train_frames, device, keep)

    # --- the run folder: a new run, or the same run resumed ------------------------------
    state = _load_state(run, cfg)
    # --- the network: seeded random weights, those of --init, or the resumed ones ---------
    net = initial_network(cfg).to(device)  # a bad --init stops here, before anything is written
    bf16 = cfg.mixed_precision and bf16_pays(device)
    if bf16:
        net = net.to(memory_format=torch.channels_last)
    if state is not None:
        net.load_state_dict(state["model"])
    if rank == 0:
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
        _truncate_log(run / "metrics.jsonl", state)

    # --- data: every frame decoded (or rendered) once, held on the device -----------------
    train_frames = load_frames(cfg, cfg.data_path, cfg.train_split, cfg.train_frames, device, cfg.pool_file)
    val_frames = load_frames(cfg, cfg.val_path or cfg.data_path, cfg.val_split, cfg.val_frames, device)
    if state is not None:
        mean_depth_map = state["mean_depth_map"]
    else:
        mean_depth_map = _mean_depth_map(train_frames, device, cfg.baseline_frames)

    for stage_index, stage in enumerate(STAGES):
        if state is not None and stage_index < state["stage"]:
            continue
        if stage == "coarse" and not cfg.coarse_samples:
            continue  # the coarse net of --init, as it is
        if stage == "fine" and not cfg.fine_samples:
            break  # a coarse stage alone
        trained = net.coarse if stage == "coarse" else net.fine
        if stage == "fine" and cfg.pick == "val" and cfg.coarse_samples:  # refine the coarse net that validated best
            if world > 1:
                dist.barrier()  # rank 0 has written it
            net.coarse.load_state_dict(load_checkpoint(run / OUTPUT_FILES["coarse"])[0].coarse.state_dict())
        best_si = _best_logged_si(run / "metrics.jsonl", stage)  # of this stage, before a resume
        net.requires_grad_(False)
        trained.requires_grad_(True)
        freeze_backbone(net, cfg)
        net.eval()
        trained.train()  # stage 2 keeps the coarse net in eval mode: no dropout in its input
        optimizer = make_optimizer(cfg, _param_groups(net, stage, cfg))
        base_rates = [group["lr"] for group in optimizer.param_groups]
        first_step, unlogged = 0, (0.0, 0)
        if state is not None and stage_index == state["stage"]:
            optimizer.load_state_dict(state["optimizer"])
            first_step = state["step"]
            unlogged = state.get("unlogged", unlogged)  # the loss of the steps since the last log row
        model = DistributedDataParallel(trained) if world > 1 else trained
        model = torch.compile(model) if cfg.compile else model
        # fused, the data path's dozens of small kernels cost one launch sequence, not dozens
        prepare = functools.partial(prepare_batch, channels_last=bf16)
        prepare = torch.compile(prepare, dynamic=False) if cfg.compile else prepare
        coarse = torch.compile(net.coarse) if cfg.compile and stage == "fine" else net.coarse

        total_steps = (cfg.coarse_samples if stage == "coarse" else cfg.fine_samples) // cfg.batch_size
        steps_per_val = max(1, cfg.val_every // cfg.batch_size)
        steps_per_checkpoint = max(1, cfg.checkpoint_every // cfg.batch_size)
        progress = tqdm(total=total_steps, initial=first_step, desc=f"stage {stage_index + 1}/2 {stage}",
                        unit="step", disable=rank != 0)
        # a log row's loss averages every step since the row before, across a resume; its speed
        # counts only the steps timed in this process
        loss_sum, loss_steps = torch.tensor(float(unlogged[0]), device=device), int(unlogged[1])
        interval_start, interval_steps = time.perf_counter(), 0

        for step in range(first_step, total_steps):
            # --- one step: its batch comes from a draw of STEPS_PER_DRAW batches -------------
            if step == first_step or step % STEPS_PER_DRAW == 0:
                batches = draw_batches(train_frames, prepare, cfg, stage_index, step // STEPS_PER_DRAW,
                                       device, rank, world)
            images, target, valid = (tensor[step % STEPS_PER_DRAW] for tensor in batches)
            torch.manual_seed(_seed(cfg.seed, stage_index, step) + rank)  # dropout masks
            prediction = stage_forward(stage, model, coarse, images, bf16)
            loss = scale_invariant_loss(prediction[:, 0], target, valid, lam=cfg.loss_lambda)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            factor = lr_factor(cfg.lr_decay, step, total_steps)  # from the step alone: resumes exactly
            for group, rate in zip(optimizer.param_groups, base_rates):
                group["lr"] = rate * factor
            optimizer.step()
            loss_sum += loss.detach()
            loss_steps += 1
            interval_steps += 1
            done = step + 1

            # --- bookkeeping: logs, validation, checkpoints (rank 0 writes) ------------------
            if done % cfg.log_every == 0 or done == total_steps:
                mean_loss = loss_sum.item() / loss_steps  # the only host sync of the loop
                if not math.isfinite(mean_loss):  # diverged: every later step would be wasted
                    raise ValueError(
                        f"the {stage} stage's loss became {mean_loss} by step {done}; the learning rates are too "
                        "high for this network (lower --lr-coarse-fc, --lr-coarse-conv / --lr-backbone or "
                        "--lr-fine-*); the last good state is in state.pt")
                seconds = time.perf_counter() - interval_start
                samples_per_s = interval_steps * cfg.batch_size / seconds
                progress.update(interval_steps)
                progress.set_postfix(loss=f"{mean_loss:.4f}", samples_per_s=f"{samples_per_s:.0f}")
                peak_gib = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
                _log(run, rank, kind="train", stage=stage, step=done, samples=done * cfg.batch_size,
                     loss=mean_loss, lr_factor=factor, samples_per_s=samples_per_s, time=time.time(), peak_gpu_gib=peak_gib)
                loss_sum.zero_()
                loss_steps = interval_steps = 0
            if done % steps_per_val == 0 or done == total_steps:
                results = validate(net, val_frames, device)
                _log(run, rank, kind="val", stage=stage, step=done, samples=done * cfg.batch_size, **results)
                si = results[stage]["si_log"]
                if cfg.pick == "val" and si < best_si and rank == 0:
                    best_si = si
                    picked = {"on": "val", "samples": done * cfg.batch_size, "si_log": si}
                    info = _info(cfg, stage, mean_depth_map, default_output(stage, results), picked)
                    save_checkpoint(run / OUTPUT_FILES[stage], net, info)
                net.eval()
                trained.train()
            if done % steps_per_checkpoint == 0 or done == total_steps:
                _save_state(run, rank, net, optimizer, stage_index, done, cfg, mean_depth_map,
                            (loss_sum.item(), loss_steps) if loss_steps else (0.0, 0))
            if interval_steps == 0:
                interval_start = time.perf_counter()
        progress.close()
        if rank == 0 and cfg.pick == "last":
            if first_step == total_steps:  # resumed after the stage's last step: validate it again
                results = validate(net, val_frames, device)
            save_checkpoint(run / OUTPUT_FILES[stage], net,
                            _info(cfg, stage, mean_depth_map, default_output(stage, results)))
        state = None  # the next stage starts fresh

    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return run / OUTPUT_FILES["fine" if cfg.fine_samples else "coarse"]


LR_DECAYS = ("none", "cosine", "step")
OPTIMIZERS = ("sgd", "adamw")


def check_options(cfg: TrainConfig) -> None:
    """Raise ValueError naming the option (as its command-line flag) for a value that makes no
    sense: a stage must train for at least one step, so no weights are ever marked trained
    after none."""
    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    problems = []
    if not cfg.out.strip():
        problems.append("--out must name a run folder")
    for name in ("batch_size", "log_every", "val_every", "checkpoint_every", "val_frames", "baseline_frames"):
        if getattr(cfg, name) < 1:
            problems.append(f"{flag(name)} must be at least 1, got {getattr(cfg, name)}")
    skipped = {"coarse_samples": cfg.coarse_samples == 0 and bool(cfg.init), "fine_samples": cfg.fine_samples == 0}
    if skipped["coarse_samples"] and skipped["fine_samples"]:
        problems.append("--coarse-samples and --fine-samples are both 0: the run would train nothing")
    for name in ("coarse_samples", "fine_samples"):
        if cfg.batch_size >= 1 and getattr(cfg, name) < cfg.batch_size and not skipped[name]:
            problems.append(f"{flag(name)} {getattr(cfg, name)} is less than one batch (--batch-size "
                            f"{cfg.batch_size}): the stage would train for no step"
                            + (" (0 skips it only with --init)" if name == "coarse_samples" else ""))
    for name in ("train_frames", "frozen_blocks", "momentum", "weight_decay", "lr_backbone",
                 "lr_coarse_conv", "lr_coarse_fc", "lr_coarse_fc6", "lr_fine_outer", "lr_fine_middle"):
        if not getattr(cfg, name) >= 0:  # also catches NaN
            problems.append(f"{flag(name)} must not be negative, got {getattr(cfg, name)}")
    if not 0 <= cfg.dropout < 1:
        problems.append(f"--dropout must be in [0, 1), got {cfg.dropout}")
    for name, value, choices in (("lr_decay", cfg.lr_decay, LR_DECAYS), ("pick", cfg.pick, ("last", "val")),
                                 ("optimizer", cfg.optimizer, OPTIMIZERS)):
        if value not in choices:
            problems.append(f"unknown {flag(name)} {value!r}; choose one of {', '.join(choices)}")
    if problems:
        raise ValueError("; ".join(problems))


def lr_factor(decay: str, step: int, total_steps: int) -> float:
    """The multiple of each base learning rate used at `step` (0-based) of a stage of
    `total_steps`: 1 throughout ("none"); half a cosine from 1 down to 0 at the last step
    ("cosine"); 1, then 0.1 for the last 20% of the steps ("step")."""
    if decay == "none":
        return 1.0
    if decay == "cosine":
        return 0.5 * (1 + math.cos(math.pi * step / max(1, total_steps - 1)))
    if decay == "step":
        return 0.1 if step >= 0.8 * total_steps else 1.0
    raise ValueError(f"unknown lr_decay {decay!r}; choose one of {', '.join(LR_DECAYS)}")


def make_optimizer(cfg: TrainConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """cfg.optimizer ("sgd" or "adamw") over parameter groups that carry their own base rates."""
    if cfg.optimizer == "adamw":
        # fused: one pass over each tensor; on the 2-core CPU a step over the width-1024 paper
        # net's fully connected weights (16.7M) took 0.152 s unfused, 0.092 foreach, 0.013 fused
        return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay, fused=True)
    return torch.optim.SGD(groups, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def default_output(stage: str, val_results: dict[str, Any]) -> str:
    """The map a checkpoint of `stage` stands behind (info["output"]): "coarse" after stage 1,
    and after stage 2 "fine" only if the fine stage helps on val, as it does in the paper (SI
    log no worse than the coarse net alone); otherwise users get the coarse map."""
    if stage == "fine" and val_results["fine"]["si_log"] <= val_results["coarse"]["si_log"]:
        return "fine"
    return "coarse"


def initial_network(cfg: TrainConfig) -> EigenDepthNet:
    """The network a new run starts from, on the CPU: random weights from cfg.seed (the same in
    every process), or the weights of the checkpoint cfg.init (a warm start: any checkpoint
    `depth.load_model` reads, the shipped 8- and 4-bit ones included), loaded strictly."""
    torch.manual_seed(cfg.seed)
    net = EigenDepthNet(ModelConfig(fc_width=cfg.fc_width, dropout=cfg.dropout, backbone=cfg.backbone,
                                    fine_reads_backbone=cfg.fine_reads_backbone))
    if cfg.init:
        start, _ = load_checkpoint(cfg.init)  # CheckpointError (a ValueError) names the file
        for field, option in (("fc_width", "--fc-width"), ("backbone", "--backbone")):
            theirs, ours = getattr(start.config, field), getattr(cfg, field)
            if theirs != ours:
                raise ValueError(f"{cfg.init}: its {field} is {theirs}, the run's {ours}; "
                                 f"pass {option} {theirs} to start from it")
        if start.config.fine_reads_backbone and not cfg.fine_reads_backbone:
            raise ValueError(f"{cfg.init}: its fine net reads the backbone's maps; pass --fine-reads-backbone")
        net.load_state_dict(grown_state(start.state_dict(), net.state_dict()))
    else:
        net.coarse.features.load_pretrained()  # ImageNet weights from the installed package, or none
    freeze_backbone(net, cfg)  # a bad frozen_blocks is an error before any work
    return net


def grown_state(start: dict[str, torch.Tensor], new: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict `new` (a network's) taking every weight from `start`, a network without the
    fine net's detail maps when `new` has them: fine 2's weights on those extra inputs are zero,
    so the grown network computes exactly what `start` did, and its detail conv keeps its own
    (random) weights. Otherwise `start` itself, loaded strictly."""
    conv2 = "fine.conv2.weight"
    if set(new) - set(start) != {"fine.detail.weight", "fine.detail.bias"}:
        return start
    grown = new | start
    grown[conv2] = torch.zeros_like(new[conv2])
    grown[conv2][:, : start[conv2].shape[1]] = start[conv2]
    return grown


def freeze_backbone(net: EigenDepthNet, cfg: TrainConfig) -> None:
    """Stop gradients to the backbone's first cfg.frozen_blocks blocks (ValueError where it has none)."""
    net.coarse.features.freeze(cfg.frozen_blocks)


def bf16_pays(device: torch.device) -> bool:
    """Whether bf16 autocast with channels-last memory speeds training up on `device`: on CUDA,
    and on CPUs with bf16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16 would be emulated.

    Measured on the project's 2-core CPU (AVX512-BF16), forward + backward + SGD step of the
    coarse net at batch 16: width 1024, 33.9 samples/s in float32, 62.8 under bf16 autocast,
    74.1 with channels-last too; width 4096, 27.6, 36.5 and 41.9.
    """
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's own CPU checks
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def stage_forward(
    stage: str, model: torch.nn.Module, coarse: torch.nn.Module, images: torch.Tensor, bf16: bool = False,
) -> torch.Tensor:
    """Log depth (B, 1, 55, 74) from the network a stage trains, under bf16 autocast if `bf16`
    (the loss is then still computed in float32). In the fine stage the frozen coarse net runs
    first, without gradients, and `model` is the fine net."""
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
        if stage == "coarse":
            return model(images)[0]
        with torch.no_grad():
            coarse_log_depth, detail = coarse(images)
        return model(images, coarse_log_depth, detail)


def draw_batches(
    frames: FrameSource, prepare: Callable, cfg: TrainConfig, stage_index: int, draw: int,
    device: torch.device, rank: int = 0, world: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batches of steps draw * K ... draw * K + K - 1 (K = STEPS_PER_DRAW) of a stage.

    Frames and augmentation come from (seed, stage, draw) alone, so a resumed run sees the same
    batches. Every process draws all K whole batches and takes its share of each. Returns
    `prepare`'s outputs with a leading step dimension: images (K, B / world, 3, 228, 304),
    target and valid (K, B / world, 55, 74).
    """
    generator = _generator(cfg.seed, stage_index, draw, device)
    steps, batch = STEPS_PER_DRAW, cfg.batch_size
    indices = torch.randint(len(frames), (steps, batch), generator=generator, device=device)
    params = random_params(steps * batch, generator)
    mine = (torch.arange(steps, device=device)[:, None] * batch
            + torch.arange(rank, batch, world, device=device)).flatten()
    outputs = prepare(*frames.frames(indices.flatten()[mine]), params[mine])
    return tuple(tensor.unflatten(0, (steps, -1)) for tensor in outputs)


def prepare_batch(
    images: torch.Tensor, depth: torch.Tensor, params: AugmentParams, channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frames (B, 3, 240, 320) uint8 and depth (B, 240, 320) -> augmented network input
    (B, 3, 228, 304) in [0, 1] (channels-last memory if asked), target depth (B, 55, 74), valid mask."""
    images, depth = augment(images, depth, params)
    target, valid = output_targets(depth)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, target, valid


@torch.no_grad()
def validate(net: EigenDepthNet, frames: FrameSource, device: torch.device, batch: int = 64) -> dict[str, Any]:
    """Metrics of both outputs on the 74x55 grid of centre-cropped frames (PAPER protocol):
    {"coarse": metrics, "fine": metrics, "coarse6_live": the fraction of coarse 6's units that
    fire (> 0 before the ReLU) on at least one frame}. Units that never fire are dead: they pass
    no gradient, and a coarse net with few live ones can only write a few depth layouts."""
    net.eval()
    per_image: dict[str, list[dict[str, float]]] = {"coarse": [], "fine": []}
    live = torch.zeros(net.coarse.fc6.out_features, dtype=torch.bool)
    with record_layers(net, keep={"coarse 6"}) as recording:
        for start in range(0, len(frames), batch):
            indices = torch.arange(start, min(start + batch, len(frames)), device=device)
            images, depth = frames.frames(indices)
            images, depth = augment(images, depth, identity_params(len(indices), device))
            target, valid = output_targets(depth)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                outputs = dict(zip(("coarse", "fine"), net(images)))
            live |= (recording.activations["coarse 6"].flatten(1) > 0).any(dim=0)
            target = torch.where(valid, target, 0.0).cpu().numpy()
            for name, log_depth in outputs.items():
                predicted = log_depth[:, 0].float().exp().cpu().numpy()
                per_image[name] += [compute_metrics(p, t) for p, t in zip(predicted, target) if (t > 0).any()]
    return {**{name: mean_metrics(rows) for name, rows in per_image.items()},
            "coarse6_live": float(live.float().mean())}


def load_frames(cfg: TrainConfig, path: str, split: str, count: int, device: torch.device,
            keep: str = "") -> FrameSource:
    """The frames of one split on `device`: a pool (kept in the folder `keep`, if given), or the
    synthetic renderer itself."""
    options = {"n": count} if cfg.data == "synthetic" else {}
    dataset = open_dataset(cfg.data, path or None, split, **options)
    kept = {"keep": Path(keep), "key": pool_key(cfg.data, path, split)} if keep else {}
    if hasattr(dataset, "frame_source"):  # renders on the device: no decoding needed
        if not count:
            if keep:
                raise ValueError("pool_file keeps a pool: it needs train_frames > 0 (0 renders frames on the fly)")
            return dataset.frame_source(device, compile=cfg.compile)
        if kept and (pool := TensorPool.kept(kept["keep"], kept["key"], count, device)) is not None:
            return pool  # mapped: nothing to render, so no renderer to build
        source = dataset.frame_source(device, compile=cfg.compile and count >= COMPILED_RENDERER_FRAMES)
        return TensorPool.from_source(source, count, device, **kept)
    return TensorPool.from_dataset(dataset, device, limit=count or None, desc=f"decoding {split}", **kept)


def pool_key(data: str, path: str, split: str) -> dict[str, str]:
    """What a kept pool's frames are: the dataset, and for synthetic rooms the renderer's code
    (a digest of depth/synthetic/*.py), so a changed renderer never reuses old frames."""
    key = {"data": data, "path": str(Path(path).resolve()) if path else "", "split": split}
    if data == "synthetic":
        sources = sorted(Path(synthetic.__file__).parent.glob("*.py"))
        key["renderer"] = hashlib.sha256(b"".join(f.read_bytes() for f in sources)).hexdigest()[:16]
    return key


@torch.no_grad()
def _mean_depth_map(frames: FrameSource, device: torch.device, count: int) -> list[list[float]]:
    """Per-cell mean depth (metres) of up to `count` centre-cropped training frames on the
    74x55 grid: the paper's mean-depth baseline, stored with the weights for evaluation."""
    indices = torch.arange(min(count, len(frames)), device=device)
    total = valid_count = 0
    for chunk in indices.split(128):
        images, depth = frames.frames(chunk)
        _, depth = augment(images, depth, identity_params(len(chunk), device))
        target, valid = output_targets(depth)
        total = total + (target * valid).sum(0)
        valid_count = valid_count + valid.sum(0)
    mean = total / valid_count.clamp(min=1)
    mean = torch.where(valid_count > 0, mean, mean[valid_count > 0].mean())
    return [[round(float(v), 4) for v in row] for row in mean.cpu()]


def _param_groups(net: EigenDepthNet, stage: str, cfg: TrainConfig) -> list[dict[str, Any]]:
    if stage == "coarse":
        backbone_rate = getattr(cfg, net.coarse.features.rate_option)  # lr_coarse_conv or lr_backbone
        features = [p for p in net.coarse.features.parameters() if p.requires_grad]
        # AdamW moves every weight by about its rate, so a unit's input moves by about the rate
        # times the sum of |feature|: 25,600 pretrained features of mean 1.8 at 5e-4 push it by
        # ~20 in the first steps, and the ReLU leaves most units dead (the default network trained
        # that way fired 1 of its 1,024 on the example photos). Hence coarse 6's own rate.
        return [{"params": features, "lr": backbone_rate},
                {"params": list(net.coarse.fc6.parameters()), "lr": cfg.lr_coarse_fc6 or cfg.lr_coarse_fc},
                {"params": list(net.coarse.fc7.parameters()), "lr": cfg.lr_coarse_fc}]
    outer = [*net.fine.conv1.parameters(), *net.fine.conv3.parameters()]
    middle = [*net.fine.conv2.parameters(), *(net.fine.detail.parameters() if hasattr(net.fine, "detail") else ())]
    return [{"params": outer, "lr": cfg.lr_fine_outer}, {"params": middle, "lr": cfg.lr_fine_middle}]


def _seed(seed: int, stage_index: int, counter: int) -> int:
    return (seed * 1_000_003 + stage_index * 7_919 + counter * 104_729) % (2**62)


def _generator(seed: int, stage_index: int, counter: int, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(_seed(seed, stage_index, counter))
    return generator


def _info(cfg: TrainConfig, stage: str, mean_depth_map: list[list[float]], output: str,
          picked: dict[str, Any] | None = None) -> dict[str, Any]:
    source = cfg.data + (f" ({cfg.data_path})" if cfg.data_path else "")
    info = {"trained": True, "trained_on": f"{source}, split {cfg.train_split}",
            "stages": list(STAGES[: STAGES.index(stage) + 1]), "train_config": dataclasses.asdict(cfg),
            "mean_depth_map": mean_depth_map, "output": output}
    return info | ({"picked": picked} if picked else {})


def _best_logged_si(log: Path, stage: str) -> float:
    """The best (lowest) validated SI log of `stage` in the run's log so far (inf if none): on
    resume, the log holds exactly the validations before the saved state."""
    if not log.exists():
        return math.inf
    output = "coarse" if stage == "coarse" else "fine"
    rows = read_log(log.parent)
    return min((row[output]["si_log"] for row in rows if row["kind"] == "val" and row["stage"] == stage),
               default=math.inf)


def _save_state(run: Path, rank: int, net: EigenDepthNet, optimizer: torch.optim.Optimizer,
                stage_index: int, step: int, cfg: TrainConfig, mean_depth_map: list[list[float]],
                unlogged: tuple[float, int] = (0.0, 0)) -> None:
    """state.pt: all a resume needs, `unlogged` the (loss sum, steps) not yet in a log row."""
    if rank != 0:
        return
    state = {"stage": stage_index, "step": step, "model": net.state_dict(),
             "optimizer": optimizer.state_dict(), "config": dataclasses.asdict(cfg),
             "mean_depth_map": mean_depth_map, "unlogged": unlogged}
    tmp = run / "state.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, run / "state.pt")  # atomic: a kill mid-write leaves the previous state


def _load_state(run: Path, cfg: TrainConfig) -> dict[str, Any] | None:
    path = run / "state.pt"
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable state is reported the same way
        reason = "the file is empty" if path.stat().st_size == 0 else str(error) or type(error).__name__
        raise ValueError(f"{path}: cannot resume, the training state is unreadable ({reason}); "
                         "delete it to start the run again") from None
    changed = {k: (v, getattr(cfg, k)) for k, v in state["config"].items()
               if k not in RESUMABLE_CHANGES and getattr(cfg, k) != v}
    if changed:
        details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
        raise ValueError(f"{run} holds a run with a different config ({details}); "
                         "resume it unchanged or choose another --out")
    return state


def read_log(run: Path) -> list[dict[str, Any]]:
    """The rows of a run folder's metrics.jsonl, in order."""
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _log(run: Path, rank: int, **row: Any) -> None:
    if rank == 0:
        with open(run / "metrics.jsonl", "a") as log:
            log.write(json.dumps(row) + "\n")


def _truncate_log(path: Path, state: dict[str, Any] | None) -> None:
    """On resume, drop log rows written after the saved state: the resumed run redoes them."""
    if not path.exists():
        return
    if state is None:
        path.unlink()
        return
    rows = read_log(path.parent)
    kept = [row for row in rows if (STAGES.index(row["stage"]), row["step"]) <= (state["stage"], state["step"])]
    path.write_text("".join(json.dumps(row) + "\n" for row in kept))


def _init_distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def _device_for(requested: str, rank: int, world: int) -> torch.device:
    device = resolve_device(requested or None)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    return device
