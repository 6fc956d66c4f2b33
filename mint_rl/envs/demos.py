"""Demonstrations as ``imitation`` trajectories: expert rollouts, our npz format, human demos.

Every function here returns ``list[imitation.data.types.Trajectory]`` with fixed-size array
observations (``(T+1, ...)``; a :class:`imitation.data.types.DictObs` for ``view="both"``),
``acts`` ``(T,)`` int64, ``infos`` one dict per step with ``"eval_score"`` (the episode score
at the last step, 0.0 before), and ``terminal=False`` (MAGICAL episodes only end by the step
limit). :func:`trajectory_scores` reads the scores back.

On-disk format (:func:`save_demos` / :func:`load_demos`): one compressed ``.npz`` holding
``obs`` (all episodes concatenated; ``obs.<key>`` per key for dict observations), ``acts``,
``lengths``, ``scores``, ``seeds`` and ``metadata`` (UTF-8 JSON: ``format``, ``version``,
``env_id``, ``source``, ``observation`` spec, per-episode ``scores``/``seeds``). Files are
written atomically (temporary file, then rename); loading validates everything and either
returns all episodes or raises :class:`DemoFormatError` (a ValueError), never a partial list.

Human demos: MAGICAL's gzip pickles (``magical.try_download_demos`` or any folder of
``*.pkl.gz``), read with :class:`DemoUnpickler` (only the few classes those files hold, so
a malicious pickle runs nothing), are converted to the requested view and resolution (area-downscaled from 384 like
MAGICAL's ``LoRes`` preprocessors). :func:`replay_human_demo` replays a demo's actions in its
env from its start state (see there for how the start state is matched).
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Optional, Sequence, Union

import numpy as np

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DemoFormatError",
    "DemoUnpickler",
    "HumanTrajectory",
    "DemoSet",
    "rollout_expert",
    "expert_episode",
    "ExpertEpisode",
    "trajectory_scores",
    "save_demos",
    "load_demos",
    "load_demo_set",
    "read_demo_metadata",
    "iter_human_demo_files",
    "load_human_demos",
    "ReplayResult",
    "replay_human_demo",
]

FORMAT_NAME = "mint_rl.magical_demos"
FORMAT_VERSION = 1

PathLike = Union[str, os.PathLike]


class DemoFormatError(ValueError):
    """A demo file is corrupted, truncated or not in the expected format."""


# ---------------------------------------------------------------------------------- helpers
def _trajectory(obs_list: list[Any], acts: Sequence[int], scores_per_step: Sequence[float]) -> Any:
    from imitation.data import types

    if isinstance(obs_list[0], dict):
        obs: Any = types.DictObs({k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]})
    else:
        obs = np.stack(obs_list)
    infos = np.array([{"eval_score": float(s)} for s in scores_per_step], dtype=object)
    return types.Trajectory(obs=obs, acts=np.asarray(acts, dtype=np.int64), infos=infos, terminal=False)


def trajectory_scores(trajectories: Iterable[Any]) -> np.ndarray:
    """Episode scores (``infos[-1]["eval_score"]``) of trajectories, ``(N,)`` float64.

    Raises:
        ValueError: a trajectory carries no ``eval_score`` in its last info.
    """
    out = []
    for i, traj in enumerate(trajectories):
        if traj.infos is None or len(traj.infos) == 0 or "eval_score" not in traj.infos[-1]:
            raise ValueError(f"trajectory {i}: expected infos[-1]['eval_score'], found none")
        out.append(float(traj.infos[-1]["eval_score"]))
    return np.asarray(out, dtype=np.float64)


def _obs_arrays(traj: Any) -> dict[str, np.ndarray]:
    from imitation.data import types

    if isinstance(traj.obs, types.DictObs):
        return {k: np.asarray(v) for k, v in traj.obs.items()}
    return {"": np.asarray(traj.obs)}


# ---------------------------------------------------------------------------------- experts
@dataclass
class ExpertEpisode:
    """One scripted-expert episode, as :func:`expert_episode` records it.

    Attributes:
        observations: ``T + 1`` observations (after the reset and after each step).
        actions: ``T`` actions of the expert (what a demonstration records; with action noise
            the executed action may differ).
        scores: ``T`` values of ``info["eval_score"]`` after each step (0 when missing).
        frames: ``T + 1`` values of ``per_frame(env)`` (empty without ``per_frame``).
    """

    observations: list[Any]
    actions: list[int]
    scores: list[float]
    frames: list[Any]

    @property
    def score(self) -> float:
        """The episode's final ``eval_score``."""
        return self.scores[-1] if self.scores else 0.0


def expert_episode(
    env: Any,
    seed: int,
    *,
    expert: Any = None,
    action_noise: float = 0.0,
    per_frame: Optional[Callable[[Any], Any]] = None,
) -> ExpertEpisode:
    """Run one episode of a scripted expert in ``env`` (reset with ``seed``) until it ends.

    The one expert loop of the package: demos (:func:`rollout_expert`), detector coverage
    (:func:`mint_rl.training.evaluation.magical_expert_episode`) and keypoint recordings
    (``scripts/record_keypoints.py``) all run it.

    Args:
        env: a gymnasium env around a MAGICAL env (it is not closed).
        seed: reset seed; also seeds the action noise.
        expert: the expert (``reset(state)``/``act(state)``); default: the task's scripted expert.
        action_noise: probability in ``[0, 1)`` of executing a uniformly random action instead
            of the expert's (DART, see :func:`rollout_expert`); the expert's action is recorded.
        per_frame: called with ``env`` after the reset and after each step; its results are
            :attr:`ExpertEpisode.frames` (e.g. ``env.render()`` or object positions).

    Example:
        >>> import gymnasium, mint_rl
        >>> env = gymnasium.make("magical/MoveToRegion-Demo-v0", view="allo", resolution=32)
        >>> ep = expert_episode(env, seed=0, per_frame=lambda e: 1)
        >>> len(ep.observations), len(ep.actions), len(ep.frames), ep.score
        (41, 40, 41, 1.0)
        >>> env.close()
    """
    from mint_rl.envs.experts import expert_for
    from mint_rl.envs.state import read_state, unwrap_magical

    if not 0.0 <= float(action_noise) < 1.0:
        raise ValueError(f"action_noise: expected a probability in [0, 1), got {action_noise!r}")
    if expert is None:
        expert = expert_for(type(unwrap_magical(env)).__name__.replace("Env", ""))
    obs, _ = env.reset(seed=int(seed))
    state = read_state(env)
    expert.reset(state)
    episode = ExpertEpisode(observations=[obs], actions=[], scores=[], frames=[])
    if per_frame is not None:
        episode.frames.append(per_frame(env))
    noise_rng = np.random.default_rng([int(seed), 7])
    n_actions = int(env.action_space.n)
    done = False
    while not done:
        action = int(expert.act(state))
        executed = action
        if action_noise > 0 and noise_rng.random() < action_noise:
            executed = int(noise_rng.integers(n_actions))
        obs, _, terminated, truncated, info = env.step(executed)
        state = read_state(env)
        episode.observations.append(obs)
        episode.actions.append(action)
        episode.scores.append(float(info.get("eval_score", 0.0)))
        if per_frame is not None:
            episode.frames.append(per_frame(env))
        done = terminated or truncated
    return episode


def rollout_expert(
    env: Any,
    n_episodes: int,
    seed: int = 0,
    *,
    expert_factory: Optional[Callable[[], Any]] = None,
    env_kwargs: Optional[dict] = None,
    progress: bool = True,
    action_noise: float = 0.0,
) -> list[Any]:
    """Roll the scripted expert out for ``n_episodes`` episodes, episode ``i`` seeded ``seed + i``.

    With ``action_noise = p > 0`` the demonstrations are collected DART-style (Laskey et al.,
    2017): at each step, with probability ``p``, a uniformly random action is executed instead
    of the expert's, but the expert's action is what the trajectory records. The expert then
    demonstrates how to recover from small deviations, which behaviour cloning otherwise never
    sees. The noise is drawn from a generator seeded with the episode seed (reproducible).

    Args:
        env: a gymnasium env around a MAGICAL env (ours or ``gymnasium.make("magical/...")``),
            or an id: a MAGICAL id or ``"magical/<id>"`` (made with ``gymnasium.make`` and
            ``env_kwargs``, closed afterwards).
        n_episodes: number of episodes (>= 1).
        seed: seed of the first episode.
        expert_factory: builds a fresh expert per episode; default: the task's scripted expert.
        env_kwargs: keyword arguments for ``gymnasium.make`` when ``env`` is an id.
        progress: show a tqdm progress bar.
        action_noise: probability in ``[0, 1)`` of executing a random action (see above).

    Returns:
        One trajectory per episode; scores via :func:`trajectory_scores`.

    Example:
        >>> trajs = rollout_expert("MoveToRegion-Demo-v0", 1, seed=0,
        ...                        env_kwargs={"view": "allo", "resolution": 32}, progress=False)
        >>> trajs[0].obs.shape, len(trajs[0].acts), trajectory_scores(trajs).tolist()
        ((41, 32, 32, 3), 40, [1.0])
    """
    import gymnasium
    from tqdm.auto import tqdm

    from mint_rl.envs.registry import NAMESPACE, parse_magical_id
    from mint_rl.envs.state import unwrap_magical

    if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise ValueError(f"n_episodes: expected an int >= 1, got {n_episodes!r}")
    if not 0.0 <= float(action_noise) < 1.0:
        raise ValueError(f"action_noise: expected a probability in [0, 1), got {action_noise!r}")
    own = isinstance(env, str)
    if own:
        parsed = parse_magical_id(env)
        env = gymnasium.make(f"{NAMESPACE}/{parsed.env_id}", **(env_kwargs or {}))
    elif env_kwargs:
        raise ValueError("env_kwargs: only used when env is an id string, got an env instance")
    base = unwrap_magical(env)
    task = type(base).__name__.replace("Env", "")
    trajs = []
    try:
        for i in tqdm(range(int(n_episodes)), desc=f"expert {task}", disable=not progress):
            expert = expert_factory() if expert_factory is not None else None  # None: the task's expert
            episode = expert_episode(env, int(seed) + i, expert=expert, action_noise=action_noise)
            trajs.append(_trajectory(episode.observations, episode.actions, episode.scores))
    finally:
        if own:
            env.close()
    return trajs


# ---------------------------------------------------------------------------------- npz format
@dataclass
class DemoSet:
    """Trajectories with their metadata, as stored by :func:`save_demos`."""

    trajectories: list[Any]
    metadata: dict[str, Any]

    @property
    def scores(self) -> np.ndarray:
        """``(N,)`` episode scores."""
        return trajectory_scores(self.trajectories)


def save_demos(
    path: PathLike,
    trajectories: Sequence[Any],
    env_id: str,
    *,
    seeds: Optional[Sequence[Optional[int]]] = None,
    source: str = "expert",
    extra: Optional[dict[str, Any]] = None,
) -> Path:
    """Save trajectories to one compressed ``.npz`` with JSON metadata (atomic write).

    Args:
        path: output file; ``.npz`` is appended when missing.
        trajectories: non-empty list of trajectories with the same observation spec.
        env_id: the MAGICAL id they come from (e.g. ``"MakeLine-TestJitter-v0"``).
        seeds: reset seed per episode (None entries allowed), stored in the metadata.
        source: ``"expert"``, ``"human"`` or another short tag.
        extra: more JSON-serialisable metadata (e.g. view, resolution).

    Returns:
        The written path.

    Raises:
        ValueError: empty input, mismatched observation specs or seeds length.
    """
    from mint_rl.envs.registry import parse_magical_id

    parse_magical_id(env_id)
    trajectories = list(trajectories)
    if not trajectories:
        raise ValueError("trajectories: expected at least one trajectory, got none")
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    seeds_list = [None] * len(trajectories) if seeds is None else list(seeds)
    if len(seeds_list) != len(trajectories):
        raise ValueError(f"seeds: expected {len(trajectories)} entries, got {len(seeds_list)}")
    per_traj = [_obs_arrays(t) for t in trajectories]
    keys = list(per_traj[0])
    spec = {k: (per_traj[0][k].shape[1:], per_traj[0][k].dtype) for k in keys}
    for i, arrs in enumerate(per_traj):
        got = {k: (v.shape[1:], v.dtype) for k, v in arrs.items()}
        if got != spec:
            raise ValueError(f"trajectory {i}: observation spec {got} differs from trajectory 0's {spec}")
        if len(trajectories[i].acts) + 1 != len(next(iter(arrs.values()))):
            raise ValueError(f"trajectory {i}: expected len(obs) == len(acts) + 1")
    scores = trajectory_scores(trajectories)
    lengths = np.array([len(t.acts) for t in trajectories], dtype=np.int64)
    arrays: dict[str, np.ndarray] = {
        "acts": np.concatenate([np.asarray(t.acts, dtype=np.int64) for t in trajectories]),
        "lengths": lengths,
        "scores": scores,
        "seeds": np.array([-1 if s is None else int(s) for s in seeds_list], dtype=np.int64),
    }
    for k in keys:
        arrays["obs" if k == "" else f"obs.{k}"] = np.concatenate([a[k] for a in per_traj])
    metadata = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "env_id": env_id,
        "source": source,
        "n_episodes": len(trajectories),
        "n_steps": int(lengths.sum()),
        "scores": scores.tolist(),
        "mean_score": float(scores.mean()),
        "seeds": seeds_list,
        "observation": {
            "kind": "array" if keys == [""] else "dict",
            "spec": {k: {"shape": list(s), "dtype": str(d)} for k, (s, d) in spec.items()},
        },
        **(extra or {}),
    }
    arrays["metadata"] = np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)
    from mint_rl.checkpoint import chmod_as_open

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        chmod_as_open(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_demo_set(path: PathLike) -> DemoSet:
    """Load a file written by :func:`save_demos`, validating it completely.

    Raises:
        FileNotFoundError: no such file.
        DemoFormatError: corrupted, truncated, wrong format or unsupported version.
    """
    from imitation.data import types

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no demo file at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}  # reads (and CRC-checks) every member
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise DemoFormatError(f"{path}: corrupted or truncated demo file ({type(exc).__name__}: {exc})") from exc
    try:
        metadata = json.loads(bytes(arrays["metadata"]).decode("utf-8"))
    except (KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DemoFormatError(f"{path}: missing or unreadable metadata ({type(exc).__name__}: {exc})") from exc
    if metadata.get("format") != FORMAT_NAME:
        raise DemoFormatError(f"{path}: expected format {FORMAT_NAME!r}, got {metadata.get('format')!r}")
    if metadata.get("version") != FORMAT_VERSION:
        raise DemoFormatError(f"{path}: expected format version {FORMAT_VERSION}, got {metadata.get('version')!r}")
    try:
        lengths = arrays["lengths"].astype(np.int64)
        acts = arrays["acts"]
        scores = arrays["scores"]
        obs_keys = sorted(k for k in arrays if k == "obs" or k.startswith("obs."))
        if not obs_keys:
            raise DemoFormatError(f"{path}: no observations stored")
        n = int(metadata["n_episodes"])
        if len(lengths) != n or len(scores) != n or np.any(lengths < 1):
            raise DemoFormatError(f"{path}: expected {n} episodes with >= 1 step, got lengths {lengths.tolist()}")
        if len(acts) != int(lengths.sum()):
            raise DemoFormatError(f"{path}: expected {int(lengths.sum())} actions, got {len(acts)}")
        if len(acts) and (acts.min() < 0 or acts.max() >= 18):
            raise DemoFormatError(f"{path}: actions outside [0, 18)")
        for k in obs_keys:
            name = "" if k == "obs" else k[4:]
            want = metadata["observation"]["spec"][name]
            arr = arrays[k]
            if len(arr) != int(lengths.sum()) + n:
                raise DemoFormatError(f"{path}: {k} has {len(arr)} frames, expected {int(lengths.sum()) + n}")
            if list(arr.shape[1:]) != want["shape"] or str(arr.dtype) != want["dtype"]:
                raise DemoFormatError(f"{path}: {k} is {arr.shape[1:]} {arr.dtype}, metadata says {want}")
    except KeyError as exc:
        raise DemoFormatError(f"{path}: missing entry {exc}") from exc
    trajs = []
    a_off = o_off = 0
    for i, length in enumerate(lengths.tolist()):
        obs_parts = {("" if k == "obs" else k[4:]): arrays[k][o_off : o_off + length + 1] for k in obs_keys}
        obs: Any = obs_parts[""] if list(obs_parts) == [""] else types.DictObs(obs_parts)
        ep_acts = acts[a_off : a_off + length].astype(np.int64)
        infos = np.array([{"eval_score": 0.0} for _ in range(length)], dtype=object)
        infos[-1] = {"eval_score": float(scores[i])}
        trajs.append(types.Trajectory(obs=obs, acts=ep_acts, infos=infos, terminal=False))
        a_off += length
        o_off += length + 1
    return DemoSet(trajs, metadata)


def read_demo_metadata(path: PathLike) -> dict[str, Any]:
    """The metadata of a file written by :func:`save_demos`, without reading its observations.

    Cheap (one small member of the npz), for checks before loading: task (``env_id``), number
    of episodes, observation spec, and the ``extra`` entries such as ``view``/``resolution``.

    Raises:
        FileNotFoundError: no such file.
        DemoFormatError: unreadable metadata, wrong format or version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no demo file at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = data["metadata"]
        metadata = json.loads(bytes(raw).decode("utf-8"))
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise DemoFormatError(f"{path}: missing or unreadable metadata ({type(exc).__name__}: {exc})") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        got = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise DemoFormatError(f"{path}: expected format {FORMAT_NAME!r}, got {got!r}")
    if metadata.get("version") != FORMAT_VERSION:
        raise DemoFormatError(f"{path}: expected format version {FORMAT_VERSION}, got {metadata.get('version')!r}")
    return metadata


def load_demos(path: PathLike) -> list[Any]:
    """Trajectories of a file written by :func:`save_demos` (see :func:`load_demo_set`).

    Raises:
        FileNotFoundError: no such file.
        DemoFormatError: corrupted, truncated, wrong format or version (nothing is returned).
    """
    return load_demo_set(path).trajectories


# ---------------------------------------------------------------------------------- human demos
_HUMAN_GLOB = "*.pkl.gz"


def iter_human_demo_files(source: Union[PathLike, Sequence[PathLike]], task: Optional[str] = None) -> list[Path]:
    """Sorted MAGICAL demo files (``*.pkl.gz``) under ``source`` (a folder, searched recursively,
    or a list of files), optionally only those whose name mentions ``task`` (e.g. ``"MakeLine"``).

    Raises:
        FileNotFoundError: ``source`` does not exist or holds no demo files.
        ValueError: unknown task.
    """
    from mint_rl.envs.registry import TASKS

    if task is not None and task not in TASKS:
        raise ValueError(f"unknown MAGICAL task {task!r}; expected one of {list(TASKS)}")
    if isinstance(source, (str, os.PathLike)):
        root = Path(source)
        if not root.exists():
            raise FileNotFoundError(f"no such demo folder or file: {root}")
        files = [root] if root.is_file() else sorted(root.rglob(_HUMAN_GLOB))
    else:
        files = [Path(p) for p in source]
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"demo files not found: {missing}")
    if task is not None:
        files = [f for f in files if f"-{task}-" in f.name or f.name.startswith(f"{task}-")]
    if not files:
        raise FileNotFoundError(f"no MAGICAL demo files ({_HUMAN_GLOB}) for task={task!r} under {source}")
    return files


class HumanTrajectory(NamedTuple):
    """What a MAGICAL human demo's ``trajectory`` unpickles to (the fields of MAGICAL's
    ``MAGICALTrajectory``, in its order): ``acts`` ``(T,)`` ints, ``obs`` ``T + 1`` dicts of
    ``allo``/``ego`` frames, ``rews``, ``infos``."""

    acts: Any
    obs: Any
    rews: Any
    infos: Any


def _numpy_reconstruct() -> Any:
    """numpy's array-unpickling helper (``numpy._core`` in numpy 2, ``numpy.core`` before)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return _reconstruct


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The only globals a MAGICAL demo pickle may reference, and what each one becomes.

    Found by listing what the 78 files of MAGICAL's demo data reference (``milbench``'s
    trajectory class, numpy arrays, ``OrderedDict``); the names MAGICAL's own loader maps to its
    trajectory class, and numpy 2's module name for the array helper, are accepted too.
    """
    import collections

    reconstruct = _numpy_reconstruct()
    return {
        ("milbench.baselines.saved_trajectories", "MILBenchTrajectory"): HumanTrajectory,
        ("imitation.util.rollout", "Trajectory"): HumanTrajectory,
        ("magical.saved_trajectories", "MAGICALTrajectory"): HumanTrajectory,
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }


class DemoUnpickler(pickle.Unpickler):
    """Unpickles MAGICAL demo files, and nothing else: any global outside :func:`_allowed_globals`
    (e.g. ``os.system`` in a malicious file) raises :class:`DemoFormatError` naming the file and
    the global, before anything of it runs. MAGICAL itself need not be importable."""

    def __init__(self, file: Any, path: PathLike) -> None:
        super().__init__(file)
        self.path = path
        self.allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        found = self.allowed.get((module, name))
        if found is None:
            allowed = sorted(f"{m}.{n}" for m, n in self.allowed)
            raise DemoFormatError(f"{self.path}: refusing to unpickle the global {module}.{name}; a MAGICAL demo file "
                                  f"only references {allowed}")
        return found


#: What a damaged gzip or pickle stream raises while being read.
_PICKLE_READ_ERRORS = (OSError, EOFError, zlib.error, pickle.UnpicklingError, ValueError, TypeError, IndexError,
                       KeyError, AttributeError, MemoryError, struct.error)


def _read_human_demo(path: Path) -> dict:
    """One MAGICAL demo file as ``{"trajectory": HumanTrajectory, "score", "env_name"}``, checked.

    Raises:
        DemoFormatError: a truncated or corrupt file, a refused global, or contents not shaped
            like a MAGICAL demo (the message names the file).
    """
    try:
        with gzip.open(path, "rb") as fh:
            demo = DemoUnpickler(fh, path).load()
    except DemoFormatError:
        raise
    except _PICKLE_READ_ERRORS as exc:
        raise DemoFormatError(f"{path}: not a readable MAGICAL demo, truncated or corrupt "
                              f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(demo, dict) or not {"trajectory", "score", "env_name"} <= set(demo):
        got = sorted(map(str, demo)) if isinstance(demo, dict) else type(demo).__name__
        raise DemoFormatError(f"{path}: expected a dict with trajectory/score/env_name, got {got}")
    traj = demo["trajectory"]
    if not isinstance(traj, HumanTrajectory):
        raise DemoFormatError(f"{path}: expected a MAGICAL trajectory under 'trajectory', got {type(traj).__name__}")
    acts = np.asarray(traj.acts)
    if acts.ndim != 1 or not np.issubdtype(acts.dtype, np.integer):
        raise DemoFormatError(f"{path}: expected integer actions of shape (T,), got {acts.dtype} {acts.shape}")
    if len(acts) and (acts.min() < 0 or acts.max() >= 18):
        raise DemoFormatError(f"{path}: expected actions in [0, 18), got values in [{acts.min()}, {acts.max()}]")
    n_frames = len(next(iter(traj.obs.values()))) if isinstance(traj.obs, dict) and traj.obs else len(traj.obs)
    if n_frames != len(acts) + 1:
        raise DemoFormatError(f"{path}: expected len(actions) + 1 = {len(acts) + 1} frames, got {n_frames} frames "
                              f"for {len(acts)} actions")
    if not isinstance(demo["env_name"], str) or isinstance(demo["score"], bool) or \
            not isinstance(demo["score"], (int, float, np.floating)):
        raise DemoFormatError(f"{path}: expected a str env_name and a float score, got "
                              f"{type(demo['env_name']).__name__} and {type(demo['score']).__name__}")
    return demo


def _demo_frames(path: Path, raw: HumanTrajectory, view: str) -> list[dict]:
    """The ``T + 1`` frames of a demo as dicts holding (at least) the views ``view`` needs."""
    frames = raw.obs
    if isinstance(frames, dict):  # dict of stacked arrays -> list of dicts
        frames = [{k: frames[k][t] for k in frames} for t in range(len(raw.acts) + 1)]
    keys = ("allo", "ego") if view == "both" else (view,)
    for t, frame in enumerate(frames):
        if not isinstance(frame, dict) or not set(keys) <= set(frame):
            got = sorted(map(str, frame)) if isinstance(frame, dict) else type(frame).__name__
            raise DemoFormatError(f"{path}: frame {t}: expected a dict with the views {list(keys)}, got {got}")
        for k in keys:
            img = frame[k]
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
                got = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
                raise DemoFormatError(f"{path}: frame {t}: expected a uint8 (H, W, 3) {k!r} image, got {got}")
    return list(frames)


def _stack_frames(frames: np.ndarray, depth: int) -> np.ndarray:
    """``(T, H, W, C)`` -> ``(T, H, W, depth*C)``: frames t-depth+1..t along channels, oldest
    first, the first frame repeated before the start (MAGICAL's frame stacking)."""
    if depth == 1:
        return frames
    idx = np.clip(np.arange(len(frames))[:, None] + np.arange(-depth + 1, 1)[None, :], 0, None)
    stacked = frames[idx]  # (T, depth, H, W, C)
    return np.concatenate([stacked[:, i] for i in range(depth)], axis=-1)


def _convert_frames(frames: Sequence[dict], view: str, resolution: int, frame_stack: int = 1) -> Any:
    import cv2

    def one(img: np.ndarray) -> np.ndarray:
        img = np.asarray(img, dtype=np.uint8)
        if img.shape[0] == resolution and img.shape[1] == resolution:
            return img
        return cv2.resize(img, (resolution, resolution), interpolation=cv2.INTER_AREA)

    if view == "both":
        return {k: _stack_frames(np.stack([one(f[k]) for f in frames]), frame_stack) for k in ("allo", "ego")}
    return _stack_frames(np.stack([one(f[view]) for f in frames]), frame_stack)


def load_human_demos(
    source: Union[PathLike, Sequence[PathLike]],
    task: Optional[str] = None,
    *,
    view: str = "allo",
    resolution: int = 96,
    frame_stack: int = 1,
    limit: Optional[int] = None,
    progress: bool = False,
) -> list[Any]:
    """Load MAGICAL human demos as trajectories with the requested observation.

    Args:
        source: folder of MAGICAL ``*.pkl.gz`` demos (e.g. ``../shared/magical-demos`` or the
            folder ``magical.try_download_demos`` fills), or a list of files.
        task: only demos of this task (e.g. ``"MoveToCorner"``).
        view: ``"allo"``, ``"ego"`` or ``"both"`` (a DictObs).
        resolution: image side (area-downscaled from 384, as MAGICAL's LoRes envs).
        frame_stack: stack this many consecutive frames along channels (oldest first, the first
            frame repeated at the start), as MAGICAL does: ``view="allo", resolution=96,
            frame_stack=4`` gives exactly the observations of the ``-LoRes4A`` envs.
        limit: load at most this many demos (files in sorted order).
        progress: tqdm bar.

    Returns:
        Trajectories; ``infos[-1]["eval_score"]`` is the recorded score and every info has
        ``"env_id"`` (first info also ``"demo_path"``).

    Raises:
        ValueError: bad view/resolution/task, ``limit`` not None or an integer >= 1.
        DemoFormatError: a truncated or corrupt file, one whose frames and actions disagree in
            number, or one that references a global a MAGICAL demo never holds (files are
            read with :class:`DemoUnpickler`, which refuses everything else).
        FileNotFoundError: nothing to load.
    """
    from imitation.data import types
    from tqdm.auto import tqdm

    if view not in ("allo", "ego", "both"):
        raise ValueError(f"view: expected one of ['allo', 'ego', 'both'], got {view!r}")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or not 8 <= resolution <= 384:
        raise ValueError(f"resolution: expected an int in [8, 384], got {resolution!r}")
    if isinstance(frame_stack, bool) or not isinstance(frame_stack, (int, np.integer)) or frame_stack < 1:
        raise ValueError(f"frame_stack: expected an int >= 1, got {frame_stack!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit: expected None or an integer >= 1, got {limit!r}")
    files = iter_human_demo_files(source, task)
    if limit is not None:
        files = files[: int(limit)]
    trajs = []
    for path in tqdm(files, desc="human demos", disable=not progress):
        demo = _read_human_demo(path)
        raw = demo["trajectory"]
        frames = _demo_frames(path, raw, view)
        acts = np.asarray(raw.acts, dtype=np.int64)
        obs = _convert_frames(frames, view, int(resolution), int(frame_stack))
        del frames, raw
        obs = types.DictObs(obs) if isinstance(obs, dict) else obs
        infos = np.array([{"eval_score": 0.0, "env_id": demo["env_name"]} for _ in acts], dtype=object)
        infos[0]["demo_path"] = str(path)
        infos[-1]["eval_score"] = float(demo["score"])
        trajs.append(types.Trajectory(obs=obs, acts=acts, infos=infos, terminal=False))
    return trajs


# ---------------------------------------------------------------------------------- replay
@dataclass(frozen=True)
class ReplayResult:
    """Outcome of replaying a human demo's actions.

    Attributes:
        env_id: the demo's env.
        recorded_score: score stored in the demo.
        replayed_score: ``eval_score`` after replaying its actions.
        first_frame_max_diff: max abs pixel difference of the first allocentric frame (0 means the
            start state was matched exactly).
        first_frame_diff_pixels: pixels of the first 384x384 frame differing by more than 10.
        mean_frame_diff: mean abs pixel difference over all allocentric frames (drift).
    """

    env_id: str
    recorded_score: float
    replayed_score: float
    first_frame_max_diff: int
    first_frame_diff_pixels: int
    mean_frame_diff: float

    @property
    def score_reproduced(self) -> bool:
        """Whether the replayed score equals the recorded one (to 1e-6)."""
        return abs(self.recorded_score - self.replayed_score) < 1e-6


def replay_human_demo(path: PathLike) -> ReplayResult:
    """Replay a MAGICAL human demo's actions in its env and compare score and frames.

    Start state: human demos were recorded in ``<Task>-Demo-v0`` envs, whose scene is fixed
    (no randomisation: every reset, whatever the seed, gives the same layout), so a fresh reset
    *is* the recorded start state; ``first_frame_max_diff`` checks this on the pixels.
    Test-variant demos would need the recording seed, which MAGICAL does not store: those
    raise ValueError.

    Raises:
        ValueError: the demo is not from a Demo variant.
        DemoFormatError: unreadable file.
    """
    from mint_rl.envs.magical import MagicalEnv
    from mint_rl.envs.registry import parse_magical_id

    path = Path(path)
    demo = _read_human_demo(path)
    env_id = str(demo["env_name"])
    parsed = parse_magical_id(env_id)
    if parsed.variant != "Demo":
        raise ValueError(f"{path}: replay needs a Demo-variant demo (fixed start state), got {env_id}")
    raw = demo["trajectory"]
    frames = _demo_frames(path, raw, "allo")
    env = MagicalEnv(f"{parsed.task}-{parsed.variant}-{parsed.version}", view="allo")
    try:
        obs, _ = env.reset(seed=0)
        d0 = np.abs(obs.astype(np.int16) - np.asarray(frames[0]["allo"], dtype=np.int16)).max(axis=-1)
        first, first_px = int(d0.max()), int((d0 > 10).sum())
        diffs = [float(np.abs(obs.astype(np.int16) - np.asarray(frames[0]["allo"], dtype=np.int16)).mean())]
        info: dict = {"eval_score": 0.0}
        for t, action in enumerate(np.asarray(raw.acts).tolist()):
            obs, _, _, _, info = env.step(int(action))
            diffs.append(float(np.abs(obs.astype(np.int16) - np.asarray(frames[t + 1]["allo"], dtype=np.int16)).mean()))
    finally:
        env.close()
    return ReplayResult(env_id, float(demo["score"]), float(info["eval_score"]), first, first_px, float(np.mean(diffs)))
