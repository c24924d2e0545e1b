"""ONNX export of a loaded network, for onnxruntime: the app's in-browser mode runs these files
with onnxruntime-web, and any other runtime can run them too.

The graph is the network's window in, metric depth out, one pass:
- input "image": (1, 3, 228, 304) float32 RGB in [0, 1], the window `depth.predict` cuts from a
  photo fitted into 320x240 (the caller does that fitting, as the page does);
- outputs "coarse" and "fine": (1, 1, 55, 74) float32 metres on the output grid (input pixel
  x = 4 j + 5.5 at cell j's centre, see depth.model), each stretched about its mean log depth
  by the checkpoint's contrast factor (depth.contrast), as `DepthModel.forward` does.

Flip averaging is not in the graph. The stretch is affine in log depth with the same factor for
both passes, so it commutes with the average: a caller that wants it runs the mirrored window
too and takes the geometric mean of the two maps, the mirrored one flipped back.

Compact files (the default) keep the maths in float32 but store the weights in 8 bits:
- coarse 6 and 7, the fully connected layers with nearly all parameters, go through
  onnxruntime.quantization's dynamic quantisation: int8 weights, one scale per output, and an
  integer matrix product (MatMulInteger) on inputs quantised per frame;
- the larger convolution weights are stored as int8 with a float16 scale per 32 weights and
  the smaller ones as float16, each expanded to float32 by nodes onnxruntime folds into
  constants when it loads the file (weights only: the activations stay float).
A file is then about a quarter of the float32 one; what the rounding costs against PyTorch,
photo by photo, is tested in tests/test_onnx.py.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

from .contrast import stretch
from .model import INPUT_HEIGHT, INPUT_WIDTH
from .predict import DepthModel

OPSET = 18
INPUT_NAME, OUTPUT_NAMES = "image", ("coarse", "fine")
FC_WEIGHTS = ("net.coarse.fc6.weight", "net.coarse.fc7.weight")  # the wrapper's names of coarse 6 and 7
CONV_INT8_MIN = 16_384  # values: smaller convolutions (the first layers, most depthwise ones) stay float
INT8_GROUP = 32  # weights per int8 scale: one per output channel took the default past tests/test_onnx.py's bound
FLOAT16_MIN = 1024  # values: smaller convolution weights stay float32; they are a few kB


class _DepthGraph(torch.nn.Module):
    """The exported computation: (B, 3, 228, 304) in [0, 1] -> (coarse, fine) metres, (B, 1, 55, 74)."""

    def __init__(self, model: DepthModel) -> None:
        super().__init__()
        self.net = model.net
        self.contrast = dict(model.contrast)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coarse_log, fine_log = self.net(images)
        return stretch(coarse_log, self.contrast["coarse"]).exp(), stretch(fine_log, self.contrast["fine"]).exp()


def export_onnx(model: DepthModel, path: str | Path, compact: bool = True) -> Path:
    """Write `model`'s network as an ONNX file (opset 18, batch 1) at `path`; returns `path`.

    compact: store coarse 6 and 7 and the larger convolutions in 8 bits (module docstring);
    False keeps every weight float32 (about four times the size). The file's metadata records
    the default output ("depth.output": "fine" or "coarse"), the contrast factors and the
    checkpoint's own description, so a runtime can label what it shows.
    """
    path = Path(path)
    graph = _DepthGraph(model).to("cpu").eval()
    with tempfile.TemporaryDirectory() as folder:
        traced, simplified = Path(folder) / "traced.onnx", Path(folder) / "simplified.onnx"
        with warnings.catch_warnings():
            # the TorchScript exporter is deprecated but still the one asked for here; its other
            # notes are about constant folding of Slice steps, not errors
            warnings.simplefilter("ignore")
            # batch 1, fixed: the traced graph computes EfficientNet's "same" padding from the
            # input's shape, and only a fully known shape lets those ~3,000 nodes fold away
            torch.onnx.export(graph, (torch.zeros(1, 3, INPUT_HEIGHT, INPUT_WIDTH),), str(traced),
                              opset_version=OPSET, dynamo=False, input_names=[INPUT_NAME],
                              output_names=list(OUTPUT_NAMES))
        model.net.to(model.device)  # the wrapper moved the shared network to the CPU
        # shape inference and onnxruntime's exact (basic) rewrites: constant folding leaves ~170 nodes
        quant_pre_process(str(traced), str(simplified))
        proto = onnx.load(str(simplified))
        if compact:
            proto = _quantize_fc(proto, Path(folder))
            _compact_weights(proto.graph)
    onnx.helper.set_model_props(proto, {
        "depth.output": model.output,
        "depth.contrast": json.dumps(model.contrast),
        "depth.describe": model.describe(),
    })
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def _quantize_fc(proto: onnx.ModelProto, folder: Path) -> onnx.ModelProto:
    """`proto` with coarse 6 and 7 (its only Gemm nodes) dynamically quantised to int8 weights."""
    products = [node for node in proto.graph.node if node.op_type in ("Gemm", "MatMul")]
    if sorted(name for node in products for name in node.input if name in FC_WEIGHTS) != sorted(FC_WEIGHTS) \
            or len(products) != len(FC_WEIGHTS):
        raise ValueError(f"expected coarse 6 and 7 as the graph's only Gemm nodes, found {[n.name for n in products]}")
    out = folder / "fc-int8.onnx"
    # "MatMul" too: the quantiser rewrites Gemm as MatMul + Add before quantising (and renames
    # the nodes, so they cannot be picked by name)
    quantize_dynamic(proto, out, op_types_to_quantize=["MatMul", "Gemm"], per_channel=True, weight_type=QuantType.QInt8)
    quantized = onnx.load(str(out))
    if left := {tensor.name for tensor in quantized.graph.initializer} & set(FC_WEIGHTS):
        raise ValueError(f"onnxruntime.quantization left {', '.join(sorted(left))} in float32")
    return quantized


def _compact_weights(graph: onnx.GraphProto) -> None:
    """Store `graph`'s convolution weights compactly, each expanded back to float32 by nodes
    that onnxruntime folds into constants when it loads the file (so no frame pays for them):
    at least CONV_INT8_MIN values: int8, one float16 scale per INT8_GROUP consecutive weights of
    an output channel (per channel where a channel's count is not a multiple), symmetric, round
    to nearest; at least FLOAT16_MIN values: float16. The rest (biases, the small first layers,
    the fully connected layers' scales) stays float32.
    """
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    conv_weights = {node.input[1] for node in graph.node if node.op_type == "Conv"}
    expansions: list[onnx.NodeProto] = []
    for name in sorted(conv_weights & set(initializers)):
        tensor = initializers[name]
        values = numpy_helper.to_array(tensor)
        if values.dtype != np.float32 or values.size < FLOAT16_MIN:
            continue
        graph.initializer.remove(tensor)
        if values.size >= CONV_INT8_MIN:
            quantized, scale = _int8_groups(values)
            graph.initializer.extend([numpy_helper.from_array(quantized, f"{name}_int8"),
                                      numpy_helper.from_array(scale, f"{name}_scale"),
                                      numpy_helper.from_array(np.array(values.shape, np.int64), f"{name}_shape")])
            expansions += [
                helper.make_node("Cast", [f"{name}_int8"], [f"{name}_values"], to=onnx.TensorProto.FLOAT),
                helper.make_node("Cast", [f"{name}_scale"], [f"{name}_scale32"], to=onnx.TensorProto.FLOAT),
                helper.make_node("Mul", [f"{name}_values", f"{name}_scale32"], [f"{name}_grouped"]),
                helper.make_node("Reshape", [f"{name}_grouped", f"{name}_shape"], [name]),
            ]
        else:
            graph.initializer.append(numpy_helper.from_array(values.astype(np.float16), f"{name}_float16"))
            expansions.append(helper.make_node("Cast", [f"{name}_float16"], [name], to=onnx.TensorProto.FLOAT))
    for position, node in enumerate(expansions):  # before every node that reads them
        graph.node.insert(position, node)


def _int8_groups(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(out, ...) float32 weights -> int8 (out, groups, group) values and float16 (out, groups, 1)
    scales, weight ~ values * scale with |values| <= 127 (module docstring of _compact_weights)."""
    rows = weight.reshape(len(weight), -1)
    group = INT8_GROUP if rows.shape[1] % INT8_GROUP == 0 else rows.shape[1]
    groups = rows.reshape(len(rows), -1, group)
    scale = (np.abs(groups).max(axis=-1, keepdims=True) / 127).astype(np.float16)
    scale = np.maximum(scale, np.finfo(np.float16).tiny)  # an all-zero group: any scale, no division by 0
    values = np.clip(np.round(groups / scale.astype(np.float32)), -127, 127).astype(np.int8)
    return values, scale
