"""Read MAGICAL's simulator state: robot pose, blocks, goal regions, and their pixel positions.

World coordinates: the arena is the square ``[-1, 1] x [-1, 1]``, x to the right, y up; angles
are radians counter-clockwise, and the robot drives along its local +y axis, i.e. its heading
vector is ``(-sin(angle), cos(angle))``.

Allocentric view: MAGICAL renders the square ``[-1.02, 1.02]^2`` (``ARENA_ZOOM_OUT = 1.02``)
onto the whole ``H x W`` image with the image's top row at ``y = +1.02``. Images at another
resolution (e.g. 96x96) are area-downscaled from that, so the same map holds at every size, with
pixel coordinates ``(u, v)`` = (column, row) from the centre of the top-left pixel (the
convention of :mod:`mint_rl.coords`)::

    u = (x + 1.02) / 2.04 * W - 0.5
    v = (1.02 - y) / 2.04 * H - 0.5
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import gymnasium
import numpy as np

__all__ = [
    "ARENA_HALF_VIEW",
    "Pose",
    "Block",
    "GoalRegion",
    "MagicalState",
    "unwrap_magical",
    "read_state",
    "world_to_pixel",
    "pixel_to_world",
    "object_positions_px",
    "goal_boxes_px",
]

#: Half side of the square of world coordinates shown by the allocentric view.
ARENA_HALF_VIEW = 1.02


@dataclass(frozen=True)
class Pose:
    """A planar pose: position ``(x, y)`` in world units and ``angle`` in radians."""

    x: float
    y: float
    angle: float

    @property
    def xy(self) -> np.ndarray:
        """``(2,)`` float64 position."""
        return np.array([self.x, self.y], dtype=np.float64)

    @property
    def heading(self) -> np.ndarray:
        """``(2,)`` unit vector the robot drives along (its local +y axis)."""
        return np.array([-np.sin(self.angle), np.cos(self.angle)])


@dataclass(frozen=True)
class Block:
    """A pushable shape: pose, ``shape_type`` (e.g. ``"square"``), ``colour`` (e.g. ``"red"``)."""

    pose: Pose
    shape_type: str
    colour: str


@dataclass(frozen=True)
class GoalRegion:
    """An axis-aligned goal rectangle: centre ``(x, y)``, width ``w``, height ``h``, colour."""

    x: float
    y: float
    w: float
    h: float
    colour: str

    def contains(self, xy: np.ndarray, margin: float = 0.0) -> bool:
        """Whether ``xy`` lies inside the region shrunk by ``margin`` on every side."""
        return abs(xy[0] - self.x) <= self.w / 2 - margin and abs(xy[1] - self.y) <= self.h / 2 - margin


@dataclass(frozen=True)
class MagicalState:
    """Snapshot of a MAGICAL scene.

    Attributes:
        robot: robot body pose.
        blocks: pushable shapes, in the env's entity order.
        goals: goal regions, in the env's entity order.
        step: steps taken in the current episode.
        max_steps: episode length.
        finger_angle: mean opening of the two fingers relative to the body (0 = closed,
            ~0.39 = fully open).
    """

    robot: Pose
    blocks: tuple[Block, ...] = field(default_factory=tuple)
    goals: tuple[GoalRegion, ...] = field(default_factory=tuple)
    step: int = 0
    max_steps: int = 0
    finger_angle: float = 0.0


def unwrap_magical(env: Any) -> Any:
    """Return the MAGICAL ``BaseEnv`` inside ``env`` (gymnasium wrappers, our adapter, gym wrappers).

    Raises:
        TypeError: no MAGICAL env inside.
    """
    seen = 0
    current = env
    while seen < 64:
        if hasattr(current, "_robot") and hasattr(current, "_entities") and hasattr(current, "score_on_end_of_traj"):
            return current
        if isinstance(current, gymnasium.Wrapper):
            current = current.unwrapped
        elif "magical_env" in getattr(current, "__dict__", {}):
            current = current.magical_env
        elif hasattr(current, "env"):
            current = current.env
        elif hasattr(current, "unwrapped") and current.unwrapped is not current:
            current = current.unwrapped
        else:
            break
        seen += 1
    raise TypeError(f"expected a MAGICAL env or a wrapper around one, got {type(env).__name__}")


def _pose(body: Any) -> Pose:
    return Pose(float(body.position.x), float(body.position.y), float(body.angle))


def read_state(env: Any) -> MagicalState:
    """Read the current simulator state of a (wrapped) MAGICAL env. Call after ``reset``.

    Raises:
        TypeError: ``env`` holds no MAGICAL env.
        RuntimeError: the env has not been reset yet.
    """
    base = unwrap_magical(env)
    if base._robot is None:
        raise RuntimeError("the MAGICAL env has no scene yet: call reset() first")
    import magical.entities as en

    blocks = []
    goals = []
    for ent in base._entities:
        if isinstance(ent, en.Shape):
            blocks.append(Block(_pose(ent.shape_body), str(getattr(ent.shape_type, "value", ent.shape_type)),
                                str(getattr(ent.colour_name, "value", ent.colour_name))))
        elif isinstance(ent, en.GoalRegion):
            pos = ent.goal_body.position
            goals.append(GoalRegion(float(pos.x), float(pos.y), float(ent.w), float(ent.h),
                                    str(getattr(ent.colour_name, "value", ent.colour_name))))
    robot = base._robot
    rel = [abs(fb.angle - robot.robot_body.angle) for fb in robot.finger_bodies]
    return MagicalState(
        robot=_pose(robot.robot_body),
        blocks=tuple(blocks),
        goals=tuple(goals),
        step=int(base._episode_steps or 0),
        max_steps=int(base.max_episode_steps or 0),
        finger_angle=float(np.mean(rel)),
    )


def world_to_pixel(xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """Map world ``(..., 2)`` ``(x, y)`` to allocentric pixel ``(u, v)`` (see module docstring).

    Example:
        >>> world_to_pixel(np.array([[0.0, 0.0], [-1.02, 1.02]]), 96, 96)
        array([[47.5, 47.5],
               [-0.5, -0.5]])
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim < 1 or xy.shape[-1] != 2:
        raise ValueError(f"xy: expected shape (..., 2), got {xy.shape}")
    span = 2 * ARENA_HALF_VIEW
    u = (xy[..., 0] + ARENA_HALF_VIEW) / span * width - 0.5
    v = (ARENA_HALF_VIEW - xy[..., 1]) / span * height - 0.5
    return np.stack([u, v], axis=-1)


def pixel_to_world(uv: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`world_to_pixel`.

    Example:
        >>> pixel_to_world(np.array([47.5, 47.5]), 96, 96)
        array([0., 0.])
    """
    uv = np.asarray(uv, dtype=np.float64)
    if uv.ndim < 1 or uv.shape[-1] != 2:
        raise ValueError(f"uv: expected shape (..., 2), got {uv.shape}")
    span = 2 * ARENA_HALF_VIEW
    x = (uv[..., 0] + 0.5) / width * span - ARENA_HALF_VIEW
    y = ARENA_HALF_VIEW - (uv[..., 1] + 0.5) / height * span
    return np.stack([x, y], axis=-1)


def _view_resolution(env: Any, resolution: Optional[int]) -> int:
    """``resolution``, or else the env's observation resolution (our adapter), or MAGICAL's render size."""
    if resolution is None:
        resolution = getattr(env, "resolution", None) or getattr(getattr(env, "unwrapped", None), "resolution", None)
        if resolution is None:
            resolution = int(unwrap_magical(env).res_hw[0])
    return int(resolution)


def object_positions_px(env: Any, resolution: Optional[int] = None) -> dict[str, np.ndarray]:
    """Robot, block and goal-region centres in pixels of the allocentric view.

    Args:
        env: a (wrapped) MAGICAL env, after ``reset``.
        resolution: side of the square allocentric image; default: the env's observation
            resolution when it is our adapter, else MAGICAL's render size.

    Returns:
        ``{"robot": (1, 2), "blocks": (N, 2), "goals": (G, 2)}`` float64 ``(u, v)`` pixel centres
        (see :func:`world_to_pixel`); ``blocks``/``goals`` follow the env's entity order.
    """
    state = read_state(env)
    res = _view_resolution(env, resolution)

    def px(points: list[tuple[float, float]]) -> np.ndarray:
        arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return world_to_pixel(arr, res, res)

    return {
        "robot": px([(state.robot.x, state.robot.y)]),
        "blocks": px([(b.pose.x, b.pose.y) for b in state.blocks]),
        "goals": px([(g.x, g.y) for g in state.goals]),
    }


def goal_boxes_px(env: Any, resolution: Optional[int] = None) -> np.ndarray:
    """Goal rectangles as ``(G, 4)`` pixel boxes ``(u_min, v_min, u_max, v_max)`` of the allocentric view.

    The pixel box of each :class:`GoalRegion` (its corners through :func:`world_to_pixel`), in the
    env's entity order; ``(0, 4)`` for a task without goal regions. ``resolution`` as in
    :func:`object_positions_px`.
    """
    state = read_state(env)
    res = _view_resolution(env, resolution)
    if not state.goals:
        return np.zeros((0, 4), dtype=np.float64)
    corners = np.array([[(g.x - g.w / 2, g.y + g.h / 2), (g.x + g.w / 2, g.y - g.h / 2)] for g in state.goals])
    uv = world_to_pixel(corners, res, res)  # (G, 2 corners, 2)
    return np.concatenate([uv.min(axis=1), uv.max(axis=1)], axis=1)
