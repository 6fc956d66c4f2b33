"""stable-baselines3 features extractor: keypoint observations -> interaction network -> features."""

from __future__ import annotations

import gymnasium as gym
import torch  # noqa: F401  (used by the doctest)
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import Tensor, nn

from mint_rl.policies.graph import check_keypoint_observation
from mint_rl.policies.interaction_network import InteractionNetwork, InteractionNetworkConfig

__all__ = ["KeypointGraphExtractor"]


class KeypointGraphExtractor(BaseFeaturesExtractor):
    """Features of keypoint observations from an :class:`InteractionNetwork`.

    ``forward`` turns the ``(B, history, K, F)`` observation batch into one torch-geometric
    ``Batch`` of ``B`` fully connected graphs (see :func:`keypoint_graph_batch`), runs the
    interaction network on it, reads the node embeddings out per graph (``config.pooling``:
    concatenated by default, or pooled) and maps that vector
    to ``features_dim`` features (``Linear + ReLU``). ``history``, ``K`` and ``F`` are read from the
    observation space. The network's next-keypoint head is kept for the auxiliary loss of
    behaviour cloning (:meth:`forward_with_next_keypoints`).

    Args:
        observation_space: ``Box`` of shape ``(history, K, F)`` (the keypoint wrapper's output;
            ``F = 3``, or 5 with ``orientation=True``).
        features_dim: size of the returned features.
        config: interaction-network options (paper defaults when ``None``); a ``dict`` of its
            fields is accepted too (as stored in policy files).

    Example:
        >>> space = gym.spaces.Box(-1.0, 1.0, shape=(4, 6, 3))
        >>> extractor = KeypointGraphExtractor(space, features_dim=32)
        >>> extractor(torch.zeros(5, 4, 6, 3)).shape
        torch.Size([5, 32])
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = 128,
        config: InteractionNetworkConfig | dict | None = None,
    ) -> None:
        if not isinstance(observation_space, gym.spaces.Box):
            raise TypeError(f"KeypointGraphExtractor needs a Box observation space, got {observation_space}")
        super().__init__(observation_space, features_dim)
        if isinstance(config, dict):
            config = InteractionNetworkConfig(**config)
        self.network = InteractionNetwork.from_observation_space(observation_space, num_actions=None, config=config)
        self.history, self.num_keypoints = self.network.history, self.network.num_keypoints
        self.projection = nn.Sequential(nn.Linear(self.network.pooled_dim, features_dim), nn.ReLU())

    def reset_parameters(self) -> None:
        """Re-initialise the interaction network (its own scheme) and the projection."""
        self.network.reset_parameters()
        self.projection[0].reset_parameters()

    def _nodes_and_features(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        check_keypoint_observation(obs, history=self.history, num_keypoints=self.num_keypoints,
                                   num_features=self.network.num_features)
        obs = obs.float()
        graph = self.network.graph(obs)  # the network decides its node inputs (config.mask_inactive)
        nodes = self.network.embed_graph(graph)  # (B * K, H)
        pooled = self.network.pool_graph(nodes, graph.batch, num_graphs=obs.shape[0])
        return nodes.view(obs.shape[0], self.num_keypoints, -1), self.projection(pooled)

    def forward(self, observations: Tensor) -> Tensor:
        """``(B, history, K, F)`` -> ``(B, features_dim)``."""
        return self._nodes_and_features(observations)[1]

    def forward_with_next_keypoints(self, observations: Tensor) -> tuple[Tensor, Tensor]:
        """Features ``(B, features_dim)`` and predicted next keypoints ``(B, K, 2)`` in one pass."""
        nodes, features = self._nodes_and_features(observations)
        return features, self.network.decode_next_keypoints(nodes, observations.float())
