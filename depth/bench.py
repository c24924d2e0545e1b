"""Speed measurements of the library: inference, training and the synthetic renderer.

Every figure is a median over repeated timings after warm-up, and each comes with the ceiling
it is measured against, so the ratios show what our own code adds:

- inference: the network's forward pass alone (one input already on the device) vs the whole
  `DepthModel.predict` path for one 640x480 photo (resize, forward, resample to the photo);
  on CUDA also the bf16 forward's throughput at several batch sizes;
- training: forward + backward + SGD step on one fixed batch ("model alone") vs the whole
  training loop of `depth.train` (frames gathered from the device pool, augmented, targets
  built, then the same step), read from its own log;
- the renderer: synthetic frames per second at 320x240, and the time of each of its stages.

`python bench.py` is the one entry: it prints all of them with the app's (`python bench.py
train` the training figures in detail, `python bench.py render` the renderer's stages).
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from .data.augment import augment, identity_params, output_targets
from .loss import scale_invariant_loss
from .model import INPUT_HEIGHT, INPUT_WIDTH, EigenDepthNet, ModelConfig
from .predict import DepthModel, resolve_device
from .synthetic import Stages, SyntheticFrames
from .train import STAGES, TrainConfig, bf16_pays, stage_forward
from .train import main as train_main


def median_seconds(work: Callable[[], object], device: torch.device, repeats: int = 5, warmup: int = 2) -> float:
    """Median wall time of `work()` in seconds over `repeats` timings, after `warmup` calls
    (compilation and allocator warm-up), waiting for the device at both ends of each."""
    for _ in range(warmup):
        work()
    timings = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        work()
        _sync(device)
        timings.append(time.perf_counter() - start)
    return float(np.median(timings))


def forward_vs_predict(model: DepthModel, repeats: int = 20) -> dict[str, float]:
    """Milliseconds of the forward pass alone and of `predict` on a 640x480 photo (an RGB array
    in memory: no file decoding), and their ratio. The forward pass is at the batch `predict`
    runs: 2 (the photo and its mirror image) under flip averaging, else 1."""
    photo = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    inputs = torch.rand(2 if model.flip_average else 1, 3, INPUT_HEIGHT, INPUT_WIDTH, device=model.device)
    forward_ms = 1000 * _forward_seconds(model.net, inputs, repeats)
    predict_ms = 1000 * median_seconds(lambda: model.predict(photo), model.device, repeats, warmup=3)
    return {"forward_ms": forward_ms, "predict_ms": predict_ms, "ratio": predict_ms / forward_ms}


def forward_throughput(net: EigenDepthNet, device: torch.device, batch_size: int, repeats: int = 10) -> float:
    """Images/s of the forward pass at `batch_size` (bf16 autocast and channels-last on CUDA)."""
    net = net.to(device).eval()
    inputs = torch.rand(batch_size, 3, INPUT_HEIGHT, INPUT_WIDTH, device=device)
    if device.type == "cuda":
        net, inputs = net.to(memory_format=torch.channels_last), inputs.contiguous(memory_format=torch.channels_last)
    return batch_size / _forward_seconds(net, inputs, repeats)


def _forward_seconds(net: torch.nn.Module, inputs: torch.Tensor, repeats: int) -> float:
    """Median seconds of one inference forward pass, under bf16 autocast on CUDA as `predict`."""
    device = inputs.device

    @torch.inference_mode()
    def forward() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            net(inputs)

    return median_seconds(forward, device, repeats, warmup=3)


def model_alone(stage: str, batch_size: int, steps: int, device: torch.device, compile: bool,
                fc_width: int = 4096, repeats: int = 5, backbone: str = "eigen", bf16: bool | None = None,
                fine_reads_backbone: bool = False) -> float:
    """Samples/s of forward + backward + SGD step on one fixed batch: under bf16 autocast with
    channels-last memory if `bf16` (None: where they pay, as in training, train.bf16_pays),
    else float32. The backbone is random-initialised (its speed does not depend on weights)."""
    config = ModelConfig(fc_width=fc_width, backbone=backbone, fine_reads_backbone=fine_reads_backbone)
    net = EigenDepthNet(config).to(device)
    images = torch.rand(batch_size, 3, INPUT_HEIGHT, INPUT_WIDTH, device=device)
    frames = (images * 255).to(torch.uint8)
    depth = torch.rand(batch_size, INPUT_HEIGHT, INPUT_WIDTH, device=device) * 5 + 0.5
    _, depth = augment(frames, depth, identity_params(batch_size, device))
    target, valid = output_targets(depth)
    bf16 = bf16_pays(device) if bf16 is None else bf16
    if bf16:
        net = net.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    trained = net.coarse if stage == "coarse" else net.fine
    net.requires_grad_(False)
    trained.requires_grad_(True)
    optimizer = torch.optim.SGD(trained.parameters(), lr=1e-4, momentum=0.9)
    coarse = torch.compile(net.coarse) if compile else net.coarse
    model = torch.compile(trained) if compile else trained

    def steps_of_training() -> None:
        for _ in range(steps):
            prediction = stage_forward(stage, model, coarse, images, bf16)
            loss = scale_invariant_loss(prediction[:, 0], target, valid)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return steps * batch_size / median_seconds(steps_of_training, device, repeats, warmup=1)


def training_loop(batch_size: int, steps: int, device: torch.device, compile: bool, data: str,
                  data_path: str, frames: int, fc_width: int = 4096) -> dict[str, float]:
    """Samples/s of depth.train's own loop per stage: the median over its logged intervals,
    leaving out the first (warm-up and compilation), and the peak GPU memory (GiB) it logged."""
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(out=out, data=data, data_path=data_path, train_frames=frames, val_frames=8,
                          fc_width=fc_width, batch_size=batch_size, coarse_samples=steps * batch_size,
                          fine_samples=steps * batch_size, log_every=max(1, steps // 6),
                          val_every=10**12, checkpoint_every=10**12, device=str(device), compile=compile)
        train_main(cfg)
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    rows = [row for row in rows if row["kind"] == "train"]
    speeds = {}
    for stage in STAGES:
        values = sorted(r["samples_per_s"] for r in rows if r["stage"] == stage)[1:]
        speeds[stage] = values[len(values) // 2] if values else float("nan")
    peaks = [row["peak_gpu_gib"] for row in rows if row.get("peak_gpu_gib") is not None]
    speeds["peak_gpu_gib"] = max(peaks) if peaks else float("nan")
    return speeds


def renderer_speed(device: torch.device, batch_size: int, repeats: int = 5, compile: bool = False) -> dict[str, float]:
    """Synthetic frames/s at 320x240 rendering `batch_size` frames at a time (a new batch of
    scenes every timing), and the seconds of the first call (with compile=True: compiling,
    or loading the compiled stages from torch's cache)."""
    source = SyntheticFrames(seed=0, device=device, chunk=batch_size, compile=compile)
    batches = itertools.count()

    def render() -> None:
        source.render(torch.arange(batch_size) + next(batches) * batch_size)

    _sync(device)
    start = time.perf_counter()
    render()
    _sync(device)
    first_call_s = time.perf_counter() - start
    return {"fps": batch_size / median_seconds(render, device, repeats, warmup=1), "first_call_s": first_call_s}


def renderer_stages(device: torch.device, frames: int = 128, compile: bool = False) -> dict[str, float]:
    """Milliseconds per frame in each stage of the synthetic renderer at 320x240, rendering as
    `SyntheticFrames` does (its default chunk and pass sizes), after one warm-up chunk:
    `Stages`' six stages, "scenes and the rest" (scene generation, merging passes) and "total"."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    seconds = dict.fromkeys([f.name for f in fields(Stages)], 0.0)

    def timed(name: str, stage: Callable) -> Callable:
        def run(*args: object) -> object:
            _sync(device)
            start = time.perf_counter()
            out = stage(*args)
            _sync(device)
            seconds[name] += time.perf_counter() - start
            return out
        return run

    source = SyntheticFrames(seed=0, device=device, compile=compile)
    source.stages = Stages(**{name: timed(name, getattr(source.stages, name)) for name in seconds})
    source.render(torch.arange(source.chunk))
    seconds.update(dict.fromkeys(seconds, 0.0))
    _sync(device)
    start = time.perf_counter()
    for first in range(source.chunk, source.chunk + frames, source.chunk):
        source.render(torch.arange(first, first + source.chunk))
    _sync(device)
    rendered = -(-frames // source.chunk) * source.chunk
    total = time.perf_counter() - start
    result = {name: 1000 * value / rendered for name, value in seconds.items()}
    result["scenes and the rest"] = 1000 * (total - sum(seconds.values())) / rendered
    result["total"] = 1000 * total / rendered
    return result


def bench_rendering(device: str | None = None, frames: int = 128, compile: bool = False) -> str:
    """A Markdown table: the renderer's milliseconds per frame, stage by stage."""
    device = resolve_device(device)
    stages = renderer_stages(device, frames, compile)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    lines = [f"Synthetic rooms, 320x240, {name}, compile={compile}: {1000 / stages['total']:.1f} frames/s",
             "", "| stage | ms per frame |", "|---|---|"]
    return "\n".join(lines + [f"| {stage} | {ms:.2f} |" for stage, ms in stages.items()])


def bench_training(batch_size: int = 32, steps: int = 60, device: str | None = None, compile: bool = False,
                   data: str = "synthetic", data_path: str = "", frames: int = 2048) -> str:
    """A Markdown table: model alone vs the whole training loop, per stage, and their ratio."""
    device = resolve_device(device)
    loop = training_loop(batch_size, steps, device, compile, data, data_path, frames)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    lines = [f"Training speed, batch {batch_size}, {name}, compile={compile}, data={data}",
             "", "| stage | model alone (samples/s) | training loop (samples/s) | loop / model |",
             "|---|---|---|---|"]
    for stage in STAGES:
        alone = model_alone(stage, batch_size, steps, device, compile)
        lines.append(f"| {stage} | {alone:.0f} | {loop[stage]:.0f} | {loop[stage] / alone:.2f} |")
    return "\n".join(lines)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
