"""Training and scoring data for the forward model: keypoint sequences and their windows.

Every source becomes a list of :class:`KeypointSequence` (keypoints ``(T, K, 2)``, status
``(T, K)``, optional executed actions and ground truth for scoring):

* video clips (:class:`mint_rl.data.Clip`: the CLEVRER-like generator, a clip folder, real
  CLEVRER through its reader, a folder of user videos): :func:`extract_keypoints` runs the frozen
  detector once per clip, batched, and caches the result on disk (keyed by the detector's
  weights and the clip's frames), so training epochs never touch a detector;
* the same clips with ground-truth object centres from the masks instead of a detector (an
  oracle keypoint set): :func:`oracle_keypoints`;
* MAGICAL rollouts with their executed actions and the simulator's robot and block positions:
  :func:`magical_rollouts` (scripted expert with action noise, or random actions), and the
  simulator's positions themselves as oracle keypoints: :func:`entity_keypoints`;
* demonstration files written by ``scripts/make_demos.py``: :func:`demo_sequences`.

:func:`make_windows` cuts sequences into ``(history, horizon)`` windows: the inputs are the
frames ``t - T + 1 .. t``, the targets the frames ``t + 1 .. t + H`` (true forecasting: no
target frame lies inside the input window).
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from mint_rl.coords import pixel_to_normalized
from mint_rl.data import Clip
from mint_rl.models import MintDetector
from mint_rl.training.evaluation import MAGICAL_BLOCK_RADIUS, MAGICAL_ROBOT_RADIUS, detect_clip

__all__ = [
    "KeypointSequence",
    "ForecastWindows",
    "detector_fingerprint",
    "extract_keypoints",
    "oracle_keypoints",
    "entity_keypoints",
    "make_windows",
    "magical_rollouts",
    "demo_sequences",
    "RecordingPolicy",
]

_CACHE_VERSION = 1


@dataclass
class KeypointSequence:
    """The keypoints of one clip or episode, with what is known about it.

    Attributes:
        keypoints: ``(T, K, 2)`` float32 ``(x, y)`` normalised to ``[-1, 1]``.
        status: ``(T, K)`` float32; a keypoint is active iff ``> 0.5``.
        image_size: ``(height, width)`` of the frames the keypoints refer to.
        name: a label (clip name, ``"MoveToCorner-TestJitter-seed10000"``).
        actions: ``(T - 1,)`` int64 action executed at frame ``t`` (moving to ``t + 1``), or None.
        masks: ``(T, H, W)`` instance ids for scoring (0 = background), or None.
        entities: ``(T, O, 2)`` pixel centres of scored entities (MAGICAL robot and blocks), or None.
        entity_radii: ``(O,)`` pixel radii of the entities ("on" = within the radius).
        entity_groups: group name -> entity columns (``{"robot": [0], "blocks": [1, 2]}``).
    """

    keypoints: np.ndarray
    status: np.ndarray
    image_size: tuple[int, int]
    name: str = ""
    actions: np.ndarray | None = None
    masks: np.ndarray | None = None
    entities: np.ndarray | None = None
    entity_radii: np.ndarray | None = None
    entity_groups: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kp, st = np.asarray(self.keypoints), np.asarray(self.status)
        if kp.ndim != 3 or kp.shape[-1] != 2:
            raise ValueError(f"{self.name or 'sequence'}: keypoints: expected shape (T, K, 2), got {kp.shape}")
        if st.shape != kp.shape[:2]:
            raise ValueError(f"{self.name or 'sequence'}: status: expected shape (T, K) = {kp.shape[:2]}, got {st.shape}")
        self.keypoints, self.status = kp.astype(np.float32), st.astype(np.float32)
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        t = kp.shape[0]
        if self.actions is not None:
            self.actions = np.asarray(self.actions, np.int64)
            if self.actions.shape != (t - 1,):
                raise ValueError(f"{self.name or 'sequence'}: actions: expected shape (T - 1,) = ({t - 1},), "
                                 f"got {self.actions.shape}")
        if self.masks is not None and (self.masks.ndim != 3 or self.masks.shape[0] != t
                                       or tuple(self.masks.shape[1:]) != self.image_size):
            raise ValueError(f"{self.name or 'sequence'}: masks: expected shape (T, H, W) = ({t}, "
                             f"{self.image_size[0]}, {self.image_size[1]}), got {self.masks.shape}")
        if self.entities is not None:
            self.entities = np.asarray(self.entities, np.float64)
            if self.entities.ndim != 3 or self.entities.shape[0] != t or self.entities.shape[-1] != 2:
                raise ValueError(f"{self.name or 'sequence'}: entities: expected shape (T, O, 2) with T = {t}, "
                                 f"got {self.entities.shape}")
            radii = np.asarray(self.entity_radii, np.float64) if self.entity_radii is not None else None
            if radii is None or radii.shape != (self.entities.shape[1],):
                raise ValueError(f"{self.name or 'sequence'}: entity_radii: expected shape "
                                 f"({self.entities.shape[1]},), got {None if radii is None else radii.shape}")
            self.entity_radii = radii

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[1])

    @property
    def frames(self) -> np.ndarray:
        """``(T, K, 3)`` float32 ``(x, y, status)`` rows, the model's input format."""
        return np.concatenate([self.keypoints, self.status[..., None]], axis=-1)

    @property
    def has_ground_truth(self) -> bool:
        """Whether the sequence can be scored (it has masks or entity positions)."""
        return self.masks is not None or self.entities is not None


# ----------------------------------------------------------------------------- detection (cached)


def detector_fingerprint(detector: MintDetector) -> str:
    """A short hex digest of a detector's config and weights (the cache key's detector part).

    Example:
        >>> from mint_rl.models import DetectorConfig
        >>> torch.manual_seed(0); a = MintDetector(DetectorConfig.for_image(16, 16, num_keypoints=2))  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> len(detector_fingerprint(a)), detector_fingerprint(a) == detector_fingerprint(a)
        (16, True)
    """
    h = hashlib.sha256(json.dumps(detector.config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(detector.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _frames_digest(frames: np.ndarray) -> str:
    h = hashlib.sha256(str(frames.shape).encode())
    h.update(np.ascontiguousarray(frames).tobytes())
    return h.hexdigest()[:16]


def _read_cache(path: Path | None) -> dict[str, np.ndarray] | None:
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != _CACHE_VERSION:
                return None
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError):
        return None  # unreadable cache entries are recomputed


def _write_cache(path: Path | None, **arrays: np.ndarray) -> None:
    if path is None:
        return
    from mint_rl.checkpoint import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, version=np.array(_CACHE_VERSION), **arrays)
    atomic_write_bytes(path, buf.getvalue())


def extract_keypoints(
    detector: MintDetector,
    clips: Sequence[Clip],
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> list[KeypointSequence]:
    """Detect keypoints in every clip once (batched) and keep the clips' masks for scoring.

    With ``cache_dir`` each clip's keypoints are stored in ``cache_dir/<detector>-<frames>.npz``
    (keyed by :func:`detector_fingerprint` and a digest of the frames) and read back on later
    calls instead of running the detector again.

    Raises:
        ValueError: no clips.
    """
    from tqdm.auto import tqdm

    if len(clips) == 0:
        raise ValueError("extract_keypoints: expected at least one clip, got none")
    cache = Path(cache_dir) if cache_dir is not None else None
    fp = detector_fingerprint(detector) if cache is not None else ""
    out = []
    for clip in tqdm(clips, desc="detect keypoints", disable=not progress):
        path = cache / f"{fp}-{_frames_digest(clip.frames)}.npz" if cache is not None else None
        hit = _read_cache(path)
        if hit is None:
            kp, st = detect_clip(detector, clip.frames, batch_size=batch_size)
            hit = {"keypoints": kp.numpy(), "status": st.numpy()}
            _write_cache(path, **hit)
        out.append(KeypointSequence(hit["keypoints"], hit["status"], (clip.height, clip.width), name=clip.name,
                                    masks=clip.masks))
    return out


def oracle_keypoints(clips: Sequence[Clip], num_keypoints: int) -> list[KeypointSequence]:
    """Ground-truth keypoints: the centroid of each object's mask, one slot per object.

    Slot ``k`` holds the ``k``-th smallest object id of the clip; its status is 1 in the frames
    where the object has mask pixels (0 elsewhere, with the last known centre, or the image
    centre before the object appears). Unused slots stay inactive.

    Raises:
        ValueError: a clip without masks, or with more objects than ``num_keypoints``.

    Example:
        >>> masks = np.zeros((2, 4, 5), np.int32); masks[0, 0:2, 0:2] = 3; masks[1, 2:4, 3:5] = 3
        >>> seq = oracle_keypoints([Clip(np.zeros((2, 4, 5, 3), np.uint8), masks)], 2)[0]
        >>> seq.status.tolist(), [round(float(v), 4) for v in seq.keypoints[1, 0]]
        ([[1.0, 0.0], [1.0, 0.0]], [0.75, 0.6667])
    """
    out = []
    for clip in clips:
        if clip.masks is None:
            raise ValueError(f"oracle_keypoints: clip {clip.name!r} has no masks (the oracle needs them)")
        ids = np.unique(clip.masks)
        ids = ids[ids > 0]
        if len(ids) > num_keypoints:
            raise ValueError(f"oracle_keypoints: clip {clip.name!r} has {len(ids)} objects, more than "
                             f"num_keypoints={num_keypoints}")
        t, h, w = clip.masks.shape
        uv = np.full((t, num_keypoints, 2), [(w - 1) / 2, (h - 1) / 2], np.float64)
        status = np.zeros((t, num_keypoints), np.float32)
        rows, cols = np.mgrid[0:h, 0:w]
        for k, obj in enumerate(ids):
            last = uv[0, k].copy()
            for f in range(t):
                m = clip.masks[f] == obj
                n = int(m.sum())
                if n:
                    last = np.array([cols[m].mean(), rows[m].mean()])
                    status[f, k] = 1.0
                uv[f, k] = last
        xy = pixel_to_normalized(torch.from_numpy(uv), h, w).numpy()
        out.append(KeypointSequence(xy, status, (h, w), name=clip.name, masks=clip.masks))
    return out


def entity_keypoints(sequences: Sequence[KeypointSequence]) -> list[KeypointSequence]:
    """Oracle keypoints of environment sequences: one always-active keypoint per scored entity,
    at its true centre (the simulator's robot and blocks), with the same actions and entities.

    Raises:
        ValueError: a sequence without entity positions.

    Example:
        >>> seq = KeypointSequence(np.zeros((2, 3, 2)), np.ones((2, 3)), (5, 5), entities=np.full((2, 1, 2), 2.0),
        ...                        entity_radii=np.ones(1))
        >>> oracle = entity_keypoints([seq])[0]
        >>> oracle.keypoints.tolist(), oracle.status.tolist()
        ([[[0.0, 0.0]], [[0.0, 0.0]]], [[1.0], [1.0]])
    """
    out = []
    for seq in sequences:
        if seq.entities is None:
            raise ValueError(f"entity_keypoints: sequence {seq.name!r} has no entity positions")
        h, w = seq.image_size
        xy = pixel_to_normalized(torch.from_numpy(seq.entities), h, w).numpy()
        out.append(KeypointSequence(xy, np.ones(xy.shape[:2], np.float32), seq.image_size, name=seq.name,
                                    actions=seq.actions, entities=seq.entities, entity_radii=seq.entity_radii,
                                    entity_groups=dict(seq.entity_groups)))
    return out


# ----------------------------------------------------------------------------- windows


@dataclass
class ForecastWindows:
    """Windows cut from keypoint sequences (see :func:`make_windows`).

    Attributes:
        inputs: ``(N, T, K, 3)`` the frames ``t - T + 1 .. t``.
        targets: ``(N, H, K, 3)`` the frames ``t + 1 .. t + H``.
        actions: ``(N, H)`` the actions executed at ``t .. t + H - 1``, or None.
        sequence: ``(N,)`` index of the source sequence.
        t: ``(N,)`` index of the last input frame in its sequence.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    actions: torch.Tensor | None
    sequence: torch.Tensor
    t: torch.Tensor

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def subset(self, index: torch.Tensor | slice) -> "ForecastWindows":
        """The windows at ``index``."""
        return ForecastWindows(self.inputs[index], self.targets[index],
                               None if self.actions is None else self.actions[index],
                               self.sequence[index], self.t[index])


def make_windows(
    sequences: Sequence[KeypointSequence], history: int = 4, horizon: int = 3, stride: int = 1,
    use_actions: bool | None = None,
) -> ForecastWindows:
    """Every window of ``history`` input frames followed by ``horizon`` target frames.

    A window ending at frame ``t`` (its last input frame) exists for
    ``history - 1 <= t <= T - 1 - horizon``, every ``stride`` frames.

    Args:
        sequences: keypoint sequences, all with the same ``K``.
        use_actions: take the sequences' actions (all must have them); default: iff the first has.

    Raises:
        ValueError: no sequences, a sequence shorter than ``history + horizon`` frames,
            sequences with different ``K``, or missing actions.

    Example:
        >>> seq = KeypointSequence(np.zeros((9, 2, 2)), np.ones((9, 2)), (8, 8))
        >>> w = make_windows([seq], history=4, horizon=3)
        >>> w.inputs.shape, w.targets.shape, w.t.tolist()
        (torch.Size([3, 4, 2, 3]), torch.Size([3, 3, 2, 3]), [3, 4, 5])
    """
    if len(sequences) == 0:
        raise ValueError("make_windows: expected at least one keypoint sequence, got none")
    if history < 1 or horizon < 1 or stride < 1:
        raise ValueError(f"make_windows: history, horizon and stride must be >= 1, got {history}, {horizon}, {stride}")
    k = sequences[0].num_keypoints
    if use_actions is None:
        use_actions = sequences[0].actions is not None
    need = history + horizon
    inputs, targets, actions, seq_ids, ts = [], [], [], [], []
    for i, seq in enumerate(sequences):
        if len(seq) < need:
            raise ValueError(f"make_windows: sequence {seq.name or i!r} has {len(seq)} frames, expected at least "
                             f"history + horizon = {history} + {horizon} = {need}")
        if seq.num_keypoints != k:
            raise ValueError(f"make_windows: sequence {seq.name or i!r} has K={seq.num_keypoints} keypoints, "
                             f"expected K={k} like the first sequence")
        if use_actions and seq.actions is None:
            raise ValueError(f"make_windows: sequence {seq.name or i!r} has no actions (action-conditioned windows)")
        frames = torch.from_numpy(seq.frames)
        t_idx = torch.arange(history - 1, len(seq) - horizon, stride)
        inputs.append(torch.stack([frames[t_idx - history + 1 + j] for j in range(history)], dim=1))
        targets.append(torch.stack([frames[t_idx + 1 + j] for j in range(horizon)], dim=1))
        if use_actions:
            acts = torch.from_numpy(seq.actions)
            actions.append(torch.stack([acts[t_idx + j] for j in range(horizon)], dim=1))
        seq_ids.append(torch.full((len(t_idx),), i, dtype=torch.long))
        ts.append(t_idx)
    return ForecastWindows(torch.cat(inputs), torch.cat(targets), torch.cat(actions) if use_actions else None,
                           torch.cat(seq_ids), torch.cat(ts))


# ----------------------------------------------------------------------------- environments


class RecordingPolicy:
    """Scripted expert with action noise, or random actions, recording the actions it executes.

    ``expert_episode`` records the expert's intended action; a forward model needs the executed
    one. This policy is the "expert" it runs: with probability ``action_noise`` (or always, with
    ``expert=None``) it returns a uniformly random action, and :attr:`executed` lists what it
    returned. The wrapped expert sees every state, so its plan stays consistent.
    """

    def __init__(self, expert: Any, num_actions: int, action_noise: float, seed: int) -> None:
        if not 0.0 <= action_noise <= 1.0:
            raise ValueError(f"action_noise: expected a probability in [0, 1], got {action_noise!r}")
        self.expert, self.num_actions, self.action_noise = expert, int(num_actions), float(action_noise)
        self.rng = np.random.default_rng([int(seed), 11])
        self.executed: list[int] = []

    def reset(self, state: Any) -> None:
        self.executed = []
        if self.expert is not None:
            self.expert.reset(state)

    def act(self, state: Any) -> int:
        action = int(self.expert.act(state)) if self.expert is not None else None
        if action is None or (self.action_noise > 0 and self.rng.random() < self.action_noise):
            action = int(self.rng.integers(self.num_actions))
        self.executed.append(action)
        return action


def magical_rollouts(
    task: str,
    episodes: int,
    seed: int,
    detector: MintDetector,
    *,
    variant: str = "TestJitter",
    policy: str = "expert",
    action_noise: float = 0.3,
    resolution: int = 96,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> list[KeypointSequence]:
    """Keypoints, executed actions and robot/block positions of MAGICAL episodes.

    Episode ``i`` resets with seed ``seed + i``; the allocentric ``resolution``-pixel frames go
    through the detector in one batch per episode. Entities: the robot (column 0, radius 0.2
    world units) and the blocks (radius 0.12), in pixels, as the coverage evaluation uses them
    (:func:`mint_rl.training.evaluation.object_coverage`); groups ``"robot"`` and ``"blocks"``.

    Args:
        policy: ``"expert"`` (the task's scripted expert, a random action with probability
            ``action_noise``) or ``"random"`` (uniformly random actions).
        cache_dir: store each episode (keypoints, actions, positions) keyed by the detector, task,
            variant, seed, policy, noise and resolution.
    """
    from tqdm.auto import tqdm

    from mint_rl.envs import expert_episode, expert_for, make_magical_env, object_positions_px
    from mint_rl.envs.state import ARENA_HALF_VIEW

    if policy not in ("expert", "random"):
        raise ValueError(f"policy: expected 'expert' or 'random', got {policy!r}")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes: expected an int >= 1, got {episodes!r}")
    cache = Path(cache_dir) if cache_dir is not None else None
    fp = detector_fingerprint(detector) if cache is not None else ""
    px_per_unit = resolution / (2 * ARENA_HALF_VIEW)
    env = None
    out = []
    try:
        for i in tqdm(range(episodes), desc=f"{task} rollouts", disable=not progress):
            s = int(seed) + i
            name = f"{task}-{variant}-seed{s}"
            key = f"{fp}-{task}-{variant}-{s}-{policy}-{action_noise:g}-{resolution}"
            path = cache / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz" if cache is not None else None
            hit = _read_cache(path)
            if hit is None:
                if env is None:
                    env = make_magical_env(task, variant, view="allo", resolution=resolution)
                runner = RecordingPolicy(expert_for(task) if policy == "expert" else None, env.action_space.n,
                                         action_noise if policy == "expert" else 1.0, s)
                ep = expert_episode(env, s, expert=runner, per_frame=lambda e: object_positions_px(e, resolution))
                kp, st = detect_clip(detector, np.stack(ep.observations))
                centres = np.stack([np.concatenate([p["robot"], p["blocks"]]) for p in ep.frames])
                hit = {"keypoints": kp.numpy(), "status": st.numpy(), "actions": np.asarray(runner.executed, np.int64),
                       "entities": centres}
                _write_cache(path, **hit)
            n_blocks = hit["entities"].shape[1] - 1
            radii = np.array([MAGICAL_ROBOT_RADIUS] + [MAGICAL_BLOCK_RADIUS] * n_blocks) * px_per_unit
            groups = {"robot": [0]}
            if n_blocks:
                groups["blocks"] = list(range(1, n_blocks + 1))
            out.append(KeypointSequence(hit["keypoints"], hit["status"], (resolution, resolution), name=name,
                                        actions=hit["actions"], entities=hit["entities"], entity_radii=radii,
                                        entity_groups=groups))
    finally:
        if env is not None:
            env.close()
    return out


def demo_sequences(
    path: str | Path, detector: MintDetector, cache_dir: str | Path | None = None, progress: bool = True
) -> list[KeypointSequence]:
    """Keypoints and actions of the episodes of a demo file written by ``scripts/make_demos.py``.

    Training data only: a demo file holds no object positions to score against. Demos recorded
    with action noise (``"action_noise"`` in their metadata) store the expert's intended actions,
    not the executed ones; a warning says so.

    Raises:
        ValueError: observations that are not ``(T, H, W, 3)`` uint8 frames (e.g. stacked LoRes4A).
    """
    from mint_rl.envs import load_demo_set

    demo = load_demo_set(path)
    if float(demo.metadata.get("action_noise", 0.0) or 0.0) > 0:
        warnings.warn(f"{path}: recorded with action noise {demo.metadata['action_noise']}: its actions are the "
                      "expert's intended ones, not the executed ones", stacklevel=2)
    clips = []
    for i, traj in enumerate(demo.trajectories):
        obs = np.asarray(traj.obs)
        if obs.ndim != 4 or obs.shape[-1] != 3 or obs.dtype != np.uint8:
            raise ValueError(f"{path}: expected (T, H, W, 3) uint8 frames per episode, got {obs.shape} {obs.dtype}")
        clips.append(Clip(frames=obs, name=f"{Path(path).stem}-{i}"))
    seqs = extract_keypoints(detector, clips, cache_dir=cache_dir, progress=progress)
    return [KeypointSequence(seq.keypoints, seq.status, seq.image_size, name=seq.name,
                             actions=np.asarray(traj.acts, np.int64))
            for seq, traj in zip(seqs, demo.trajectories)]

