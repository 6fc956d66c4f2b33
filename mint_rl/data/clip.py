"""The one in-memory video type of :mod:`mint_rl.data`: :class:`Clip`.

Every source (the CLEVRER-like generator, real CLEVRER, a folder of user videos, MAGICAL
rollouts) produces clips; every dataset consumes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Clip:
    """A video with optional ground-truth instance masks.

    Attributes:
        frames: ``(T, H, W, 3)`` uint8 RGB frames.
        masks: ``(T, H, W)`` integer instance ids (0 = background, the same id is the same
            object in every frame) or ``None``.
        name: a label (file stem, ``"clevrer_like_00003"``, ...).
        fps: frames per second, for writing videos.
        objects: per-object static attributes (one JSON-able dict per object, with its ``"id"``).
        tracks: per-frame object arrays, each ``(T, N, ...)`` in the order of ``objects``
            (e.g. ``"pixel_xy"``, ``"visible"``, ``"area"``).

    Example:
        >>> clip = Clip(np.zeros((4, 6, 8, 3), np.uint8), np.zeros((4, 6, 8), np.int32))
        >>> len(clip), clip.height, clip.width
        (4, 6, 8)
    """

    frames: np.ndarray
    masks: np.ndarray | None = None
    name: str = ""
    fps: float = 25.0
    objects: list[dict[str, Any]] = field(default_factory=list)
    tracks: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_frames(self.frames, "Clip.frames")
        if self.masks is not None:
            check_masks(self.masks, self.frames.shape[:3], "Clip.masks")

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


def check_frames(frames: np.ndarray, name: str = "frames") -> None:
    """Raise unless ``frames`` is a ``(T, H, W, 3)`` uint8 numpy array.

    Example:
        >>> check_frames(np.zeros((2, 4, 4, 3), np.float32))
        Traceback (most recent call last):
        ...
        TypeError: frames: expected dtype uint8, got float32
    """
    if not isinstance(frames, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{name}: expected shape (T, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise TypeError(f"{name}: expected dtype uint8, got {frames.dtype}")


def check_masks(masks: np.ndarray, thw: tuple[int, ...], name: str = "masks") -> None:
    """Raise unless ``masks`` is an integer ``(T, H, W)`` array with the given ``thw``.

    Example:
        >>> check_masks(np.zeros((2, 4, 5), np.int32), (2, 4, 4))
        Traceback (most recent call last):
        ...
        ValueError: masks: expected shape (2, 4, 4), got (2, 4, 5)
    """
    if not isinstance(masks, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(masks).__name__}")
    if not np.issubdtype(masks.dtype, np.integer):
        raise TypeError(f"{name}: expected an integer dtype, got {masks.dtype}")
    if tuple(masks.shape) != tuple(thw):
        raise ValueError(f"{name}: expected shape {tuple(thw)}, got {tuple(masks.shape)}")
