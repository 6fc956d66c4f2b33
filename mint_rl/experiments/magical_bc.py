"""Behaviour cloning on MAGICAL with MINT keypoints or pixels (the paper's Downstream task IV).

The experiment (``scripts/bc_magical.py``):

1. demonstrations — scripted-expert episodes on ``TASK-TestJitter`` seeds (the Demo variant
   resets to one fixed scene, so its episodes would all be the same), MAGICAL's human demos
   from a folder, or a file in our demo format;
2. observations — for the MINT agent, ``(history, K, 3)`` keypoints of a frozen detector on
   the allocentric 96x96 view (:class:`~mint_rl.wrappers.MintKeypointWrapper`; ``(history, K, 5)``
   with each keypoint's orientation); for the CNN
   agent, the 4 stacked allocentric 96x96 frames of MAGICAL's ``-LoRes4A`` observation;
3. behaviour cloning (:func:`mint_rl.policies.train_bc`, imitation's ``bc.BC`` plus the
   next-keypoint loss for MINT) once per seed;
4. evaluation — ``eval_episodes`` episodes per seed on every variant MAGICAL defines for the
   task (``Demo``, ``TestJitter``, ``TestColour``, ... :data:`mint_rl.envs.TASK_VARIANTS`), once
   with the most likely action (``argmax``, SB3's ``deterministic=True``) and once with actions
   sampled from the policy (``sampled``), scored by ``info["eval_score"]`` at the end (MAGICAL
   episodes all have the task's fixed length, so a vector env of ``eval_episodes`` sub-envs runs
   each exactly once, with one detector and one policy forward per step).

Scores are keyed ``"VARIANT/MODE"`` (:func:`score_key`). The headline pair the main job prints,
``demo_score`` and ``testjitter_score``, is Demo and TestJitter in the config's headline mode
(``deterministic=True``: argmax).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import gymnasium as gym
import numpy as np

#: ``"mint"``: interaction network on keypoints; ``"cnn"``: pixels (Appendix E.5); ``"state"``: an
#: MLP on the simulator's true state, a privileged reference that is not in the paper.
AGENTS = ("mint", "cnn", "state")
#: The headline variants (the main job's ``demo_score`` / ``testjitter_score``), which every
#: evaluation includes; also the variants expert demonstrations can be recorded on.
VARIANTS = ("Demo", "TestJitter")
#: Evaluation modes: the most likely action (SB3's ``deterministic=True``, what a deployed policy
#: does) and an action sampled from the policy's distribution.
EVAL_MODES = ("argmax", "sampled")
#: ``BCExperimentConfig.precision`` choices.
PRECISIONS = ("fp32", "bf16")
RESOLUTION = 96
#: Default BC epochs of the MINT agent. 40 epochs left the policy under-fitted: on MoveToRegion
#: (2 seeds, argmax actions) Demo/TestJitter went from 0.50/0.24 at 40 epochs to 1.00/0.74 at 150.
MINT_EPOCHS = 150


def score_key(variant: str, mode: str) -> str:
    """The key of one variant's scores in one evaluation mode (:class:`BCResult`, ``results.json``).

    Example:
        >>> score_key("TestColour", "sampled")
        'TestColour/sampled'
        >>> split_score_key("TestColour/sampled")
        ('TestColour', 'sampled')
    """
    if mode not in EVAL_MODES:
        raise ValueError(f"mode: expected one of {list(EVAL_MODES)}, got {mode!r}")
    return f"{variant}/{mode}"


def split_score_key(key: str) -> tuple[str, str]:
    """Inverse of :func:`score_key`: ``"Demo/argmax"`` -> ``("Demo", "argmax")``.

    Raises:
        ValueError: a key that is not ``VARIANT/MODE``.
    """
    variant, sep, mode = key.rpartition("/")
    if not sep or not variant or mode not in EVAL_MODES:
        raise ValueError(f"expected a score key VARIANT/MODE with MODE one of {list(EVAL_MODES)}, got {key!r}")
    return variant, mode


@dataclass
class BCExperimentConfig:
    """Settings of one BC experiment (defaults: the paper's protocol on this CPU).

    Attributes:
        task: MAGICAL task (``MoveToRegion``, ``MoveToCorner``, ``MakeLine``).
        agent: ``"mint"`` (interaction network on keypoints), ``"cnn"`` (pixels) or ``"state"``
            (privileged MLP on the true simulator state over ``history`` steps; expert demos
            only, since MAGICAL's human demos store frames, not states).
        demos: ``"expert"``, ``"human"`` (needs ``human_dir``) or a path (a folder of MAGICAL
            ``*.pkl.gz`` demos, or an ``.npz`` file of our demo format).
        human_dir: folder of MAGICAL human demos for ``demos="human"``.
        n_demos: demonstrations used for training (paper: 10).
        seeds: training seeds (paper: 5).
        epochs: BC epochs; ``None`` means :data:`MINT_EPOCHS` for the MINT and state agents and
            twice that for the CNN (the paper trains the CNN agent twice as long).
        eval_episodes: evaluation episodes per variant and seed (paper: 25).
        detector: pretrained detector name or checkpoint path (MINT agent).
        history: keypoint frames (state agent: states) per observation (paper: 4).
        deterministic: the headline mode (the main job's ``demo_score`` / ``testjitter_score``
            and the per-seed log): the most likely action (``"argmax"``, SB3's and imitation's
            convention) when true, else actions sampled from the policy (``"sampled"``). On the
            Demo variant, one fixed scene, the 25 argmax episodes of a seed are identical;
            sampled actions give a spread.
        variants: the MAGICAL variants evaluated; ``None`` (default) means every variant MAGICAL
            defines for the task (:data:`mint_rl.envs.TASK_VARIANTS`). Must include Demo and
            TestJitter (the headline pair).
        eval_modes: evaluation modes, a subset of :data:`EVAL_MODES` that includes the headline
            mode; default both.
        demo_seed: first seed of the expert demonstrations.
        eval_seed: first seed of the evaluation episodes (kept away from the demo seeds).
        batch_size: BC minibatch size.
        demo_noise: for expert demos, the probability of executing a random action while the
            expert's action is recorded (DART; :func:`mint_rl.envs.rollout_expert`).
        demo_variant: the variant the expert demonstrates on. ``"TestJitter"`` gives ``n_demos``
            different scenes; ``"Demo"`` is the one scene the paper's demonstrations come from
            (MAGICAL's human demos are recorded on it), where the deterministic expert needs
            ``demo_noise > 0`` to give different demonstrations.
        first_seed: training seeds are ``first_seed .. first_seed + seeds - 1`` (to split the
            seeds of one table over several processes; ``scripts/bc_table.py`` merges them).
        precision: ``"fp32"``, or ``"bf16"`` for the CNN agent's conv stack in bfloat16 mixed
            precision (:class:`~mint_rl.policies.CnnAgentExtractor`'s ``compute_dtype``).
        network: the MINT agent's :class:`~mint_rl.policies.InteractionNetworkConfig`; ``None``
            for its defaults. ``results.json`` records the whole config used.
        keypoint_noise: standard deviation of the Gaussian jitter added to the keypoint ``x, y``
            of every BC batch (MINT agent; :func:`~mint_rl.policies.jitter_keypoints`).
        orientation: the MINT agent also sees each keypoint's intensity-centroid orientation
            (``MintKeypointWrapper(orientation=True)``; not in the paper).
        dagger: ``None`` for behaviour cloning; a :class:`~mint_rl.experiments.dagger.DaggerConfig`
            (or its fields as a dict) trains each seed with DAgger and the task's scripted expert
            instead, starting from the ``n_demos`` demonstrations.
        demo_augment: appearance-augmented copies of each demonstration added to the training
            set (MINT and CNN agents): the demo's frames with their colour channels permuted and
            brightness and contrast varied (:func:`~mint_rl.data.augment.appearance_augment`, one
            draw per episode from a generator seeded with ``demo_seed``), then, for MINT, through
            the detector, with the demo's actions. 0: the demonstrations as they are.
    """

    task: str
    agent: str = "mint"
    demos: str = "expert"
    human_dir: Optional[str] = None
    n_demos: int = 10
    seeds: int = 5
    epochs: Optional[int] = None
    eval_episodes: int = 25
    detector: str = "magical"
    history: int = 4
    deterministic: bool = True
    demo_seed: int = 0
    eval_seed: int = 10_000
    batch_size: int = 32
    demo_noise: float = 0.0
    demo_variant: str = "TestJitter"
    first_seed: int = 0
    precision: str = "fp32"
    network: Optional[Any] = None
    keypoint_noise: float = 0.0
    orientation: bool = False
    variants: Optional[tuple[str, ...]] = None
    eval_modes: tuple[str, ...] = EVAL_MODES
    dagger: Optional[Any] = None
    demo_augment: int = 0

    def __post_init__(self) -> None:
        from mint_rl.envs.registry import TASKS

        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {list(TASKS)}, got {self.task!r}")
        if self.agent not in AGENTS:
            raise ValueError(f"agent: expected one of {list(AGENTS)}, got {self.agent!r}")
        for name in ("n_demos", "seeds", "eval_episodes", "history", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)!r}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs: expected >= 1, got {self.epochs!r}")
        if self.agent == "cnn" and int(self.history) != 4:
            raise ValueError(f"history: the CNN agent observes MAGICAL's -LoRes4A stack of 4 frames, so history "
                             f"must be 4, got {self.history!r}")
        if int(self.first_seed) < 0:
            raise ValueError(f"first_seed: expected >= 0, got {self.first_seed!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.precision != "fp32" and self.agent != "cnn":
            raise ValueError(f"precision={self.precision!r} applies to the CNN agent only (got agent={self.agent!r})")
        if self.network is not None:
            from mint_rl.policies.interaction_network import InteractionNetworkConfig

            if not isinstance(self.network, InteractionNetworkConfig):
                raise TypeError(f"network: expected an InteractionNetworkConfig or None, got {type(self.network).__name__}")
            if self.agent != "mint":
                raise ValueError(f"network configures the MINT agent's interaction network; agent is {self.agent!r}")
        if not 0.0 <= self.keypoint_noise < 1.0:
            raise ValueError(f"keypoint_noise: expected a standard deviation in [0, 1), got {self.keypoint_noise!r}")
        if self.keypoint_noise > 0 and self.agent != "mint":
            raise ValueError(f"keypoint_noise jitters keypoint observations: MINT agent only, got agent={self.agent!r}")
        if self.orientation and self.agent != "mint":
            raise ValueError(f"orientation adds a feature to keypoint observations: MINT agent only, got agent={self.agent!r}")
        if self.agent == "state" and self.demos != "expert":
            raise ValueError(f"agent='state' learns from the simulator state, which only the scripted-expert demos "
                             f"record (human demos and demo files hold frames); got demos={self.demos!r}")
        if self.demos == "human" and not self.human_dir:
            raise ValueError("demos='human' needs human_dir (a folder of MAGICAL *.pkl.gz demos), or pass the folder as demos")
        if not 0.0 <= self.demo_noise < 1.0:
            raise ValueError(f"demo_noise: expected a probability in [0, 1), got {self.demo_noise!r}")
        from mint_rl.envs.registry import TASK_VARIANTS

        if self.variants is not None:
            if isinstance(self.variants, str):
                raise TypeError(f"variants: expected a sequence of variant names, got the string {self.variants!r}")
            self.variants = tuple(self.variants)
            unknown = [v for v in self.variants if v not in TASK_VARIANTS[self.task]]
            if unknown:
                raise ValueError(f"variants: {unknown} are not variants of {self.task}; expected some of "
                                 f"{list(TASK_VARIANTS[self.task])}")
            missing = [v for v in VARIANTS if v not in self.variants]
            if missing:
                raise ValueError(f"variants: expected the headline variants {list(VARIANTS)} among them, "
                                 f"missing {missing}")
            if len(set(self.variants)) != len(self.variants):
                raise ValueError(f"variants: expected each variant once, got {list(self.variants)}")
        if isinstance(self.demo_augment, bool) or int(self.demo_augment) != self.demo_augment or self.demo_augment < 0:
            raise ValueError(f"demo_augment: expected a number of copies >= 0, got {self.demo_augment!r}")
        if self.demo_augment and self.agent == "state":
            raise ValueError("demo_augment changes the demos' frames; agent='state' learns from the simulator state")
        if self.dagger is not None:
            from mint_rl.envs.experts import EXPERTS
            from mint_rl.experiments.dagger import DaggerConfig

            if isinstance(self.dagger, dict):
                self.dagger = DaggerConfig(**self.dagger)
            if not isinstance(self.dagger, DaggerConfig):
                raise TypeError(f"dagger: expected a DaggerConfig, its fields as a dict, or None, got "
                                f"{type(self.dagger).__name__}")
            if self.task not in EXPERTS:
                raise ValueError(f"dagger labels states with the task's scripted expert; {self.task} has none "
                                 f"(tasks with one: {list(EXPERTS)})")
        if isinstance(self.eval_modes, str):
            raise TypeError(f"eval_modes: expected a sequence of modes, got the string {self.eval_modes!r}")
        self.eval_modes = tuple(self.eval_modes)
        bad = [m for m in self.eval_modes if m not in EVAL_MODES]
        if bad or not self.eval_modes or len(set(self.eval_modes)) != len(self.eval_modes):
            raise ValueError(f"eval_modes: expected distinct modes among {list(EVAL_MODES)}, got {list(self.eval_modes)}")
        if self.headline_mode not in self.eval_modes:
            raise ValueError(f"eval_modes: the headline mode {self.headline_mode!r} (deterministic="
                             f"{self.deterministic}) must be evaluated, got {list(self.eval_modes)}")
        if self.demo_variant not in VARIANTS:
            raise ValueError(f"demo_variant: expected one of {list(VARIANTS)}, got {self.demo_variant!r}")
        if self.demo_variant == "Demo" and self.demos == "expert" and self.demo_noise == 0 and self.n_demos > 1:
            raise ValueError("demo_variant='Demo' with demo_noise=0 gives n_demos identical expert demos "
                             "(one fixed scene, deterministic expert); set demo_noise > 0")
        if self.demo_noise > 0 and self.demos != "expert":
            raise ValueError(f"demo_noise only applies to scripted-expert demos, got demos={self.demos!r}")
        if self.demos not in ("expert", "human") and not Path(self.demos).exists():
            raise ValueError(f"demos: expected 'expert', 'human' or an existing path, got {self.demos!r} (no such file or folder)")
        if self.demos not in ("expert", "human") and Path(self.demos).is_file() and Path(self.demos).suffix == ".npz":
            from mint_rl.envs.demos import read_demo_metadata

            check_demo_file(self, self.demos, read_demo_metadata(self.demos))

    @property
    def bc_epochs(self) -> int:
        if self.epochs is not None:
            return int(self.epochs)
        return 2 * MINT_EPOCHS if self.agent == "cnn" else MINT_EPOCHS

    @property
    def headline_mode(self) -> str:
        """``"argmax"`` or ``"sampled"``: the mode of the headline scores (``deterministic``)."""
        return "argmax" if self.deterministic else "sampled"

    @property
    def eval_variants(self) -> tuple[str, ...]:
        """The variants evaluated: ``variants``, or all of the task's in MAGICAL's order.

        Example:
            >>> BCExperimentConfig(task="MoveToCorner").eval_variants
            ('Demo', 'TestJitter', 'TestColour', 'TestShape', 'TestDynamics', 'TestAll')
        """
        from mint_rl.envs.registry import TASK_VARIANTS

        return tuple(self.variants) if self.variants is not None else TASK_VARIANTS[self.task]

    @property
    def score_keys(self) -> tuple[str, ...]:
        """Every ``VARIANT/MODE`` key this config's evaluation fills, variant by variant."""
        return tuple(score_key(v, m) for v in self.eval_variants for m in self.eval_modes)


# --------------------------------------------------------------------------------------------
# environments
# --------------------------------------------------------------------------------------------


def make_env(task: str, variant: str, agent: str, detector: Any = None, history: int = 4,
             render_mode: Optional[str] = None, orientation: bool = False) -> gym.Env:
    """The single env an agent acts in: keypoints over the allocentric view (with their
    orientation if asked), ``-LoRes4A``, or the last ``history`` state vectors flattened
    (``view="state"``, oldest first)."""
    import mint_rl  # noqa: F401  (registers magical/<id>)

    if agent == "cnn":
        return gym.make(f"magical/{task}-{variant}-LoRes4A-v0")
    if agent == "state":
        base = gym.make(f"magical/{task}-{variant}-v0", view="state", render_mode=render_mode)
        return gym.wrappers.FlattenObservation(gym.wrappers.FrameStack(base, history))
    from mint_rl.wrappers import MintKeypointWrapper

    base = gym.make(f"magical/{task}-{variant}-v0", view="allo", resolution=RESOLUTION)
    return MintKeypointWrapper(base, detector=detector, history=history, orientation=orientation)


def make_vector_env(task: str, variant: str, agent: str, n: int, detector: Any = None, history: int = 4,
                    orientation: bool = False) -> gym.vector.VectorEnv:
    """``n`` sub-envs; for MINT one batched detector forward per step."""
    import mint_rl  # noqa: F401

    if agent in ("cnn", "state"):
        return gym.vector.SyncVectorEnv([lambda: make_env(task, variant, agent, history=history)] * n)
    from mint_rl.wrappers import MintKeypointVectorWrapper

    raw = gym.vector.SyncVectorEnv(
        [lambda: gym.make(f"magical/{task}-{variant}-v0", view="allo", resolution=RESOLUTION)] * n,
        copy=False,  # the wrapper turns the image batch into keypoints at once
    )
    return MintKeypointVectorWrapper(raw, detector=detector, history=history, orientation=orientation)


# --------------------------------------------------------------------------------------------
# demonstrations
# --------------------------------------------------------------------------------------------


def keypoint_history_obs(rows: np.ndarray, history: int) -> np.ndarray:
    """``(T, K, F)`` per-frame keypoints -> ``(T, history, K, F)`` observations, as the wrapper
    builds them (oldest first, the first frame repeated at the start).

    Example:
        >>> rows = np.arange(3, dtype=np.float32).reshape(3, 1, 1).repeat(3, axis=2)
        >>> keypoint_history_obs(rows, 2)[:, :, 0, 0].tolist()
        [[0.0, 0.0], [0.0, 1.0], [1.0, 2.0]]
    """
    idx = np.arange(len(rows))[:, None] + np.arange(-history + 1, 1)[None, :]
    return rows[np.clip(idx, 0, None)]


def frames_to_keypoint_trajectories(trajs: Sequence[Any], detector: Any, history: int, batch: int = 256,
                                    orientation: bool = False) -> list[Any]:
    """Replace ``(T+1, H, W, 3)`` frame observations of trajectories by keypoint observations
    (with each keypoint's orientation if asked, as ``MintKeypointWrapper(orientation=True)``)."""
    from imitation.data import types

    from mint_rl.wrappers.encoder import ImageSpec, KeypointEncoder, load_detector

    det = load_detector(detector)
    out = []
    enc = None
    for tr in trajs:
        frames = np.asarray(tr.obs)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (T, H, W, 3) uint8 frame observations, got {frames.dtype} {frames.shape}")
        spec = ImageSpec(None, frames.shape[1], frames.shape[2], 3)
        if enc is None or enc.image != spec:
            enc = KeypointEncoder(det, spec, orientation=orientation)
        rows = np.concatenate([enc(frames[i : i + batch]) for i in range(0, len(frames), batch)])
        obs = keypoint_history_obs(rows, history)
        out.append(types.Trajectory(obs=obs, acts=np.asarray(tr.acts), infos=tr.infos, terminal=tr.terminal))
    return out


def _demo_observation_needs(cfg: BCExperimentConfig) -> str:
    """What the agent's demonstrations must hold, in words (for error messages)."""
    if cfg.agent == "cnn":
        return (f"uint8 frames ({RESOLUTION}, {RESOLUTION}, 12): the allocentric view at resolution {RESOLUTION} "
                "with 4 stacked frames, as MAGICAL's -LoRes4A")
    return (f"uint8 frames ({RESOLUTION}, {RESOLUTION}, 3): the allocentric view at resolution {RESOLUTION}, one "
            f"frame per observation (or keypoints float32 ({cfg.history}, K, {5 if cfg.orientation else 3}))")


def check_demo_file(cfg: BCExperimentConfig, path: Any, metadata: dict[str, Any],
                    num_keypoints: Optional[int] = None) -> None:
    """Refuse a demo file (:func:`mint_rl.envs.save_demos`) that does not fit the experiment.

    The file must hold demonstrations of ``cfg.task``, at least ``cfg.n_demos`` of them, in the
    observation format the agent learns from: for the CNN, ``(96, 96, 12)`` uint8 frames (the
    allocentric view, 4 stacked frames, ``-LoRes4A``); for MINT, ``(96, 96, 3)`` uint8
    allocentric frames, or keypoint observations ``(history, K, F)`` float32 (``K`` checked when
    ``num_keypoints`` is given). A ``view`` entry in the metadata (``make_demos.py`` writes it)
    must be ``"allo"``.

    Raises:
        ValueError: another task, fewer episodes, or another view, resolution or frame stack;
            the message names the file, what it holds and what the agent needs.
    """
    from mint_rl.envs.registry import parse_magical_id

    env_id = metadata.get("env_id")
    try:
        task = parse_magical_id(str(env_id)).task
    except ValueError as exc:
        raise ValueError(f"{path}: expected demos of a MAGICAL env, the metadata names env_id={env_id!r}") from exc
    if task != cfg.task:
        raise ValueError(f"{path}: expected demos of task {cfg.task}, got demos recorded on {env_id} (task {task})")
    n = int(metadata.get("n_episodes", 0))
    if n < cfg.n_demos:
        raise ValueError(f"{path}: holds {n} {task} demos, fewer than n_demos={cfg.n_demos} (--n-demos)")
    needs = _demo_observation_needs(cfg)
    view = metadata.get("view")
    observation = metadata.get("observation") or {}
    if observation.get("kind") != "array" or (view is not None and view != "allo"):
        raise ValueError(f"{path}: demos recorded with view={view if view is not None else observation.get('kind')!r}; "
                         f"the {cfg.agent} agent needs {needs}")
    spec = observation.get("spec", {}).get("", {})
    shape, dtype = tuple(spec.get("shape", ())), spec.get("dtype")
    frames = (RESOLUTION, RESOLUTION, 12 if cfg.agent == "cnn" else 3)
    if shape == frames and dtype == "uint8":
        return
    if cfg.agent == "mint" and dtype == "float32" and len(shape) == 3:
        k = num_keypoints if num_keypoints is not None else shape[1]
        if shape == (cfg.history, k, 5 if cfg.orientation else 3):
            return
    raise ValueError(f"{path}: demos recorded with observations {dtype} {shape} (resolution "
                     f"{metadata.get('resolution', 'not recorded')}); the {cfg.agent} agent needs {needs}")


def build_demos(cfg: BCExperimentConfig, detector: Any, progress: bool = True) -> list[Any]:
    """The training demonstrations in the agent's observation format (with ``cfg.demo_augment``
    appearance-augmented copies of each, :func:`with_appearance_copies`)."""
    from mint_rl.envs import rollout_expert

    if cfg.demos == "expert" and not cfg.demo_augment:  # the agent's own env: keypoints from the wrapper
        env = make_env(cfg.task, cfg.demo_variant, cfg.agent, detector, cfg.history, orientation=cfg.orientation)
        try:
            return rollout_expert(env, cfg.n_demos, seed=cfg.demo_seed, progress=progress, action_noise=cfg.demo_noise)
        finally:
            env.close()
    trajs = _frame_demos(cfg, detector, progress)
    if cfg.demo_augment:
        trajs = with_appearance_copies(trajs, cfg.demo_augment, cfg.demo_seed)
    first = np.asarray(trajs[0].obs)
    if cfg.agent == "mint" and first.ndim == 4 and first.shape[-1] == 3 and first.dtype == np.uint8:
        return frames_to_keypoint_trajectories(trajs, detector, cfg.history, orientation=cfg.orientation)
    return trajs


def _frame_demos(cfg: BCExperimentConfig, detector: Any, progress: bool) -> list[Any]:
    """The ``n_demos`` demonstrations with frame observations: the allocentric view (MINT) or
    ``-LoRes4A`` stacks (CNN), whatever their source; a demo file of keypoint observations is
    returned as it is (refused with ``demo_augment``, which changes frames)."""
    from mint_rl.envs import load_human_demos, rollout_expert
    from mint_rl.envs.demos import load_demo_set

    if cfg.demos == "expert":
        if cfg.agent == "cnn":
            env = make_env(cfg.task, cfg.demo_variant, cfg.agent)
        else:
            import mint_rl  # noqa: F401  (registers magical/<id>)

            env = gym.make(f"magical/{cfg.task}-{cfg.demo_variant}-v0", view="allo", resolution=RESOLUTION)
        try:
            return rollout_expert(env, cfg.n_demos, seed=cfg.demo_seed, progress=progress, action_noise=cfg.demo_noise)
        finally:
            env.close()
    source = Path(cfg.human_dir if cfg.demos == "human" else cfg.demos)
    if source.is_file() and source.suffix == ".npz":
        demo_set = load_demo_set(source)
        check_demo_file(cfg, source, demo_set.metadata, getattr(detector, "num_keypoints", None))
        trajs = demo_set.trajectories[: cfg.n_demos]
        first = np.asarray(trajs[0].obs)
        if cfg.demo_augment and (first.dtype != np.uint8 or first.ndim != 4):
            raise ValueError(f"{source}: demo_augment changes frames; the file holds {first.dtype} observations of "
                             f"shape {first.shape[1:]} (keypoints?), not uint8 frames")
        return trajs
    trajs = load_human_demos(source, cfg.task, view="allo", resolution=RESOLUTION,
                             frame_stack=4 if cfg.agent == "cnn" else 1, limit=cfg.n_demos, progress=progress)
    if len(trajs) < cfg.n_demos:
        raise ValueError(f"{source}: found {len(trajs)} {cfg.task} demos, fewer than n_demos={cfg.n_demos}")
    return trajs


def with_appearance_copies(trajs: Sequence[Any], copies: int, seed: int, config: Any = None) -> list[Any]:
    """``trajs`` followed by ``copies`` appearance-augmented copies of each (copy by copy).

    A copy has the trajectory's actions, infos and ending, and its ``(T+1, H, W, 3 n)`` uint8
    frames (``n`` stacked RGB frames) through :func:`~mint_rl.data.augment.appearance_augment`
    with one draw per episode, the same for every frame and every stacked frame: the episode is
    the same scene in other colours and lighting, as a test variant that changes colours is. The
    draws come from a generator seeded with ``seed``; ``config``: an
    :class:`~mint_rl.data.augment.AppearanceAugment` (default: its defaults).

    Example:
        >>> from imitation.data.types import Trajectory
        >>> frames = np.zeros((3, 2, 2, 6), np.uint8); frames[..., 0::3] = 200   # red, 2 stacked frames
        >>> tr = Trajectory(obs=frames, acts=np.array([1, 2]), infos=None, terminal=True)
        >>> out = with_appearance_copies([tr], 2, seed=0)
        >>> len(out), out[0] is tr, out[1].acts.tolist(), out[2].obs.shape
        (3, True, [1, 2], (3, 2, 2, 6))
        >>> [int(v) for v in out[1].obs[0, 0, 0]] == [int(v) for v in out[1].obs[-1, 1, 1]]  # one draw per episode
        True
    """
    import dataclasses

    import torch

    from mint_rl.data.augment import AppearanceAugment, appearance_augment

    config = AppearanceAugment() if config is None else config
    if copies < 0:
        raise ValueError(f"copies: expected >= 0, got {copies}")
    generator = torch.Generator().manual_seed(int(seed))
    out = list(trajs)
    for _ in range(copies):
        for tr in trajs:
            frames = np.asarray(tr.obs)
            if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] % 3:
                raise ValueError(f"with_appearance_copies: expected (T, H, W, 3n) uint8 frames, got {frames.dtype} "
                                 f"{frames.shape}")
            t, h, w, c = frames.shape
            window = torch.from_numpy(frames).view(t, h, w, c // 3, 3).permute(0, 3, 4, 1, 2).reshape(1, -1, 3, h, w)
            changed = appearance_augment(window, config, generator)
            back = changed.view(t, c // 3, 3, h, w).permute(0, 3, 4, 1, 2).reshape(t, h, w, c).numpy()
            out.append(dataclasses.replace(tr, obs=np.ascontiguousarray(back)))
    return out


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------


def evaluation_seed(cfg: BCExperimentConfig, seed: int) -> int:
    """First evaluation-episode seed of training seed ``seed``: ``cfg.eval_seed + 1000 * seed``.

    Example:
        >>> evaluation_seed(BCExperimentConfig(task="MoveToCorner"), 3)
        13000
    """
    return cfg.eval_seed + 1000 * seed


def evaluate_vectorized(
    policy: Any, venv: gym.vector.VectorEnv, seed: int, deterministic: bool
) -> list[float]:
    """One episode per sub-env (MAGICAL episodes have a fixed length); ``eval_score`` of each.

    Sub-env ``i`` is reset with ``seed + i``.
    """
    n = venv.num_envs
    obs, _ = venv.reset(seed=[seed + i for i in range(n)])
    scores: list[Optional[float]] = [None] * n
    while any(s is None for s in scores):
        actions, _ = policy.predict(obs, deterministic=deterministic)
        obs, _, term, trunc, infos = venv.step(actions)
        for i in np.flatnonzero(np.logical_or(term, trunc)):
            if scores[i] is None:
                final = infos["final_info"][i]
                if "eval_score" not in final:
                    raise KeyError("MAGICAL episode ended without info['eval_score']")
                scores[i] = float(final["eval_score"])
    return [float(s) for s in scores]  # type: ignore[arg-type]


def sampling_seed(cfg: BCExperimentConfig, seed: int, variant: str, mode: str) -> int:
    """Seed of torch's generator while training seed ``seed`` is evaluated on one variant and mode.

    Sampled actions come from torch's global generator; seeding it per ``(seed, variant, mode)``
    makes each score independent of what ran before it in the process (training, other
    variants), so a variant evaluated by another worker process (:mod:`mint_rl.experiments.work_queue`)
    scores exactly as it would in the seed's own process.

    Example:
        >>> cfg = BCExperimentConfig(task="MoveToCorner")
        >>> sampling_seed(cfg, 0, "Demo", "sampled") == sampling_seed(cfg, 0, "Demo", "sampled")
        True
        >>> len({sampling_seed(cfg, s, v, "sampled") for s in range(5) for v in cfg.eval_variants})
        30
    """
    return (evaluation_seed(cfg, seed) * 7919 + zlib.crc32(f"{variant}/{mode}".encode())) % (2**63)


def evaluate_variant(policy: Any, cfg: BCExperimentConfig, seed: int, variant: str,
                     detector: Any = None) -> dict[str, list[float]]:
    """Scores of ``policy`` (trained with seed ``seed``) on one variant, in every mode of ``cfg``.

    One vector env of ``cfg.eval_episodes`` sub-envs (built, used for every mode, closed); every
    mode replays the same episode seeds (:func:`evaluation_seed`), and runs with torch's
    generator seeded by :func:`sampling_seed` (restored afterwards), so the modes differ only in
    how the action is picked. Returns ``{score_key(variant, mode): [eval_score per episode]}``.
    """
    import torch

    first = evaluation_seed(cfg, seed)
    device = getattr(policy, "device", torch.device("cpu"))
    devices = [device] if getattr(device, "type", "cpu") == "cuda" else []
    scores: dict[str, list[float]] = {}
    venv = make_vector_env(cfg.task, variant, cfg.agent, cfg.eval_episodes, detector, cfg.history, cfg.orientation)
    try:
        for mode in cfg.eval_modes:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(sampling_seed(cfg, seed, variant, mode))
                scores[score_key(variant, mode)] = evaluate_vectorized(policy, venv, first, mode == "argmax")
    finally:
        venv.close()
    return scores


def variant_log_line(seed: int, variant: str, scores: dict[str, list[float]], seconds: float) -> str:
    """``seed S: VARIANT  argmax 0.960  sampled 0.880  (37 s)``: one evaluated variant, for the logs."""
    cells = "  ".join(f"{split_score_key(k)[1]} {np.mean(v):.3f}" for k, v in scores.items())
    return f"seed {seed}: {variant:<13} {cells}  ({seconds:.0f} s)"


def evaluate_policy(policy: Any, cfg: BCExperimentConfig, seed: int, detector: Any = None,
                    log: Optional[Callable[[str], None]] = None) -> dict[str, list[float]]:
    """Scores of ``policy`` (trained with seed ``seed``) on every variant and mode ``cfg`` evaluates
    (:func:`evaluate_variant` per variant), ``{score_key(variant, mode): [eval_score per episode]}``
    in ``cfg.score_keys`` order."""
    scores: dict[str, list[float]] = {}
    for variant in cfg.eval_variants:
        start = time.perf_counter()
        part = evaluate_variant(policy, cfg, seed, variant, detector)
        scores.update(part)
        if log is not None:
            log(variant_log_line(seed, variant, part, time.perf_counter() - start))
    return scores


@dataclass
class BCResult:
    """Scores of one experiment: per ``VARIANT/MODE`` key (:func:`score_key`), per seed, the
    ``eval_episodes`` scores.

    ``seed_ids[i]`` is the training seed of ``scores[key][i]``; ``seconds`` is the wall
    time (summed over the runs :func:`merge_results` merged); ``reused_seeds`` the seeds a
    resumed run read back instead of training.
    """

    config: dict[str, Any]
    scores: dict[str, list[list[float]]] = field(default_factory=dict)
    seconds: float = 0.0
    policy_paths: list[str] = field(default_factory=list)
    seed_ids: list[int] = field(default_factory=list)
    #: Seeds ``run_bc_experiment(resume=True)`` read back from seed files of earlier runs (not
    #: written to ``results.json``).
    reused_seeds: list[int] = field(default_factory=list)

    def seed_means(self, key: str) -> np.ndarray:
        """Per-seed mean score of one ``VARIANT/MODE`` key."""
        if key not in self.scores:
            raise KeyError(f"no scores under {key!r}; this result has {list(self.scores)}")
        return np.array([np.mean(s) for s in self.scores[key]])

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean and (population) std over seeds of the per-seed mean score, per ``VARIANT/MODE`` key."""
        return {k: {"mean": float(self.seed_means(k).mean()), "std": float(self.seed_means(k).std()),
                    "seeds": len(self.scores[k])} for k in self.scores}

    @property
    def headline_mode(self) -> str:
        """The mode of the headline scores: ``"argmax"`` unless the run set ``deterministic=False``."""
        return "argmax" if self.config.get("deterministic", True) else "sampled"

    @property
    def variants(self) -> list[str]:
        """The variants this result holds scores of, in evaluation order."""
        return list(dict.fromkeys(split_score_key(k)[0] for k in self.scores))

    @property
    def modes(self) -> list[str]:
        """The evaluation modes this result holds scores of."""
        return [m for m in EVAL_MODES if any(split_score_key(k)[1] == m for k in self.scores)]

    def headline(self) -> dict[str, dict[str, float]]:
        """Summary of Demo and TestJitter in the headline mode: ``{"Demo": {"mean", "std", "seeds"}, ...}``."""
        summary = self.summary()
        return {v: summary[score_key(v, self.headline_mode)] for v in VARIANTS}

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "summary": self.summary(), "scores": self.scores,
                "seconds": self.seconds, "policies": self.policy_paths, "seed_ids": self.seed_ids}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "BCResult":
        """Inverse of :meth:`to_json`.

        Files from older versions get the defaults of config fields added since, and their
        ``seed_ids`` from the config. MINT-agent files without a ``network`` entry were written
        before it was recorded: their network was the then default, :data:`LEGACY_CONFIG`.
        Files written before every variant was evaluated key their scores by variant alone, in
        the mode of their ``deterministic`` setting: the keys become ``VARIANT/MODE`` and the
        config records the variants and the one mode evaluated (:func:`legacy_scores`).
        """
        from dataclasses import MISSING, fields

        config = dict(data["config"])
        scores = data["scores"]
        if any("/" not in k for k in scores):
            scores = legacy_scores(scores, bool(config.get("deterministic", True)))
            config.setdefault("variants", [split_score_key(k)[0] for k in scores])
            config.setdefault("eval_modes", ["argmax" if config.get("deterministic", True) else "sampled"])
        if config.get("agent", "mint") == "mint" and "network" not in config:
            from mint_rl.policies.interaction_network import LEGACY_CONFIG, InteractionNetworkConfig

            config["network"] = asdict(InteractionNetworkConfig(**LEGACY_CONFIG))
        for f in fields(BCExperimentConfig):
            if f.name not in config and f.default is not MISSING:
                config[f.name] = f.default
        seed_ids = data.get("seed_ids")
        if seed_ids is None:
            first = int(config.get("first_seed", 0))
            seed_ids = list(range(first, first + int(config["seeds"])))
        uneven = {k: len(ss) for k, ss in scores.items() if len(ss) != len(seed_ids)}
        if uneven:
            raise ValueError(f"expected the scores of {len(seed_ids)} seeds ({seed_ids}) under every key, got "
                             f"{uneven}")
        return cls(config=config, scores={k: [list(map(float, s)) for s in ss] for k, ss in scores.items()},
                   seconds=float(data.get("seconds", 0.0)), policy_paths=list(data.get("policies", [])),
                   seed_ids=[int(i) for i in seed_ids])


def legacy_scores(scores: dict[str, Any], deterministic: bool) -> dict[str, Any]:
    """Scores keyed by variant alone (files of earlier versions, one mode) -> ``VARIANT/MODE`` keys.

    Example:
        >>> legacy_scores({"Demo": [[1.0]], "TestJitter": [[0.5]]}, deterministic=False)
        {'Demo/sampled': [[1.0]], 'TestJitter/sampled': [[0.5]]}

    Raises:
        ValueError: keys of both kinds mixed.
    """
    if any("/" in k for k in scores):
        raise ValueError(f"expected scores keyed either by VARIANT/MODE or by variant alone, got {list(scores)}")
    mode = "argmax" if deterministic else "sampled"
    return {score_key(v, mode): ss for v, ss in scores.items()}


#: Config fields that may differ between runs :func:`merge_results` merges.
_PER_RUN_FIELDS = ("seeds", "first_seed")


#: Settings added after result files were first written, at the value that means "as before":
#: left out of the shared settings there, so that older files compare equal.
_LATER_FIELDS: dict[str, Any] = {"dagger": None, "demo_augment": 0}


def shared_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The settings of an experiment's config that runs splitting its seeds must share
    (settings added later left out at their "as before" value, :data:`_LATER_FIELDS`).

    Example:
        >>> shared_settings({"task": "MakeLine", "seeds": 5, "first_seed": 0, "dagger": None, "demo_augment": 2})
        {'task': 'MakeLine', 'demo_augment': 2}
    """
    return {k: v for k, v in config.items()
            if k not in _PER_RUN_FIELDS and not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])}


def merge_results(results: Sequence[BCResult]) -> BCResult:
    """One table from runs that split the seeds of one experiment (``--first-seed``).

    The runs must have the same config apart from ``seeds``/``first_seed`` and disjoint seeds.
    The merged result lists the seeds in increasing order; its ``seconds`` is the sum.

    Example:
        >>> cfg = {"task": "MoveToCorner", "agent": "cnn", "seeds": 1, "first_seed": 0}
        >>> a = BCResult(config=cfg, scores={"Demo/argmax": [[1.0, 0.0]]}, seconds=2.0, seed_ids=[0])
        >>> b = BCResult(config={**cfg, "first_seed": 1}, scores={"Demo/argmax": [[0.0, 0.0]]}, seconds=3.0,
        ...              seed_ids=[1])
        >>> m = merge_results([b, a])
        >>> m.seed_ids, m.summary()["Demo/argmax"]["mean"], m.seconds
        ([0, 1], 0.25, 5.0)
    """
    if not results:
        raise ValueError("merge_results: no results given")

    base = shared_settings(results[0].config)
    for r in results[1:]:
        if shared_settings(r.config) != base:
            diff = sorted(k for k in set(base) | set(shared_settings(r.config)) if base.get(k) != r.config.get(k))
            raise ValueError(f"merge_results: runs differ in {diff}; only {list(_PER_RUN_FIELDS)} may differ")
    order = sorted((seed, i, j) for i, r in enumerate(results) for j, seed in enumerate(r.seed_ids))
    seeds = [seed for seed, _, _ in order]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"merge_results: a seed appears in more than one run: {seeds}")
    keys = list(results[0].scores)
    for r in results[1:]:
        if set(r.scores) != set(keys):
            raise ValueError(f"merge_results: runs hold scores of different variants/modes: {sorted(keys)} "
                             f"and {sorted(r.scores)}")
    merged = BCResult(config={**results[0].config, "seeds": len(seeds), "first_seed": min(seeds)},
                      scores={k: [results[i].scores[k][j] for _, i, j in order] for k in keys},
                      seconds=sum(r.seconds for r in results),
                      policy_paths=[p for r in results for p in r.policy_paths], seed_ids=seeds)
    return merged


def result_from_seed_records(records: Sequence[dict[str, Any]]) -> BCResult:
    """One :class:`BCResult` from the per-seed files ``run_bc_experiment`` writes (``OUT/seeds/*.json``).

    The seed files are what a run has finished so far (``results.json`` is written only at its
    end, and holds only that process's seeds), so a table can be read from a run in progress or
    from seed files kept elsewhere. The records must share their settings and name disjoint
    seeds (:func:`merge_results`).

    Example:
        >>> settings = {"task": "MakeLine", "agent": "cnn", "precision": "bf16"}
        >>> recs = [{"settings": settings, "seed": s, "scores": {"Demo/argmax": [s / 2], "TestJitter/argmax": [0.0]},
        ...          "seconds": 60.0, "policy": None} for s in (1, 0)]
        >>> r = result_from_seed_records(recs)
        >>> r.seed_ids, r.summary()["Demo/argmax"]["mean"], r.config["seeds"], r.config["first_seed"]
        ([0, 1], 0.25, 2, 0)

    Raises:
        ValueError: no records, a record without its settings, seed or scores, or records
            that :func:`merge_results` refuses.
    """
    if not records:
        raise ValueError("result_from_seed_records: no seed records given")
    singles = []
    for rec in records:
        missing = [k for k in ("settings", "seed", "scores") if k not in rec]
        if missing:
            raise ValueError(f"seed record without {', '.join(missing)}: expected a file of OUT/seeds/")
        seed = int(rec["seed"])
        singles.append(BCResult.from_json({
            "config": {**with_network_defaults(rec["settings"]), "seeds": 1, "first_seed": seed},
            "scores": {k: [list(map(float, scores))] for k, scores in rec["scores"].items()},
            "seconds": float(rec.get("seconds", 0.0)),
            "policies": [rec["policy"]] if rec.get("policy") else [],
            "seed_ids": [seed]}))
    return merge_results(singles)


#: ``run_bc_experiment`` writes a training checkpoint every this many epochs (with an ``out_dir``).
CHECKPOINT_EVERY = 10


def _json_normal(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def resolve_device(device: str) -> Any:
    """``device`` as a ``torch.device``, checked: a CUDA device must be visible to torch.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')

    Raises:
        ValueError: not a device string, or a CUDA device torch cannot see.
    """
    import torch

    try:
        torch_device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: expected a torch device such as 'cpu' or 'cuda', got {device!r}") from exc
    if torch_device.type == "cuda":
        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (torch_device.index or 0) >= visible:
            raise ValueError(f"device={device!r}: expected a visible CUDA GPU, torch sees {visible}")
    return torch_device


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def seed_settings(cfg: BCExperimentConfig) -> dict[str, Any]:
    """The settings every seed file of ``cfg``'s run records (and a resumed run compares): the
    config without ``seeds``/``first_seed``, the MINT agent's whole network config included, as
    JSON reads them back."""
    config = asdict(cfg)
    config["variants"] = list(cfg.eval_variants)  # None and the explicit list of all variants are one setting
    if cfg.agent == "mint":
        from mint_rl.policies.interaction_network import InteractionNetworkConfig

        config["network"] = asdict(cfg.network or InteractionNetworkConfig())
    return _json_normal(shared_settings(config))


def _local_policy(recorded: str, out_dir: Path) -> Optional[Path]:
    """The policy file a seed file names, if it is on this machine: at the recorded path, or
    under ``OUT/policies`` with the same name (a run folder moved or copied elsewhere)."""
    for candidate in (Path(recorded), out_dir / "policies" / Path(recorded).name):
        if candidate.is_file():
            return candidate
    return None


def with_network_defaults(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with every :class:`~mint_rl.policies.interaction_network.InteractionNetworkConfig`
    field its ``network`` entry lacks set to the default (see :func:`upgrade_seed_record`); other
    settings as they are.

    Example:
        >>> with_network_defaults({"agent": "cnn", "network": None})
        {'agent': 'cnn', 'network': None}
    """
    network = settings.get("network")
    if not isinstance(network, dict):
        return settings
    from mint_rl.policies.interaction_network import InteractionNetworkConfig

    return {**settings, "network": {**asdict(InteractionNetworkConfig()), **network}}


def upgrade_seed_record(settings: dict[str, Any], scores: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Settings and scores of a seed file as today's version writes them.

    Seed files written before every variant was evaluated (2026-12-06) key their scores by
    variant alone, in the one mode of their ``deterministic`` setting, and have no ``variants``
    or ``eval_modes`` setting: they become ``VARIANT/MODE`` keys and the settings of a run with
    ``variants=[those variants]`` and ``eval_modes=[that mode]``, so that such a run
    (``--variants Demo TestJitter --modes argmax``) resumes them.

    A MINT seed's ``network`` settings written before a field joined
    :class:`~mint_rl.policies.interaction_network.InteractionNetworkConfig` (``attention_queries``,
    2026-12-07) get that field's default: fields are added with a default that builds the network
    they were built as before (``attention_queries`` matters only to ``pooling="attention"``).

    Example:
        >>> upgrade_seed_record({"task": "MakeLine", "deterministic": True}, {"Demo": [1.0], "TestJitter": [0.5]})
        ({'task': 'MakeLine', 'deterministic': True, 'variants': ['Demo', 'TestJitter'], 'eval_modes': ['argmax']}, \
{'Demo/argmax': [1.0], 'TestJitter/argmax': [0.5]})
        >>> upgrade_seed_record({"network": {"pooling": "flatten"}}, {"Demo/argmax": [1.0]})[0]["network"]["attention_queries"]
        4
    """
    settings = with_network_defaults(settings)
    if not scores or any("/" in k for k in scores):
        return settings, scores
    deterministic = bool(settings.get("deterministic", True))
    upgraded = {**settings}
    upgraded.setdefault("variants", list(scores))
    upgraded.setdefault("eval_modes", ["argmax" if deterministic else "sampled"])
    return upgraded, legacy_scores(scores, deterministic)


def read_seed_record(record: Path, seed: int, settings: dict[str, Any], out_dir: Path,
                     log: Callable[[str], None] = print) -> tuple[dict[str, list[float]], float, Optional[str]]:
    """Scores, seconds and policy path of a finished seed, from its seed file, checked.

    The file must be this seed's and have this run's ``settings``. Its policy file, when on
    this machine (:func:`_local_policy`), must have the SHA-256 the seed file recorded when the
    seed was evaluated; ``log`` says whether the hash matched, could not be checked (a seed
    file written before hashes were recorded) or the policy file is absent (the results are then
    reused without it, e.g. the kept seed files of ``results/bc``).

    Raises:
        ValueError: an unreadable seed file, one without scores, of another seed, written with
            other settings, or whose policy file's hash differs; the message names the file.
    """
    try:
        data = json.loads(record.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{record}: expected a seed file (JSON), could not read it "
                         f"({type(exc).__name__}: {exc})") from exc
    missing = [k for k in ("settings", "seed", "scores", "seconds") if not isinstance(data, dict) or k not in data]
    if missing:
        raise ValueError(f"{record}: expected a seed file with settings, seed, scores and seconds, missing {missing}")
    if isinstance(data["settings"], dict) and isinstance(data["scores"], dict):
        data["settings"], data["scores"] = upgrade_seed_record(data["settings"], data["scores"])
    if data["settings"] != settings:
        have = data["settings"] if isinstance(data["settings"], dict) else {}
        differ = sorted(k for k in set(settings) | set(have) if have.get(k) != settings.get(k))
        raise ValueError(f"{record} was written with other settings ({', '.join(differ)}); "
                         "use another output folder or start afresh without resume")
    if data["seed"] != seed:
        raise ValueError(f"{record}: expected the seed file of seed {seed}, got one of seed {data['seed']!r}")
    want_keys = [score_key(v, m) for v in settings.get("variants") or VARIANTS
                 for m in settings.get("eval_modes") or ("argmax",)]
    missing = [k for k in want_keys if k not in data["scores"]]
    if missing:
        raise ValueError(f"{record}: expected scores of {want_keys}, missing {missing}")
    path = data.get("policy")
    note = "no policy file recorded"
    if path is not None:
        local = _local_policy(str(path), out_dir)
        want = data.get("policy_sha256")
        if local is None:
            note = f"its policy {path} is not on this machine: results reused without the policy"
        elif want is None:
            note = f"policy {local} found, its hash could not be checked (the seed file records none)"
            path = str(local)
        else:
            got = file_sha256(local)
            if got != want:
                raise ValueError(f"{record}: policy file {local} has sha256 {got}, the seed file recorded {want}: the "
                                 "policy changed after this seed was evaluated; use another output folder or remove "
                                 "the seed file to train the seed again")
            note = f"policy {local} matches its recorded sha256"
            path = str(local)
    log(f"seed {seed}: finished earlier ({record}); {note}")
    return data["scores"], float(data["seconds"]), path


@dataclass
class _SeedSetup:
    """What every seed of a run shares: demos, the agent's spaces, the detector (MINT agent)."""

    demos: list[Any]
    obs_space: gym.Space
    act_space: gym.Space
    detector: Any
    seconds: float


def _prepare_seeds(cfg: BCExperimentConfig, progress: bool, log: Callable[[str], None]) -> _SeedSetup:
    """The demonstrations (through the detector for MINT), spaces and detector of ``cfg``."""
    start = time.perf_counter()
    detector = None
    if cfg.agent == "mint":
        from mint_rl.wrappers.encoder import load_detector

        detector = load_detector(cfg.detector)
    demos = build_demos(cfg, detector, progress)
    n_trans = sum(len(d.acts) for d in demos)
    log(f"{len(demos)} {cfg.demos} demos ({n_trans} transitions) for {cfg.task}, agent {cfg.agent}, "
        f"{cfg.bc_epochs} epochs x {cfg.seeds} seeds")
    probe = make_env(cfg.task, "TestJitter", cfg.agent, detector, cfg.history, orientation=cfg.orientation)
    obs_space, act_space = probe.observation_space, probe.action_space
    probe.close()
    return _SeedSetup(demos, obs_space, act_space, detector, time.perf_counter() - start)


def seed_stem(cfg: BCExperimentConfig, seed: int) -> str:
    """``TASK-AGENT-seedS``: the name of a seed's policy, seed file, checkpoint and logs.

    Example:
        >>> seed_stem(BCExperimentConfig(task="MakeLine", agent="cnn"), 3)
        'MakeLine-cnn-seed3'
    """
    return f"{cfg.task}-{cfg.agent}-seed{seed}"


def bc_policy_kwargs(cfg: BCExperimentConfig) -> dict[str, Any]:
    """``policy_kwargs`` of :func:`mint_rl.policies.train_bc` for ``cfg``'s agent."""
    if cfg.agent == "cnn":
        return {"features_extractor_kwargs": {"compute_dtype": cfg.precision}}
    if cfg.agent == "state":
        return {}
    from mint_rl.policies.interaction_network import InteractionNetworkConfig

    return {"features_extractor_kwargs": {"config": cfg.network or InteractionNetworkConfig()}}


@dataclass
class TrainedSeed:
    """A seed's trained policy: the policy, its file (``None`` without an output folder) and that
    file's SHA-256, the training seconds (all sessions of a resumed training), the device and
    the torch threads it trained with."""

    seed: int
    policy: Any
    path: Optional[str]
    sha256: Optional[str]
    seconds: float
    device: str
    threads: int


def train_seed(cfg: BCExperimentConfig, setup: _SeedSetup, seed: int, out_dir: Optional[Path], resume: bool,
               device: Any, progress: bool, log: Callable[[str], None]) -> TrainedSeed:
    """Behaviour cloning (or DAgger, ``cfg.dagger``) of one seed; with ``out_dir``, its checkpoints,
    logs and policy file there (``resume``: BC training goes on from the seed's checkpoint, if any)."""
    from mint_rl.policies import train_bc
    from mint_rl.policies.bc_checkpoint import load_bc_checkpoint

    stem = seed_stem(cfg, seed)
    if cfg.dagger is not None:  # checkpoints after each round: an interrupted seed resumes at its next round
        from mint_rl.experiments.dagger import train_dagger

        def env_fn():
            return make_env(cfg.task, cfg.demo_variant, cfg.agent, setup.detector, cfg.history,
                            orientation=cfg.orientation)

        policy, summary = train_dagger(cfg, setup, seed, out_dir, device, progress, log, env_fn=env_fn,
                                       policy_kwargs=bc_policy_kwargs(cfg), stem=stem, resume=resume)
        return _saved(cfg, seed, policy, out_dir, summary["seconds"], device)
    start = time.perf_counter()
    ckpt = None if out_dir is None else Path(out_dir) / "checkpoints" / f"{stem}.pt"
    if resume and ckpt is not None and ckpt.exists():
        log(f"seed {seed}: resuming from {ckpt} (epoch {load_bc_checkpoint(ckpt)['epoch']})")
    policy = train_bc(setup.demos, setup.obs_space, setup.act_space, agent=cfg.agent, epochs=cfg.bc_epochs,
                      batch_size=cfg.batch_size, seed=seed, device=device, progress_bar=progress,
                      policy_kwargs=bc_policy_kwargs(cfg), keypoint_noise=cfg.keypoint_noise,
                      checkpoint=ckpt, checkpoint_every=CHECKPOINT_EVERY, resume=resume,
                      log_dir=None if out_dir is None else str(Path(out_dir) / "logs" / stem))
    seconds = time.perf_counter() - start if ckpt is None else load_bc_checkpoint(ckpt)["train_seconds"]
    return _saved(cfg, seed, policy, out_dir, seconds, device)


def _saved(cfg: BCExperimentConfig, seed: int, policy: Any, out_dir: Optional[Path], seconds: float,
           device: Any) -> TrainedSeed:
    """``policy`` saved as ``OUT/policies/STEM.safetensors`` (with an ``out_dir``), as a :class:`TrainedSeed`."""
    import torch

    path = sha = None
    if out_dir is not None:
        path = str(policy.save(Path(out_dir) / "policies" / f"{seed_stem(cfg, seed)}.safetensors",
                               extra={"task": cfg.task, "seed": seed, "detector": str(cfg.detector)}))
        sha = file_sha256(path)
    return TrainedSeed(seed, policy, path, sha, float(seconds), str(device), torch.get_num_threads())


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename, so that a reader
    (another worker process) sees the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    return path


def write_seed_record(record: Path, settings: dict[str, Any], seed: int, scores: dict[str, list[float]],
                      seconds: float, trained: TrainedSeed) -> Path:
    """The seed file ``OUT/seeds/STEM.json`` (read back by :func:`read_seed_record`): settings,
    scores, seconds (training and evaluation), the policy file and its SHA-256, device, threads."""
    return write_json_atomic(record, {"settings": settings, "seed": seed, "scores": scores, "seconds": seconds,
                                      "policy": trained.path, "policy_sha256": trained.sha256,
                                      "device": trained.device, "threads": trained.threads})


def run_bc_experiment(
    cfg: BCExperimentConfig,
    out_dir: Optional[Path] = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    resume: bool = False,
    device: str = "cpu",
) -> BCResult:
    """Demonstrations once, then per seed: behaviour cloning and evaluation on every variant and
    mode of ``cfg`` (:func:`evaluate_policy`).

    With an ``out_dir``, each seed leaves ``OUT/policies/STEM.safetensors``, its scores in
    ``OUT/seeds/STEM.json``, its training curves in ``OUT/logs/STEM`` (TensorBoard and CSV) and
    its training state in ``OUT/checkpoints/STEM.pt`` (every
    :data:`CHECKPOINT_EVERY` epochs; ``STEM = TASK-AGENT-seedS``). ``resume=True`` continues an
    interrupted run in the same ``out_dir``: finished seeds are read back, the seed in training
    goes on from its checkpoint (same result as an uninterrupted run), the rest run as usual.
    ``BCResult.seconds`` counts the work of all the processes involved; ``BCResult.reused_seeds``
    lists the seeds read back. Each seed file records the SHA-256 of its policy file, and a
    reused seed's policy file, when present, must still have it (:func:`read_seed_record`).

    ``device`` is where the policy trains and acts (``"cpu"``, ``"cuda"``, ``"cuda:1"``); the
    environments, and the MINT agent's detector inside them, stay on the CPU. Each seed file
    records it, and the number of torch threads (which changes floating-point sums, hence the
    trained policy).

    ``precision="bf16"`` on a device without bfloat16 hardware
    (:func:`mint_rl.policies.cnn_agent.has_fast_bf16`) warns
    with a ``RuntimeWarning`` and goes on: the results are valid, only slower than fp32.

    Raises:
        ValueError: ``resume`` without ``out_dir``, a seed file of ``out_dir`` written with
            other settings (or unreadable, or whose policy file changed), or a CUDA ``device``
            that torch cannot see.
    """
    if resume and out_dir is None:
        raise ValueError("resume=True needs an out_dir holding the interrupted run")
    torch_device = resolve_device(device)
    if cfg.precision == "bf16":
        from mint_rl.policies.cnn_agent import has_fast_bf16

        if not has_fast_bf16(torch_device):
            warnings.warn(f"precision='bf16' on {torch_device}, which has no bfloat16 arithmetic in hardware: "
                          "autocast emulates it and trains slower than fp32 (scripts/benchmark_bc.py measures "
                          "both); --precision fp32 is the faster choice here", RuntimeWarning, stacklevel=2)
    result = BCResult(config=_json_normal(asdict(cfg)), scores={k: [] for k in cfg.score_keys})
    result.config["variants"] = list(cfg.eval_variants)  # None resolved: the variants this run evaluated
    settings = seed_settings(cfg)
    if cfg.agent == "mint":
        result.config["network"] = settings["network"]  # the whole config, defaults included
    result.seed_ids = list(range(cfg.first_seed, cfg.first_seed + cfg.seeds))

    # Demonstrations, spaces and the detector are loaded on the first seed that trains: a
    # resumed run whose seeds are all finished (e.g. the reading-back after --jobs) needs none.
    setup: Optional[_SeedSetup] = None
    seed_seconds = 0.0
    for s in result.seed_ids:
        stem = seed_stem(cfg, s)
        record = None if out_dir is None else Path(out_dir) / "seeds" / f"{stem}.json"
        if resume and record is not None and record.exists():
            scores, seconds, path = read_seed_record(record, s, settings, Path(out_dir), log)
            result.reused_seeds.append(s)
        else:
            if setup is None:  # its time is counted once, in result.seconds, not in this seed's
                setup = _prepare_seeds(cfg, progress, log)
            trained = train_seed(cfg, setup, s, out_dir, resume, torch_device, progress, log)
            start = time.perf_counter()
            scores = evaluate_policy(trained.policy, cfg, s, setup.detector, log=log)
            seconds = trained.seconds + time.perf_counter() - start
            path = trained.path
            if record is not None:
                write_seed_record(record, settings, s, scores, seconds, trained)
        if path is not None:
            result.policy_paths.append(path)
        for k in cfg.score_keys:
            result.scores[k].append([float(x) for x in scores[k]])
        seed_seconds += seconds
        log(f"seed {s} ({cfg.headline_mode}): " + "  ".join(
            f"{v} {np.mean(result.scores[score_key(v, cfg.headline_mode)][-1]):.3f}" for v in VARIANTS))
    # setup (demos, detector) of this process if it trained a seed, plus each seed's training and
    # evaluation, earlier processes included
    result.seconds = (0.0 if setup is None else setup.seconds) + seed_seconds
    return result


def record_rollout_gif(policy: Any, cfg: BCExperimentConfig, path: Path, variant: str = "Demo", scale: int = 3) -> Path:
    """A GIF of one episode of ``policy`` (keypoints drawn for the MINT agent)."""
    from mint_rl.viz import write_video

    detector = cfg.detector if cfg.agent == "mint" else None
    render_mode = "rgb_array" if cfg.agent == "state" else None
    env = make_env(cfg.task, variant, cfg.agent, detector, cfg.history, render_mode=render_mode,
                   orientation=cfg.orientation)
    frames = []
    try:
        obs, _ = env.reset(seed=cfg.eval_seed)
        done = False
        while not done:
            if cfg.agent == "mint":
                frame = env.render()
            elif cfg.agent == "state":
                import cv2

                frame = cv2.resize(env.render(), (RESOLUTION, RESOLUTION), interpolation=cv2.INTER_AREA)
            else:
                frame = np.asarray(obs)[..., -3:]
            frames.append(np.kron(frame, np.ones((scale, scale, 1), np.uint8)))
            action, _ = policy.predict(obs, deterministic=cfg.deterministic)
            obs, _, term, trunc, _ = env.step(int(action))
            done = term or trunc
    finally:
        env.close()
    return write_video(frames, path, fps=10)


def write_outputs(result: BCResult, out_dir: Path) -> Path:
    """``OUT/results.json`` with the config, per-seed scores and the summary table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    path.write_text(json.dumps(result.to_json(), indent=2))
    return path
