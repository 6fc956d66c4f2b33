"""Recompute BatchNorm running statistics after training ("precise BatchNorm").

A network with BatchNorm normalises with the statistics of the current batch while it trains and
with exponential running averages (momentum 0.1) of them in evaluation mode. When the weights move
fast in the last steps of training (a loss spike, a jump of the weight norm), the running averages
still describe the earlier weights, and the evaluation-mode network can disagree with the one that
trained: the CNN agent's collapsed behaviour-cloning seeds reproduce 15-33% of their demonstration
actions in evaluation mode against 93-99% in training mode.

:func:`recalibrate_batchnorm` throws the running statistics away and recomputes them, with the
final weights, as the plain average over the given batches; the weights themselves do not change.
:func:`recalibrate_policy_batchnorm` does it for a stable-baselines3 policy from raw observations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["batchnorm_layers", "recalibrate_batchnorm", "recalibrate_policy_batchnorm"]


def batchnorm_layers(module: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers (1d, 2d, 3d, lazy or sync) of ``module`` that track running statistics.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm2d(4))
        >>> len(batchnorm_layers(net))
        2
    """
    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def recalibrate_batchnorm(
    module: nn.Module, batches: Iterable[Any], forward: Callable[[Any], Any] | None = None
) -> int:
    """Replace the running statistics of every BatchNorm layer of ``module`` by their average over ``batches``.

    Each layer's running mean and variance are reset and recomputed, without gradients and with the
    current weights, as the cumulative average (``momentum=None``) of the batch statistics

    .. math::
        \\hat\\mu = \\frac{1}{B} \\sum_{b=1}^{B} \\mu_b, \\qquad
        \\hat\\sigma^2 = \\frac{1}{B} \\sum_{b=1}^{B} s_b^2,

    where :math:`\\mu_b` is batch :math:`b`'s mean and :math:`s_b^2` its unbiased variance, as
    BatchNorm itself accumulates them. Equal-size batches make :math:`\\hat\\mu` the mean over all
    samples. Weights, biases, each layer's momentum and every submodule's train/eval mode are left
    as they were; ``num_batches_tracked`` counts the new batches.

    Args:
        module: network holding the BatchNorm layers (only these are touched).
        batches: inputs, one per forward pass; a batch of one sample per layer channel is legal but
            gives a poor variance, use batches of tens of samples.
        forward: ``forward(batch)`` runs the part of the network that holds the layers
            (default ``module(batch)``); it must reach every BatchNorm layer of ``module``.

    Returns:
        The number of batches used.

    Raises:
        ValueError: ``module`` has no BatchNorm layer that tracks running statistics, ``batches``
            is empty, or ``forward`` left a layer without a batch. On any error (these, or one
            raised by ``forward``) the running statistics are restored to what they were.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).eval()
        >>> x = torch.randn(64, 2) * 5 + 3
        >>> recalibrate_batchnorm(net, [x[:32], x[32:]])
        2
        >>> torch.allclose(net[1].running_mean, net[0](x).mean(0), atol=1e-5)
        True
        >>> net.training
        False
    """
    layers = batchnorm_layers(module)
    if not layers:
        raise ValueError(
            f"recalibrate_batchnorm: expected a module with BatchNorm layers that track running statistics, "
            f"got {type(module).__name__} with none")
    run = module if forward is None else forward
    modes = {m: m.training for m in module.modules()}
    momenta = [layer.momentum for layer in layers]
    saved = [(layer.running_mean.clone(), layer.running_var.clone(), layer.num_batches_tracked.clone())
             for layer in layers]
    count = 0
    ok = False
    try:
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average: each batch weighs the same
        module.train()
        with torch.no_grad():
            for batch in batches:
                run(batch)
                count += 1
        if count == 0:
            raise ValueError("recalibrate_batchnorm: expected at least one batch, got none")
        names = {layer: name for name, layer in module.named_modules()}
        unreached = [names[layer] for layer in layers if int(layer.num_batches_tracked) == 0]
        if unreached:
            raise ValueError(f"recalibrate_batchnorm: expected forward to run every BatchNorm layer, "
                             f"{unreached} saw no batch")
        ok = True
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        for m, training in modes.items():
            m.training = training
        if not ok:  # leave the module as it came
            with torch.no_grad():
                for layer, (mean, var, tracked) in zip(layers, saved):
                    layer.running_mean.copy_(mean)
                    layer.running_var.copy_(var)
                    layer.num_batches_tracked.copy_(tracked)
    return count


def recalibrate_policy_batchnorm(policy: Any, observations: np.ndarray, batch_size: int = 64) -> int:
    """:func:`recalibrate_batchnorm` for a stable-baselines3 policy, from raw observations.

    ``observations`` (``(N, *observation_space.shape)``, as the env returns them) go through the
    policy's own preprocessing (``obs_to_tensor``) and its forward pass (actor and critic) in
    batches of ``batch_size``; a last batch smaller than ``batch_size // 2`` is left out, so that
    every batch's statistics weigh about the same.

    Returns:
        The number of batches used.

    Raises:
        ValueError: observations that do not match the policy's observation space, fewer than
            ``batch_size // 2`` of them, or a ``batch_size`` below 2.
    """
    obs = np.asarray(observations)
    expected = tuple(policy.observation_space.shape)
    if obs.ndim != len(expected) + 1 or tuple(obs.shape[1:]) != expected:
        raise ValueError(f"recalibrate_policy_batchnorm: expected observations of shape (N, {', '.join(map(str, expected))}), "
                         f"got {tuple(obs.shape)}")
    if batch_size < 2:
        raise ValueError(f"recalibrate_policy_batchnorm: batch_size: expected >= 2, got {batch_size}")
    starts = [s for s in range(0, len(obs), batch_size) if len(obs) - s >= max(2, batch_size // 2)]
    if not starts:
        raise ValueError(f"recalibrate_policy_batchnorm: expected at least {max(2, batch_size // 2)} observations, "
                         f"got {len(obs)}")
    batches = (policy.obs_to_tensor(obs[s:s + batch_size])[0] for s in starts)
    # the policy's forward runs the actor and the critic, so separate extractors are both reached;
    # deterministic: no draw from torch's random generator
    return recalibrate_batchnorm(policy, batches, forward=lambda o: policy(o, deterministic=True))
