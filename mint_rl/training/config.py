"""Optimisation settings of the detector trainer, with the authors' presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from mint_rl._config import ConfigMixin
from mint_rl.data.augment import AppearanceAugment


@dataclass
class TrainConfig(ConfigMixin):
    """How :class:`mint_rl.training.Trainer` optimises a detector.

    Defaults are the authors' CLEVRER run (Adam, lr 1e-3, weight decay 1e-5, gradient norm
    clipped at 10, batch 32, 100 epochs, windows of 3 frames); :data:`TRAIN_PRESETS` has the
    MAGICAL run too (batch 16, 20 epochs, weight decay 1e-4).

    Attributes:
        epochs: passes over the training windows (ignored when ``steps`` is set).
        steps: total optimiser steps; ``None`` means ``epochs * steps_per_epoch``.
        batch_size: windows per optimiser step **per process**.
        window: frames per training sample (``T``; the temporal losses need ``T >= 2``).
        lr, weight_decay, grad_clip: Adam and clipping settings (``grad_clip=None``: no clipping,
            as in the Transporter runs).
        seed: seeds model initialisation and the data order (epoch ``e`` is shuffled with
            ``seed * 100_003 + e``), so a resumed run sees the same batches.
        log_every: steps between tensorboard scalars.
        image_every: steps between keypoint-overlay images in tensorboard (0: never).
        checkpoint_every: steps between checkpoints (a final one is always written).
        keep_checkpoints: how many step checkpoints to keep on disk.
        eval_every: steps between held-out evaluations when evaluation clips are given (0: only
            at the end).
        device: torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``); under ``torchrun``
            with CUDA each process uses ``cuda:LOCAL_RANK``.
        num_threads: torch intra-op threads (``None``: leave torch's default).
        economy_ramp: ``(start, end)`` steps: detection first, economy later. The weight of the
            redundancy loss (``LossConfig.lambda_redundancy``) is 0 before ``start`` and rises
            linearly to its configured value at ``end`` (``None``: the full weight from step 0).
        augment: appearance augmentation of every training window
            (:class:`mint_rl.data.augment.AppearanceAugment`: channel permutations, brightness,
            contrast; one draw per window from the step's generator, so resumes repeat it);
            ``None`` (default): the frames as they are.
    """

    epochs: int = 100
    steps: Optional[int] = None
    batch_size: int = 32
    window: int = 3
    lr: float = 1e-3
    weight_decay: float = 1e-5
    grad_clip: Optional[float] = 10.0
    seed: int = 0
    log_every: int = 10
    image_every: int = 250
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    eval_every: int = 0
    device: str = "cpu"
    num_threads: Optional[int] = None
    economy_ramp: Optional[tuple[int, int]] = None
    augment: Optional[AppearanceAugment] = None

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):  # from_dict / a checkpoint's config
            self.augment = AppearanceAugment.from_dict(self.augment)
        if self.augment is not None and not isinstance(self.augment, AppearanceAugment):
            raise TypeError(f"TrainConfig.augment: expected an AppearanceAugment, a dict of its fields or None, "
                            f"got {type(self.augment).__name__}")
        if self.economy_ramp is not None:
            ramp = tuple(int(v) for v in self.economy_ramp)
            if len(ramp) != 2 or ramp[0] < 0 or ramp[1] < ramp[0]:
                raise ValueError(f"TrainConfig.economy_ramp: expected (start, end) with 0 <= start <= end, got {self.economy_ramp!r}")
            self.economy_ramp = ramp  # type: ignore[assignment]
        for name in ("epochs", "batch_size", "window", "log_every", "checkpoint_every", "keep_checkpoints"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name}: expected an integer >= 1, got {getattr(self, name)!r}")
        if self.steps is not None and int(self.steps) < 1:
            raise ValueError(f"TrainConfig.steps: expected None or >= 1, got {self.steps!r}")
        for name in ("image_every", "eval_every"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"TrainConfig.{name}: expected >= 0, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr: expected > 0, got {self.lr!r}")
        if self.weight_decay < 0 or (self.grad_clip is not None and not self.grad_clip > 0):
            raise ValueError(
                f"TrainConfig: expected weight_decay >= 0 and grad_clip None or > 0, got {self.weight_decay!r}, {self.grad_clip!r}"
            )


#: The authors' optimisation settings per dataset (NOTES.md, "Authors' hyperparameters").
TRAIN_PRESETS: dict[str, TrainConfig] = {
    "clevrer": TrainConfig(batch_size=32, epochs=100, weight_decay=1e-5),
    "magical": TrainConfig(batch_size=16, epochs=20, weight_decay=1e-4),
}


def train_preset(name: str, **overrides: Any) -> TrainConfig:
    """A copy of a named :data:`TRAIN_PRESETS` entry with optional overrides.

    Example:
        >>> train_preset("magical", steps=10).batch_size
        16
    """
    if name not in TRAIN_PRESETS:
        raise ValueError(f"unknown train preset {name!r}; expected one of {sorted(TRAIN_PRESETS)}")
    return dataclasses.replace(TRAIN_PRESETS[name], **overrides)


#: The baselines' optimisation settings as the MINT authors ran them (NOTES.md, "Baselines"):
#: Transporter and Transporter-modified: Adam lr 1e-4, batch 8, (source, target) pairs drawn
#: from 8-frame windows, 100 epochs; Video Structure: Adam lr 1e-3, weight decay 5e-5, gradient
#: norm clipped at 1.0, 16-frame windows, batch 16, 100 epochs.
METHOD_TRAIN_PRESETS: dict[str, TrainConfig] = {
    "transporter": TrainConfig(batch_size=8, window=8, epochs=100, lr=1e-4, weight_decay=0.0, grad_clip=None),
    "transporter-modified": TrainConfig(batch_size=8, window=8, epochs=100, lr=1e-4, weight_decay=0.0, grad_clip=None),
    "video-structure": TrainConfig(batch_size=16, window=16, epochs=100, lr=1e-3, weight_decay=5e-5, grad_clip=1.0),
}


def method_train_preset(method: str, dataset: str = "clevrer", **overrides: Any) -> TrainConfig:
    """Optimisation settings of a keypoint method: MINT's per dataset (:data:`TRAIN_PRESETS`), a
    baseline's as the MINT authors ran it (:data:`METHOD_TRAIN_PRESETS`, the same for every dataset).

    Example:
        >>> method_train_preset("video-structure", steps=5).window
        16
        >>> method_train_preset("mint", "magical").batch_size
        16
    """
    if method == "mint":
        return train_preset(dataset, **overrides)
    if method not in METHOD_TRAIN_PRESETS:
        raise ValueError(f"unknown keypoint method {method!r}; expected 'mint' or one of {sorted(METHOD_TRAIN_PRESETS)}")
    return dataclasses.replace(METHOD_TRAIN_PRESETS[method], **overrides)
