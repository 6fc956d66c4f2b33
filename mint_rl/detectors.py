"""Load any keypoint detector (MINT or a baseline) from a shipped name, a checkpoint path or an instance.

Every detector checkpoint carries a ``format`` tag (:mod:`mint_rl.checkpoint`): MINT's is
``mint_rl.MintDetector``, the baselines' ``mint_rl.Transporter`` (its config's ``variant`` tells
Transporter from Transporter-modified) and ``mint_rl.VideoStructure``. :func:`load_detector`
reads the tag and returns the right class, so the metrics, the keypoint wrappers, the dynamics
scripts and ``bc_magical.py --detector`` take any method unchanged.

Methods, by the names the scripts take: ``mint``, ``transporter``, ``transporter-modified``,
``video-structure``.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from torch import nn

from mint_rl.checkpoint import CheckpointError, load_checkpoint
from mint_rl.models import CHECKPOINT_FORMAT as MINT_FORMAT
from mint_rl.models import MintDetector

__all__ = ["KEYPOINT_METHODS", "load_detector", "detector_method", "checkpoint_method", "is_keypoint_detector"]

#: every keypoint method of the package, by the names the scripts take
KEYPOINT_METHODS = ("mint", "transporter", "transporter-modified", "video-structure")


def is_keypoint_detector(model: object) -> bool:
    """Whether ``model`` is a MINT or baseline detector instance."""
    from mint_rl.baselines import BaselineDetector

    return isinstance(model, (MintDetector, BaselineDetector))


def detector_method(model: nn.Module) -> str:
    """The method name of a detector instance.

    Example:
        >>> from mint_rl.models import DetectorConfig
        >>> detector_method(MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=2)))
        'mint'
    """
    from mint_rl.baselines import BaselineDetector

    if isinstance(model, MintDetector):
        return "mint"
    if isinstance(model, BaselineDetector):
        return model.method
    raise TypeError(f"expected a keypoint detector (MintDetector, Transporter, VideoStructure), got {type(model).__name__}")


def checkpoint_method(fmt: str, config: dict) -> str:
    """The method a checkpoint holds, from its ``format`` tag and config.

    Raises:
        CheckpointError: a format that is no keypoint detector.

    Example:
        >>> checkpoint_method("mint_rl.Transporter", {"variant": "modified"})
        'transporter-modified'
    """
    if fmt == MINT_FORMAT:
        return "mint"
    if fmt == "mint_rl.Transporter":
        return "transporter-modified" if config.get("variant") == "modified" else "transporter"
    if fmt == "mint_rl.VideoStructure":
        return "video-structure"
    raise CheckpointError(f"format {fmt!r} is not a keypoint detector; expected one of the methods {KEYPOINT_METHODS}")


def load_detector(
    detector: Any,
    *,
    method: Optional[str] = None,
    num_keypoints: Optional[int] = None,
) -> nn.Module:
    """A keypoint detector from an instance, a shipped name (:mod:`mint_rl.pretrained`) or a checkpoint path.

    The checkpoint's ``format`` tag picks the class; the model comes back in eval mode on the CPU.

    Args:
        detector: a detector instance (returned as it is), a shipped name or a path.
        method: when given, the method the detector must be (``"mint"``, ``"transporter"``, ...).
        num_keypoints: when given, the ``K`` it must have.

    Raises:
        CheckpointError: (a ``ValueError``) a checkpoint of another method than ``method`` (the
            message names both), a foreign, corrupt or truncated file.
        ValueError: an unknown method or shipped name (the message lists the known ones), or a
            detector with another ``K``.
        FileNotFoundError: no such file.
        TypeError: anything else.
    """
    from mint_rl.baselines import Transporter, VideoStructure
    from mint_rl.baselines.common import resolve_name_or_path

    if method is not None and method not in KEYPOINT_METHODS:
        raise ValueError(f"unknown keypoint method {method!r}; expected one of {KEYPOINT_METHODS}")
    if is_keypoint_detector(detector):
        model = detector
        where = type(detector).__name__
    elif isinstance(detector, str) or hasattr(detector, "__fspath__"):
        path = resolve_name_or_path(detector)
        ckpt = load_checkpoint(path)
        found = checkpoint_method(ckpt.format, ckpt.config)
        if method is not None and found != method:
            raise CheckpointError(f"{path}: expected a {method} detector, got a {found} checkpoint "
                                  f"(format {ckpt.format!r})")
        cls = {"mint": MintDetector, "transporter": Transporter, "transporter-modified": Transporter,
               "video-structure": VideoStructure}[found]
        model = cls.from_pretrained(path)
        where = os.fspath(detector)
    else:
        raise TypeError(f"detector: expected a keypoint detector, a pretrained name or a checkpoint path, "
                        f"got {type(detector).__name__}")
    found = detector_method(model)
    if method is not None and found != method:
        raise ValueError(f"{where}: expected a {method} detector, got a {found} detector")
    if num_keypoints is not None and model.num_keypoints != int(num_keypoints):
        raise ValueError(f"detector: expected {num_keypoints} keypoints (num_keypoints), the detector has {model.num_keypoints}")
    return model
