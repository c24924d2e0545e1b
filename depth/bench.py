"""Speed measurements: `python -m depth bench train` (more in later benchmarks).

Training speed is reported two ways at the same batch size and settings, so their ratio shows
what the data path costs: the model alone (one fixed batch already on the device: forward,
backward and the SGD step) and the whole training loop of `depth.train` (frames gathered
from the device pool, augmented, targets built, then the same step), read from its log.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch

from .data.augment import identity_params, output_targets, augment
from .loss import scale_invariant_loss
from .model import INPUT_HEIGHT, INPUT_WIDTH, EigenDepthNet, ModelConfig
from .predict import resolve_device
from .train import STAGES, TrainConfig, main as train_main, stage_forward


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_alone(stage: str, batch_size: int, steps: int, device: torch.device, compile: bool,
                fc_width: int = 4096) -> float:
    """Samples/s of forward + backward + SGD step on one fixed batch (median of 5 timings)."""
    net = EigenDepthNet(ModelConfig(fc_width=fc_width)).to(device)
    images = torch.rand(batch_size, 3, INPUT_HEIGHT, INPUT_WIDTH, device=device)
    frames = (images * 255).to(torch.uint8)
    depth = torch.rand(batch_size, INPUT_HEIGHT, INPUT_WIDTH, device=device) * 5 + 0.5
    _, depth = augment(frames, depth, identity_params(batch_size, device))
    target, valid = output_targets(depth)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    trained = net.coarse if stage == "coarse" else net.fine
    net.requires_grad_(False)
    trained.requires_grad_(True)
    optimizer = torch.optim.SGD(trained.parameters(), lr=1e-4, momentum=0.9)
    coarse = torch.compile(net.coarse) if compile else net.coarse
    model = torch.compile(trained) if compile else trained

    def step() -> None:
        prediction = stage_forward(stage, model, coarse, images)
        loss = scale_invariant_loss(prediction[:, 0], target, valid)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(max(3, steps // 5)):  # warm-up, compilation included
        step()
    timings = []
    for _ in range(5):
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        timings.append(time.perf_counter() - start)
    return steps * batch_size / sorted(timings)[2]


def training_loop(batch_size: int, steps: int, device: torch.device, compile: bool, data: str,
                  data_path: str, frames: int, fc_width: int = 4096) -> dict[str, float]:
    """Samples/s of depth.train's own loop per stage: the median over its logged intervals,
    leaving out the first (warm-up and compilation)."""
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(out=out, data=data, data_path=data_path, train_frames=frames, val_frames=8,
                          fc_width=fc_width, batch_size=batch_size, coarse_samples=steps * batch_size,
                          fine_samples=steps * batch_size, log_every=max(1, steps // 6),
                          val_every=10**12, checkpoint_every=10**12, device=str(device), compile=compile)
        train_main(cfg)
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    speeds = {}
    for stage in STAGES:
        values = sorted(r["samples_per_s"] for r in rows if r["kind"] == "train" and r["stage"] == stage)[1:]
        speeds[stage] = values[len(values) // 2] if values else float("nan")
    return speeds


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
