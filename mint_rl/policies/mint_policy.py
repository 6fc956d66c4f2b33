"""``MintGraphPolicy``: stable-baselines3 actor-critic policy on keypoint graphs."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.type_aliases import Schedule
from torch import Tensor, nn

from mint_rl.policies.serialization import SafePolicyIOMixin

from mint_rl.policies.extractors import KeypointGraphExtractor
from mint_rl.policies.interaction_network import LEGACY_CONFIG

__all__ = ["MintGraphPolicy"]


class MintGraphPolicy(SafePolicyIOMixin, ActorCriticPolicy):
    """Actor-critic policy whose features come from :class:`KeypointGraphExtractor`.

    A preset of SB3's ``ActorCriticPolicy``: by default the features extractor is the keypoint
    interaction network, the actor and critic heads are one ReLU layer of 100 units each (the
    paper's "IN followed by a fully connected layer that decodes the actions"), so
    ``PPO(MintGraphPolicy, env)`` works on the keypoint wrapper's observations. Every default can
    be overridden through the usual keyword arguments (``policy_kwargs`` in SB3 algorithms).

    The extractor keeps its own initialisation (:meth:`InteractionNetwork.reset_parameters`);
    SB3's orthogonal initialisation (``ortho_init``) applies to the actor/critic heads only.

    On top of SB3's API it predicts the next frame's keypoints (the paper's auxiliary task),
    sharing one interaction-network pass with the action distribution:
    :meth:`evaluate_actions_with_next_keypoints` is what behaviour cloning uses.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[KeypointGraphExtractor] = KeypointGraphExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if net_arch is None:
            net_arch = dict(pi=[100], vf=[100])
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            **kwargs,
        )
        recorded_extractor_kwargs = features_extractor_kwargs
        if features_extractor_class is KeypointGraphExtractor:
            # store the interaction network's whole config, so a file rebuilds the same network
            # even if the defaults change later
            config = dataclasses.asdict(self.features_extractor.network.config)  # type: ignore[union-attr]
            recorded_extractor_kwargs = {**(features_extractor_kwargs or {}), "config": config}
        self._record_kwargs(
            net_arch=net_arch,
            features_extractor_kwargs=recorded_extractor_kwargs,
            activation_fn=None if activation_fn is nn.ReLU else activation_fn,
            features_extractor_class=None if features_extractor_class is KeypointGraphExtractor else features_extractor_class,
            **kwargs,
        )
        # SB3's ortho_init re-initialises every Linear of the extractor orthogonally with gain
        # sqrt(2); through the encoder, the sum over K - 1 neighbours and the object model this
        # blows activations up (initial next-keypoint losses in the hundreds on MAGICAL-like
        # data), which slows behaviour cloning down. The extractor keeps its own initialisation.
        extractors = [self.features_extractor]
        if not self.share_features_extractor:
            extractors.append(self.vf_features_extractor)  # pi_features_extractor is features_extractor
        for extractor in extractors:
            if hasattr(extractor, "reset_parameters"):
                extractor.reset_parameters()

    @classmethod
    def _upgrade_kwargs(cls, kwargs: dict[str, Any], format_version: int) -> dict[str, Any]:
        """Format-1 files stored no interaction-network config: they were built with :data:`LEGACY_CONFIG`."""
        if format_version < 2 and kwargs.get("features_extractor_class") is None:
            extractor_kwargs = dict(kwargs.get("features_extractor_kwargs") or {})
            extractor_kwargs.setdefault("config", dict(LEGACY_CONFIG))
            kwargs = {**kwargs, "features_extractor_kwargs": extractor_kwargs}
        return kwargs

    def _actor_extractor(self) -> KeypointGraphExtractor:
        extractor = self.features_extractor if self.share_features_extractor else self.pi_features_extractor
        if not hasattr(extractor, "forward_with_next_keypoints"):
            raise TypeError(
                f"next-keypoint prediction needs a KeypointGraphExtractor, this policy uses {type(extractor).__name__}"
            )
        return extractor  # type: ignore[return-value]

    def predict_next_keypoints(self, obs: Tensor) -> Tensor:
        """Predicted ``(x, y)`` of every keypoint in the next frame, ``(B, K, 2)``."""
        obs = preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images)
        return self._actor_extractor().forward_with_next_keypoints(obs)[1]  # type: ignore[arg-type]

    def evaluate_actions_with_next_keypoints(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Like ``evaluate_actions`` for the actor only, plus the next-keypoint prediction.

        Args:
            obs: ``(B, history, K, F)`` keypoint observations.
            actions: ``(B,)`` (discrete) or ``(B, action_dim)`` actions.

        Returns:
            ``(log_prob (B,), entropy (B,), next_keypoints (B, K, 2))`` from one features pass.
        """
        obs = preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images)
        features, next_keypoints = self._actor_extractor().forward_with_next_keypoints(obs)  # type: ignore[arg-type]
        latent_pi = self.mlp_extractor.forward_actor(features)
        distribution = self._get_action_dist_from_latent(latent_pi)
        return distribution.log_prob(actions), distribution.entropy(), next_keypoints
