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
    if status_rule is not None and hasattr(status_rule, "reset"):
        status_rule.reset()  # a rule with state (the temporal information status) starts each clip afresh
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
    """Frames ``(T, R, R, 3)``, per-frame object pixel centres (and ``"goal_boxes"``, see
    :func:`~mint_rl.envs.state.goal_boxes_px`) and score of one expert episode."""
    import gymnasium

    import mint_rl  # noqa: F401  (registers the ids)
    from mint_rl.envs import expert_episode, object_positions_px
    from mint_rl.envs.state import goal_boxes_px

    def positions(e: Any) -> dict[str, np.ndarray]:
        return {**object_positions_px(e, resolution), "goal_boxes": goal_boxes_px(e, resolution)}

    env = gymnasium.make(f"magical/{task}-{variant}-v0", view="allo", resolution=resolution)
    try:
        episode = expert_episode(env, seed, per_frame=positions)
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


def region_coverage(keypoints: torch.Tensor, status: torch.Tensor, boxes: np.ndarray, size: int,
                    exclude: Optional[np.ndarray] = None) -> np.ndarray:
    """``(T, G)`` bool: whether an active keypoint lies inside goal region ``g`` (its pixel box).

    Args:
        keypoints: ``(T, K, 2)`` normalised; status: ``(T, K)``.
        boxes: ``(T, G, 4)`` pixel boxes ``(u_min, v_min, u_max, v_max)`` of a ``size x size`` image.
        exclude: optional ``(T, K)`` bool, keypoints that do not count (e.g. those on the robot
            or a block, which may stand inside the region).

    Example:
        >>> kp = torch.tensor([[[0.0, 0.0], [-1.0, -1.0]]]); st = torch.tensor([[1.0, 1.0]])
        >>> boxes = np.array([[[3.0, 3.0, 5.0, 5.0], [6.0, 0.0, 8.0, 2.0]]])
        >>> region_coverage(kp, st, boxes, 9).tolist()
        [[True, False]]
        >>> region_coverage(kp, st, boxes, 9, exclude=np.array([[True, False]])).tolist()
        [[False, False]]
    """
    from mint_rl.coords import normalized_to_pixel

    if boxes.ndim != 3 or boxes.shape[-1] != 4 or boxes.shape[0] != keypoints.shape[0]:
        raise ValueError(f"boxes: expected (T={keypoints.shape[0]}, G, 4), got {boxes.shape}")
    px = normalized_to_pixel(keypoints, size, size).numpy()[:, None]  # (T, 1, K, 2)
    active = (status > 0.5).numpy()
    if exclude is not None:
        if exclude.shape != active.shape:
            raise ValueError(f"exclude: expected {tuple(active.shape)} like status, got {exclude.shape}")
        active = active & ~exclude
    active = active[:, None, :]
    lo, hi = boxes[:, :, None, :2], boxes[:, :, None, 2:]
    inside = ((px >= lo) & (px <= hi)).all(axis=-1)  # (T, G, K)
    return (inside & active).any(axis=-1)


def mirrored_boxes(boxes: np.ndarray, size: int) -> np.ndarray:
    """Pixel boxes ``(..., 4)`` ``(u_min, v_min, u_max, v_max)`` reflected through the centre of a
    ``size x size`` image (pixel centres ``0 .. size - 1``): same size, opposite place.

    Example:
        >>> mirrored_boxes(np.array([[0.0, 2.0, 3.0, 4.0]]), 10).tolist()
        [[6.0, 5.0, 9.0, 7.0]]
    """
    return (size - 1) - boxes[..., [2, 3, 0, 1]]


#: Roles a keypoint index can play in one frame (:func:`keypoint_roles`), in histogram order.
KEYPOINT_ROLES = ("inactive", "spare", "robot", "block")


def covering_keypoints(
    keypoints: torch.Tensor, status: torch.Tensor, centres: np.ndarray, radii: np.ndarray, size: int
) -> np.ndarray:
    """``(T, N)`` int: the index of the active keypoint nearest object ``n`` within its radius, ``-1`` if none.

    The same covering rule as :func:`object_coverage` (``covering_keypoints(...) >= 0`` equals it);
    this says *which* keypoint covers the object.

    Example:
        >>> kp = torch.tensor([[[0.0, 0.0], [0.2, 0.2], [1.0, 1.0]]]); st = torch.tensor([[1.0, 1.0, 0.0]])
        >>> covering_keypoints(kp, st, np.array([[[5.0, 5.0], [8.0, 8.0]]]), np.array([1.5, 1.0]), 9).tolist()
        [[1, -1]]
    """
    from mint_rl.coords import normalized_to_pixel

    px = normalized_to_pixel(keypoints, size, size).numpy()
    active = (status > 0.5).numpy()
    d = np.linalg.norm(px[:, None, :, :] - centres[:, :, None, :], axis=-1)  # (T, N, K)
    d = np.where((d <= radii[None, :, None]) & active[:, None, :], d, np.inf)
    nearest = d.argmin(axis=-1)
    return np.where(np.isfinite(d.min(axis=-1)), nearest, -1)


def keypoint_roles(
    keypoints: torch.Tensor, status: torch.Tensor, centres: np.ndarray, radii: np.ndarray, size: int
) -> np.ndarray:
    """``(T, K)`` int: each keypoint's role per frame, an index into :data:`KEYPOINT_ROLES`.

    ``inactive`` (status <= 0.5), ``robot`` / ``block`` (active and within the radius of object
    0, the robot, or of another object, the blocks; the object it is relatively nearest to,
    distance over radius, when it lies within several), else ``spare`` (active on no object).

    Example:
        >>> kp = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [-1.0, -1.0]]]); st = torch.tensor([[1.0, 1.0, 0.0]])
        >>> [KEYPOINT_ROLES[r] for r in keypoint_roles(kp, st, np.array([[[4.0, 4.0]]]), np.array([1.0]), 9)[0]]
        ['robot', 'spare', 'inactive']
    """
    from mint_rl.coords import normalized_to_pixel

    px = normalized_to_pixel(keypoints, size, size).numpy()
    active = (status > 0.5).numpy()
    rel = np.linalg.norm(px[:, :, None, :] - centres[:, None, :, :], axis=-1) / radii[None, None, :]  # (T, K, N)
    nearest = rel.argmin(axis=-1)
    on_object = rel.min(axis=-1) <= 1.0
    roles = np.where(on_object, np.where(nearest == 0, 2, 3), 1)
    return np.where(active, roles, 0)


def index_histogram(indices: np.ndarray, num_keypoints: int) -> np.ndarray:
    """``(K,)``: among the entries of ``indices`` that name a keypoint (``-1`` = none), the
    fraction naming each; all zeros when none does.

    Coverage itself is measured apart (:func:`object_coverage`): this is *which* keypoint covers
    an object when one does, so that variants with different coverage compare on identity alone.

    Example:
        >>> index_histogram(np.array([[0, 2], [2, -1]]), 4).round(3).tolist()
        [0.333, 0.0, 0.667, 0.0]
    """
    flat = np.asarray(indices).ravel()
    named = flat[flat >= 0]
    if named.size and named.max() >= num_keypoints:
        raise ValueError(f"expected keypoint indices below num_keypoints={num_keypoints}, got {int(named.max())}")
    if named.size == 0:
        return np.zeros(num_keypoints)
    return np.bincount(named, minlength=num_keypoints) / named.size


def role_histogram(roles: np.ndarray) -> np.ndarray:
    """``(K, len(KEYPOINT_ROLES))``: per keypoint index, the fraction of frames in each role.

    Example:
        >>> role_histogram(np.array([[0, 2], [1, 2]])).tolist()
        [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]
    """
    roles = np.asarray(roles)
    counts = np.stack([(roles == r).sum(axis=0) for r in range(len(KEYPOINT_ROLES))], axis=-1)
    return counts / max(len(roles), 1)


def histogram_agreement(p: np.ndarray, q: np.ndarray) -> float:
    """Histogram intersection ``sum_i min(p_i, q_i)`` over the last axis, averaged over the others.

    1 when both put the same mass on the same bins (the same keypoint index covers the robot as
    often in both variants; every keypoint index plays its roles as often), 0 when they share none.

    Example:
        >>> histogram_agreement(np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5]))
        0.5
    """
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.shape != q.shape:
        raise ValueError(f"expected histograms of one shape, got {p.shape} and {q.shape}")
    return float(np.minimum(p, q).sum(axis=-1).mean())


def magical_keypoint_coverage(
    detector: MintDetector,
    tasks: Sequence[str] = ("MoveToRegion", "MoveToCorner", "MakeLine"),
    variants: Optional[Sequence[str]] = ("Demo", "TestJitter"),
    episodes: int = 5,
    seed: int = 10_000,
    resolution: int = 96,
    progress: bool = True,
    reference: str = "TestJitter",
) -> dict[str, Any]:
    """How often an active keypoint sits on the robot, every block and every goal region in expert episodes, and
    whether the same keypoint indices do so from one MAGICAL variant to another.

    For each frame of ``episodes`` scripted-expert episodes per task and variant (seeds
    ``seed ..``, held out from training, whose seeds start at 0), an object counts as covered
    when an active keypoint lies within its radius (robot 0.2, blocks 0.12 world units, in
    pixels of the ``resolution`` allocentric view) of its centre, from the simulator's state.
    ``variants=None`` evaluates every variant MAGICAL defines for each task.

    Keypoint identity (a policy that reads keypoints by index sees another input when other
    indices cover the objects): per task and variant, the histogram of which keypoint index
    covers the robot (:func:`covering_keypoints`, :func:`index_histogram`), the same for the
    blocks, and each index's role histogram (:func:`keypoint_roles`); each is compared with the
    ``reference`` variant's (the variant the BC demonstrations come from) by
    :func:`histogram_agreement`: 1 = the same indices in the same proportions.

    Returns:
        ``{"all_objects": fraction of frames with every object covered, "robot": ..., "blocks":
        fraction of block instances covered, "goals": fraction of goal-region instances with an
        active keypoint inside the region that is on neither the robot nor a block
        (:func:`region_coverage`; the robot stands in the region at the end of an episode; NaN
        for tasks without goal regions; not part of "all_objects"), "goals_mirrored": the same for
        each goal's box mirrored through the image centre (:func:`mirrored_boxes`: the chance level
        of keypoints that ignore the goal; goals >> goals_mirrored means keypoints mark the goal),
        "frames": n, "per_task": {task: {same keys}},
        "per_variant": {task: {variant: {same keys, "robot_index": (K,) histogram, "block_index",
        "roles": (K, 4), "robot_agreement", "block_agreement", "role_agreement" (against the
        reference; ``None`` when the reference was not evaluated)}}}}``.
    """
    from tqdm.auto import tqdm

    from mint_rl.envs.registry import TASK_VARIANTS
    from mint_rl.envs.state import ARENA_HALF_VIEW

    for task in tasks:
        if task not in TASK_VARIANTS:
            raise ValueError(f"tasks: expected names among {list(TASK_VARIANTS)}, got {task!r}")
        wrong = [v for v in (variants or ()) if v not in TASK_VARIANTS[task]]
        if wrong:
            raise ValueError(f"variants: {wrong} are not variants of {task}; expected some of {list(TASK_VARIANTS[task])}")
    if episodes < 1:
        raise ValueError(f"episodes: expected >= 1, got {episodes}")
    task_variants = {t: tuple(variants) if variants is not None else TASK_VARIANTS[t] for t in tasks}
    px_per_unit = resolution / (2 * ARENA_HALF_VIEW)
    jobs = [(t, v, seed + e) for t in tasks for v in task_variants[t] for e in range(episodes)]
    raw: dict[str, dict[str, dict[str, list]]] = {
        t: {v: {"covered": [], "covering": [], "roles": [], "goals": [], "mirrored": []} for v in task_variants[t]}
        for t in tasks}
    num_keypoints = None
    for task, variant, s in tqdm(jobs, desc="coverage", disable=not progress):
        frames, positions, _ = magical_expert_episode(task, variant, s, resolution)
        kp, st = detect_clip(detector, frames)
        num_keypoints = kp.shape[1]
        centres = np.stack([np.concatenate([p["robot"], p["blocks"]]) for p in positions])  # (T, 1+B, 2)
        radii = np.array([MAGICAL_ROBOT_RADIUS] + [MAGICAL_BLOCK_RADIUS] * (centres.shape[1] - 1)) * px_per_unit
        acc = raw[task][variant]
        acc["covering"].append(covering_keypoints(kp, st, centres, radii, resolution))
        acc["covered"].append(acc["covering"][-1] >= 0)
        acc["roles"].append(keypoint_roles(kp, st, centres, radii, resolution))
        boxes = np.stack([p.get("goal_boxes", np.zeros((0, 4))) for p in positions])  # (T, G, 4)
        on_objects = np.isin(acc["roles"][-1], [KEYPOINT_ROLES.index("robot"), KEYPOINT_ROLES.index("block")])
        acc["goals"].append(region_coverage(kp, st, boxes, resolution, exclude=on_objects))
        mirrored = mirrored_boxes(boxes, resolution)
        acc["mirrored"].append(region_coverage(kp, st, mirrored, resolution, exclude=on_objects))

    def fraction(hits: list[np.ndarray]) -> float:
        flat = np.concatenate([h.ravel() for h in hits])
        return float(flat.mean()) if flat.size else float("nan")

    def pooled(accs: list[dict[str, list]]) -> dict[str, Any]:
        covered = [c for a in accs for c in a["covered"]]
        every = np.concatenate([c.all(axis=1) for c in covered])
        return {"all_objects": float(every.mean()), "robot": fraction([c[:, 0] for c in covered]),
                "blocks": fraction([c[:, 1:] for c in covered]),
                "goals": fraction([g for a in accs for g in a["goals"]]),
                "goals_mirrored": fraction([g for a in accs for g in a["mirrored"]]), "frames": int(every.size)}

    per_task = {t: pooled(list(raw[t].values())) for t in tasks}
    per_variant: dict[str, dict[str, dict[str, Any]]] = {}
    for t in tasks:
        per_variant[t] = {}
        for v, acc in raw[t].items():
            covering = acc["covering"]
            per_variant[t][v] = {
                **pooled([acc]),
                "robot_index": index_histogram(np.concatenate([c[:, 0] for c in covering]), num_keypoints),
                "block_index": index_histogram(np.concatenate([c[:, 1:].ravel() for c in covering]), num_keypoints),
                "roles": role_histogram(np.concatenate(acc["roles"])),
            }
        ref = per_variant[t].get(reference)
        for row in per_variant[t].values():
            for name, key in (("robot_agreement", "robot_index"), ("block_agreement", "block_index"),
                              ("role_agreement", "roles")):
                row[name] = None if ref is None else histogram_agreement(row[key], ref[key])
    overall = pooled([a for t in tasks for a in raw[t].values()])
    return {**overall, "per_task": per_task, "per_variant": per_variant, "reference": reference}
