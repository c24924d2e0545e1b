"""The kinds of stage a recipe (depth/recipe.py) is made of, one class each, in one registry.

A stage reads the network the stage before it wrote (`previous`, None for the first) and
writes its own into its folder, so a killed recipe resumes at the stage it was in:

    pool       render or decode the training frames once into a kept pool (no network)
    coarse     train the coarse net (stage 1 of the paper): `depth.train` with fine_samples 0
    fine       train the fine net on the frozen coarse net before it (stage 2): coarse_samples 0
    export     store the network as it ships: float16, 8- or 4-bit fully connected weights, parts
    calibrate  fit the contrast factors on held-out frames of the training world (depth/contrast.py)

A kind is a frozen dataclass of its options (the keys a recipe's stage may set) with `run`,
which does the work, and `measure`, which times a little of it on this machine for
`--dry-run`. Adding a kind is a class and a line in KINDS.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from . import train
from .checkpoint import checkpoint_files, load_checkpoint, save_checkpoint
from .data.augment import augment, identity_params
from .predict import resolve_device
from .train import TrainConfig

MEASURED_STEPS = 3  # training steps timed by --dry-run; the first warms up and is not counted


@dataclass(frozen=True)
class Context:
    """What every stage of one recipe run shares."""

    train: TrainConfig  # the recipe's [train] settings (scaled), with the run's device and compile
    pools: Path  # folder of kept pools
    scaled_down: bool = False  # a --scale check below 1: its networks are barely trained


@dataclass(frozen=True)
class Estimate:
    """What a stage will do and how long it should take here: `work` in words, `seconds`."""

    work: str
    speed: str
    seconds: float


def pool_folder(cfg: TrainConfig, pools: Path) -> Path:
    """Where the training pool of `cfg` is kept: one folder per set of frames (named by the data,
    split, count and a digest of what they are, the renderer's code included)."""
    key = train.pool_key(cfg.data, cfg.data_path, cfg.train_split)
    digest = hashlib.sha256(repr(sorted(key.items())).encode()).hexdigest()[:10]
    return pools / f"{cfg.data}-{cfg.train_split}-{cfg.train_frames}-{digest}"


def keeps_pool(cfg: TrainConfig) -> bool:
    """Whether `cfg`'s training frames go into a kept pool (synthetic rooms rendered on the fly,
    train_frames 0, have none)."""
    return cfg.train_frames > 0 or cfg.data != "synthetic"


@dataclass(frozen=True)
class Pool:
    """Render or decode the recipe's training frames ([train]: data, data_path, train_split,
    train_frames) into a kept pool that every training stage then maps."""

    OPTIONS: ClassVar[tuple[str, ...]] = ()
    writes_network: ClassVar[bool] = False

    def run(self, ctx: Context, folder: Path, previous: Path | None) -> Path | None:
        cfg = ctx.train
        if keeps_pool(cfg):  # a new pool checks its disk space before it writes (depth.data.pool)
            train.load_frames(cfg, cfg.data_path, cfg.train_split, cfg.train_frames,
                              resolve_device(cfg.device or None), str(pool_folder(cfg, ctx.pools)))
        return previous

    def measure(self, ctx: Context) -> Estimate:
        cfg = ctx.train
        work = f"{cfg.train_frames:,} frames of {cfg.data} {cfg.train_split}" if cfg.train_frames else f"all of {cfg.data}"
        if (pool_folder(cfg, ctx.pools) / "pool.json").is_file():
            return Estimate(work, "kept already", 0.0)
        count = 4
        start = time.perf_counter()
        train.load_frames(dataclasses.replace(cfg, train_frames=count), cfg.data_path, cfg.train_split, count,
                          torch.device("cpu"))
        per_frame = (time.perf_counter() - start) / count
        total = cfg.train_frames or count
        return Estimate(work, f"{1 / per_frame:.1f} frames/s", per_frame * total)


@dataclass(frozen=True)
class Coarse:
    """Train the coarse net (stage 1), from the network before it, or from random and ImageNet
    weights when it is the first. Its options are TrainConfig fields (recipe.TRAIN_FIELDS)."""

    config: TrainConfig
    OPTIONS: ClassVar[tuple[str, ...]] = ()  # TrainConfig fields, checked by the recipe reader
    writes_network: ClassVar[bool] = True
    STAGE: ClassVar[str] = "coarse"

    def stage_config(self, ctx: Context, folder: Path, previous: Path | None) -> TrainConfig:
        pool = str(pool_folder(self.config, ctx.pools)) if keeps_pool(self.config) else ""
        return dataclasses.replace(self.config, out=str(folder), init=str(previous or ""), pool_file=pool,
                                   device=ctx.train.device, compile=ctx.train.compile,
                                   fine_samples=0)

    def run(self, ctx: Context, folder: Path, previous: Path | None) -> Path | None:
        return train.main(self.stage_config(ctx, folder, previous))

    def measure(self, ctx: Context) -> Estimate:
        cfg = self.config
        samples = cfg.coarse_samples if self.STAGE == "coarse" else cfg.fine_samples
        rate = _loop_speed(dataclasses.replace(cfg, device=ctx.train.device), self.STAGE)
        validations = samples // cfg.val_every + 1
        seconds = samples / rate + validations * cfg.val_frames * _validation_seconds_per_frame(cfg)
        return Estimate(f"{samples:,} samples, batch {cfg.batch_size}", f"{rate:.1f} samples/s", seconds)


@dataclass(frozen=True)
class Fine(Coarse):
    """Train the fine net (stage 2) on the frozen coarse net of the network before it."""

    STAGE: ClassVar[str] = "fine"

    def stage_config(self, ctx: Context, folder: Path, previous: Path | None) -> TrainConfig:
        return dataclasses.replace(super().stage_config(ctx, folder, previous),
                                   coarse_samples=0, fine_samples=self.config.fine_samples)


@dataclass(frozen=True)
class Export:
    """Store the network as it ships: weights in `dtype`, the fully connected layers named in
    fc_int8 / fc_int4 as 8- or 4-bit integers, split into files of at most max_file_mib."""

    dtype: str = "float16"
    fc_int8: tuple[str, ...] = ()
    fc_int4: tuple[str, ...] = ()
    max_file_mib: float = 0.0  # 0: one file
    OPTIONS: ClassVar[tuple[str, ...]] = ("dtype", "fc_int8", "fc_int4", "max_file_mib")
    writes_network: ClassVar[bool] = True
    DTYPES: ClassVar[tuple[str, ...]] = ("float32", "float16", "bfloat16")

    def check(self) -> list[str]:
        problems = [] if self.dtype in self.DTYPES else [f"dtype {self.dtype!r} is not one of {', '.join(self.DTYPES)}"]
        if both := set(self.fc_int8) & set(self.fc_int4):
            problems.append(f"fc_int8 and fc_int4 both name {', '.join(sorted(both))}")
        if unknown := (set(self.fc_int8) | set(self.fc_int4)) - {"fc6", "fc7"}:
            problems.append(f"8- and 4-bit storage apply to fc6 and fc7, not {', '.join(sorted(unknown))}")
        if self.max_file_mib < 0:
            problems.append(f"max_file_mib must not be negative, got {self.max_file_mib}")
        return problems

    def run(self, ctx: Context, folder: Path, previous: Path | None) -> Path | None:
        net, info = load_checkpoint(_needs(previous, "export"))
        bits = {layer: 8 for layer in self.fc_int8} | {layer: 4 for layer in self.fc_int4}
        limit = int(self.max_file_mib * 2**20) or None
        return save_checkpoint(folder / "model.safetensors", net, info, dtype=getattr(torch, self.dtype),
                               fc_bits=bits, max_file_bytes=limit)

    def measure(self, ctx: Context) -> Estimate:
        stored = ", ".join([*(f"{layer} in 8 bits" for layer in self.fc_int8),
                            *(f"{layer} in 4 bits" for layer in self.fc_int4)]) or "no integer layers"
        parts = f", files of at most {self.max_file_mib:g} MiB" if self.max_file_mib else ""
        return Estimate(f"{self.dtype}, {stored}{parts}", "-", 5.0)


@dataclass(frozen=True)
class Calibrate:
    """Fit the contrast factors of the network before it (depth/contrast.py) on `frames` frames
    of the training world's validation split, and store them in a copy of its checkpoint."""

    frames: int = 256
    OPTIONS: ClassVar[tuple[str, ...]] = ("frames",)
    writes_network: ClassVar[bool] = True

    def check(self) -> list[str]:
        return [] if self.frames >= 1 else [f"frames must be at least 1, got {self.frames}"]

    def run(self, ctx: Context, folder: Path, previous: Path | None) -> Path | None:
        from .calibrate import fit_contrast, set_contrast
        from .predict import load_model

        source = _needs(previous, "calibrate")
        cfg = ctx.train
        model = load_model(source, device=cfg.device or None)
        fitted = fit_contrast(model, self._dataset(cfg), self.frames, clamp=ctx.scaled_down)
        for file in checkpoint_files(source):  # the weights as they are, parts included
            shutil.copyfile(file, folder / file.name)
        out = folder / source.name
        set_contrast(out, fitted, fitted_on=f"{fitted['frames']} frames of {cfg.data} {cfg.val_split}")
        return out

    def measure(self, ctx: Context) -> Estimate:
        seconds = self.frames * _validation_seconds_per_frame(ctx.train)
        return Estimate(f"{self.frames} frames of {ctx.train.data} {ctx.train.val_split}",
                        f"{1 / _validation_seconds_per_frame(ctx.train):.1f} frames/s", seconds)

    @staticmethod
    def _dataset(cfg: TrainConfig):
        from .data import open_dataset

        return open_dataset(cfg.data, (cfg.val_path or cfg.data_path) or None, cfg.val_split)


KINDS: dict[str, type] = {"pool": Pool, "coarse": Coarse, "fine": Fine, "export": Export, "calibrate": Calibrate}
TRAINING_KINDS = ("coarse", "fine")


def _needs(previous: Path | None, kind: str) -> Path:
    if previous is None:
        raise ValueError(f"a {kind} stage needs a network: put a coarse stage before it")
    return previous


_MEASURED: dict[tuple, float] = {}  # one measurement per configuration and process


def _loop_speed(cfg: TrainConfig, stage: str) -> float:
    """Samples per second of `stage`'s training loop for `cfg` on this machine: a few steps of
    `depth.train` itself on a handful of frames, the first step not counted."""
    key = ("loop", stage, dataclasses.replace(cfg, coarse_samples=0, fine_samples=0, val_every=1))
    if key not in _MEASURED:
        batch = cfg.batch_size
        with tempfile.TemporaryDirectory() as folder:
            probe = dataclasses.replace(
                cfg, out=str(Path(folder) / "run"), train_frames=min(cfg.train_frames or batch, batch), pool_file="",
                val_frames=1, baseline_frames=1, log_every=1, val_every=10**9, checkpoint_every=10**9,
                pick="last", init="", coarse_samples=batch * (MEASURED_STEPS if stage == "coarse" else 1),
                fine_samples=batch * MEASURED_STEPS if stage == "fine" else 0)
            if stage == "fine":  # its one coarse step only makes a coarse net to train on: leave it as drawn
                probe = dataclasses.replace(probe, lr_coarse_conv=0.0, lr_backbone=0.0, lr_coarse_fc=0.0, lr_coarse_fc6=0.0)
            with contextlib.redirect_stderr(io.StringIO()):  # the probe's progress bars are not the dry run's
                train.main(probe)
            rows = [row for row in train.read_log(Path(probe.out)) if row["kind"] == "train" and row["stage"] == stage]
        _MEASURED[key] = statistics.median(row["samples_per_s"] for row in rows[1:])
    return _MEASURED[key]


def _validation_seconds_per_frame(cfg: TrainConfig) -> float:
    """Seconds to produce one validation frame of `cfg`'s data and run the network on it here."""
    key = ("val", cfg.data, cfg.data_path, cfg.val_path, cfg.val_split, cfg.backbone, cfg.fc_width)
    if key not in _MEASURED:
        count, device = 2, resolve_device(cfg.device or None)
        net = train.initial_network(dataclasses.replace(cfg, init="")).to(device).eval()
        start = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):
            frames = train.load_frames(cfg, cfg.val_path or cfg.data_path, cfg.val_split, count, device)
        with torch.inference_mode():
            images, depth = frames.frames(torch.arange(len(frames), device=device))
            images, _ = augment(images, depth, identity_params(len(frames), device))  # the centre crop
            net(images)
        _MEASURED[key] = (time.perf_counter() - start) / len(frames)
    return _MEASURED[key]
