"""Torch datasets of frame windows over clips, and the train / held-out split by video."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from mint_rl.data.clip import Clip


def split_by_video(
    clips: Sequence[Clip], held_out_fraction: float, seed: int = 0
) -> tuple[list[Clip], list[Clip]]:
    """Split clips into (train, held_out) by whole videos: no clip lands in both.

    The held-out count is ``round(held_out_fraction * n)``, at least 1 when the fraction is
    positive and at most ``n - 1`` (when ``n >= 2``). Deterministic in ``seed``; both lists keep
    the input order.

    Example:
        >>> clips = [Clip(np.zeros((1, 2, 2, 3), np.uint8), name=str(i)) for i in range(5)]
        >>> train, test = split_by_video(clips, 0.4, seed=0)
        >>> len(train), len(test), set(c.name for c in train) & set(c.name for c in test)
        (3, 2, set())
    """
    n = len(clips)
    if not 0.0 <= held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction: expected in [0, 1), got {held_out_fraction}")
    if n == 0:
        raise ValueError("clips: expected at least one clip, got none")
    n_test = int(round(held_out_fraction * n))
    if held_out_fraction > 0:
        n_test = max(n_test, 1)
    if n >= 2:
        n_test = min(n_test, n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    test_idx = set(perm[:n_test].tolist())
    train = [c for i, c in enumerate(clips) if i not in test_idx]
    held = [c for i, c in enumerate(clips) if i in test_idx]
    return train, held


def window_starts(num_frames: int, window: int, stride: int, frame_step: int = 1) -> range:
    """First-frame indices of all windows of ``window`` frames, ``frame_step`` apart, every ``stride``.

    Example:
        >>> list(window_starts(7, 3, 2)), list(window_starts(7, 3, 1, frame_step=2))
        ([0, 2, 4], [0, 1, 2])
    """
    span = (window - 1) * frame_step + 1
    return range(0, max(num_frames - span + 1, 0), stride)


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(T, 3, H, W)`` uint8 -> ``(T, 3, h, w)`` uint8, bilinear with antialiasing.

    Example:
        >>> resize_frames(torch.full((2, 3, 8, 8), 9, dtype=torch.uint8), (4, 6)).shape
        torch.Size([2, 3, 4, 6])
    """
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    out = F.interpolate(frames.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
    return out.round().clamp(0, 255).to(torch.uint8)


def resize_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(T, H, W)`` integer ids -> ``(T, h, w)`` int64, nearest neighbour (ids never blend).

    Example:
        >>> resize_masks(torch.tensor([[[0, 5], [5, 0]]]), (4, 4))[0]
        tensor([[0, 0, 5, 5],
                [0, 0, 5, 5],
                [5, 5, 0, 0],
                [5, 5, 0, 0]])
    """
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks.long()
    out = F.interpolate(masks[:, None].double(), size=size, mode="nearest-exact")
    return out[:, 0].long()


class VideoWindowDataset(Dataset):
    """Windows of ``window`` consecutive frames (``frame_step`` apart) from a list of clips.

    Item: ``{"frames": (window, 3, H, W) uint8, "masks": (window, H, W) int64 (only for clips with
    masks), "clip": clip index, "t0": first frame}``. With ``resize=(h, w)`` frames are resized
    bilinearly and masks with nearest neighbour, so they stay aligned. Mixing clips with and
    without masks in one batch needs a custom collate. ``with_masks=False`` leaves masks out
    (training needs frames only).

    Example:
        >>> clip = Clip(np.zeros((5, 8, 8, 3), np.uint8), np.ones((5, 8, 8), np.int32))
        >>> ds = VideoWindowDataset([clip], window=3, stride=1, resize=(4, 4))
        >>> len(ds), ds[2]["frames"].shape, ds[2]["masks"].shape, ds[2]["t0"]
        (3, torch.Size([3, 3, 4, 4]), torch.Size([3, 4, 4]), 2)
    """

    def __init__(
        self,
        clips: Sequence[Clip],
        window: int = 3,
        stride: int = 1,
        resize: tuple[int, int] | None = None,
        frame_step: int = 1,
        with_masks: bool = True,
    ) -> None:
        if window < 1 or stride < 1 or frame_step < 1:
            raise ValueError(f"window/stride/frame_step: expected >= 1, got {window}/{stride}/{frame_step}")
        if resize is not None and (len(resize) != 2 or min(resize) < 1):
            raise ValueError(f"resize: expected (height, width) >= 1, got {resize}")
        for i, c in enumerate(clips):
            if not isinstance(c, Clip):
                raise TypeError(f"clips[{i}]: expected Clip, got {type(c).__name__}")
        self.clips = list(clips)
        self.window, self.stride, self.frame_step = window, stride, frame_step
        self.resize = tuple(resize) if resize is not None else None
        self.with_masks = bool(with_masks)
        self.index = [(ci, t0) for ci, c in enumerate(self.clips)
                      for t0 in window_starts(len(c), window, stride, frame_step)]
        if not self.index:
            raise ValueError(f"clips: expected at least one clip with >= {(window - 1) * frame_step + 1} "
                             f"frames, got lengths {[len(c) for c in self.clips]}")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ci, t0 = self.index[i]
        clip = self.clips[ci]
        ts = slice(t0, t0 + (self.window - 1) * self.frame_step + 1, self.frame_step)
        frames = torch.from_numpy(np.array(clip.frames[ts])).permute(0, 3, 1, 2)
        if self.resize is not None:
            frames = resize_frames(frames, self.resize)
        item: dict[str, Any] = {"frames": frames.contiguous(), "clip": ci, "t0": t0}
        if clip.masks is not None and self.with_masks:
            masks = torch.from_numpy(np.array(clip.masks[ts])).long()
            if self.resize is not None:
                masks = resize_masks(masks, self.resize)
            item["masks"] = masks
        return item
