"""Command line: `python -m depth predict IMG... --out DIR`."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .checkpoint import CheckpointError
from .predict import UntrainedWeightsWarning, load_model
from .visualize import DEFAULT_COLORMAP, check_colormap, colorize, depth_range, save_depth_png


def _colormap(name: str) -> str:
    try:
        return check_colormap(name)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


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
            model = load_model(args.weights, device=args.device)
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in caught:
        print(f"WARNING: {warning.message}", file=sys.stderr)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for image_path in tqdm(args.images, desc="depth", unit="image", disable=len(args.images) < 2):
        try:
            prediction = model.predict(image_path)
        except (ValueError, OSError) as error:
            tqdm.write(f"error: {error}", file=sys.stderr)
            failures += 1
            continue
        stem = out / Path(image_path).stem
        np.save(f"{stem}_depth.npy", prediction.fine)
        np.save(f"{stem}_coarse.npy", prediction.coarse)
        save_depth_png(f"{stem}_depth.png", prediction.fine)
        near, far = depth_range(prediction.fine)
        Image.fromarray(colorize(prediction.fine, near, far, args.colormap)).save(f"{stem}_color.png")
    done = len(args.images) - failures
    print(f"wrote depth for {done} of {len(args.images)} images to {out}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m depth", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser(
        "predict", help="estimate depth for images",
        description="Per image, write <stem>_depth.npy (fine, float32 metres, input resolution), "
        "<stem>_coarse.npy, <stem>_depth.png (16-bit millimetres) and <stem>_color.png.",
    )
    predict.add_argument("images", nargs="+", help="image files")
    predict.add_argument("--out", required=True, help="output folder (created if missing)")
    predict.add_argument("--weights", default=None, help="checkpoint (default: assets/model.safetensors)")
    predict.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if available)")
    predict.add_argument("--colormap", default=DEFAULT_COLORMAP, type=_colormap, help="matplotlib colormap for *_color.png")
    predict.set_defaults(run=_predict)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
