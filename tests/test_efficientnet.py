"""The ImageNet-pretrained EfficientNet-Lite0 backbone: weights from the installed package,
checked; the same outputs as the packages' own model; map sizes; training with them."""

import dataclasses
import importlib.util

import pytest
import torch

from depth.backbones import efficientnet
from depth.backbones.efficientnet import VARIANTS, EfficientNetLite, pretrained_state
from depth.checkpoint import load_checkpoint, save_checkpoint
from depth.model import INPUT_HEIGHT, INPUT_WIDTH, OUTPUT_HEIGHT, OUTPUT_WIDTH, EigenDepthNet, ModelConfig
from depth.train import TrainConfig, initial_network


@pytest.mark.parametrize("variant, channels, blocks", [("efficientnet-lite0", 320, 16)])
def test_stride_32_map_of_the_network_input(variant, channels, blocks):
    net = EfficientNetLite(variant).eval()
    assert len(net._blocks) == VARIANTS[variant].blocks == blocks
    with torch.no_grad():
        assert net(torch.zeros(1, 3, INPUT_HEIGHT, INPUT_WIDTH)).shape == (1, channels, 8, 10)
        assert net(torch.zeros(1, 3, 224, 224)).shape == (1, channels, 7, 7)
    coarse = EigenDepthNet(ModelConfig(fc_width=32, backbone=variant)).eval()
    coarse_map, fine_map = coarse(torch.rand(2, 3, INPUT_HEIGHT, INPUT_WIDTH))
    assert coarse_map.shape == fine_map.shape == (2, 1, OUTPUT_HEIGHT, OUTPUT_WIDTH)
    assert coarse.coarse.fc6.in_features == channels * 8 * 10
    with pytest.raises(ValueError, match="efficientnet-lite0"):
        EfficientNetLite("efficientnet-lite9")


@pytest.mark.parametrize("variant", VARIANTS)
def test_weights_match_the_packages_own_model(variant):
    reference = pytest.importorskip("efficientnet_lite_pytorch")
    ours = EfficientNetLite(variant)
    ours.load_state_dict(pretrained_state(variant))  # strict: every key maps
    theirs = reference.EfficientNet.from_pretrained(variant, weights_path=str(efficientnet.weights_path(variant)))
    ours.eval(), theirs.eval()
    size = theirs._global_params.image_size  # at its own size the package's fixed padding is TensorFlow's "same"
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        expected = theirs._swish(theirs._bn0(theirs._conv_stem(x)))
        for block in theirs._blocks:
            expected = block(expected)
        assert torch.allclose(ours(x), expected, atol=1e-5)


def test_a_bad_checksum_and_a_missing_package_are_clear_errors(monkeypatch):
    lite0 = VARIANTS["efficientnet-lite0"]
    monkeypatch.setitem(VARIANTS, "efficientnet-lite0", dataclasses.replace(lite0, sha256="0" * 64))
    with pytest.raises(ValueError, match="sha256"):
        efficientnet.weights_path("efficientnet-lite0")
    monkeypatch.setitem(VARIANTS, "efficientnet-lite0", dataclasses.replace(lite0, package="no_such_efficientnet_package"))
    with pytest.raises(ModuleNotFoundError, match="efficientnet-lite0 needs the package no-such-efficientnet-package==0.1.0"):
        efficientnet.weights_path("efficientnet-lite0")
    assert importlib.util.find_spec("no_such_efficientnet_package") is None


def test_a_new_run_starts_from_imagenet_with_frozen_batch_norm_and_early_blocks():
    net = initial_network(TrainConfig(fc_width=32, backbone="efficientnet-lite0", frozen_blocks=3))
    features = net.coarse.features
    stem = pretrained_state()["_conv_stem.weight"]
    assert torch.equal(features._conv_stem.weight, stem)
    assert not features._conv_stem.weight.requires_grad and not features._blocks[2]._project_conv.weight.requires_grad
    assert features._blocks[3]._project_conv.weight.requires_grad
    net.train()
    assert all(not m.training for m in features.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert net.coarse.fc6.training
    with pytest.raises(ValueError, match="frozen_blocks"):
        initial_network(TrainConfig(fc_width=32, frozen_blocks=2))  # the paper net has no blocks to freeze
    with pytest.raises(ValueError, match="0 to 16"):
        initial_network(TrainConfig(fc_width=32, backbone="efficientnet-lite0", frozen_blocks=17))


def test_checkpoints_record_the_backbone_and_load_strictly(tmp_path):
    net = EigenDepthNet(ModelConfig(fc_width=32, backbone="efficientnet-lite0"))
    path = save_checkpoint(tmp_path / "lite.safetensors", net, {"trained": True}, dtype=torch.float16)
    loaded, _ = load_checkpoint(path)
    assert loaded.config.backbone == "efficientnet-lite0"
    images = torch.rand(1, 3, INPUT_HEIGHT, INPUT_WIDTH)
    with torch.no_grad():
        assert torch.allclose(loaded.eval()(images)[0], net.half().float().eval()(images)[0], atol=1e-4)
    with pytest.raises(ValueError, match="--backbone efficientnet-lite0"):
        initial_network(TrainConfig(fc_width=32, init=str(path)))


def test_a_short_run_trains_the_pretrained_backbone(tmp_path):
    from depth.train import main

    cfg = TrainConfig(out=str(tmp_path / "run"), data="synthetic", train_frames=8, val_frames=4, fc_width=32,
                      backbone="efficientnet-lite0", frozen_blocks=8, batch_size=4, coarse_samples=8,
                      fine_samples=4, log_every=1, val_every=10**9, checkpoint_every=10**9, device="cpu",
                      baseline_frames=4)
    loaded, info = load_checkpoint(main(cfg))
    assert loaded.config.backbone == "efficientnet-lite0" and info["trained"]
    first = pretrained_state()
    assert torch.equal(loaded.coarse.features._blocks[0]._project_conv.weight, first["_blocks.0._project_conv.weight"])
    assert not torch.equal(loaded.coarse.features._blocks[15]._project_conv.weight,
                           first["_blocks.15._project_conv.weight"])
