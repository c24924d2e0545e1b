"""Checkpoints: safetensors holding the weights, their ModelConfig and provenance.

The config (JSON) and a small `info` dict (JSON: whether the weights are trained, on what)
live in the safetensors header metadata, so a checkpoint can never be separated from the
config it needs. Loading is strict: every problem raises CheckpointError naming the file.

For shipping under file-size limits a checkpoint can be stored compactly:
- float16 storage of every weight (loading always gives float32);
- 8- or 4-bit fully connected weights (coarse 6 and 7 hold nearly all parameters): signed
  integers (8-bit: one per byte; 4-bit: two per byte), with one float16 scale per group of
  QUANT_GROUP weights of a row;
- split into files of at most `max_file_bytes`: the named file holds the config, the info
  and the names of the other parts (NAME-2.safetensors, ...), which sit beside it; a tensor
  larger than the limit is cut into row blocks ("KEY#0", "KEY#1", ...).
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
FC_WEIGHTS = {"fc6": "coarse.fc6.weight", "fc7": "coarse.fc7.weight"}  # what 8- and 4-bit storage apply to
QUANT_GROUP = 64  # weights per scale along a row
QUANT_BITS = (8, 4)


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, corrupt, or does not match its config."""


def save_checkpoint(
    path: str | Path,
    net: EigenDepthNet,
    info: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
    fc_bits: dict[str, int] | None = None,
    max_file_bytes: int | None = None,
) -> Path:
    """Write net's weights, config and `info` (JSON-serialisable) to `path`, atomically.

    dtype: storage type of the floating point weights (float16 halves the file; loading always
    returns float32 weights). fc_bits: store these fully connected layers' weights as 8- or
    4-bit integers ({"fc6": 8}; module docstring). 4 bits can cost more than they look: fc7
    writes log depth directly, and the Lite0 coarse 6 sums 25,600 inputs, whose rounding errors
    can move a network's scale (measured: docs/benchmarks.md, "Storage precision and
    accuracy"). max_file_bytes: split into parts of at most this size (about: each part's
    header adds a few kB). Returns `path`, the file to load.
    """
    path = Path(path)
    state = net.state_dict()
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in state.items()}
    fc_bits = fc_bits or {}
    if unknown := set(fc_bits) - set(FC_WEIGHTS):
        raise ValueError(f"8- and 4-bit storage apply to {', '.join(FC_WEIGHTS)}, not {', '.join(sorted(unknown))}")
    for layer, bits in fc_bits.items():
        key = FC_WEIGHTS[layer]
        del tensors[key]
        tensors[f"{key}.int{bits}"], tensors[key + ".scale"] = quantize(state[key], bits)
    parts = _split(tensors, max_file_bytes)
    names = [path.name] + [f"{path.stem}-{i}{path.suffix}" for i in range(2, len(parts) + 1)]
    header = {"format": FORMAT, "format_version": FORMAT_VERSION}
    for name, part in zip(names[1:], parts[1:]):  # the parts first: a complete main file has them
        _write(path.parent / name, part, {**header, "part_of": path.name, "part_name": name})
    _write(path, parts[0], {
        **header,
        "config": json.dumps(dataclasses.asdict(net.config)),
        "info": json.dumps(info or {}),
        "parts": json.dumps(names[1:]),
    })
    return path


def quantize(weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, in) weights -> signed `bits`-bit integers and (out, in / group) float16 scales,
    weight ~ value * scale (symmetric: |value| <= 2^(bits-1) - 1, round to nearest).
    8 bits: (out, in) int8; 4 bits: (out, in / 2) uint8, two values per byte (offset by 8)."""
    if bits not in QUANT_BITS:
        raise ValueError(f"weights are stored in {' or '.join(map(str, QUANT_BITS))} bits, not {bits}")
    out_features, in_features = weight.shape
    if bits == 4 and in_features % 2:
        raise ValueError(f"4-bit storage needs an even number of inputs, got {in_features}")
    top = 2 ** (bits - 1) - 1
    group = QUANT_GROUP if in_features % QUANT_GROUP == 0 else in_features
    groups = weight.detach().float().cpu().reshape(out_features, in_features // group, group)
    scale = (groups.abs().amax(-1) / top).clamp(min=torch.finfo(torch.float16).tiny).half()
    values = (groups / scale.float()[..., None]).round().clamp(-top - 1, top).reshape(out_features, in_features)
    if bits == 8:
        return values.to(torch.int8), scale
    values = (values + 8).to(torch.uint8)  # 0..15
    return values[:, 0::2] | (values[:, 1::2] << 4), scale


def dequantize(stored: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 (out, in) weights of `quantize`'s values (int8: 8 bits, uint8: 4 bits) and scales."""
    if stored.dtype == torch.int8:
        values = stored.float()
    else:
        values = torch.stack([stored & 15, stored >> 4], dim=-1).reshape(stored.shape[0], -1).float() - 8
    groups = values.reshape(scale.shape[0], scale.shape[1], -1)
    return (groups * scale.float()[..., None]).reshape(values.shape)


def load_checkpoint(path: str | Path) -> tuple[EigenDepthNet, dict[str, Any]]:
    """Rebuild the network from `path`. Returns (net on CPU in eval mode, info dict)."""
    path = Path(path)
    tensors, metadata = _read(path)
    try:
        fields = json.loads(metadata["config"])
        # checkpoints of 2026-12-01 to -07 name the fine net's padding, now always "replicate"
        if fields.pop("fine_padding", "replicate") != "replicate":
            raise ValueError("its fine net pads with zeros, which this code no longer builds "
                             "(use a commit of 2026-12-07 or earlier)")
        config = ModelConfig(**fields)
        part_names = json.loads(metadata.get("parts", "[]"))
        if not (isinstance(part_names, list) and all(isinstance(n, str) and "/" not in n for n in part_names)):
            raise ValueError(f"parts must be a list of file names, got {part_names!r}")
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} has an invalid config: {error}") from None
    info = _parse_info(metadata, path)
    for name in part_names:
        part, part_metadata = _read(path.parent / name, f"part of checkpoint {path.name}:")
        own_name = part_metadata.get("part_name", name)  # older split files do not record it
        if part_metadata.get("part_of") != path.name:
            raise CheckpointError(f"checkpoint {path}: {path.parent / name} is not one of its parts")
        if own_name != name or tensors.keys() & part.keys():
            raise CheckpointError(f"checkpoint {path}: {path.parent / name} holds the weights of another part "
                                  f"({own_name}), not its own: copy the checkpoint's files again")
        tensors |= part
    tensors = _dequantize(_join(tensors, path), path)

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


def load_info(path: str | Path) -> dict[str, Any]:
    """The info dict of checkpoint `path`, read from its header alone (CheckpointError for any
    problem with the file)."""
    path = Path(path)
    _, metadata = _read(path, with_tensors=False)
    return _parse_info(metadata, path)


def replace_info(path: str | Path, info: dict[str, Any]) -> None:
    """Rewrite checkpoint `path` with `info` (JSON-serialisable) in place of its info; the
    weights, config and parts stay exactly as they are. Atomic: a crash leaves the old file."""
    path = Path(path)
    tensors, metadata = _read(path)
    _write(path, tensors, {**metadata, "info": json.dumps(info)})


def checkpoint_files(path: str | Path) -> list[Path]:
    """The files a checkpoint consists of: `path`, then its parts (if it was split)."""
    path = Path(path)
    _, metadata = _read(path, with_tensors=False)
    return [path] + [path.parent / name for name in json.loads(metadata.get("parts", "[]"))]


def _parse_info(metadata: dict[str, str], path: Path) -> dict[str, Any]:
    try:
        info = json.loads(metadata.get("info", "{}"))
    except ValueError as error:
        raise CheckpointError(f"checkpoint {path} has invalid info: {error}") from None
    if not isinstance(info, dict):
        raise CheckpointError(f"checkpoint {path} has invalid info: {info!r} is not a dict")
    return info


def _read(path: Path, what: str = "checkpoint", with_tensors: bool = True,
          ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors ({} unless `with_tensors`) and metadata of one of our safetensors files;
    CheckpointError names the file."""
    if path.is_dir():
        raise CheckpointError(f"{what} {path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()} if with_tensors else {}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{what} {path} is not a readable safetensors file (truncated or corrupt?): {error}"
        ) from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{what} {path} has no {FORMAT!r} metadata: not a depth checkpoint")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{what} {path} has format version {metadata.get('format_version')!r}, "
            f"this code reads version {FORMAT_VERSION}"
        )
    return tensors, metadata


def _write(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # write next to the target and rename, so a crash never leaves a half-written file
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; checkpoints are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _split(tensors: dict[str, torch.Tensor], max_bytes: int | None) -> list[dict[str, torch.Tensor]]:
    """Tensors in files of at most max_bytes (in order; larger tensors cut into row blocks)."""
    if max_bytes is None:
        return [tensors]
    pieces = {}
    for key, tensor in tensors.items():
        size = tensor.numel() * tensor.element_size()
        if size <= max_bytes:
            pieces[key] = tensor
            continue
        rows = max(1, max_bytes // (size // tensor.shape[0]))
        pieces |= {f"{key}#{i}": block.contiguous() for i, block in enumerate(tensor.split(rows))}
    parts, used = [{}], 0
    for key, tensor in pieces.items():
        size = tensor.numel() * tensor.element_size()
        if used + size > max_bytes and parts[-1]:
            parts.append({})
            used = 0
        parts[-1][key] = tensor
        used += size
    return parts


def _join(tensors: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Undo _split's row blocks: KEY#0, KEY#1, ... -> KEY."""
    blocks: dict[str, dict[int, torch.Tensor]] = {}
    joined = {}
    for key, tensor in tensors.items():
        base, mark, index = key.rpartition("#")
        if mark and index.isdigit():
            blocks.setdefault(base, {})[int(index)] = tensor
        else:
            joined[key] = tensor
    for base, parts in blocks.items():
        if sorted(parts) != list(range(len(parts))) or base in joined:
            raise CheckpointError(f"checkpoint {path}: the row blocks of {base} are incomplete")
        try:
            joined[base] = torch.cat([parts[i] for i in range(len(parts))])
        except RuntimeError as error:
            raise CheckpointError(f"checkpoint {path}: the row blocks of {base} do not fit: {error}") from None
    return joined


def _dequantize(tensors: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Replace each KEY.int8 or KEY.int4 and KEY.scale pair by the float32 weights KEY."""
    for key in [k for k in tensors if k.endswith((".int8", ".int4"))]:
        base, bits = key.rsplit(".int", 1)
        stored, scale = tensors.pop(key), tensors.pop(base + ".scale", None)
        per_byte = 2 if bits == "4" else 1
        shape_ok = (scale is not None and stored.dtype == (torch.uint8 if bits == "4" else torch.int8)
                    and stored.dim() == scale.dim() == 2 and stored.shape[0] == scale.shape[0]
                    and scale.shape[1] > 0 and (per_byte * stored.shape[1]) % scale.shape[1] == 0)
        if not shape_ok:
            raise CheckpointError(f"checkpoint {path}: the {bits}-bit weights of {base} lack matching scales")
        tensors[base] = dequantize(stored, scale)
    return tensors
