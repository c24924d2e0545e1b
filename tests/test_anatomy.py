"""The networks' insides: recorded layers match the modules, the diagram shows their real
sizes, and coarse 7's template components recover templates that are really there."""

import threading

import numpy as np
import pytest
import torch
from torch import nn

from demo.diagram import network_diagram
from depth.anatomy import coarse7_components, layer_table, record_layers
from depth.backbones import BACKBONES
from depth.model import EigenDepthNet, ModelConfig
from depth.visualize import figure_pixels


def _step_by_step(net: EigenDepthNet, images: torch.Tensor) -> dict[str, tuple[int, int, int]]:
    """Each layer's output (C, H, W), by running the modules one by one (no hooks)."""
    coarse, fine = net.coarse, net.fine
    shapes = {}
    x = coarse.normalize(images)
    features = coarse.features
    if isinstance(features, nn.Sequential):
        index = 0
        for position, module in enumerate(features):
            x = module(x)
            last = position + 1 == len(features) or isinstance(features[position + 1], nn.Conv2d)
            if last:
                index += 1
                shapes[f"coarse {index}"] = tuple(x.shape[1:])
    else:
        x = torch.nn.functional.relu6(features._bn0(features._conv_stem(x)))
        shapes["stem"] = tuple(x.shape[1:])
        outputs = [block._project_conv.out_channels for block in features._blocks]
        stage = 0
        for position, block in enumerate(features._blocks):
            x = block(x)
            if position + 1 == len(outputs) or outputs[position + 1] != outputs[position]:  # a stage's last block
                stage += 1
                shapes[f"stage {stage}"] = tuple(x.shape[1:])
    hidden = coarse.fc6(x.flatten(1))
    shapes["coarse 6"] = (hidden.shape[1], 1, 1)
    coarse_out = coarse.fc7(torch.relu(hidden)).view(-1, 1, 55, 74)
    shapes["coarse 7"] = tuple(coarse_out.shape[1:])
    y = fine.pool1(torch.relu(fine.conv1(fine.normalize(images))))
    shapes["fine 1"] = tuple(y.shape[1:])
    y = torch.cat([y, coarse_out], dim=1)
    shapes["concat"] = tuple(y.shape[1:])
    y = fine.conv2(y)
    shapes["fine 2"] = tuple(y.shape[1:])
    shapes["fine 3"] = tuple(fine.conv3(torch.relu(y)).shape[1:])
    return shapes


@pytest.mark.parametrize("backbone", BACKBONES)
def test_the_diagram_shows_the_sizes_the_modules_output(backbone):
    torch.manual_seed(0)
    net = EigenDepthNet(ModelConfig(fc_width=32, backbone=backbone)).eval()
    with torch.no_grad():
        expected = _step_by_step(net, torch.rand(1, 3, 228, 304))
    layers = layer_table(net)
    assert [layer.name for layer in layers] == list(expected)
    assert {layer.name: (layer.channels, layer.height, layer.width) for layer in layers} == expected
    figure = network_diagram(layers)
    texts = [text.get_text() for text in figure.axes[0].texts]
    for layer in layers:
        assert layer.name in texts and layer.size in texts  # every box: its name and real size
    assert figure_pixels(figure).dtype == np.uint8


def test_the_paper_network_s_table():
    layers = {layer.name: layer for layer in layer_table(EigenDepthNet(ModelConfig(fc_width=32)))}
    assert layers["coarse 1"].size == "96 × 37×27" and layers["coarse 5"].size == "256 × 8×6"
    assert layers["coarse 1"].operation == "conv 11x11 stride 4, ReLU, max-pool 2x2"
    assert layers["coarse 6"].size == "32" and layers["fine 3"].size == "1 × 74×55"
    assert layers["concat"].channels == 64


def test_recording_keeps_the_activations_asked_for_and_removes_its_hooks(small_net):
    images = torch.rand(2, 3, 228, 304)
    with torch.no_grad(), record_layers(small_net, keep={"coarse 6", "fine 3"}) as recording:
        coarse, fine = small_net(images)
    assert set(recording.activations) == {"coarse 6", "fine 3"} and len(recording.layers) == 11
    assert torch.equal(recording.activations["fine 3"], fine)  # the whole batch, as it ran
    assert recording.activations["coarse 6"].shape == (2, 32, 1, 1)
    small_net(images)  # outside the block: nothing is recorded any more
    assert len(recording.layers) == 11
    assert all(not module._forward_hooks and not module._forward_pre_hooks for module in small_net.modules())


def test_recording_ignores_other_threads(small_net):
    with torch.no_grad(), record_layers(small_net) as recording:
        other = threading.Thread(target=lambda: small_net(torch.rand(1, 3, 228, 304)))
        other.start()
        other.join()
    assert recording.layers == []


def test_components_recover_the_templates_coarse7_holds():
    net = EigenDepthNet(ModelConfig(fc_width=64)).eval()
    v, u = np.mgrid[0:55, 0:74]
    floor = torch.tensor((v / 54.0).ravel(), dtype=torch.float32)  # near at the bottom
    sides = torch.tensor((u / 73.0 - 0.5).ravel(), dtype=torch.float32)  # left against right
    rng = torch.Generator().manual_seed(0)
    mix = torch.randn(2, 64, generator=rng)  # how much of each template every unit holds
    weights = 3 * floor[:, None] * mix[0] + sides[:, None] * mix[1]
    with torch.no_grad():
        net.coarse.fc7.weight.copy_(weights + 1e-4 * torch.randn(4070, 64, generator=rng))
    components, share = coarse7_components(net, count=3)
    assert components.shape == (3, 55, 74) and share[:2].sum() > 0.999 and share[2] < 1e-3
    spanned = torch.tensor(components[:2].reshape(2, -1), dtype=torch.float64)
    for template in (floor.double(), sides.double()):  # each lies in the span of the first two components
        residual = template - spanned.T @ (spanned @ template)
        assert residual.norm() < 0.05 * template.norm()
    assert np.allclose(np.linalg.norm(components.reshape(3, -1), axis=1), 1, atol=1e-5)


def test_usage_weights_leave_dead_units_out():
    net = EigenDepthNet(ModelConfig(fc_width=8)).eval()
    usage = torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0])  # one live unit
    components, share = coarse7_components(net, count=2, usage=usage)
    column = net.coarse.fc7.weight[:, 0].detach().numpy()
    # with one live column, centred over the units, one component explains everything
    assert share[0] > 0.999
    assert abs(abs(np.corrcoef(components[0].ravel(), column)[0, 1]) - 1) < 1e-4
    with pytest.raises(ValueError, match="one value per unit"):
        coarse7_components(net, usage=torch.ones(3))


def test_a_fine_net_reading_the_backbone_shows_its_detail_layer():
    net = EigenDepthNet(ModelConfig(fc_width=32, backbone="efficientnet-lite0", fine_reads_backbone=True))
    layers = layer_table(net)
    names = [layer.name for layer in layers]
    assert names[names.index("fine 1") + 1: names.index("fine 2")] == ["detail", "concat"]
    by_name = {layer.name: layer for layer in layers}
    assert by_name["detail"].size == "32 × 74×55" and by_name["concat"].channels == 96
    assert by_name["detail"].operation.startswith("the backbone's stride-8 and stride-16 maps")
    texts = [text.get_text() for text in network_diagram(layers).axes[0].texts]
    assert "detail" in texts and "32 × 74×55" in texts
