"""Scripted experts for MoveToRegion, MoveToCorner and MakeLine that read the simulator state.

Each expert maps a :class:`~mint_rl.envs.state.MagicalState` to one of MAGICAL's 18 discrete
actions = (forward / none / back) x (left / none / right turn) x (open / close gripper). The
robot drives along its local +y axis at up to 0.1 world units per step (0.8 units/s at 8 fps,
two steps to speed up or stop) and turns 0.3125 rad per step.

- MoveToRegion: turn towards the goal region's centre and drive there.
- MoveToCorner: drive to the block with the gripper open, close it, carry the block towards
  the top-left corner.
- MakeLine: choose a line anchored at one block (the least total carrying distance, slots
  inside the arena), then grasp each other block, carry it (around the other blocks) to a point
  beside its slot and push it in perpendicular to the line, ~0.34 from its placed neighbour
  (MAGICAL counts blocks within 0.18 of a line whose neighbours are at most 0.42 apart along
  it); finally re-check the line and redo one block if it fails and time allows.

The experts are deterministic functions of the state history, so a seeded episode is
reproducible.

Example:
    >>> from mint_rl.envs.magical import make_magical_env
    >>> from mint_rl.envs.state import read_state
    >>> env = make_magical_env("MoveToRegion", "Demo", view="state")
    >>> _ = env.reset(seed=0)
    >>> expert = expert_for("MoveToRegion")
    >>> expert.reset(read_state(env))
    >>> 0 <= expert.act(read_state(env)) < 18
    True
    >>> env.close()
"""

from __future__ import annotations

import itertools
import math
from typing import Optional

import numpy as np

from mint_rl.envs.registry import TASKS
from mint_rl.envs.state import MagicalState, Pose

__all__ = [
    "action_id",
    "Expert",
    "MoveToRegionExpert",
    "MoveToCornerExpert",
    "MakeLineExpert",
    "EXPERTS",
    "expert_for",
]

_FWD, _NONE, _BACK = 1, 0, -1
_LEFT, _RIGHT = 1, -1
_TURN_PER_STEP = 0.3125
_ARENA = 1.0
_ROBOT_RAD = 0.2


def action_id(move: int = 0, turn: int = 0, close: bool = False) -> int:
    """MAGICAL's discrete action for ``move`` (+1 forward, 0, -1 back), ``turn`` (+1 left,
    0, -1 right) and gripper ``close``.

    Example:
        >>> action_id(1, 0, False), action_id(0, 1, True), action_id(-1, -1, True)
        (1, 12, 17)
    """
    if move not in (-1, 0, 1) or turn not in (-1, 0, 1):
        raise ValueError(f"move and turn: expected -1, 0 or 1, got move={move}, turn={turn}")
    ud = {0: 0, 1: 1, -1: 2}[move]
    lr = {0: 0, 1: 1, -1: 2}[turn]
    return lr * 3 + ud + (9 if close else 0)


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _heading_angle(pose: Pose) -> float:
    return pose.angle + math.pi / 2


def _bearing_error(pose: Pose, target: np.ndarray) -> float:
    d = np.asarray(target, dtype=np.float64) - pose.xy
    return _wrap(math.atan2(d[1], d[0]) - _heading_angle(pose))


class Expert:
    """Base class: stateful per episode; call :meth:`reset` with the first state, then :meth:`act`."""

    task: str = ""

    def __init__(self) -> None:
        self._prev_xy: Optional[np.ndarray] = None
        self._speed = 0.0

    def reset(self, state: MagicalState) -> None:
        """Start a new episode from ``state``."""
        self._prev_xy = state.robot.xy
        self._speed = 0.0

    def _track(self, state: MagicalState) -> None:
        xy = state.robot.xy
        if self._prev_xy is not None:
            self._speed = float(np.linalg.norm(xy - self._prev_xy))
        self._prev_xy = xy

    def act(self, state: MagicalState) -> int:
        """The action for ``state``."""
        raise NotImplementedError

    # ---- primitives -------------------------------------------------------------------
    def _aim(
        self,
        robot_xy: np.ndarray,
        target: np.ndarray,
        obstacles: list[np.ndarray],
        clearance: float,
        reach_beyond: float = 0.0,
    ) -> np.ndarray:
        """Point to steer at: ``target``, or a detour point kept until reached (<= 10 steps)."""
        held = getattr(self, "_detour_point", None)
        if held is not None:
            point, steps = held
            if float(np.linalg.norm(point - robot_xy)) > 0.12 and steps < 10:
                self._detour_point = (point, steps + 1)
                return point
            self._detour_point = None
        aim = _detour(robot_xy, target, obstacles, clearance, reach_beyond)
        if float(np.linalg.norm(aim - np.asarray(target))) > 1e-9:
            self._detour_point = (aim, 0)
        return aim

    def _steer(
        self,
        pose: Pose,
        target: np.ndarray,
        close: bool,
        stop_dist: float = 0.0,
        dist: Optional[float] = None,
        turn_in_place: float = 0.7,
        aligned: float = 0.12,
    ) -> int:
        """Drive ``pose`` towards ``target``; stop when within ``stop_dist`` (plus coasting)."""
        err = _bearing_error(pose, target)
        if dist is None:
            dist = float(np.linalg.norm(np.asarray(target) - pose.xy))
        coast = 1.4 * self._speed
        turn = 0 if abs(err) < aligned else (_LEFT if err > 0 else _RIGHT)
        if dist <= stop_dist + coast:
            return action_id(0, turn if abs(err) > 0.3 and dist > 0.05 else 0, close)
        # near the target, turn on the spot first: driving while turning would orbit it
        if abs(err) > min(turn_in_place, 0.2 + 1.5 * dist):
            return action_id(0, turn, close)
        return action_id(_FWD, turn, close)


def _blocked(
    start: np.ndarray, ends: np.ndarray, obstacles: np.ndarray, clearance: float, reach_beyond: float = 0.0
) -> np.ndarray:
    """For each end point ``(P, 2)``: does an obstacle ``(O, 2)`` ahead come within ``clearance``
    of the segment ``start -> end`` (extended by ``reach_beyond``)? Returns ``(P,)`` bool."""
    ends = np.atleast_2d(ends).astype(np.float64)
    if len(obstacles) == 0:
        return np.zeros(len(ends), dtype=bool)
    d = ends - start  # (P, 2)
    length = np.linalg.norm(d, axis=1, keepdims=True)  # (P, 1)
    u = d / np.maximum(length, 1e-9)
    rel = obstacles[None, :, :] - start  # (1, O, 2)
    along = np.einsum("pk,pok->po", u, np.broadcast_to(rel, (len(ends),) + rel.shape[1:]))  # (P, O)
    t = np.clip(along, 0.0, np.maximum(length + reach_beyond, 0.0))
    closest = start + t[..., None] * u[:, None, :]
    dist = np.linalg.norm(closest - obstacles[None], axis=2)
    return np.any((dist < clearance) & (along > 0.0), axis=1)


_GRID = np.stack(np.meshgrid(np.linspace(-0.78, 0.78, 17), np.linspace(-0.78, 0.78, 17)), -1).reshape(-1, 2)


def _detour(
    robot_xy: np.ndarray,
    target: np.ndarray,
    obstacles: list[np.ndarray],
    clearance: float,
    reach_beyond: float = 0.0,
    turn_clearance: float = 0.58,
) -> np.ndarray:
    """Aim point avoiding obstacles: ``target`` when the straight path is clear, else the grid
    point (17x17 over the arena) clear of every obstacle and reachable in a straight line that
    minimises the path length through it (+1 when it cannot see the target either). Grid points
    keep ``turn_clearance`` from obstacles: the robot turns there, sweeping its fingers."""
    target = np.asarray(target, dtype=np.float64)
    obs = np.asarray(obstacles, dtype=np.float64).reshape(-1, 2)
    if not _blocked(robot_xy, target[None], obs, clearance, reach_beyond)[0]:
        return target
    near = np.min(np.linalg.norm(_GRID[:, None, :] - obs[None], axis=2), axis=1)
    ok = near >= max(clearance, turn_clearance)
    ok &= ~_blocked(robot_xy, _GRID, obs, clearance - 0.05)
    ok &= np.linalg.norm(_GRID - robot_xy, axis=1) > 0.15
    if not ok.any():
        return target
    cand = _GRID[ok]
    onward = np.array([_blocked(c, target[None], obs, clearance - 0.05, reach_beyond)[0] for c in cand])
    cost = np.linalg.norm(cand - robot_xy, axis=1) + np.linalg.norm(target - cand, axis=1) + 1.0 * onward
    return cand[int(np.argmin(cost))]


class MoveToRegionExpert(Expert):
    """Drive into the (single) goal region's centre and stay there."""

    task = "MoveToRegion"

    def act(self, state: MagicalState) -> int:
        self._track(state)
        if not state.goals:
            raise ValueError("MoveToRegion expert: the state has no goal region")
        g = state.goals[0]
        target = np.array([g.x, g.y])
        return self._steer(state.robot, target, close=False, stop_dist=0.03)


class MoveToCornerExpert(Expert):
    """Grasp the block and carry it to the top-left corner."""

    task = "MoveToCorner"
    #: where the block is carried (the score is 1 within 0.707 of (-1, 1)).
    target = np.array([-0.62, 0.62])
    grasp_dist = 0.36

    def reset(self, state: MagicalState) -> None:
        super().reset(state)
        self._phase = "approach"
        self._close_steps = 0

    def act(self, state: MagicalState) -> int:
        self._track(state)
        if not state.blocks:
            raise ValueError("MoveToCorner expert: the state has no block")
        robot = state.robot
        block = state.blocks[0].pose.xy
        d_block = float(np.linalg.norm(block - robot.xy))
        if self._phase == "carry" and d_block > self.grasp_dist + 0.12:
            self._phase = "approach"  # dropped it
        if self._phase == "approach":
            err = _bearing_error(robot, block)
            if d_block <= self.grasp_dist and abs(err) < 0.35:
                self._phase = "grip"
                self._close_steps = 0
            else:
                return self._steer(robot, block, close=False, stop_dist=self.grasp_dist - 0.1)
        if self._phase == "grip":
            self._close_steps += 1
            if self._close_steps >= 3:
                self._phase = "carry"
            return action_id(0, 0, True)
        # carry: steer the block (held in front of the robot) to the target
        to_target = float(np.linalg.norm(self.target - block))
        if to_target < 0.12:
            return action_id(0, 0, True)
        return self._steer(robot, self.target, close=True, stop_dist=0.0, dist=to_target)


def _in_arena(xy: np.ndarray, limit: float) -> bool:
    return bool(np.all(np.abs(xy) <= limit))


class MakeLineExpert(Expert):
    """Plan a line through the blocks, then carry the blocks onto it one by one.

    The plan (chosen once per episode, by :meth:`plan_line`) anchors the line at one block that
    stays put, tries many directions and spacings, and assigns the other blocks to positions so
    that the total carrying distance is least. Blocks are then placed outwards from the anchor,
    each relative to the *actual* position of its already placed neighbour (:meth:`slot_of`), so
    placing errors do not add up. A block is carried with the gripper closed to a waypoint beside
    its slot, turned towards the slot and pushed in perpendicular to the line (pulsed near the
    end), then released; the robot backs off far enough that its fingers cannot sweep it.
    Phases: pregrasp -> approach -> grip -> carry -> align -> insert -> release -> backoff.
    """

    task = "MakeLine"
    spacing = 0.34
    min_spacing = 0.30  # spacings tried to keep two blocks where they are
    max_spacing = 0.38
    hold_offset = 0.31  # block centre in front of the robot centre while carried
    grasp_dist = 0.36
    slot_limit = 0.70  # slots stay inside [-0.7, 0.7]^2
    waypoint_limit = 0.76  # robot waypoints inside [-0.76, 0.76]^2
    in_place_tol = 0.07
    approach_gap = 0.30  # extra distance before the slot at which the final approach starts
    release_coast = 0.6  # the block slides about this many steps' travel after letting go
    release_steps = 3
    min_redo_steps = 40
    slow_zone = 0.25  # within this distance of the slot the block is pushed in pulses
    slow_speed = 0.05

    def reset(self, state: MagicalState) -> None:
        super().reset(state)
        blocks = np.array([b.pose.xy for b in state.blocks])
        if len(blocks) < 2:
            raise ValueError(f"MakeLine expert: expected at least 2 blocks, got {len(blocks)}")
        self.slots, self.normal = self.plan_line(blocks)
        self._settled = {self._anchor} | {
            b for b in range(len(blocks)) if float(np.linalg.norm(blocks[b] - self.slots[b])) <= self.in_place_tol
        }
        self._queue = self._order(blocks, state.robot.xy)
        self._current: Optional[int] = None
        self._phase = "next"
        self._count = 0
        self._phase_steps = 0
        self._side = 1.0
        self._pregrasp = None
        self._stuck = 0
        self._unstick = 0
        self._last_forward = False

    def _go(self, action: int) -> int:
        self._last_forward = action in (1, 4, 7, 10, 13, 16)
        return action

    # ---- planning ---------------------------------------------------------------------
    def plan_line(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Choose slots ``(N, 2)`` (slot i for block i) and the line's unit normal ``(2,)``.

        Also sets the chain structure used by :meth:`slot_of`: the anchor block, the line
        direction, the spacing and each block's position index relative to the anchor.
        """
        n = len(blocks)
        best_cost = math.inf
        best: Optional[tuple[np.ndarray, np.ndarray]] = None
        angles = [k * math.pi / 12 for k in range(12)]
        for i in range(n):
            dirs = list(angles)
            for j in range(n):
                if j != i:
                    d = blocks[j] - blocks[i]
                    dirs.append(math.atan2(d[1], d[0]) % math.pi)
            for ang in dirs:
                u = np.array([math.cos(ang), math.sin(ang)])
                normal = np.array([-u[1], u[0]])
                spacings = {self.spacing}
                for j in range(n):
                    if j != i:
                        along = abs(float((blocks[j] - blocks[i]) @ u))
                        for k in range(1, n):
                            if self.min_spacing <= along / k <= self.max_spacing:
                                spacings.add(along / k)
                for sp in spacings:
                    for pos in range(n):
                        slots = blocks[i] + np.outer(np.arange(n) - pos, u) * sp
                        if np.any(np.abs(slots) > 0.9):
                            continue
                        reachable = [
                            bool(np.all(np.abs(sl) <= self.slot_limit))
                            and any(
                                _in_arena(sl + sgn * normal * (self.hold_offset + self.approach_gap), self.waypoint_limit)
                                for sgn in (1, -1)
                            )
                            for sl in slots
                        ]
                        others = [b for b in range(n) if b != i]
                        free = [k for k in range(n) if k != pos]
                        for perm in itertools.permutations(free):
                            cost = 0.0
                            for b, k in zip(others, perm):
                                dist = float(np.linalg.norm(blocks[b] - slots[k]))
                                if dist > self.in_place_tol:
                                    if not reachable[k]:
                                        cost = math.inf
                                        break
                                    cost += dist + 0.6 + 0.3 * float(np.abs(blocks[b]).max() > 0.75)
                            if cost < best_cost:
                                assign = np.empty((n, 2))
                                index = np.zeros(n, dtype=np.int64)
                                assign[i] = slots[pos]
                                for b, k in zip(others, perm):
                                    assign[b] = slots[k]
                                    index[b] = k - pos
                                best_cost = cost
                                best = (assign, normal)
                                self._anchor, self._u, self._sp, self._index = i, u, sp, index
        if best is None:  # pragma: no cover - fallback: horizontal line through block 0
            order = np.argsort(blocks[:, 0])
            index = np.empty(n, dtype=np.int64)
            index[order] = np.arange(n) - int(np.where(order == 0)[0][0])
            self._anchor, self._u, self._sp, self._index = 0, np.array([1.0, 0.0]), self.spacing, index
            slots = blocks[0] + np.outer(index, self._u) * self.spacing
            return slots, np.array([0.0, 1.0])
        return best

    def _order(self, blocks: np.ndarray, robot_xy: np.ndarray) -> list[int]:
        """Unsettled blocks, nearest-to-anchor first (each goes next to a settled one)."""
        todo = [b for b in range(len(blocks)) if b not in self._settled]
        return sorted(todo, key=lambda b: (abs(int(self._index[b])), float(np.linalg.norm(blocks[b] - robot_xy))))

    def slot_of(self, b: int, blocks: np.ndarray) -> np.ndarray:
        """Current target of block ``b`` on the line through the anchor: ``spacing`` beyond its
        settled neighbour towards the anchor, or midway between both neighbours when the outer
        one is settled too (so the gaps stay below MAGICAL's 0.42 whatever the placing errors)."""
        anchor = blocks[self._anchor]
        idx = int(self._index[b])
        if idx == 0:
            return anchor.copy()
        step = 1 if idx > 0 else -1
        along = (blocks - anchor) @ self._u

        def coord(k: int) -> Optional[float]:
            hit = np.where(self._index == k)[0]
            if len(hit) == 0:
                return None
            other = int(hit[0])
            return float(along[other]) if other in self._settled else None

        inner = coord(idx - step)
        inner = (idx - step) * self._sp if inner is None else inner
        target = inner + step * self._sp
        outer = coord(idx + step)
        if outer is not None:
            target = 0.5 * (inner + outer)
        return anchor + target * self._u

    def line_ok(self, blocks: np.ndarray, gap: float = 0.415, off: float = 0.17) -> Optional[int]:
        """None when the blocks form a line with margin (gaps <= ``gap``, offsets <= ``off`` from
        the anchor's line); else the block to move again."""
        anchor = blocks[self._anchor]
        along = (blocks - anchor) @ self._u
        perp = np.abs((blocks - anchor) @ self.normal)
        bad_perp = [b for b in np.argsort(-perp) if perp[b] > off and b != self._anchor]
        if bad_perp:
            return int(bad_perp[0])
        order = np.argsort(along)
        for i in range(len(order) - 1):
            lo, hi = int(order[i]), int(order[i + 1])
            if along[hi] - along[lo] > gap:
                # move the one farther from the anchor
                return lo if abs(along[lo]) > abs(along[hi]) else hi
        return None

    # ---- acting ------------------------------------------------------------------------
    def _choose_side(self, b: int, block: np.ndarray, slot: np.ndarray) -> float:
        side = float(np.sign((block - slot) @ self.normal)) or 1.0
        for sgn in (side, -side):
            w = slot + sgn * self.normal * (self.hold_offset + self.approach_gap)
            if _in_arena(w, self.waypoint_limit):
                return sgn
        return side

    def _start_block(self, b: int, blocks: np.ndarray) -> None:
        self._current = b
        block = blocks[b]
        slot = self.slot_of(b, blocks)
        self._side = self._choose_side(b, block, slot)
        # pre-grasp point: behind the block as seen from where it must go first
        dest = slot + self._side * self.normal * self.approach_gap
        g = dest - block
        norm = float(np.linalg.norm(g))
        self._pregrasp: Optional[np.ndarray] = None
        direction = g / norm if norm > 0.25 else -self._side * self.normal
        p = block - direction * (self.grasp_dist + 0.2)
        if _in_arena(p, self.waypoint_limit):
            self._pregrasp = p
        self._phase = "pregrasp" if self._pregrasp is not None else "approach"
        self._count = 0
        self._phase_steps = 0

    def _set(self, phase: str) -> None:
        self._detour_point = None
        self._phase = phase
        self._count = 0
        self._phase_steps = 0

    def act(self, state: MagicalState) -> int:
        self._track(state)
        robot = state.robot
        blocks = np.array([b.pose.xy for b in state.blocks])
        if self._last_forward and self._speed < 0.008:
            self._stuck += 1
        else:
            self._stuck = 0
        self._last_forward = False
        if self._stuck >= 4:
            self._stuck = 0
            self._unstick = 4
            if self._phase == "pregrasp":
                self._set("approach")
        if self._unstick > 0:
            self._unstick -= 1
            holding = self._phase in ("carry", "align", "insert")
            return action_id(_BACK, _LEFT if self._unstick % 2 else 0, holding)
        self._phase_steps += 1
        for _ in range(6):
            if self._phase == "next":
                if not self._queue:
                    # all placed: check the line as MAGICAL will, redo one block if time allows
                    redo = self.line_ok(blocks)
                    if redo is None or state.max_steps - state.step < self.min_redo_steps:
                        return action_id(0, 0, False)
                    self._settled.discard(redo)
                    self._queue = [redo]
                nxt = self._queue.pop(0)
                self._start_block(nxt, blocks)
            b = self._current
            assert b is not None
            block = blocks[b]
            slot = self.slot_of(b, blocks)
            others = [blocks[k] for k in range(len(blocks)) if k != b]
            d_block = float(np.linalg.norm(block - robot.xy))
            approach_dir = -self._side * self.normal  # robot's heading in the final approach
            if self._phase in ("carry", "align", "insert") and d_block > self.grasp_dist + 0.12:
                self._set("approach")  # dropped it
            if self._phase == "pregrasp":
                assert self._pregrasp is not None
                if np.linalg.norm(self._pregrasp - robot.xy) < 0.12 or self._phase_steps > 25:
                    self._set("approach")
                    continue
                aim = self._aim(robot.xy, self._pregrasp, others + [block], clearance=0.42)
                return self._go(self._steer(robot, aim, close=False))
            if self._phase == "approach":
                err = _bearing_error(robot, block)
                if d_block <= self.grasp_dist and abs(err) < 0.3:
                    self._set("grip")
                    continue
                aim = self._aim(robot.xy, block, others, clearance=0.42, reach_beyond=-0.3)
                if np.linalg.norm(aim - block) > 1e-9:
                    return self._go(self._steer(robot, aim, close=False))
                return self._go(self._steer(robot, block, close=False, stop_dist=self.grasp_dist - 0.1))
            if self._phase == "grip":
                self._count += 1
                if self._count > 3:
                    self._set("carry")
                    continue
                return action_id(0, 0, True)
            if self._phase == "carry":
                wp = slot - approach_dir * (self.hold_offset + self.approach_gap)
                if np.linalg.norm(wp - robot.xy) < 0.1:
                    self._set("align")
                    continue
                aim = self._aim(robot.xy, wp, others, clearance=0.44, reach_beyond=0.31)
                return self._go(self._steer(robot, aim, close=True, stop_dist=0.0))
            if self._phase in ("align", "insert"):
                # aim so that the held block (maybe off-centre) passes through the slot
                h = robot.heading
                h_perp = np.array([-h[1], h[0]])
                lateral = float(np.clip((block - robot.xy) @ h_perp, -0.08, 0.08))
                aim = slot - lateral * h_perp
            if self._phase == "align":
                err = _bearing_error(robot, slot)
                if abs(err) < 0.1 or self._phase_steps > 12:
                    self._set("insert")
                    continue
                return action_id(0, _LEFT if err > 0 else _RIGHT, True)
            if self._phase == "insert":
                remaining = float((slot - block) @ robot.heading)
                dist_robot = float(np.linalg.norm(slot - robot.xy))
                if (
                    remaining < 0.02 + self.release_coast * self._speed
                    or dist_robot < self.hold_offset + self.release_coast * self._speed
                    or self._phase_steps > 18
                ):
                    self._set("release")
                    continue
                err = _bearing_error(robot, aim)
                turn = 0 if abs(err) < 0.05 else (_LEFT if err > 0 else _RIGHT)
                if abs(err) > 0.5:
                    return action_id(0, turn, True)
                move = _FWD if (remaining > self.slow_zone or self._speed < self.slow_speed) else 0
                return self._go(action_id(move, turn, True))
            if self._phase == "settle":
                self._count += 1
                if self._count > 2 and self._speed < 0.01:
                    self._set("release")
                    continue
                return action_id(0, 0, True)
            if self._phase == "release":
                self._count += 1
                if self._count > self.release_steps:
                    self._set("backoff")
                    continue
                return action_id(0, 0, False)
            if self._phase == "backoff":
                self._count += 1
                # back away until the open fingers cannot sweep the block when turning
                if self._count > 10 or (self._count > 2 and d_block > 0.6):
                    self._settled.add(b)
                    self._set("next")
                    continue
                return action_id(_BACK, 0, False)
        return action_id(0, 0, False)


#: Expert class per task.
EXPERTS: dict[str, type[Expert]] = {
    "MoveToRegion": MoveToRegionExpert,
    "MoveToCorner": MoveToCornerExpert,
    "MakeLine": MakeLineExpert,
}


def expert_for(task: str) -> Expert:
    """A fresh scripted expert for ``task``.

    Raises:
        ValueError: no expert for ``task`` (the message lists the tasks that have one).

    Example:
        >>> type(expert_for("MakeLine")).__name__
        'MakeLineExpert'
    """
    if task not in EXPERTS:
        known = "a MAGICAL task" if task in TASKS else f"not a MAGICAL task (tasks: {list(TASKS)})"
        raise ValueError(f"no scripted expert for {task!r} ({known}); expected one of {list(EXPERTS)}")
    return EXPERTS[task]()
