"""Run a detector over clips and score it with the keypoint metrics (DOP / TOP / UAK / RAK)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from mint_rl.data import Clip
from mint_rl.data.datasets import resize_frames
from mint_rl.metrics import ClipMetrics, aggregate_metrics, clip_metrics
from mint_rl.models import MintDetector


@torch.no_grad()
def detect_clip(
    detector: MintDetector, frames: np.ndarray, batch_size: int = 64, device: Optional[torch.device] = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints ``(T, K, 2)`` (normalised) and status ``(T, K)`` of ``(T, H, W, 3)`` uint8 frames.

    Frames are resized (bilinear) to the detector's ``image_size`` when they differ; the
    normalised keypoints then refer to the original frames as well.
    """
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        got = f"{frames.dtype} {frames.shape}" if isinstance(frames, np.ndarray) else type(frames).__name__
        raise ValueError(f"detect_clip: expected (T, H, W, 3) uint8 frames, got {got}")
    device = device or next(detector.parameters()).device
    was_training = detector.training
    detector.eval()
    size = tuple(detector.config.image_size)
    kps, sts = [], []
    for i in range(0, len(frames), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(frames[i : i + batch_size])).permute(0, 3, 1, 2)
        if tuple(x.shape[-2:]) != size:
            x = resize_frames(x, size)
        out = detector(x.to(device))
        kps.append(out.keypoints.cpu())
        sts.append(out.status.cpu())
    detector.train(was_training)
    return torch.cat(kps), torch.cat(sts)


def evaluate_detector(
    detector: MintDetector, clips: Sequence[Clip], keypoint_area: Optional[float] = None, batch_size: int = 64
) -> list[ClipMetrics]:
    """:func:`mint_rl.metrics.clip_metrics` of the detector on every clip (clips need masks)."""
    results = []
    for clip in clips:
        if clip.masks is None:
            raise ValueError(f"evaluate_detector: clip {clip.name!r} has no instance masks")
        kp, st = detect_clip(detector, clip.frames, batch_size)
        results.append(clip_metrics(kp, st, clip.masks, keypoint_area=keypoint_area))
    return results


def metrics_summary(results: Sequence[ClipMetrics]) -> dict[str, float]:
    """Flat ``{"dop": mean, "dop_std": std, ...}`` over clips (for logs and tables)."""
    agg = aggregate_metrics(results)
    out: dict[str, float] = {}
    for name, stats in agg.items():
        out[name] = stats["mean"]
        out[f"{name}_std"] = stats["std"]
    return out
