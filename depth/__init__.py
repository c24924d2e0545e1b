"""Single-image depth estimation: Eigen, Puhrsch & Fergus 2014, multi-scale network.

    import depth
    model = depth.load_model()              # default weights in assets/, CUDA if available
    pred = model.predict("room.jpg")        # path, PIL image or (H, W, 3) uint8 array
    pred.depth                              # (H, W) float32 metres at the photo's resolution
    pred.fine, pred.coarse                  # each network's map (depth is one of them)
"""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .loss import paper_valid_mask, scale_invariant_loss
from .metrics import EIGEN_CROP, PAPER, Protocol, compute_metrics, mean_metrics
from .model import EigenDepthNet, ModelConfig
from .predict import (
    DEFAULT_WEIGHTS,
    SHIPPED_WEIGHTS,
    DepthModel,
    Prediction,
    UntrainedWeightsWarning,
    load_model,
    resolve_device,
)

__all__ = [
    "CheckpointError", "DEFAULT_WEIGHTS", "DepthModel", "EIGEN_CROP", "EigenDepthNet",
    "ModelConfig", "PAPER", "Prediction", "Protocol", "SHIPPED_WEIGHTS", "UntrainedWeightsWarning",
    "compute_metrics", "load_checkpoint", "load_model", "mean_metrics", "paper_valid_mask",
    "resolve_device", "save_checkpoint", "scale_invariant_loss",
]
