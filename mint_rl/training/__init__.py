"""Training MINT detectors: one trainer for any video dataset (DDP-aware), and evaluation."""

from mint_rl.training.config import TRAIN_PRESETS, TrainConfig, train_preset
from mint_rl.training.trainer import Trainer, TrainResult, epoch_batches, latest_checkpoint

__all__ = ["TRAIN_PRESETS", "TrainConfig", "train_preset", "Trainer", "TrainResult", "epoch_batches", "latest_checkpoint"]
