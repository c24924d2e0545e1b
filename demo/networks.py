"""The networks the app offers, by the names users see.

The app runs one or more loaded models: the project ships the paper's network (its coarse
layers 1-5 as in the paper) and one whose coarse layers are an ImageNet-pretrained
EfficientNet-Lite0, and a user can choose between them in the page and through the API.
"""

from __future__ import annotations

from collections.abc import Mapping

from depth import DepthModel

BACKBONE_NAMES = {"eigen": "paper network", "efficientnet-lite0": "ImageNet-pretrained coarse"}


def network_name(model: DepthModel) -> str:
    """What the page calls a model's network: by its coarse layers."""
    backbone = getattr(getattr(model.net, "config", None), "backbone", "eigen")
    return BACKBONE_NAMES.get(backbone, backbone)


def as_networks(models: DepthModel | Mapping[str, DepthModel]) -> dict[str, DepthModel]:
    """{name: model}, the first the default; one model is named by its network."""
    if isinstance(models, DepthModel):
        return {network_name(models): models}
    if not models:
        raise ValueError("the app needs at least one model")
    return dict(models)


def choose(networks: Mapping[str, DepthModel], name: str | None) -> DepthModel:
    """The model called `name` (None: the default). ValueError naming the choices otherwise."""
    if name is None:
        return next(iter(networks.values()))
    if name not in networks:
        raise ValueError(f"unknown network {name!r}; choose one of {', '.join(networks)}")
    return networks[name]
