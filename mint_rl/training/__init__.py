"""Training keypoint detectors (MINT and the baselines): one trainer for any video dataset (DDP-aware), and evaluation."""

from mint_rl.training.config import (
    METHOD_TRAIN_PRESETS,
    TRAIN_PRESETS,
    TrainConfig,
    method_train_preset,
    train_preset,
)
from mint_rl.training.trainer import Trainer, TrainResult, epoch_batches, latest_checkpoint

__all__ = ["TRAIN_PRESETS", "METHOD_TRAIN_PRESETS", "TrainConfig", "train_preset", "method_train_preset", "Trainer",
           "TrainResult", "epoch_batches", "latest_checkpoint"]
