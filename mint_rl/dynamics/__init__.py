"""mint_rl.dynamics: keypoint forward models (the paper's Task II, as true forecasting).

- :class:`KeypointForwardModel` / :class:`ForwardModelConfig`: the interaction network over a
  frozen detector's keypoints; ``T = 4`` frames of ``(x, y, status)`` per keypoint plus its
  index code in, the next ``H = 3`` positions and statuses out; optional action conditioning;
  :meth:`~KeypointForwardModel.rollout`; safetensors checkpoints.
- :mod:`~mint_rl.dynamics.data`: keypoint sequences from clips (detected once, cached), oracle
  keypoints from masks, MAGICAL rollouts with executed actions, demo files; forecasting windows.
- :mod:`~mint_rl.dynamics.training`: the loss and the training loop.
- :mod:`~mint_rl.dynamics.scoring`: success rate, detector ceiling, keypoint success, forecast
  error; constant-position and constant-velocity baselines; how keypoints follow their objects.
- :mod:`~mint_rl.dynamics.experiment`: what the two dynamics scripts share (seeds with resume,
  summaries over seeds, tables, forecast overlays).

Nothing else in the package imports this one.
"""

from mint_rl.dynamics.data import (
    ForecastWindows,
    KeypointSequence,
    RecordingPolicy,
    demo_sequences,
    detector_fingerprint,
    entity_keypoints,
    extract_keypoints,
    magical_rollouts,
    make_windows,
    oracle_keypoints,
)
from mint_rl.dynamics.model import (
    UNKNOWN_ACTION,
    ForwardInteractionNetwork,
    ForwardModelConfig,
    ForwardPrediction,
    KeypointForwardModel,
)
from mint_rl.dynamics.scoring import (
    constant_position,
    constant_velocity,
    forecast_success,
    keypoint_following,
    mask_membership,
    object_motion_forecast,
    radius_membership,
    score_sequences,
)
from mint_rl.dynamics.training import DynamicsTrainConfig, forward_model_loss, train_forward_model

__all__ = [
    "DynamicsTrainConfig",
    "ForecastWindows",
    "ForwardInteractionNetwork",
    "ForwardModelConfig",
    "ForwardPrediction",
    "KeypointForwardModel",
    "KeypointSequence",
    "RecordingPolicy",
    "UNKNOWN_ACTION",
    "constant_position",
    "constant_velocity",
    "demo_sequences",
    "detector_fingerprint",
    "entity_keypoints",
    "extract_keypoints",
    "forecast_success",
    "forward_model_loss",
    "keypoint_following",
    "magical_rollouts",
    "make_windows",
    "mask_membership",
    "object_motion_forecast",
    "oracle_keypoints",
    "radius_membership",
    "score_sequences",
    "train_forward_model",
]
