import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import depth
from depth.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from depth.model import EigenDepthNet, ModelConfig


def _outputs(net, seed=0):
    images = torch.rand(2, 3, 228, 304, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return net.eval()(images)


def test_round_trip_gives_identical_predictions(tmp_path, small_net):
    path = save_checkpoint(tmp_path / "net.safetensors", small_net, {"trained": True, "steps": 3})
    loaded, info = load_checkpoint(path)
    assert loaded.config == small_net.config
    assert info == {"trained": True, "steps": 3}
    for a, b in zip(_outputs(small_net), _outputs(loaded)):
        assert torch.equal(a, b)


def test_half_precision_storage_loads_as_float32(tmp_path, small_net):
    path = save_checkpoint(tmp_path / "half.safetensors", small_net, dtype=torch.float16)
    loaded, _ = load_checkpoint(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for a, b in zip(_outputs(small_net), _outputs(loaded)):
        assert torch.allclose(a, b, atol=1e-2)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.safetensors does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep", [0, 7, 100, 0.5])
def test_truncated_file(tmp_path, small_net, keep):
    data = save_checkpoint(tmp_path / "full.safetensors", small_net).read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors is not a readable safetensors file"):
        load_checkpoint(cut)


def test_corrupt_file(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"this is not a checkpoint" * 100)
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_checkpoint(path)


def test_foreign_safetensors_without_our_metadata(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match=r"foreign\.safetensors has no 'eigen-depth' metadata"):
        load_checkpoint(path)


def _rewrite(path, tensors=None, **metadata_changes):
    """Re-save a checkpoint with changed tensors or metadata."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    metadata.update(metadata_changes)
    save_file(tensors if tensors is not None else load_file(str(path)), str(path), metadata=metadata)


def test_weights_that_do_not_match_the_config(tmp_path, small_net):
    path = save_checkpoint(tmp_path / "m.safetensors", small_net)
    _rewrite(path, config=json.dumps({"fc_width": 64, "dropout": 0.5}))
    with pytest.raises(CheckpointError, match=r"m\.safetensors: coarse\.fc6\.weight has shape \(32, 12288\)"):
        load_checkpoint(path)


def test_missing_and_unexpected_tensors(tmp_path, small_net):
    path = save_checkpoint(tmp_path / "k.safetensors", small_net)
    tensors = load_file(str(path))
    tensors["extra"] = tensors.pop("fine.conv3.bias")
    _rewrite(path, tensors)
    with pytest.raises(CheckpointError, match=r"missing \['fine.conv3.bias'\], unexpected \['extra'\]"):
        load_checkpoint(path)


def test_unknown_config_field_and_bad_version(tmp_path, small_net):
    path = save_checkpoint(tmp_path / "c.safetensors", small_net)
    _rewrite(path, config=json.dumps({"fc_width": 32, "dropout": 0.5, "layers": 9}))
    with pytest.raises(CheckpointError, match="invalid config"):
        load_checkpoint(path)
    _rewrite(path, format_version="99")
    with pytest.raises(CheckpointError, match="format version '99'"):
        load_checkpoint(path)


def test_non_finite_weights(tmp_path, small_net):
    path = save_checkpoint(tmp_path / "nan.safetensors", small_net)
    tensors = load_file(str(path))
    tensors["fine.conv2.weight"][0, 0, 0, 0] = float("nan")
    _rewrite(path, tensors)
    with pytest.raises(CheckpointError, match="fine.conv2.weight contains NaN"):
        load_checkpoint(path)


def test_the_shipped_networks_are_trained_and_fit_the_shipping_limits():
    from depth.checkpoint import checkpoint_files

    sizes, backbones = [], []
    for weights in depth.SHIPPED_WEIGHTS:
        net, info = load_checkpoint(weights)
        assert isinstance(net, EigenDepthNet) and isinstance(net.config, ModelConfig)
        assert info["trained"] is True and "synthetic" in info["trained_on"] and info["mean_depth_map"]
        assert info["output"] in ("fine", "coarse")
        backbones.append(net.config.backbone)
        sizes += [file.stat().st_size for file in checkpoint_files(weights)]
    assert backbones == ["efficientnet-lite0", "eigen"]  # the default first, the paper's network beside it
    assert max(sizes) <= 16 * 2**20 and sum(sizes) <= 64 * 2**20  # the shipping limits


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_weights_stay_within_half_a_step(small_net, bits):
    from depth.checkpoint import QUANT_GROUP, dequantize, quantize

    weight = small_net.coarse.fc6.weight.detach()
    stored, scale = quantize(weight, bits)
    assert stored.dtype == (torch.int8 if bits == 8 else torch.uint8)
    assert stored.shape == (32, 12288 * bits // 8)
    assert scale.dtype == torch.float16 and scale.shape == (32, 12288 // QUANT_GROUP)
    restored = dequantize(stored, scale)
    # symmetric rounding: at most half a step (scale) from the original, plus float16 scale rounding
    step = scale.float().repeat_interleave(QUANT_GROUP, dim=1)
    assert ((restored - weight).abs() <= 0.5 * step * 1.01).all()
    assert step.max() <= weight.abs().max() / (2 ** (bits - 1) - 1) * 1.01  # steps of the group's largest weight
    with pytest.raises(ValueError, match="8 or 4 bits, not 3"):
        quantize(weight, 3)


def test_int8_weights_load_close_and_mismatched_scales_are_named(tmp_path, small_net):
    path = save_checkpoint(tmp_path / "int8.safetensors", small_net, {"trained": True}, fc_bits={"fc6": 8})
    stored = load_file(path)
    assert stored["coarse.fc6.weight.int8"].dtype == torch.int8 and "coarse.fc6.weight" not in stored
    loaded, _ = load_checkpoint(path)
    for a, b in zip(_outputs(small_net), _outputs(loaded)):
        assert torch.allclose(a, b, atol=5e-3)  # 8 bits: 16x finer steps than 4
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    stored["coarse.fc6.weight.scale"] = stored["coarse.fc6.weight.scale"][:-1]  # one row's scales lost
    save_file(stored, str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match="the 8-bit weights of coarse.fc6.weight lack matching scales"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="8- and 4-bit storage apply to fc6, fc7, not fc9"):
        save_checkpoint(tmp_path / "bad.safetensors", small_net, fc_bits={"fc9": 8})


def test_int4_weights_load_close_and_every_part_keeps_under_the_limit(tmp_path, small_net):
    from depth.checkpoint import checkpoint_files, dequantize, quantize

    restored = dequantize(*quantize(small_net.coarse.fc6.weight.detach(), 4))
    limit = 400_000
    path = save_checkpoint(tmp_path / "small.safetensors", small_net, {"trained": True}, dtype=torch.float16,
                           fc_bits={"fc6": 4, "fc7": 4}, max_file_bytes=limit)
    files = checkpoint_files(path)
    assert len(files) >= 3 and files[1].name == "small-2.safetensors"
    assert all(file.stat().st_size <= limit + 16_384 for file in files)  # + each part's header
    loaded, info = load_checkpoint(path)
    assert info == {"trained": True}
    torch.testing.assert_close(loaded.coarse.fc6.weight, restored.to(torch.float16).float(), atol=1e-3, rtol=1e-2)
    for a, b in zip(_outputs(small_net), _outputs(loaded)):
        assert torch.allclose(a, b, atol=0.05)

    # a missing or foreign part is named
    files[-1].rename(tmp_path / "aside.safetensors")
    with pytest.raises(CheckpointError, match=r"part of checkpoint small\.safetensors: .*small-\d+\.safetensors does not exist"):
        load_checkpoint(path)
    other = save_checkpoint(tmp_path / "other.safetensors", small_net, max_file_bytes=limit)
    checkpoint_files(other)[1].rename(files[-1])
    with pytest.raises(CheckpointError, match="is not one of its parts"):
        load_checkpoint(path)
    # one of its own parts copied over another is named by where it sits and what it holds
    (tmp_path / "aside.safetensors").rename(files[-1])
    files[1].write_bytes(files[2].read_bytes())
    with pytest.raises(CheckpointError, match=rf"{files[1].name} holds the weights of another part \({files[2].name}\)"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        load_checkpoint(tmp_path)
