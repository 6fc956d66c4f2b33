"""Appearance augmentation of training windows: the same scene in other colours and lighting.

A detector trained on a few scenes learns which colours its keypoints sit on; a scene whose
objects change colour (MAGICAL's ``TestColour``) then gets its keypoints from other channels of
the network, and a policy that reads keypoints by index sees another input. Training on windows
whose colours are permuted and whose brightness and contrast vary keeps the objects' shapes and
motion (what the information-theoretic losses reward) while their colours stop being a cue. The
entropy target is computed on the augmented frames, so this stays unsupervised.

Each window gets one draw, applied to all its frames alike: the temporal losses compare frames of
one window, and a colour that flickers between them would be information that is not in the scene.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from mint_rl._config import ConfigMixin

__all__ = ["AppearanceAugment", "appearance_augment", "CHANNEL_PERMUTATIONS"]

#: The six orders of the RGB channels; index 0 is the identity.
CHANNEL_PERMUTATIONS: tuple[tuple[int, int, int], ...] = tuple(itertools.permutations(range(3)))  # type: ignore[assignment]


@dataclass(frozen=True)
class AppearanceAugment(ConfigMixin):
    """How :func:`appearance_augment` changes a window's appearance.

    Attributes:
        permute_channels: reorder the RGB channels by one of the six permutations, drawn
            uniformly per window (red blocks become green or blue ones, and so on).
        brightness: the window is scaled by a factor drawn uniformly from ``[1 - b, 1 + b]``.
        contrast: the window's deviation from its mean grey level is scaled by a factor drawn
            uniformly from ``[1 - c, 1 + c]``.
    """

    permute_channels: bool = True
    brightness: float = 0.2
    contrast: float = 0.2

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"AppearanceAugment.{name}: expected a value in [0, 1), got {value!r}")


def appearance_augment(frames: Tensor, config: AppearanceAugment = AppearanceAugment(),
                       generator: Optional[torch.Generator] = None) -> Tensor:
    """Windows ``(B, T, 3, H, W)`` uint8 in other colours and lighting, one draw per window.

    The draws come from ``generator`` (CPU), so a run that seeds it per step repeats them exactly.

    Example:
        >>> frames = torch.zeros(2, 3, 3, 4, 4, dtype=torch.uint8); frames[:, :, 0] = 200  # red
        >>> out = appearance_augment(frames, AppearanceAugment(brightness=0.0, contrast=0.0),
        ...                          torch.Generator().manual_seed(3))
        >>> out.shape, out.dtype, [int(c) for c in out[0, 0, :, 0, 0]] in ([200, 0, 0], [0, 200, 0], [0, 0, 200])
        (torch.Size([2, 3, 3, 4, 4]), torch.uint8, True)

    Raises:
        ValueError: not a ``(B, T, 3, H, W)`` uint8 tensor.
    """
    if frames.dim() != 5 or frames.shape[2] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"appearance_augment: expected (B, T, 3, H, W) uint8 windows, got {frames.dtype} "
                         f"{tuple(frames.shape)}")
    b = frames.shape[0]
    perm_idx = torch.randint(len(CHANNEL_PERMUTATIONS), (b,), generator=generator)
    bright = 1.0 + config.brightness * (2 * torch.rand(b, generator=generator) - 1)
    contrast = 1.0 + config.contrast * (2 * torch.rand(b, generator=generator) - 1)
    out = frames.float()
    if config.permute_channels:
        order = torch.tensor(CHANNEL_PERMUTATIONS)[perm_idx].to(frames.device)  # (B, 3)
        out = torch.gather(out, 2, order[:, None, :, None, None].expand_as(out))
    mean = out.mean(dim=(1, 2, 3, 4), keepdim=True)
    shape = (b, 1, 1, 1, 1)
    out = (out - mean) * contrast.to(out.device).view(shape) + mean
    out = out * bright.to(out.device).view(shape)
    return out.round_().clamp_(0, 255).to(torch.uint8)
