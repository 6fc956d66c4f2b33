"""A tiny goal-reaching env emitting keypoint-wrapper-style observations, for policy tests.

Keypoint 0 is the agent (moved by the action), keypoint 1 the goal, then random-walking
distractors, and the last keypoint is inactive (status 0, random position). Observations are
``(history, K, 3)`` float32 ``(x, y, status)``, oldest frame first, the history filled with the
first frame at reset, exactly as the keypoint wrapper emits them. With ``image=True`` the
observation is instead ``history`` stacked RGB frames, ``(size, size, 3 * history)`` uint8
(like MAGICAL's ``-LoRes4A``), for the CNN agent.

Reaching the goal ends the episode with reward 1 and ``info["eval_score"] = 1``; otherwise the
episode is truncated after ``max_steps`` with score 0.
"""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
from imitation.data.types import Trajectory

ACTIONS = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=np.float32)


class ToyKeypointEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(
        self,
        num_keypoints: int = 6,
        history: int = 4,
        max_steps: int = 25,
        step_size: float = 0.15,
        goal_radius: float = 0.2,
        image: bool = False,
        image_size: int = 32,
    ) -> None:
        assert num_keypoints >= 3
        self.k, self.history, self.max_steps = num_keypoints, history, max_steps
        self.step_size, self.goal_radius = step_size, goal_radius
        self.image, self.image_size = image, image_size
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        if image:
            self.observation_space = gym.spaces.Box(0, 255, (image_size, image_size, 3 * history), np.uint8)
        else:
            self.observation_space = gym.spaces.Box(-1.0, 1.0, (history, num_keypoints, 3), np.float32)
        self._frames: deque = deque(maxlen=history)

    def _frame(self) -> np.ndarray:
        pts = np.concatenate([self.agent[None], self.goal[None], self.distractors, self.inactive[None]])
        status = np.ones((self.k, 1), np.float32)
        status[-1] = 0.0
        if not self.image:
            return np.concatenate([pts, status], axis=1).astype(np.float32)
        img = np.zeros((self.image_size, self.image_size, 3), np.uint8)
        colours = [(255, 0, 0), (0, 255, 0)] + [(0, 0, 255)] * len(self.distractors)
        for (x, y), colour in zip(pts[:-1], colours):
            col = int(round((x + 1) / 2 * (self.image_size - 1)))
            row = int(round((y + 1) / 2 * (self.image_size - 1)))
            img[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2] = colour
        return img

    def _obs(self) -> np.ndarray:
        if self.image:
            return np.concatenate(list(self._frames), axis=-1)
        return np.stack(list(self._frames))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        r = self.np_random
        self.agent = r.uniform(-0.8, 0.8, 2).astype(np.float32)
        self.goal = r.uniform(-0.8, 0.8, 2).astype(np.float32)
        while np.linalg.norm(self.goal - self.agent) < 3 * self.goal_radius:
            self.goal = r.uniform(-0.8, 0.8, 2).astype(np.float32)
        self.distractors = r.uniform(-0.9, 0.9, (self.k - 3, 2)).astype(np.float32)
        self.inactive = r.uniform(-1, 1, 2).astype(np.float32)
        self.t = 0
        frame = self._frame()
        self._frames.clear()
        for _ in range(self.history):
            self._frames.append(frame)
        return self._obs(), {"eval_score": 0.0}

    def step(self, action):
        self.t += 1
        self.agent = np.clip(self.agent + self.step_size * ACTIONS[int(action)], -1, 1).astype(np.float32)
        self.distractors = np.clip(
            self.distractors + self.np_random.normal(0, 0.05, self.distractors.shape), -1, 1
        ).astype(np.float32)
        self.inactive = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self._frames.append(self._frame())
        reached = bool(np.linalg.norm(self.goal - self.agent) < self.goal_radius)
        truncated = self.t >= self.max_steps and not reached
        return self._obs(), float(reached), reached, truncated, {"eval_score": float(reached)}

    def expert_action(self) -> int:
        dx, dy = self.goal - self.agent
        if abs(dx) >= abs(dy):
            return 1 if dx > 0 else 2
        return 3 if dy > 0 else 4


def expert_trajectories(n: int, seed: int = 0, **env_kwargs) -> list[Trajectory]:
    """``n`` scripted-expert episodes as imitation ``Trajectory`` objects."""
    env = ToyKeypointEnv(**env_kwargs)
    trajs = []
    for i in range(n):
        obs, _ = env.reset(seed=seed + i)
        all_obs, acts, infos = [obs], [], []
        done = terminated = False
        while not done:
            a = env.expert_action()
            obs, _, terminated, truncated, info = env.step(a)
            all_obs.append(obs)
            acts.append(a)
            infos.append(info)
            done = terminated or truncated
        trajs.append(Trajectory(np.stack(all_obs), np.array(acts), np.array(infos), terminal=bool(terminated)))
    return trajs
