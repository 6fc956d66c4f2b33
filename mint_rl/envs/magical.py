"""MAGICAL as a gymnasium environment (5-tuple step, truncation at the step limit, headless).

:class:`MagicalEnv` wraps one MAGICAL (old gym 0.17) env. Importing :mod:`mint_rl` registers
``magical/<MAGICAL id>`` for every MAGICAL id, so::

    import gymnasium, mint_rl
    env = gymnasium.make("magical/MoveToCorner-Demo-v0")              # dict allo/ego 384x384x3
    env = gymnasium.make("magical/MoveToCorner-TestJitter-LoRes4A-v0")  # 96x96x12 stacked allo
    env = mint_rl.envs.make_magical_env("MakeLine", "TestJitter", view="allo", resolution=96)

Observations (``view``), for ids without a MAGICAL preprocessor suffix:

- ``"both"``: ``Dict(allo=Box(R, R, 3), ego=Box(R, R, 3))`` uint8 (MAGICAL's own observation);
- ``"allo"`` / ``"ego"``: one ``Box(R, R, 3)`` uint8 image (only that view is rendered);
- ``"state"``: a float32 vector read from the simulator (no image rendering at all; see
  :func:`state_vector`).

``R`` (``resolution``) defaults to MAGICAL's 384; smaller sizes are area-downscaled from the
384x384 render exactly as MAGICAL's ``LoRes`` preprocessors do. Ids with a preprocessor suffix
(``-LoRes4A`` etc.) return MAGICAL's preprocessed observation unchanged; ``view``/``resolution``
must then be left unset.

Episodes end only at the task's step limit, reported as ``truncated=True`` (``terminated`` is
always False); the reward is always 0 and ``info["eval_score"]`` holds the score in ``[0, 1]``
at the last step (0.0 before). ``reset(seed=s)`` reseeds MAGICAL's generator, so the same seed
gives the same scene, and the same actions then give the same frames.
"""

from __future__ import annotations

from typing import Any, Optional, SupportsFloat

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from mint_rl.envs._compat import import_magical
from mint_rl.envs.registry import MagicalId, magical_id, parse_magical_id

__all__ = ["MagicalEnv", "make_magical_env", "render_only_observed", "VIEWS", "STATE_SLOTS", "state_vector", "convert_space"]

#: Observation views accepted by :class:`MagicalEnv`.
VIEWS = ("both", "allo", "ego", "state")
_NATIVE_RES = 384

#: ``(block slots, goal slots)`` of the ``"state"`` vector per task.
STATE_SLOTS: dict[str, tuple[int, int]] = {
    "MoveToCorner": (1, 0),
    "MoveToRegion": (0, 1),
    "MakeLine": (4, 0),
}
_DEFAULT_SLOTS = (10, 4)


def convert_space(space: Any) -> spaces.Space:
    """Convert an old-gym space (Box, Discrete, Dict) to the gymnasium equivalent.

    Raises:
        TypeError: unsupported space type.
    """
    name = type(space).__name__
    if name == "Box":
        return spaces.Box(low=np.asarray(space.low), high=np.asarray(space.high), dtype=space.dtype)
    if name == "Discrete":
        return spaces.Discrete(int(space.n))
    if name == "Dict":
        return spaces.Dict({k: convert_space(v) for k, v in space.spaces.items()})
    raise TypeError(f"expected an old-gym Box, Discrete or Dict space, got {name}")


def _slots(task: str) -> tuple[int, int]:
    return STATE_SLOTS.get(task, _DEFAULT_SLOTS)


def state_vector(env: Any, n_blocks: int, n_goals: int) -> np.ndarray:
    """Flat float32 state: robot, then ``n_blocks`` block slots, then ``n_goals`` goal slots.

    Layout: robot ``(x, y, cos a, sin a, finger_opening)``; each block slot
    ``(x, y, cos a, sin a, present)``; each goal slot ``(x, y, w, h, present)``. Unused slots
    are zeros.

    Raises:
        RuntimeError: the scene has more blocks/goals than slots.
    """
    from mint_rl.envs.state import read_state

    st = read_state(env)
    if len(st.blocks) > n_blocks or len(st.goals) > n_goals:
        raise RuntimeError(
            f"state view has {n_blocks} block / {n_goals} goal slots, scene has "
            f"{len(st.blocks)} blocks / {len(st.goals)} goals"
        )
    out = np.zeros(5 + 5 * n_blocks + 5 * n_goals, dtype=np.float32)
    r = st.robot
    out[:5] = (r.x, r.y, np.cos(r.angle), np.sin(r.angle), st.finger_angle)
    for i, b in enumerate(st.blocks):
        p = b.pose
        out[5 + 5 * i : 10 + 5 * i] = (p.x, p.y, np.cos(p.angle), np.sin(p.angle), 1.0)
    base = 5 + 5 * n_blocks
    for i, g in enumerate(st.goals):
        out[base + 5 * i : base + 5 * i + 5] = (g.x, g.y, g.w, g.h, 1.0)
    return out


class MagicalEnv(gymnasium.Env):
    """Gymnasium adapter around one MAGICAL environment.

    Args:
        env_id: MAGICAL id, e.g. ``"MoveToCorner-Demo-v0"`` (``"magical/"`` prefix allowed).
        view: ``"both"``, ``"allo"``, ``"ego"`` or ``"state"``; default ``"both"`` (MAGICAL's
            own dict). Must be None for ids with a preprocessor suffix.
        resolution: side of the square images; default 384. Must be None for preprocessed ids.
        render_mode: None or ``"rgb_array"`` (``render()`` returns the 384x384 allocentric frame).

    Example:
        >>> env = MagicalEnv("MoveToRegion-Demo-v0", view="allo", resolution=96)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, obs.dtype, env.action_space
        ((96, 96, 3), dtype('uint8'), Discrete(18))
        >>> obs, reward, terminated, truncated, info = env.step(0)
        >>> reward, terminated, truncated, info["eval_score"]
        (0.0, False, False, 0.0)
        >>> env.close()
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(
        self,
        env_id: str,
        view: Optional[str] = None,
        resolution: Optional[int] = None,
        render_mode: Optional[str] = None,
    ) -> None:
        self.spec_id: MagicalId = parse_magical_id(env_id)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode: expected None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        preproc = self.spec_id.preproc
        if preproc is not None and (view is not None or resolution is not None):
            raise ValueError(
                f"{self.spec_id.env_id} uses MAGICAL's {preproc} preprocessor, which fixes the "
                f"observation; got view={view!r}, resolution={resolution!r}, expected both None "
                f"(or use the id without -{preproc})"
            )
        view = "both" if view is None else view
        if view not in VIEWS:
            raise ValueError(f"view: expected one of {list(VIEWS)}, got {view!r}")
        if resolution is None:
            resolution = _NATIVE_RES
        if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
            raise TypeError(f"resolution: expected an int, got {type(resolution).__name__}")
        if not 8 <= int(resolution) <= _NATIVE_RES:
            raise ValueError(f"resolution: expected an int in [8, {_NATIVE_RES}], got {resolution}")
        self.view = view if preproc is None else None
        self.resolution = int(resolution) if preproc is None else None

        magical = import_magical()  # noqa: F841  (shim + headless + register before gym.make)
        import gym

        overrides: dict[str, Any] = {}
        if preproc is None:
            # Render only what is observed; "state" renders nothing per step (allo kept for render()).
            overrides = {"allo_view": view in ("both", "allo", "state"), "ego_view": view in ("both", "ego")}
        self._env = gym.spec(self.spec_id.env_id).make(**overrides)
        self.magical_env = self._env.unwrapped
        if view == "state" and preproc is None:
            self.magical_env.render = _no_render  # type: ignore[method-assign]
        self.max_episode_steps = self.spec_id.max_episode_steps
        self.action_space = spaces.Discrete(int(self._env.action_space.n))
        if preproc is not None:
            self.observation_space = convert_space(self._env.observation_space)
        elif view == "state":
            nb, ng = _slots(self.spec_id.task)
            n = 5 + 5 * (nb + ng)
            self.observation_space = spaces.Box(-2.0, 2.0, shape=(n,), dtype=np.float32)
        else:
            img = spaces.Box(0, 255, shape=(self.resolution, self.resolution, 3), dtype=np.uint8)
            if view == "both":
                self.observation_space = spaces.Dict({"allo": img, "ego": img})
            else:
                self.observation_space = img
        self._seeded = False
        self._reset_done = False
        self._steps = 0

    # ------------------------------------------------------------------ helpers
    @property
    def env_id(self) -> str:
        """The MAGICAL id of this env."""
        return self.spec_id.env_id

    def _resize(self, img: np.ndarray) -> np.ndarray:
        if self.resolution == img.shape[0] == img.shape[1]:
            return np.ascontiguousarray(img)
        from mint_rl.inference import resize_area  # cv2's INTER_AREA numbers, one pass for 384 -> 96

        return resize_area(img, (self.resolution, self.resolution))

    def _convert_obs(self, raw: Any) -> Any:
        if self.spec_id.preproc is not None:
            if isinstance(raw, dict):
                return {k: np.ascontiguousarray(v) for k, v in raw.items()}
            return np.ascontiguousarray(raw)
        if self.view == "state":
            nb, ng = _slots(self.spec_id.task)
            return state_vector(self.magical_env, nb, ng)
        if self.view == "both":
            return {"allo": self._resize(raw["allo"]), "ego": self._resize(raw["ego"])}
        return self._resize(raw[self.view])

    def set_view(self, view: str) -> None:
        """Render and observe only ``view`` (``"both"``, ``"allo"`` or ``"ego"``) from now on.

        Rendering a view MAGICAL does not need costs a second camera pass per step (about 2.7 ms of
        a 6.0 ms ``"both"`` step on a 2-core Xeon); wrappers that read one view
        (:class:`~mint_rl.wrappers.MintKeypointWrapper`) switch their env to it. The observation
        space changes accordingly; the next observation is in the new form.

        Raises:
            ValueError: an env with a MAGICAL preprocessor (``-LoRes4A`` ...) or ``view="state"``,
                or ``view`` not one of ``"both"``, ``"allo"``, ``"ego"``.

        Example:
            >>> env = MagicalEnv("MoveToCorner-Demo-v0", resolution=32)
            >>> env.set_view("allo")
            >>> env.observation_space.shape, env.reset(seed=0)[0].shape
            ((32, 32, 3), (32, 32, 3))
        """
        if self.spec_id.preproc is not None or self.view == "state":
            what = f"the {self.spec_id.preproc} preprocessor" if self.spec_id.preproc is not None else 'view="state"'
            raise ValueError(f"{self.env_id}: set_view needs an image env without a preprocessor, this one has {what}")
        if view not in ("both", "allo", "ego"):
            raise ValueError(f"view: expected one of ['both', 'allo', 'ego'], got {view!r}")
        self.magical_env.allo_view = view in ("both", "allo")
        self.magical_env.ego_view = view in ("both", "ego")
        self.view = view
        img = spaces.Box(0, 255, shape=(self.resolution, self.resolution, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict({"allo": img, "ego": img}) if view == "both" else img

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None) -> tuple[Any, dict]:
        """Start an episode; ``seed`` fixes the scene (Demo variants have one fixed scene)."""
        super().reset(seed=seed)
        if seed is not None:
            self._env.seed(int(seed))
            self._seeded = True
        elif not self._seeded:
            self._env.seed(int(self.np_random.integers(0, 2**31 - 1)))
            self._seeded = True
        raw = self._env.reset()
        self._steps = 0
        self._reset_done = True
        return self._convert_obs(raw), {"eval_score": 0.0}

    def _check_action(self, action: Any) -> int:
        """``action`` as an int, checked: an integer (Python, numpy, or a 0-d integer array) in
        ``[0, n)``; floats such as ``3.0`` and bools are refused, not truncated."""
        n = self.action_space.n
        integer = isinstance(action, (int, np.integer)) or (
            isinstance(action, np.ndarray) and action.ndim == 0 and np.issubdtype(action.dtype, np.integer))
        if isinstance(action, (bool, np.bool_)) or not integer:
            kind = type(action).__name__
            if isinstance(action, np.ndarray):
                kind += f" of {action.dtype} {action.shape}"
            raise TypeError(f"action: expected an integer in [0, {n}), got {action!r} ({kind})")
        if not 0 <= int(action) < n:
            raise ValueError(f"action: expected an integer in [0, {n}), got {action!r}")
        return int(action)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict]:
        """One step; ``truncated`` is True at the step limit, when ``info["eval_score"]`` is final.

        Raises:
            gymnasium.error.ResetNeeded: ``step`` before the first ``reset``.
            TypeError: a non-integer action (``3.0``, ``np.float32(3)``, ``True``, an array of shape ``(1,)``).
            ValueError: an integer outside ``[0, n)``.
        """
        if not self._reset_done:
            raise ResetNeeded(f"{self.env_id}: expected reset() before the first step(), got step({action!r})")
        a = self._check_action(action)
        raw, reward, done, info = self._env.step(a)
        self._steps += 1
        out_info = {k: v for k, v in info.items() if k != "TimeLimit.truncated"}
        out_info["eval_score"] = float(info.get("eval_score", 0.0))
        return self._convert_obs(raw), float(reward), False, bool(done), out_info

    def render(self) -> Optional[np.ndarray]:
        """The current 384x384x3 allocentric frame (egocentric for ``view="ego"``) when
        ``render_mode="rgb_array"``, else None."""
        if self.render_mode != "rgb_array":
            return None
        base = self.magical_env
        if base.viewer is None:
            return None
        import magical.base_env as be

        frames = be.BaseEnv.render(base, mode="rgb_array")
        if "allo" in frames:
            return frames["allo"]
        return frames["ego"]

    def close(self) -> None:
        """Close MAGICAL's (offscreen) window."""
        env = getattr(self, "_env", None)
        if env is not None:
            env.close()


def render_only_observed(env: gymnasium.Env, key: Optional[str]) -> bool:
    """Make a MAGICAL env under ``env`` render only the view ``key`` when nothing else reads the other.

    Walks ``env``'s wrapper chain down to :class:`MagicalEnv`; switches it (:meth:`MagicalEnv.set_view`)
    when it observes ``"both"``, ``key`` is ``"allo"`` or ``"ego"`` and no wrapper on the way
    declares an observation space of its own (such a wrapper may read the other view).

    Returns:
        True when the env was switched.
    """
    if key not in ("allo", "ego"):
        return False
    inner: Any = env
    while isinstance(inner, gymnasium.Wrapper):
        if getattr(inner, "_observation_space", None) is not None:
            return False
        inner = inner.env
    if not isinstance(inner, MagicalEnv) or inner.view != "both" or inner.spec_id.preproc is not None:
        return False
    inner.set_view(key)
    return True


def _no_render(mode: str = "rgb_array") -> None:
    return None


def make_magical_env(
    task: str,
    variant: str = "Demo",
    view: str = "allo",
    resolution: int = 96,
    render_mode: Optional[str] = None,
    preproc: Optional[str] = None,
) -> MagicalEnv:
    """Make a MAGICAL env by task and variant, e.g. ``make_magical_env("MakeLine", "TestJitter")``.

    Args:
        task: one of :data:`mint_rl.envs.registry.TASKS` (e.g. ``"MoveToCorner"``).
        variant: e.g. ``"Demo"``, ``"TestJitter"``.
        view: ``"allo"`` (default), ``"ego"``, ``"both"`` or ``"state"``.
        resolution: image side, default 96 (area-downscaled from MAGICAL's 384 render).
        render_mode: None or ``"rgb_array"``.
        preproc: a MAGICAL preprocessor (``"LoRes4A"`` ...) instead of ``view``/``resolution``.

    Raises:
        ValueError: unknown task/variant/view (the message lists the valid ones).

    Example:
        >>> env = make_magical_env("MoveToCorner", "TestJitter")
        >>> env.observation_space.shape, env.max_episode_steps
        ((96, 96, 3), 80)
        >>> env.close()
    """
    mid = magical_id(task, variant, preproc)
    if preproc is not None:
        return MagicalEnv(mid.env_id, render_mode=render_mode)
    return MagicalEnv(mid.env_id, view=view, resolution=resolution, render_mode=render_mode)
