"""mint_rl.policies: interaction-network and CNN agents, SB3 plug-ins, behaviour cloning.

- :class:`InteractionNetwork` (torch-geometric ``MessagePassing``) with action and
  next-keypoint heads; :func:`keypoint_graph_batch` builds its batched graphs.
- :class:`KeypointGraphExtractor` / :class:`MintGraphPolicy`: stable-baselines3 plug-ins for the
  keypoint wrapper's ``(history, K, F)`` observations.
- :class:`CnnAgentExtractor` / :class:`CnnAgentPolicy`: the pixel baseline of Appendix E.5.
- :class:`StateAgentPolicy`: a privileged MLP on the simulator's true state (an upper
  reference for object-centric observations; not from the paper).
- :func:`recalibrate_policy_batchnorm`: recompute a trained policy's BatchNorm running statistics
  ("precise BatchNorm"; the CNN agent's evaluation-mode collapse).
- :func:`train_bc` / :func:`evaluate_policy_scores`: behaviour cloning with ``imitation``'s
  ``bc.BC`` plus the auxiliary next-keypoint loss, and score-based evaluation.
"""

from mint_rl.policies.bc import (
    AuxiliaryBCLossCalculator,
    BCTrainingMetricsWithAux,
    MintBC,
    evaluate_policy_scores,
    jitter_keypoints,
    next_keypoint_loss,
    train_bc,
)
from mint_rl.policies.batchnorm import recalibrate_batchnorm, recalibrate_policy_batchnorm
from mint_rl.policies.cnn_agent import CnnAgentExtractor, CnnAgentPolicy
from mint_rl.policies.extractors import KeypointGraphExtractor
from mint_rl.policies.graph import fully_connected_edge_index, keypoint_graph_batch, keypoint_node_features
from mint_rl.policies.interaction_network import InteractionNetwork, InteractionNetworkConfig
from mint_rl.policies.mint_policy import MintGraphPolicy
from mint_rl.policies.state_agent import STATE_AGENT_NET_ARCH, StateAgentPolicy

__all__ = [
    "AuxiliaryBCLossCalculator",
    "BCTrainingMetricsWithAux",
    "CnnAgentExtractor",
    "CnnAgentPolicy",
    "InteractionNetwork",
    "InteractionNetworkConfig",
    "KeypointGraphExtractor",
    "MintBC",
    "MintGraphPolicy",
    "STATE_AGENT_NET_ARCH",
    "StateAgentPolicy",
    "evaluate_policy_scores",
    "fully_connected_edge_index",
    "keypoint_graph_batch",
    "keypoint_node_features",
    "jitter_keypoints",
    "next_keypoint_loss",
    "recalibrate_batchnorm",
    "recalibrate_policy_batchnorm",
    "train_bc",
]
