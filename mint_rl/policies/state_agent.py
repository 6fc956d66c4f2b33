"""A privileged baseline: an MLP on the simulator's true state (robot pose with heading, object poses).

Not an agent from the paper. It bounds from above what any object-centric observation of the
same scene (keypoints among them) can give a behaviour-cloned MLP from the same demonstrations,
so a table can say how much of the gap between the MINT agent and the pixel agent is the
representation and how much is learning from ten demonstrations.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from mint_rl.policies.serialization import SafePolicyIOMixin

__all__ = ["StateAgentPolicy", "STATE_AGENT_NET_ARCH"]

#: Hidden layers of the state agent's actor and critic MLPs.
STATE_AGENT_NET_ARCH: list[int] = [256, 256]


class StateAgentPolicy(SafePolicyIOMixin, ActorCriticPolicy):
    """SB3 actor-critic MLP (tanh, 256-256) on a flat state vector, saveable without pickle.

    Observations are what ``make_env(task, variant, "state")`` of
    :mod:`mint_rl.experiments.magical_bc` gives: MAGICAL's ``view="state"`` vector
    (:func:`mint_rl.envs.state_vector`: robot ``(x, y, cos a, sin a, fingers)``, then a slot per
    block and goal region) over the last ``history`` steps, flattened. Any ``Box`` works.

    Example:
        >>> import torch
        >>> space = gym.spaces.Box(-2.0, 2.0, (40,))
        >>> policy = StateAgentPolicy(space, gym.spaces.Discrete(18), lambda _: 1e-3)
        >>> policy.predict(space.sample(), deterministic=True)[0].shape
        ()
    """

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        **kwargs: Any,
    ) -> None:
        if not isinstance(observation_space, gym.spaces.Box):
            raise ValueError(f"StateAgentPolicy needs a Box observation space, got {observation_space}")
        if net_arch is None:
            net_arch = dict(pi=list(STATE_AGENT_NET_ARCH), vf=list(STATE_AGENT_NET_ARCH))
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch,
                         activation_fn=activation_fn, **kwargs)
        self._record_kwargs(
            net_arch=net_arch,
            activation_fn=None if activation_fn is nn.Tanh else activation_fn,
            **kwargs,
        )
