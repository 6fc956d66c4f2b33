"""The keypoint methods MINT is compared with (MINT paper Sec. 3, App. E.3), in the same harness.

* :class:`Transporter` (Kulkarni et al. 2019) and its ``variant="modified"`` (the MINT paper's
  Transporter-modified: receptive field 7, 122x122 feature maps);
* :class:`VideoStructure` (Minderer et al. 2019).

Each has the detector interface of :class:`mint_rl.models.MintDetector`: ``forward(frames) ->
DetectorOutput(keypoints, status, feature_maps)`` with keypoints in the one coordinate
convention (:mod:`mint_rl.coords`) and status in [0, 1], ``config`` (``in_channels``,
``num_keypoints``, ``image_size``), ``save_pretrained`` / ``from_pretrained`` (safetensors +
JSON config, a ``format`` tag per method) and ``for_inference``; plus ``training_loss(frames,
generator)`` for :class:`mint_rl.training.Trainer`. Load any method's checkpoint with
:func:`mint_rl.detectors.load_detector`.
"""

from __future__ import annotations

from typing import Any

from mint_rl.baselines.common import METHOD_FORMATS, BaselineDetector
from mint_rl.baselines.transporter import (
    Transporter,
    TransporterConfig,
    feature_transport,
    sample_frame_pairs,
    transporter_heatmaps,
    transporter_loss,
)
from mint_rl.baselines.video_structure import (
    VideoStructure,
    VideoStructureConfig,
    activity_status,
    heatmap_keypoints,
    intensity_gaussians,
    reconstruction_loss,
    sparsity_loss,
    temporal_separation_loss,
)

__all__ = [
    "BASELINE_METHODS",
    "METHOD_FORMATS",
    "BaselineDetector",
    "Transporter",
    "TransporterConfig",
    "VideoStructure",
    "VideoStructureConfig",
    "baseline_detector",
    "feature_transport",
    "sample_frame_pairs",
    "transporter_heatmaps",
    "transporter_loss",
    "activity_status",
    "heatmap_keypoints",
    "intensity_gaussians",
    "reconstruction_loss",
    "sparsity_loss",
    "temporal_separation_loss",
]

#: the baseline methods, by the names ``--method`` takes
BASELINE_METHODS = ("transporter", "transporter-modified", "video-structure")


def baseline_detector(method: str, **config: Any) -> BaselineDetector:
    """A freshly initialised baseline detector of ``method`` with config fields ``config``.

    Example:
        >>> baseline_detector("transporter-modified", num_keypoints=4, num_features=2).config.variant
        'modified'
        >>> baseline_detector("mint")
        Traceback (most recent call last):
        ...
        ValueError: unknown baseline method 'mint'; expected one of ('transporter', 'transporter-modified', 'video-structure')
    """
    if method == "transporter":
        return Transporter(TransporterConfig(variant="original", **config))
    if method == "transporter-modified":
        return Transporter(TransporterConfig(variant="modified", **config))
    if method == "video-structure":
        return VideoStructure(VideoStructureConfig(**config))
    raise ValueError(f"unknown baseline method {method!r}; expected one of {BASELINE_METHODS}")
