"""Training the keypoint forward model on windows of keypoint sequences.

The loss (:func:`forward_model_loss`) is a Huber loss on the predicted positions of the
keypoints that are active both at the last input frame and at the target frame (an inactive
keypoint's coordinates are stale, so they are never a target), plus a binary cross-entropy on
the predicted status. Adam, gradient-norm clipping, shuffled mini-batches; the authors' code
used lr 1e-3, weight decay 1e-6, clip 10, batch 32, 50 epochs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from mint_rl.dynamics.data import ForecastWindows
from mint_rl.dynamics.model import UNKNOWN_ACTION, ForwardPrediction, KeypointForwardModel

__all__ = ["DynamicsTrainConfig", "forward_model_loss", "augment_windows", "train_forward_model"]


@dataclass
class DynamicsTrainConfig:
    """Optimisation settings (defaults: the authors' Task II run, where they exist).

    Attributes:
        epochs, batch_size, lr, weight_decay, grad_clip: Adam and the schedule (50 / 32 / 1e-3 /
            1e-6 / 10 in the authors' code).
        position_scale: the Huber loss compares ``(predicted - target) / position_scale``
            (normalised units; 0.02 is 1.6 px across a 160-px-wide frame, 1 px at 96 px): errors
            below it are squared, larger ones (keypoint jumps) count linearly.
        huber_delta: where (in units of ``position_scale``) the Huber loss turns from squared
            to linear; a large value makes it a squared error (the mean displacement, where the
            Huber loss fits something between the mean and the median).
        status_weight: weight of the status cross-entropy.
        action_dropout: with action conditioning, the fraction of training windows whose last
            ``j >= 1`` actions (``j`` uniform) are replaced by the unknown token, so the model
            also forecasts when future actions are not known yet (rollout ends).
        max_step: targets farther than ``max_step * h`` (normalised units) from the last input
            position are left out of the position loss as detector jumps (a keypoint hopping to
            another object), which no dynamics can forecast; ``None`` keeps every target. 0.15 is
            12 px per frame across 160 px (CLEVRER-like objects move at most ~5 px per frame),
            7 px across 96 px (MAGICAL's robot moves at most ~5 px per step).
        flip_x: also train on every window mirrored left-right (``x -> -x``); only for scenes
            that are mirror-symmetric and have no actions (CLEVRER-like videos).
        seed: initialisation and batch-order seed.
    """

    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-6
    grad_clip: float = 10.0
    position_scale: float = 0.02
    huber_delta: float = 1.0
    status_weight: float = 0.1
    action_dropout: float = 0.2
    max_step: float | None = 0.15
    flip_x: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"DynamicsTrainConfig: epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if not (self.lr > 0 and self.position_scale > 0 and self.grad_clip > 0):
            raise ValueError("DynamicsTrainConfig: lr, position_scale and grad_clip must be > 0")
        if not 0.0 <= self.action_dropout <= 1.0:
            raise ValueError(f"DynamicsTrainConfig.action_dropout: expected in [0, 1], got {self.action_dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def forward_model_loss(
    prediction: ForwardPrediction,
    history: Tensor,
    targets: Tensor,
    position_scale: float = 0.02,
    status_weight: float = 0.1,
    max_step: float | None = None,
    huber_delta: float = 1.0,
) -> tuple[Tensor, dict[str, float]]:
    r"""Forecasting loss of one batch.

    .. math::

        L = \frac{\sum_{n,h,k} w_{nhk}\, \mathrm{Huber}\big((\hat p_{nhk} - p_{nhk}) / s\big)}
                 {\max(1, \sum w_{nhk})}
            + \lambda_S\, \mathrm{BCE}(\hat s_{nhk}, [s_{nhk} > 0.5])

    with ``w = 1`` iff keypoint ``k`` is active at the last input frame and at target frame
    ``h`` (the Huber term summed over ``x`` and ``y``, threshold ``huber_delta``), ``s = position_scale``;
    with ``max_step`` also ``w = 0`` where the target lies farther than ``max_step * h`` from the
    last input position (a detector jump).

    Args:
        prediction: the model's output, positions ``(B, H, K, 2)``, status logits ``(B, H, K)``.
        history: ``(B, T, K, 3)`` the inputs; targets: ``(B, H, K, 3)`` the next ``H`` frames.

    Returns:
        The loss and its parts ``{"position", "status", "weight"}`` as floats.

    Example:
        >>> hist = torch.zeros(1, 4, 2, 3); hist[..., 2] = 1
        >>> tgt = torch.zeros(1, 3, 2, 3); tgt[..., 2] = 1
        >>> pred = ForwardPrediction(torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2), 20.0))
        >>> loss, parts = forward_model_loss(pred, hist, tgt)
        >>> round(float(loss), 6), parts["weight"]
        (0.0, 6.0)
    """
    active_last = history[:, -1, :, 2] > 0.5  # (B, K)
    active_target = targets[..., 2] > 0.5  # (B, H, K)
    keep = active_last[:, None, :] & active_target
    if max_step is not None:
        steps = torch.arange(1, targets.shape[1] + 1, device=targets.device, dtype=targets.dtype).view(1, -1, 1)
        moved = torch.linalg.norm(targets[..., :2] - history[:, -1:, :, :2], dim=-1)
        keep = keep & (moved <= max_step * steps)
    weight = keep.to(prediction.positions.dtype)
    diff = (prediction.positions - targets[..., :2]) / position_scale
    huber = F.huber_loss(diff, torch.zeros_like(diff), reduction="none", delta=huber_delta).sum(-1)  # (B, H, K)
    position = (huber * weight).sum() / weight.sum().clamp(min=1.0)
    status = F.binary_cross_entropy_with_logits(prediction.status_logits, active_target.to(diff.dtype))
    loss = position + status_weight * status
    return loss, {"position": float(position.detach()), "status": float(status.detach()), "weight": float(weight.sum())}


def augment_windows(windows: ForecastWindows, flip_x: bool) -> ForecastWindows:
    """The windows plus, with ``flip_x``, their left-right mirror images (``x -> -x``).

    Example:
        >>> w = ForecastWindows(torch.ones(1, 4, 2, 3), torch.ones(1, 3, 2, 3), None, torch.zeros(1), torch.zeros(1))
        >>> a = augment_windows(w, True)
        >>> len(a), a.inputs[1, 0, 0].tolist()
        (2, [-1.0, 1.0, 1.0])
    """
    if not flip_x:
        return windows
    if windows.actions is not None:
        raise ValueError("augment_windows: flip_x would mirror the scene but not the actions; use it for videos only")
    sign = torch.tensor([-1.0, 1.0, 1.0])
    return ForecastWindows(torch.cat([windows.inputs, windows.inputs * sign]),
                           torch.cat([windows.targets, windows.targets * sign]), None,
                           torch.cat([windows.sequence, windows.sequence]), torch.cat([windows.t, windows.t]))


def _drop_future_actions(actions: Tensor, fraction: float, generator: torch.Generator) -> Tensor:
    """Replace a random suffix (length 1..H) of the actions of a random ``fraction`` of rows by unknown."""
    if fraction <= 0:
        return actions
    b, h = actions.shape
    rows = torch.rand(b, generator=generator) < fraction
    keep = torch.randint(0, h, (b,), generator=generator)  # keep the first `keep` actions
    drop = rows[:, None] & (torch.arange(h)[None, :] >= keep[:, None])
    return torch.where(drop, torch.full_like(actions, UNKNOWN_ACTION), actions)


def train_forward_model(
    model: KeypointForwardModel,
    windows: ForecastWindows,
    config: DynamicsTrainConfig | None = None,
    *,
    writer: Any = None,
    tag: str = "dynamics",
    progress: bool = True,
) -> dict[str, list[float]]:
    """Fit ``model`` to ``windows`` (in place); returns the per-epoch mean losses.

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter`` (or None) receiving
            ``{tag}/loss``, ``{tag}/position``, ``{tag}/status`` per epoch.
        progress: a tqdm bar over epochs.

    Raises:
        ValueError: windows whose shape or actions do not fit the model.
    """
    from tqdm.auto import tqdm

    config = config or DynamicsTrainConfig()
    windows = augment_windows(windows, config.flip_x)
    if len(windows) == 0:
        raise ValueError("train_forward_model: expected at least one window, got none")
    model.check_history(windows.inputs[:1])
    if windows.targets.shape[1] != model.config.horizon:
        raise ValueError(f"train_forward_model: windows have horizon {windows.targets.shape[1]}, the model "
                         f"{model.config.horizon}")
    if model.action_conditioned and windows.actions is None:
        raise ValueError("train_forward_model: the model is action-conditioned but the windows have no actions")
    use_actions = model.action_conditioned
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    model.train()
    n = len(windows)
    steps_per_epoch = math.ceil(n / config.batch_size)
    history: dict[str, list[float]] = {"loss": [], "position": [], "status": []}
    bar = tqdm(range(config.epochs), desc=tag, disable=not progress)
    for epoch in bar:
        order = torch.randperm(n, generator=gen)
        sums = {"loss": 0.0, "position": 0.0, "status": 0.0}
        for i in range(steps_per_epoch):
            idx = order[i * config.batch_size : (i + 1) * config.batch_size]
            acts = None
            if use_actions:
                acts = _drop_future_actions(windows.actions[idx], config.action_dropout, gen)
            pred = model(windows.inputs[idx], acts)
            loss, parts = forward_model_loss(pred, windows.inputs[idx], windows.targets[idx],
                                             config.position_scale, config.status_weight, config.max_step,
                                             config.huber_delta)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            sums["loss"] += loss.item()
            sums["position"] += parts["position"]
            sums["status"] += parts["status"]
        for k, v in sums.items():
            history[k].append(v / steps_per_epoch)
            if writer is not None:
                writer.add_scalar(f"{tag}/{k}", v / steps_per_epoch, epoch)
        bar.set_postfix(loss=f"{history['loss'][-1]:.4f}")
    model.eval()
    return history
