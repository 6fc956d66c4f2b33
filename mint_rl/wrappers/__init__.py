"""Gymnasium / stable-baselines3 wrappers that turn image observations into MINT keypoints."""

from mint_rl.wrappers.encoder import (
    KeypointEncoder,
    KeypointHistory,
    find_image,
    fully_connected_edges,
    keypoint_box,
    keypoint_feature_bounds,
)
from mint_rl.wrappers.keypoints import MintKeypointWrapper
from mint_rl.wrappers.orientation import ORIENTATION_RADIUS, IntensityCentroid, intensity_centroid
from mint_rl.wrappers.vector import MintKeypointVecEnv, MintKeypointVectorWrapper

__all__ = [
    "ORIENTATION_RADIUS",
    "IntensityCentroid",
    "KeypointEncoder",
    "KeypointHistory",
    "MintKeypointVecEnv",
    "MintKeypointVectorWrapper",
    "MintKeypointWrapper",
    "find_image",
    "fully_connected_edges",
    "intensity_centroid",
    "keypoint_box",
    "keypoint_feature_bounds",
]
