"""The backbone registry: a new backbone is one class and one registry line, and then the
network, training, checkpoints and the anatomy all work with it."""

import torch
from torch import nn

from depth import backbones
from depth.anatomy import record_layers
from depth.backbones import BACKBONES, Backbone
from depth.checkpoint import load_checkpoint
from depth.model import EigenDepthNet, ModelConfig
from depth.train import TrainConfig, initial_network
from depth.train import main as train


class ToyBackbone(nn.Sequential, Backbone):
    """Two convolutions down to a 4x3 map of 8 channels, its first one's map offered to the fine net."""

    normalization = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    feature_count = 8 * 3 * 4
    detail_channels = 4
    detail_strides = (16,)

    def __init__(self) -> None:
        super().__init__(nn.Conv2d(3, 4, 16, stride=16), nn.ReLU(), nn.Conv2d(4, 8, 4, stride=4), nn.ReLU())

    def extract(self, x, with_detail=False):
        first = self[1](self[0](x))
        return self[3](self[2](first)), [first] if with_detail else []

    def taps(self):
        return [("toy 1", "conv 16x16 stride 16, ReLU", self[1]), ("toy 2", "conv 4x4 stride 4, ReLU", self[3])]


def test_every_registered_backbone_keeps_the_contract():
    for name, kind in BACKBONES.items():
        module = kind()
        features, detail = module.extract(torch.rand(1, 3, 228, 304), with_detail=bool(kind.detail_channels))
        assert features.flatten(1).shape[1] == kind.feature_count, name
        assert sum(d.shape[1] for d in detail) == kind.detail_channels, name
        assert [tap[0] for tap in module.taps()] and isinstance(module, nn.Module)


def test_a_toy_backbone_added_to_the_registry_trains_saves_and_explains_itself(monkeypatch, learnable_folders, tmp_path):
    monkeypatch.setitem(backbones.BACKBONES, "toy", ToyBackbone)
    net = EigenDepthNet(ModelConfig(fc_width=8, backbone="toy", fine_reads_backbone=True))
    assert net.coarse.fc6.in_features == 96 and net.fine.detail.in_channels == 4
    cfg = TrainConfig(out=str(tmp_path / "run"), data="folder", data_path=str(learnable_folders[0]), train_frames=0,
                      val_frames=2, baseline_frames=2, backbone="toy", fine_reads_backbone=True, fc_width=8,
                      batch_size=2, coarse_samples=2, fine_samples=2, log_every=1, device="cpu")
    trained, _ = load_checkpoint(train(cfg))
    start = initial_network(cfg)  # the seeded weights the run began from
    assert trained.config.backbone == "toy"
    assert not torch.equal(trained.coarse.features[0].weight, start.coarse.features[0].weight)  # it trained
    with record_layers(trained) as recording, torch.no_grad():
        trained(torch.rand(1, 3, 228, 304))
    assert [layer.name for layer in recording.layers][:2] == ["toy 1", "toy 2"]
