import dataclasses

import pytest
import torch
from safetensors import safe_open

from depth.model import EigenDepthNet, ModelConfig


def _output_shapes(net: EigenDepthNet, images: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Shape (C, H, W) or (features,) after every layer of interest, through forward hooks."""
    shapes: dict[str, tuple[int, ...]] = {}
    layers = {
        "coarse1": net.coarse.features[2], "coarse2": net.coarse.features[5],
        "coarse3": net.coarse.features[7], "coarse4": net.coarse.features[9],
        "coarse5": net.coarse.features[12], "coarse6": net.coarse.fc6, "coarse7": net.coarse.fc7,
        "fine1": net.fine.pool1, "fine2": net.fine.conv2, "fine3": net.fine.conv3,
    }
    for name, layer in layers.items():
        layer.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:])))
    net.fine.conv2.register_forward_pre_hook(
        lambda m, i: shapes.__setitem__("concat", tuple(i[0].shape[1:])))
    net(images)
    return shapes


def test_every_map_size_matches_the_paper_table():
    net = EigenDepthNet().eval()
    with torch.no_grad():
        shapes = _output_shapes(net, torch.rand(1, 3, 228, 304))
    # (channels, H, W); the paper's table lists W x H
    assert shapes == {
        "coarse1": (96, 27, 37), "coarse2": (256, 13, 18), "coarse3": (384, 13, 18),
        "coarse4": (384, 13, 18), "coarse5": (256, 6, 8), "coarse6": (4096,), "coarse7": (4070,),
        "fine1": (63, 55, 74), "concat": (64, 55, 74), "fine2": (64, 55, 74), "fine3": (1, 55, 74),
    }


def test_outputs_are_log_depth_maps_of_74x55():
    net = EigenDepthNet(ModelConfig(fc_width=16)).eval()
    coarse, fine = net(torch.rand(3, 3, 228, 304))
    assert coarse.shape == fine.shape == (3, 1, 55, 74)


def test_parameter_count_is_the_papers():
    def conv(k, c_in, c_out):
        return k * k * c_in * c_out + c_out

    def fc(n_in, n_out):
        return n_in * n_out + n_out

    coarse = (conv(11, 3, 96) + conv(5, 96, 256) + conv(3, 256, 384) + conv(3, 384, 384)
              + conv(3, 384, 256) + fc(12288, 4096) + fc(4096, 4070))
    fine = conv(9, 3, 63) + conv(5, 64, 64) + conv(5, 64, 1)
    net = EigenDepthNet()
    assert sum(p.numel() for p in net.coarse.parameters()) == coarse
    assert sum(p.numel() for p in net.fine.parameters()) == fine
    assert coarse + fine == 70_877_171  # "about 71 M"


def test_fc_width_is_configurable():
    net = EigenDepthNet(ModelConfig(fc_width=100))
    assert net.coarse.fc6.out_features == 100 and net.coarse.fc7.in_features == 100


def test_config_is_frozen_and_validated():
    config = ModelConfig()
    assert config.fc_width == 4096 and config.dropout == 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.fc_width = 10  # type: ignore[misc]
    with pytest.raises(ValueError, match="fc_width"):
        ModelConfig(fc_width=0)
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig(dropout=1.0)


def test_only_coarse6_has_dropout():
    net = EigenDepthNet()
    dropouts = [name for name, m in net.named_modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == ["coarse.dropout"]


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = EigenDepthNet(ModelConfig(fc_width=32)).train()
    coarse, fine = net(torch.rand(2, 3, 228, 304))
    (coarse.square().mean() + fine.square().mean()).backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_coarse_net_can_be_frozen_while_fine_net_trains():
    torch.manual_seed(0)
    net = EigenDepthNet(ModelConfig(fc_width=32))
    net.coarse.requires_grad_(False)
    net.coarse.eval()
    net.fine.train()
    coarse_before = {k: v.clone() for k, v in net.coarse.state_dict().items()}
    fine_before = {k: v.clone() for k, v in net.fine.state_dict().items()}
    optimizer = torch.optim.SGD(net.fine.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        _, fine = net(torch.rand(2, 3, 228, 304))
        optimizer.zero_grad()
        fine.square().mean().backward()
        optimizer.step()
    assert all(p.grad is None for p in net.coarse.parameters())
    assert all(torch.equal(coarse_before[k], v) for k, v in net.coarse.state_dict().items())
    assert all(not torch.equal(fine_before[k], v) for k, v in net.fine.state_dict().items())


def test_the_fine_net_draws_no_ring_along_the_border():
    from depth.model import FineNet

    torch.manual_seed(0)
    images = torch.full((1, 3, 228, 304), 0.4)
    coarse = torch.full((1, 1, 55, 74), 1.2)
    with torch.no_grad():
        out = FineNet()(images, coarse)
    assert (out - out[..., 27, 37]).abs().max().item() < 1e-5  # uniform input, uniform map: edges padded by their values


@pytest.mark.parametrize("padding, loads", [("replicate", True), ("zeros", False)])
def test_checkpoints_that_name_the_fine_padding_load_only_if_it_is_todays(tmp_path, padding, loads):
    import json

    from safetensors.torch import load_file, save_file

    from depth.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    net = EigenDepthNet(ModelConfig(fc_width=8))
    path = save_checkpoint(tmp_path / "old.safetensors", net)
    with safe_open(str(path), "pt") as stored:
        metadata = dict(stored.metadata())
    config = json.loads(metadata["config"]) | {"fine_padding": padding}  # as written 2026-12-01 to -07
    save_file(load_file(path), path, metadata={**metadata, "config": json.dumps(config)})
    if loads:
        assert load_checkpoint(path)[0].config == net.config
    else:
        with pytest.raises(CheckpointError, match="pads with zeros"):
            load_checkpoint(path)


def test_the_fine_net_can_read_the_backbone_s_stride_8_and_16_maps():
    net = EigenDepthNet(ModelConfig(fc_width=16, backbone="efficientnet-lite0", fine_reads_backbone=True)).eval()
    shapes = {}
    net.fine.detail.register_forward_hook(lambda m, i, o: shapes.__setitem__("detail", tuple(o.shape[1:])))
    net.fine.conv2.register_forward_pre_hook(lambda m, i: shapes.__setitem__("concat", tuple(i[0].shape[1:])))
    with torch.no_grad():
        coarse, detail = net.coarse(torch.rand(2, 3, 228, 304))
        outputs = net(torch.rand(2, 3, 228, 304))
    assert [tuple(m.shape) for m in detail] == [(2, 40, 29, 38), (2, 112, 15, 19)]  # Lite0 blocks 4 and 10
    assert shapes == {"detail": (32, 55, 74), "concat": (63 + 1 + 32, 55, 74)}
    assert [tuple(o.shape) for o in outputs] == [(2, 1, 55, 74)] * 2
    # without the field the coarse net hands over nothing, and the paper's backbone cannot
    assert EigenDepthNet(ModelConfig(fc_width=16, backbone="efficientnet-lite0")).coarse(
        torch.rand(1, 3, 228, 304))[1] == []
    with pytest.raises(ValueError, match="fine_reads_backbone needs a backbone with maps for the fine net, not .eigen."):
        ModelConfig(fine_reads_backbone=True)


def test_detail_maps_are_sampled_at_the_output_cells_centres():
    from depth.model import _at_output_cells

    for stride in (8, 16):
        height, width = -(-228 // stride), -(-304 // stride)
        centres_x = stride * (torch.arange(width) + 0.5)  # input x of each map cell's centre
        centres_y = stride * (torch.arange(height) + 0.5)
        maps = torch.stack([centres_x.expand(height, width), centres_y[:, None].expand(height, width)])[None]
        sampled = _at_output_cells(maps, stride)[0]
        x, y = 3.5 + 4 * torch.arange(74) + 2, 3.5 + 4 * torch.arange(55) + 2  # output cell centres
        inside_x = (x >= centres_x[0]) & (x <= centres_x[-1])  # outside: the border's value
        inside_y = (y >= centres_y[0]) & (y <= centres_y[-1])
        assert torch.allclose(sampled[0, 0, inside_x], x[inside_x], atol=1e-3)
        assert torch.allclose(sampled[1, inside_y, 0], y[inside_y], atol=1e-3)
        assert torch.allclose(sampled[0, 0, ~inside_x], centres_x[0].where(x[~inside_x] < 100, centres_x[-1]))
