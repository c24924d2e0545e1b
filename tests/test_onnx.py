"""The ONNX export (depth/onnx_export.py) against the PyTorch model, through onnxruntime.

Both shipped networks on the example frames and the real frames in ../shared/data/real-rgbd:
the float32 file must match `DepthModel.forward` (single pass) to 1e-4 in mean |log depth
difference| per photo, the compact (8-bit) file to 1e-2. The compact file is the one the app
serves the page (demo.browser.export_for_browser, in the session's `onnx_folder`: exported once
per session, here or by the app in tests/test_browser_depth.py, whichever asks first).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -r requirements.txt)")

from demo.browser import export_for_browser  # noqa: E402
from depth.__main__ import main  # noqa: E402
from depth.images import load_rgb  # noqa: E402
from depth.onnx_export import export_onnx  # noqa: E402
from depth.predict import SHIPPED_WEIGHTS, _fit_to_input, load_model  # noqa: E402

from .conftest import REAL_RGBD  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
PHOTOS = sorted(EXAMPLES.glob("*_rgb.png")) + sorted(REAL_RGBD.glob("*_rgb.*"))
BOUND = {"float32": 1e-4, "int8": 1e-2}  # mean |delta log depth| per photo and map
MAX_BYTES = 35_000_000  # a compact file, so a visitor's browser downloads it quickly


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the machine's other core trains in the background
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module", params=SHIPPED_WEIGHTS, ids=lambda path: path.stem)
def exported(request, tmp_path_factory, onnx_folder):
    """(model, inputs (N, 3, 228, 304), its maps (coarse, fine) log depth, {kind: ONNX file}):
    "int8" the app's compact file, "float32" the same graph with every weight float32."""
    model = load_model(request.param, device="cpu", flip_average=False)
    folder = tmp_path_factory.mktemp(request.param.stem)
    files = {"float32": export_onnx(model, folder / "float32.onnx", compact=False),
             "int8": export_for_browser(model, onnx_folder)}
    inputs = torch.stack([_fit_to_input(torch.from_numpy(load_rgb(path)).permute(2, 0, 1))[0] for path in PHOTOS])
    return model, inputs, model.forward(inputs), files


def test_there_are_real_and_example_photos():
    assert sum(path.parent == EXAMPLES for path in PHOTOS) >= 8
    assert sum(path.parent == REAL_RGBD for path in PHOTOS) >= 5, f"{REAL_RGBD} has too few frames"


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_onnxruntime_gives_the_models_metres_on_every_photo(exported, kind):
    model, inputs, (coarse, fine), files = exported
    session = _session(files[kind])
    assert [i.name for i in session.get_inputs()] == ["image"] and session.get_inputs()[0].shape == [1, 3, 228, 304]
    errors = []
    for index, window in enumerate(inputs):
        out_coarse, out_fine = session.run(["coarse", "fine"], {"image": window[None].numpy()})
        assert out_coarse.shape == out_fine.shape == (1, 1, 55, 74) and out_fine.dtype == np.float32
        errors.append([float(np.abs(np.log(out) - ours[index].numpy()).mean())
                       for out, ours in ((out_coarse, coarse), (out_fine, fine))])
    worst = np.max(errors, axis=0)
    print(f"\n{model.weights_path.stem} {kind}: worst mean |d log| coarse {worst[0]:.2e} "
          f"({PHOTOS[int(np.argmax(np.array(errors)[:, 0]))].name}), fine {worst[1]:.2e} "
          f"({PHOTOS[int(np.argmax(np.array(errors)[:, 1]))].name})", file=sys.stderr)
    assert worst.max() <= BOUND[kind], errors


def test_the_compact_file_is_small_and_says_what_it_holds(exported):
    model, _, _, files = exported
    assert files["int8"].stat().st_size <= MAX_BYTES
    assert files["int8"].stat().st_size < files["float32"].stat().st_size / 3
    metadata = _session(files["int8"]).get_modelmeta().custom_metadata_map
    assert metadata["depth.output"] == model.output
    assert metadata["depth.describe"] == model.describe()


def test_the_contrast_factors_are_in_the_graph(exported):
    # the maps' spread about their mean is the network's times the factor: the stored
    # factors, not 1, shape what the file gives
    model, inputs, (coarse, fine), files = exported
    assert set(model.contrast.values()) != {1.0}
    out_coarse, out_fine = _session(files["float32"]).run(None, {"image": inputs[:1].numpy()})
    raw_coarse, raw_fine = model.net(inputs[:1])
    for out, raw, name in ((out_coarse, raw_coarse, "coarse"), (out_fine, raw_fine, "fine")):
        ratio = np.log(out).std() / raw.detach().numpy().std()
        assert ratio == pytest.approx(model.contrast[name], rel=1e-3)


def test_the_cli_writes_an_onnx_file_and_refuses_a_second_output(tmp_path, small_net, capsys):
    from depth.checkpoint import save_checkpoint

    weights = save_checkpoint(tmp_path / "small.safetensors", small_net, {"trained": True})
    assert main(["export", str(weights), "--onnx", str(tmp_path / "small.onnx")]) == 0
    assert "small.onnx" in capsys.readouterr().err
    session = _session(tmp_path / "small.onnx")
    assert [o.name for o in session.get_outputs()] == ["coarse", "fine"]
    assert main(["export", str(weights), str(tmp_path / "other.safetensors"), "--onnx", "x.onnx"]) == 2
    assert main(["export", str(weights)]) == 2
