"""Command line: `python -m depth COMMAND ...` for the commands below, each with its own --help."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .checkpoint import CheckpointError, checkpoint_files, load_checkpoint, save_checkpoint
from .predict import UntrainedWeightsWarning, load_model, resolve_device
from .visualize import DEFAULT_COLORMAP, check_colormap, colorize, colour_bar, depth_range, figure4, save_depth_png


def _colormap(name: str) -> str:
    try:
        return check_colormap(name)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _output_folder(path: str | Path, what: str = "output folder") -> Path:
    """`path` as a folder this process can write into, created if missing. ValueError, naming
    the path and the reason, when it is a file or cannot be created or written."""
    folder = Path(path)
    if not str(path).strip():
        raise ValueError(f"the {what} must not be empty")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"the {what} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(f"cannot write into the {what} {folder}: {error.strerror or error}") from None
    return folder


def _predict(args: argparse.Namespace) -> int:
    stems = [Path(p).stem for p in args.images]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        print(f"error: several inputs are named {duplicates}; their outputs would overwrite "
              "each other, run them separately", file=sys.stderr)
        return 2
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UntrainedWeightsWarning)
            model = load_model(args.weights, device=args.device, flip_average=args.flip_average)
        out = _output_folder(args.out)  # after the checks: bad weights or a bad device write nothing
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in caught:
        print(f"WARNING: {warning.message}", file=sys.stderr)
    if model.output == "coarse":
        print("note: these weights' fine stage made depth worse than their coarse net alone, so "
              "<stem>_depth.* hold the coarse map (<stem>_fine.npy keeps the fine one)", file=sys.stderr)

    failures = 0
    for image_path in tqdm(args.images, desc="depth", unit="image", disable=len(args.images) < 2):
        try:
            prediction = model.predict(image_path)
        except (ValueError, OSError) as error:
            tqdm.write(f"error: {error}", file=sys.stderr)
            failures += 1
            continue
        stem = out / Path(image_path).stem
        np.save(f"{stem}_depth.npy", prediction.depth)
        np.save(f"{stem}_coarse.npy", prediction.coarse)
        np.save(f"{stem}_fine.npy", prediction.fine)
        save_depth_png(f"{stem}_depth.png", prediction.depth)
        near, far = depth_range(prediction.depth)
        picture = colorize(prediction.depth, near, far, args.colormap)
        if args.colorbar:  # the colours read as metres
            picture = np.concatenate([picture, colour_bar(near, far, args.colormap, picture.shape[1])])
        Image.fromarray(picture).save(f"{stem}_color.png")
    done = len(args.images) - failures
    print(f"wrote depth for {done} of {len(args.images)} images to {out}", file=sys.stderr)
    return 1 if failures else 0


def _write_json(path: str, data: object) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig
    from .train import main as train_main

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    try:
        if args.recipe:
            return _train_recipe(args, config)
        if args.dry_run or args.scale != 1.0:
            raise ValueError("--dry-run and --scale apply to --recipe runs")
        path = train_main(config)
    except (ValueError, OSError) as error:  # OSError: the run folder or a file in it cannot be written
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"trained weights: {path}", file=sys.stderr)
    return 0


def _train_recipe(args: argparse.Namespace, config: object) -> int:
    """`train --recipe NAME`: every setting comes from the recipe file but where the run goes
    and how this machine runs it (--out, --pools, --device, --compile)."""
    from .recipe import RUN_FIELDS, format_plan, load_recipe, plan, run_recipe
    from .train import TrainConfig

    defaults = TrainConfig()
    given = [f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(TrainConfig)
             if f.name not in RUN_FIELDS and getattr(config, f.name) != getattr(defaults, f.name)]
    if given:
        raise ValueError(f"{', '.join(given)}: a recipe run takes its settings from the recipe file; "
                         "write them into a recipe (recipes/*.toml) instead")
    recipe = load_recipe(args.recipe, args.scale)
    out = Path(config.out if config.out != defaults.out else f"runs/{recipe.name}")
    if args.dry_run:
        print(format_plan(recipe, plan(recipe, out, Path(args.pools), config.device, config.compile), out))
        return 0
    path = run_recipe(recipe, out, Path(args.pools), config.device, config.compile)
    print(f"recipe {recipe.name}: {path}", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .data import open_dataset
    from .evaluate import evaluate, figure_rows, format_table
    from .metrics import PROTOCOLS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UntrainedWeightsWarning)  # describe() says it below
            model = load_model(args.weights, device=args.device, flip_average=args.flip_average)
        dataset = open_dataset(args.data, args.data_path, args.split)
        report = evaluate(model, dataset, PROTOCOLS[args.protocol], limit=args.limit)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_table(report))
    if args.json:
        _write_json(args.json, report)
    if args.figure:
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        figure4(figure_rows(model, dataset, args.figure_frames), args.figure)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .evaluate import compare_reports, format_comparison

    try:
        reports = [json.loads(Path(path).read_text()) for path in (args.first, args.second)]
        comparison = compare_reports(*reports, row=args.row)
    except (ValueError, OSError) as error:  # json.JSONDecodeError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_comparison(comparison))
    return 0


def _export(args: argparse.Namespace) -> int:
    if args.onnx:
        return _export_onnx(args)
    if not args.out:
        print("error: name the checkpoint to write (OUT), or an ONNX file with --onnx", file=sys.stderr)
        return 2
    try:
        net, info = load_checkpoint(args.weights)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.trained_on:
        info["trained_on"] = args.trained_on
    if args.output:
        info["output"] = args.output
    max_bytes = int(args.max_file_mib * 2**20) if args.max_file_mib else None
    try:
        _output_folder(Path(args.out).parent, "folder of the exported checkpoint")
        if Path(args.out).is_dir():
            raise ValueError(f"{args.out} is a folder; name the checkpoint file to write")
        named = {bits: {layer.strip() for layer in value.split(",") if layer.strip()}
                 for bits, value in ((8, args.fc_int8), (4, args.fc_int4))}
        if both := named[8] & named[4]:
            raise ValueError(f"--fc-int8 and --fc-int4 both name {', '.join(sorted(both))}: choose one")
        fc_bits = {layer: bits for bits, layers in named.items() for layer in sorted(layers)}
        out = save_checkpoint(args.out, net, info, dtype=getattr(torch, args.dtype), fc_bits=fc_bits,
                              max_file_bytes=max_bytes)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sizes = ", ".join(f"{file.name} {file.stat().st_size / 2**20:.1f} MiB" for file in checkpoint_files(out))
    quantized = "".join(f", {bits}-bit {layers} weights" for bits, layers in ((8, args.fc_int8), (4, args.fc_int4))
                        if layers)
    print(f"wrote {sizes} ({args.dtype}{quantized})", file=sys.stderr)
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    """`export W --onnx FILE`: the network as ONNX for onnxruntime (depth/onnx_export.py)."""
    from .onnx_export import export_onnx

    if args.out:
        print("error: --onnx writes only the ONNX file; drop OUT", file=sys.stderr)
        return 2
    try:
        _output_folder(Path(args.onnx).resolve().parent, "folder of the ONNX file")
        model = load_model(args.weights, device="cpu", flip_average=False)
        path = export_onnx(model, args.onnx, compact=not args.onnx_float32)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    kind = "float32" if args.onnx_float32 else "int8 coarse 6-7 and convolutions, float32 maths"
    print(f"wrote {path} {path.stat().st_size / 1e6:.1f} MB ({kind})", file=sys.stderr)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from .calibrate import fit_contrast, set_contrast
    from .data import open_dataset

    try:
        if args.clear:
            set_contrast(args.weights, None)
            print(f"{args.weights}: contrast removed, the maps are as the network makes them", file=sys.stderr)
            return 0
        if args.frames < 1:
            raise ValueError(f"--frames must be at least 1, got {args.frames}")
        dataset = open_dataset(args.data, args.data_path, args.split)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UntrainedWeightsWarning)
            model = load_model(args.weights, device=args.device)
        fitted = fit_contrast(model, dataset, args.frames)
        where = f"{fitted['frames']} frames of {args.data} {args.split}"
        set_contrast(args.weights, fitted, fitted_on=where)
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name in ("coarse", "fine"):
        print(f"{name}: spread {fitted['spread'][name]:.3f} of the truth's -> contrast x{fitted[name]:.4f}")
    print(f"wrote the contrast into {args.weights} (fitted on {where})", file=sys.stderr)
    return 0


def _synth(args: argparse.Namespace) -> int:
    from .synthetic import write_folder

    try:
        if Path(args.out).exists() and not Path(args.out).is_dir():
            raise ValueError(f"the output folder {args.out} is a file, not a folder")
        out = write_folder(args.out, args.n, split=args.split, seed=args.seed, height=args.height,
                           width=args.width, device=resolve_device(args.device), compile=args.compile)
    except (ValueError, OSError) as error:  # a bad device, count or frame size; an unwritable folder
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.n} frames, manifest.json and preview.png to {out}", file=sys.stderr)
    return 0


def _stats(args: argparse.Namespace) -> int:
    from .data import open_dataset
    from .stats import dataset_stats, format_stats

    if args.limit is not None and args.limit < 1:
        print(f"error: --limit must be at least 1, got {args.limit}", file=sys.stderr)
        return 2
    try:
        dataset = open_dataset(args.data, args.path, args.split)
        stats = dataset_stats(dataset, limit=args.limit)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_stats(stats))
    if args.json:
        _write_json(args.json, stats)
    return 0


def _add_config_options(parser: argparse.ArgumentParser, config_type: type) -> None:
    """One --option per dataclass field, typed like its default, its help the field's comment in
    the dataclass's source (one place to document a field); argparse rejects unknown ones."""
    comments = dict(re.findall(r"^\s+(\w+): .*?#\s*(.+)$", inspect.getsource(config_type), re.MULTILINE))
    for field in dataclasses.fields(config_type):
        flag = "--" + field.name.replace("_", "-")
        comment = comments.get(field.name, "").replace("%", "%%")
        if isinstance(field.default, bool):
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                                default=field.default, help=comment)
        else:
            default = "" if field.default == "" else f"default: {field.default!r}"  # the comment says what "" means
            parser.add_argument(flag, dest=field.name, type=type(field.default), default=field.default,
                                metavar=type(field.default).__name__.upper(),
                                help="; ".join(part for part in (comment, default) if part))


def _add_flip_average_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flip-average", action=argparse.BooleanOptionalAction, default=True,
                        help="average each map with its mirror image's (default); --no-flip-average: the paper's single pass")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m depth", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser(
        "predict", help="estimate depth for images",
        description="Per image, write <stem>_depth.npy (the default output, float32 metres, input "
        "resolution: coarse + fine, or the coarse map where the weights say their fine stage is worse), "
        "<stem>_coarse.npy and <stem>_fine.npy (each network's map), <stem>_depth.png (16-bit "
        "millimetres) and <stem>_color.png.",
    )
    predict.add_argument("images", nargs="+", help="image files")
    predict.add_argument("--out", default="depth_out", help="output folder, created if missing (default: depth_out)")
    predict.add_argument("--weights", default=None, help="checkpoint (default: assets/model.safetensors)")
    predict.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if available)")
    predict.add_argument("--colormap", default=DEFAULT_COLORMAP, type=_colormap, help="matplotlib colormap for *_color.png")
    predict.add_argument("--colorbar", action="store_true",
                         help="add a colour bar in metres below each *_color.png (its range: the map's 2nd-98th percentile)")
    _add_flip_average_option(predict)
    predict.set_defaults(run=_predict)

    from .train import TrainConfig

    train = commands.add_parser(
        "train", help="two-stage training (resumes the run in --out if there is one)",
        description="Train the coarse network, then the fine one, with the paper's schedule. "
        "Every field of TrainConfig is an option; the run folder gets config.json, "
        "metrics.jsonl, state.pt (resume) and model.safetensors.",
    )
    train.add_argument("--recipe", default="",
                       help="run a recipe instead: recipes/NAME.toml or a .toml path, every stage in order, "
                       "resuming a killed run (--out defaults to runs/NAME); see docs/training.md")
    train.add_argument("--dry-run", action="store_true",
                       help="with --recipe: print the stages, their work and the time they should take here, "
                       "measured on a few steps, and train nothing")
    train.add_argument("--scale", type=float, default=1.0,
                       help="with --recipe: multiply every frame and sample count by this (0.002: a quick end-to-end check)")
    train.add_argument("--pools", default="pools", help="with --recipe: folder of kept training pools (default: pools)")
    _add_config_options(train, TrainConfig)
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate", help="metrics over a dataset, printed as the paper's Table 1",
        description="Score the coarse map, coarse + fine and the mean-depth baseline on a dataset's "
        "frames with the paper's metrics, print them beside the paper's Table 1, and say whether "
        "the fine stage helps (its SI log no worse than the coarse map's) and whether the weights' "
        "default output is the better map.",
    )
    evaluate.add_argument("--weights", default=None, help="checkpoint (default: assets/model.safetensors)")
    evaluate.add_argument("--data", required=True, help="dataset name: folder, nyu-labeled, nyu-csv, synthetic")
    evaluate.add_argument("--data-path", default=None, help="file or folder the dataset reads")
    evaluate.add_argument("--split", default="test", help="split to score (default: test)")
    evaluate.add_argument("--protocol", default="paper", choices=["paper", "eigen_crop"],
                          help="paper: every pixel with depth; eigen_crop: the Eigen crop, 0.001-10 m")
    evaluate.add_argument("--limit", type=int, default=None, help="score only the first N frames")
    evaluate.add_argument("--json", default=None, help="also write the report as JSON here")
    evaluate.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if available)")
    evaluate.add_argument("--figure", default=None,
                          help="also draw the first frames like the paper's Fig. 4 (input, coarse, fine, truth) here")
    evaluate.add_argument("--figure-frames", type=int, default=4, help="rows of --figure (default: 4)")
    _add_flip_average_option(evaluate)
    evaluate.set_defaults(run=_evaluate)

    compare = commands.add_parser(
        "compare", help="two evaluate --json reports on the same frames, compared frame by frame",
        description="Mean per-frame difference (second - first) of every metric, its standard error "
        "and on how many frames the second is better: whether two models' gap is more than these "
        "frames' noise.",
    )
    compare.add_argument("first", help="evaluate --json report")
    compare.add_argument("second", help="evaluate --json report on the same frames")
    compare.add_argument("--row", default="coarse + fine", choices=["coarse", "coarse + fine", "mean-depth baseline"],
                         help="which map to compare (default: coarse + fine)")
    compare.set_defaults(run=_compare)

    export = commands.add_parser(
        "export", help="rewrite a checkpoint with another storage type (float16 halves the file), or write "
        "the network as ONNX (--onnx)",
    )
    export.add_argument("weights", help="checkpoint to read")
    export.add_argument("out", nargs="?", help="checkpoint to write (config and info kept)")
    export.add_argument("--dtype", default="float16", choices=["float32", "float16", "bfloat16"],
                        help="storage type of the weights (loading always gives float32)")
    export.add_argument("--fc-int8", nargs="?", const="fc6,fc7", default="", metavar="fc6,fc7",
                        help="store these fully connected layers' weights in 8 bits (float16 scale per 64 "
                        "weights); alone: both")
    export.add_argument("--fc-int4", nargs="?", const="fc6,fc7", default="", metavar="fc6,fc7",
                        help="the same in 4 bits: half the size of 8, but its rounding can move the maps' "
                        "scale (see depth.checkpoint.save_checkpoint)")
    export.add_argument("--max-file-mib", type=float, default=None,
                        help="split into files of at most this many MiB (NAME-2.safetensors, ... beside it)")
    export.add_argument("--trained-on", default=None,
                        help="replace the recorded training data description (shown by the app and CLI)")
    export.add_argument("--output", default=None, choices=["fine", "coarse"],
                        help="set the default output: coarse + fine, or the coarse map alone where "
                        "the fine stage scores worse (see evaluate's report)")
    export.add_argument("--onnx", default="", metavar="FILE",
                        help="write the network as ONNX instead (the 304x228 window in, the 74x55 coarse "
                        "and fine maps in metres out, contrast applied; 8-bit weights, see depth/onnx_export.py)")
    export.add_argument("--onnx-float32", action="store_true", help="with --onnx: keep every weight float32")
    export.set_defaults(run=_export)

    calibrate = commands.add_parser(
        "calibrate", help="fit how far the maps are stretched about their mean log depth (in place)",
        description="Measure how much the network's maps vary against the truth on held-out frames "
        "(default: 256 frames of the synthetic val split; never use the frames you test on) and store "
        "the inverse in the checkpoint's info, so its maps vary as much as the scenes (depth/contrast.py). "
        "Only the checkpoint's info is rewritten; the weights stay as they are.",
    )
    calibrate.add_argument("weights", help="checkpoint to calibrate, rewritten in place")
    calibrate.add_argument("--data", default="synthetic", help="dataset name (default: synthetic)")
    calibrate.add_argument("--data-path", default=None, help="file or folder the dataset reads")
    calibrate.add_argument("--split", default="val", help="split to fit on (default: val)")
    calibrate.add_argument("--frames", type=int, default=256, help="frames to fit on (default: 256)")
    calibrate.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if available)")
    calibrate.add_argument("--clear", action="store_true", help="remove the stored contrast instead")
    calibrate.set_defaults(run=_calibrate)

    synth = commands.add_parser(
        "synth", help="render synthetic rooms as a folder dataset (RGB + 16-bit depth PNGs)",
        description="Write N rendered frames with exact depth (millimetres), manifest.json "
        "(readable as --data folder) and preview.png.",
    )
    synth.add_argument("--n", type=int, required=True, help="number of frames")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--split", default="train", choices=["train", "val", "test"],
                       help="scene stream; the three never share a scene")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--width", type=int, default=640)
    synth.add_argument("--height", type=int, default=480)
    synth.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if available)")
    synth.add_argument("--compile", action="store_true",
                       help="torch.compile the renderer: minutes the first time (cached after), then "
                            "about 1.6x faster on a CPU; for big pools")
    synth.set_defaults(run=_synth)

    stats = commands.add_parser(
        "stats", help="how deep and varied a dataset is, beside NYU's statistics",
        description="The mean-depth baseline of Eigen 2014 Table 1 (the set's per-pixel mean depth map "
        "scored on each of its frames) beside NYU's published row, and depth percentiles.",
    )
    stats.add_argument("path", help="dataset folder (or file, for the NYU readers)")
    stats.add_argument("--data", default="folder", help="dataset name (default: folder)")
    stats.add_argument("--split", default="test", help="split, for datasets with several (default: test)")
    stats.add_argument("--limit", type=int, default=None, help="only the first N frames")
    stats.add_argument("--json", default=None, help="also write the statistics as JSON here")
    stats.set_defaults(run=_stats)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
