"""Run a detector over clips and score it with the keypoint metrics (DOP / TOP / UAK / RAK).

Any keypoint detector works (:class:`~mint_rl.models.MintDetector` or a baseline of
:mod:`mint_rl.baselines`): what is used is ``detector.config.image_size`` and
``detector(frames) -> (keypoints, status, ...)``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch

from mint_rl.data import Clip
from mint_rl.data.datasets import resize_frames
from mint_rl.metrics import ClipMetrics, aggregate_metrics, clip_metrics
from mint_rl.models import MintDetector


@torch.no_grad()
def detect_clip(
    detector: MintDetector | torch.nn.Module,
    frames: np.ndarray,
    batch_size: int = 64,
    device: Optional[torch.device] = None,
    status_rule: Optional[torch.nn.Module] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints ``(T, K, 2)`` (normalised) and status ``(T, K)`` of ``(T, H, W, 3)`` uint8 frames.

    Frames are resized (bilinear) to the detector's ``image_size`` when they differ; the
    normalised keypoints then refer to the original frames as well. ``status_rule`` (e.g.
    :class:`mint_rl.status.InformationStatus`) replaces the learned status.
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
        x = x.to(device)
        out = detector(x)
        status = out.status if status_rule is None else status_rule(x, detector, out.keypoints, out.status)
        kps.append(out.keypoints.cpu())
        sts.append(status.cpu())
    detector.train(was_training)
    return torch.cat(kps), torch.cat(sts)


def evaluate_detector(
    detector: MintDetector | torch.nn.Module,
    clips: Sequence[Clip],
    keypoint_area: Optional[float] = None,
    batch_size: int = 64,
    status_rule: Optional[torch.nn.Module] = None,
) -> list[ClipMetrics]:
    """:func:`mint_rl.metrics.clip_metrics` of the detector on every clip (clips need masks).

    ``status_rule``: see :func:`detect_clip`.

    Raises:
        ValueError: no clips (there is nothing to score: no metrics, rather than made-up
            ones), a clip without masks, or a ``keypoint_area`` that is not a finite number > 0.
    """
    if len(clips) == 0:
        raise ValueError("evaluate_detector: expected at least one clip with instance masks, got none")
    if keypoint_area is not None and not (np.isfinite(keypoint_area) and keypoint_area > 0):
        raise ValueError(f"evaluate_detector: keypoint_area: expected a finite area > 0 in pixels, got {keypoint_area}")
    results = []
    for clip in clips:
        if clip.masks is None:
            raise ValueError(f"evaluate_detector: clip {clip.name!r} has no instance masks")
        kp, st = detect_clip(detector, clip.frames, batch_size, status_rule=status_rule)
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


#: Radii (world units) of MAGICAL's robot and blocks (``magical.base_env.BaseEnv``).
MAGICAL_ROBOT_RADIUS = 0.2
MAGICAL_BLOCK_RADIUS = 0.12


def magical_expert_episode(task: str, variant: str, seed: int, resolution: int = 96) -> tuple[np.ndarray, list[dict], float]:
    """Frames ``(T, R, R, 3)``, per-frame object pixel centres and score of one expert episode."""
    import gymnasium

    import mint_rl  # noqa: F401  (registers the ids)
    from mint_rl.envs import expert_episode, object_positions_px

    env = gymnasium.make(f"magical/{task}-{variant}-v0", view="allo", resolution=resolution)
    try:
        episode = expert_episode(env, seed, per_frame=lambda e: object_positions_px(e, resolution))
    finally:
        env.close()
    return np.stack(episode.observations), episode.frames, episode.score


def object_coverage(
    keypoints: torch.Tensor, status: torch.Tensor, centres: np.ndarray, radii: np.ndarray, size: int
) -> np.ndarray:
    """``(T, N)`` bool: whether an active keypoint lies within ``radii[n]`` pixels of object ``n``.

    Args:
        keypoints: ``(T, K, 2)`` normalised; status: ``(T, K)``.
        centres: ``(T, N, 2)`` object centres in pixels of a ``size x size`` image.
        radii: ``(N,)`` object radii in pixels.

    Example:
        >>> kp = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]); st = torch.tensor([[1.0, 0.0]])
        >>> object_coverage(kp, st, np.array([[[4.0, 4.0], [8.0, 8.0]]]), np.array([1.0, 1.0]), 9).tolist()
        [[True, False]]
    """
    from mint_rl.coords import normalized_to_pixel

    px = normalized_to_pixel(keypoints, size, size).numpy()  # (T, K, 2)
    active = (status > 0.5).numpy()
    d = np.linalg.norm(px[:, None, :, :] - centres[:, :, None, :], axis=-1)  # (T, N, K)
    return ((d <= radii[None, :, None]) & active[:, None, :]).any(axis=-1)


def magical_keypoint_coverage(
    detector: MintDetector,
    tasks: Sequence[str] = ("MoveToRegion", "MoveToCorner", "MakeLine"),
    variants: Sequence[str] = ("Demo", "TestJitter"),
    episodes: int = 5,
    seed: int = 10_000,
    resolution: int = 96,
    progress: bool = True,
) -> dict[str, Any]:
    """How often an active keypoint sits on the robot and on every block in expert episodes.

    For each frame of ``episodes`` scripted-expert episodes per task and variant (seeds
    ``seed ..``, held out from training, whose seeds start at 0), an object counts as covered
    when an active keypoint lies within its radius (robot 0.2, blocks 0.12 world units, in
    pixels of the ``resolution`` allocentric view) of its centre, from the simulator's state.

    Returns:
        ``{"all_objects": fraction of frames with every object covered, "robot": ..., "blocks":
        fraction of block instances covered, "frames": n, "per_task": {...}}``.
    """
    from tqdm.auto import tqdm

    from mint_rl.envs.state import ARENA_HALF_VIEW

    px_per_unit = resolution / (2 * ARENA_HALF_VIEW)
    per_task: dict[str, dict[str, float]] = {}
    all_frames, all_robot, all_blocks = [], [], []
    jobs = [(t, v, seed + e) for t in tasks for v in variants for e in range(episodes)]
    by_task: dict[str, list] = {t: [[], [], []] for t in tasks}
    for task, variant, s in tqdm(jobs, desc="coverage", disable=not progress):
        frames, positions, _ = magical_expert_episode(task, variant, s, resolution)
        kp, st = detect_clip(detector, frames)
        centres = np.stack([np.concatenate([p["robot"], p["blocks"]]) for p in positions])  # (T, 1+B, 2)
        radii = np.array([MAGICAL_ROBOT_RADIUS] + [MAGICAL_BLOCK_RADIUS] * (centres.shape[1] - 1)) * px_per_unit
        cov = object_coverage(kp, st, centres, radii, resolution)
        for acc, val in zip(by_task[task], (cov.all(axis=1), cov[:, 0], cov[:, 1:].ravel())):
            acc.append(val)
    for task, (every, robot, blocks) in by_task.items():
        every, robot, blocks = np.concatenate(every), np.concatenate(robot), np.concatenate(blocks)
        per_task[task] = {
            "all_objects": float(every.mean()),
            "robot": float(robot.mean()),
            "blocks": float(blocks.mean()) if blocks.size else float("nan"),
            "frames": int(every.size),
        }
        all_frames.append(every)
        all_robot.append(robot)
        all_blocks.append(blocks)
    every, blocks = np.concatenate(all_frames), np.concatenate(all_blocks)
    return {
        "all_objects": float(every.mean()),
        "robot": float(np.concatenate(all_robot).mean()),
        "blocks": float(blocks.mean()) if blocks.size else float("nan"),
        "frames": int(every.size),
        "per_task": per_task,
    }
