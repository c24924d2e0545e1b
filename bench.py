"""The benchmarks, all from here: `python bench.py [--device cpu|cuda] [--markdown FILE]` for the
suite, `python bench.py train|render|app ...` for one part in detail.

Measures, each as a median over repeated timings after warm-up, and prints one Markdown table
with every figure beside the ceiling it is compared with:

- inference: the forward pass alone vs `predict` on a 640x480 photo (batch 1), the ratio
  (target: at most 1.3); on CUDA, bf16 forward throughput at batch 1, 32 and 256;
- training: forward + backward alone vs the whole training loop at batch 32 and 256, the
  ratio (target on a GPU: at least 0.9), and the paper's schedule (3.5M samples) projected
  from the loop's speed (target on one H100: under 10 minutes); peak GPU memory at batch 32;
- the synthetic renderer: frames/s at 320x240, eager and compiled (and the compile time);
- the app: a photo's round trip through gradio_client with every output, and the webcam
  handler's frames/s at 640x480, measured against a real `python app.py` process, whose peak
  resident memory is reported too.

Figures depend on the machine and on what else runs on it: measure on an idle one.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import torch

import depth
from depth import bench
from depth.backbones import BACKBONES
from depth.model import EigenDepthNet, ModelConfig
from depth.predict import resolve_device
from depth.train import STAGES, TrainConfig

PAPER = TrainConfig()  # its defaults are the paper's sample budgets


def machine(device: torch.device) -> str:
    """One line naming the processor (and GPU) the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    line = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"
    if device.type == "cuda":
        line += f", {torch.cuda.get_device_name(device)}"
    return line


def run(device: torch.device, train_batch_sizes: list[int], train_steps: int, render_batch: int,
        app: bool) -> list[tuple[str, str, str, str, str]]:
    """Rows of (what, measured, compared with, ratio, target)."""
    rows = []
    model = depth.load_model(device=device)
    speed = bench.forward_vs_predict(model)
    forward = "forward, photo + mirror" if model.flip_average else "forward"
    rows.append((f"inference, batch 1 ({model.net.config.fc_width}-wide fc, default weights)",
                 f"predict 640x480: {speed['predict_ms']:.1f} ms", f"{forward}: {speed['forward_ms']:.1f} ms",
                 f"{speed['ratio']:.2f}", "predict / forward <= 1.3"))
    if device.type == "cuda":
        paper_net = EigenDepthNet(ModelConfig())
        for batch_size in (1, 32, 256):
            images_per_s = bench.forward_throughput(paper_net, device, batch_size)
            rows.append((f"inference, bf16 forward, batch {batch_size} (paper-size net)",
                         f"{images_per_s:,.0f} images/s", "", "", ""))

    frames = 2048 if device.type == "cuda" else 4 * max(train_batch_sizes)
    # the two backbones, both stages, float32 against bf16 (at the CPU recipe's batch 16, width 1024)
    # (and the default network's fine stage, which also reads Lite0's stride-8 and -16 maps)
    for backbone, stage, reads in [(b, s, False) for b in BACKBONES for s in STAGES] + [
            ("efficientnet-lite0", "fine", True)]:
        speeds = [bench.model_alone(stage, 16, train_steps, device, compile=False, fc_width=1024,
                                    backbone=backbone, bf16=bf16, fine_reads_backbone=reads) for bf16 in (False, True)]
        reading = " reading the backbone" if reads else ""
        rows.append((f"training, model alone, {backbone}, {stage} stage{reading}, batch 16, fc 1024",
                     f"bf16 + channels-last: {speeds[1]:,.1f} samples/s", f"float32: {speeds[0]:,.1f} samples/s",
                     f"{speeds[1] / speeds[0]:.2f}", ""))

    for batch_size in train_batch_sizes:
        loop = bench.training_loop(batch_size, train_steps, device, compile=device.type == "cuda",
                                   data="synthetic", data_path="", frames=frames)
        for stage in STAGES:
            alone = bench.model_alone(stage, batch_size, train_steps, device, compile=device.type == "cuda")
            rows.append((f"training, {stage} stage, batch {batch_size} (paper-size net)",
                         f"loop: {loop[stage]:,.0f} samples/s", f"model alone: {alone:,.0f} samples/s",
                         f"{loop[stage] / alone:.2f}", "loop / model >= 0.9 (GPU)"))
        minutes = (PAPER.coarse_samples / loop["coarse"] + PAPER.fine_samples / loop["fine"]) / 60
        samples = PAPER.coarse_samples + PAPER.fine_samples
        rows.append((f"training, the paper's schedule ({samples:,} samples), batch {batch_size}",
                     f"{minutes:,.1f} min (projected from the loop)", "", "", "< 10 min (one H100)"))
        if device.type == "cuda" and batch_size == 32:
            rows.append(("training, peak GPU memory, batch 32", f"{loop['peak_gpu_gib']:.1f} GiB", "", "", ""))

    target = ">= 5,000 frames/s (H100)" if device.type == "cuda" else ">= 20 frames/s (2-core CPU)"
    for compile in (False, True):
        speed = bench.renderer_speed(device, render_batch, compile=compile)
        rows.append((f"synthetic rooms, 320x240, batch {render_batch}, {'compiled' if compile else 'eager'}",
                     f"{speed['fps']:,.1f} frames/s", f"first call: {speed['first_call_s']:,.1f} s", "", target))

    if app:
        from demo.bench import app_figures

        figures = app_figures()
        rows.append(("app: photo 640x480 to every output, through gradio_client",
                     f"{figures['round_trip_s']:.2f} s", "", "", "<= 1 s (2-core CPU)"))
        rows.append(("app: webcam handler, 640x480, server side", f"{figures['webcam_fps']:.1f} frames/s",
                     "", "", ">= 15 frames/s (2-core CPU)"))
        rows.append(("app: peak resident memory of the app process", f"{figures['peak_rss_mib']:,.0f} MiB",
                     "", "", ""))
    return rows


def table(rows: list[tuple[str, str, str, str, str]], device: torch.device) -> str:
    lines = [f"Measured {datetime.date.today().isoformat()} on {machine(device)}",
             f"Command: python bench.py {' '.join(sys.argv[1:])}".rstrip(), "",
             "| what | measured | compared with | ratio | target |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench.py", description=__doc__.split("\n\n")[0] + " "
                                     "Without a command: the whole suite as one table; a command measures one part in detail.")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if available)")
    parser.add_argument("--train-batch-sizes", type=int, nargs="+", default=None,
                        help="default: 32 256 on CUDA, 32 on the CPU (a batch-256 step takes seconds there)")
    parser.add_argument("--train-steps", type=int, default=None, help="steps per timing (default: 60 CUDA, 3 CPU)")
    parser.add_argument("--render-batch", type=int, default=None, help="frames per render call (default: 1024 CUDA, 16 CPU)")
    parser.add_argument("--no-app", dest="app", action="store_false", help="skip the app's figures")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    commands = parser.add_subparsers(dest="command", metavar="{train,render,app}")
    device = argparse.ArgumentParser(add_help=False)  # --device after a command too
    device.add_argument("--device", default=argparse.SUPPRESS, help="cpu, cuda or cuda:N (default: CUDA if available)")
    train = commands.add_parser("train", parents=[device], help="model alone vs the training loop, per stage")
    train.add_argument("--batch-size", type=int, default=32, help="samples per step (default: 32)")
    train.add_argument("--steps", type=int, default=60, help="steps per timing (default: 60)")
    train.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                       help="torch.compile the networks")
    train.add_argument("--data", default="synthetic", help="dataset the loop trains on (default: synthetic)")
    train.add_argument("--data-path", default="", help="file or folder of --data, for datasets on disk")
    train.add_argument("--frames", type=int, default=2048, help="frames in the training pool (default: 2048)")
    render = commands.add_parser("render", parents=[device], help="the synthetic renderer, stage by stage")
    render.add_argument("--frames", type=int, default=128, help="frames timed (default: 128)")
    render.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                        help="torch.compile the renderer's stages")
    app = commands.add_parser("app", help="the app against a real python app.py process")
    app.add_argument("--repeats", type=int, default=10, help="timings per figure (webcam: 3x)")
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            print(bench.bench_training(batch_size=args.batch_size, steps=args.steps, device=args.device,
                                       compile=args.compile, data=args.data, data_path=args.data_path,
                                       frames=args.frames))
            return 0
        if args.command == "render":
            print(bench.bench_rendering(device=args.device, frames=args.frames, compile=args.compile))
            return 0
        if args.command == "app":
            from demo.bench import app_report

            print(app_report(args.repeats))
            return 0
        device = resolve_device(args.device)
    except ValueError as error:  # a bad device or count
        print(f"error: {error}", file=sys.stderr)
        return 2
    cuda = device.type == "cuda"
    rows = run(device, args.train_batch_sizes or ([32, 256] if cuda else [32]),
               args.train_steps or (60 if cuda else 3), args.render_batch or (1024 if cuda else 16), args.app)
    text = table(rows, device)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
