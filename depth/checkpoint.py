"""Checkpoints: one safetensors file holding the weights, their ModelConfig and provenance.

The config (JSON) and a small `info` dict (JSON: whether the weights are trained, on what)
live in the safetensors header metadata, so a checkpoint can never be separated from the
config it needs. Loading is strict: every problem raises CheckpointError naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .model import EigenDepthNet, ModelConfig

FORMAT = "eigen-depth"
FORMAT_VERSION = "1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, corrupt, or does not match its config."""


def save_checkpoint(
    path: str | Path,
    net: EigenDepthNet,
    info: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write net's weights, config and `info` (JSON-serialisable) to `path`, atomically.

    dtype: storage type of the floating point weights (float16 halves the file; loading always
    returns float32 weights).
    """
    path = Path(path)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in net.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(dataclasses.asdict(net.config)),
        "info": json.dumps(info or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # write next to the target and rename, so a crash never leaves a half-written checkpoint
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; checkpoints are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path: str | Path) -> tuple[EigenDepthNet, dict[str, Any]]:
    """Rebuild the network from `path`. Returns (net on CPU in eval mode, info dict)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"checkpoint {path} is not a readable safetensors file (truncated or corrupt?): {error}"
        ) from None

    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has no {FORMAT!r} metadata: not a depth checkpoint")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {metadata.get('format_version')!r}, "
            f"this code reads version {FORMAT_VERSION}"
        )
    try:
        config = ModelConfig(**json.loads(metadata["config"]))
        info = json.loads(metadata.get("info", "{}"))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} has an invalid config: {error}") from None

    net = EigenDepthNet(config)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path} does not match its config: missing {missing}, unexpected {unexpected}"
        )
    for key in expected:  # the network's own order: the first problem reported is the earliest layer
        tensor = tensors[key]
        if tensor.shape != expected[key].shape:
            raise CheckpointError(
                f"checkpoint {path}: {key} has shape {tuple(tensor.shape)}, "
                f"config {config} needs {tuple(expected[key].shape)}"
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"checkpoint {path}: {key} contains NaN or infinite values")
    net.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    return net.eval(), info
