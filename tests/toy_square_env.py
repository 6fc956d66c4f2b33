"""A toy image environment for wrapper tests: a red square moved by the action on a grey floor."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from mint_rl.models import DetectorConfig, MintDetector

MOVES = np.array([[0, 0], [4, 0], [-4, 0], [0, 4], [0, -4]])  # (dx, dy) per action


class SquareEnv(gym.Env):
    """``(size, size, 3)`` uint8 frames; a 10x10 red square at a seeded start moves by the action."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, size: int = 48, episode_steps: int = 20, dict_obs: bool = False, render_mode: str = "rgb_array"):
        self.size, self.episode_steps, self.dict_obs = size, episode_steps, dict_obs
        self.render_mode = render_mode
        image = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.observation_space = spaces.Dict({"allo": image, "ego": image}) if dict_obs else image
        self.action_space = spaces.Discrete(len(MOVES))
        self.pos = np.zeros(2, int)
        self.t = 0

    def frame(self) -> np.ndarray:
        img = np.full((self.size, self.size, 3), 40, np.uint8)
        x, y = self.pos
        img[y : y + 10, x : x + 10] = (220, 60, 30)
        return img

    def center_normalized(self) -> np.ndarray:
        """The square's centre in normalised (x, y)."""
        c = self.pos + 4.5
        return c / (self.size - 1) * 2 - 1

    def _obs(self):
        f = self.frame()
        return {"allo": f, "ego": f[::-1].copy()} if self.dict_obs else f

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.integers(4, self.size - 14, size=2)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + MOVES[int(action)], 0, self.size - 10)
        self.t += 1
        return self._obs(), 0.0, False, self.t >= self.episode_steps, {}

    def render(self):
        return self.frame()


def red_square_detector(size: int = 48, num_keypoints: int = 2) -> MintDetector:
    """A MintDetector with hand-set weights whose every feature map peaks on red pixels.

    conv1 averages ``r - g/2 - b/2`` over its 5x5 window (zero on the grey floor, positive on
    the red square); the other convolutions average channel ``c`` over 3x3 and the transposed
    ones upsample it bilinearly; the last layer is scaled up so the soft-argmax concentrates on
    the square and the status is active.
    """
    det = MintDetector(DetectorConfig.for_image(size, size, num_keypoints=num_keypoints, gamma=10.0))
    convs = [m for m in det.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        for m in convs:
            m.weight.zero_()
            m.bias.zero_()
        first = convs[0]
        first.weight[:, 0] = 1.0 / 25
        first.weight[:, 1] = -0.5 / 25
        first.weight[:, 2] = -0.5 / 25
        tent = torch.tensor([0.5, 1.0, 0.5])
        for m in convs[1:]:
            if isinstance(m, torch.nn.ConvTranspose2d):  # bilinear upsampling (or identity at stride 1)
                kernel = torch.outer(tent, tent) if m.stride[0] == 2 else torch.zeros(3, 3).index_put_((torch.tensor(1), torch.tensor(1)), torch.tensor(1.0))
            else:  # 3x3 box average
                kernel = torch.full((3, 3), 1.0 / 9)
            n = min(m.weight.shape[0], m.weight.shape[1])
            for i in range(n):
                m.weight[i, i] = kernel
            if m.weight.shape[0] > m.weight.shape[1]:  # conv3 doubles the channels: copy the first half
                for i in range(n, m.weight.shape[0]):
                    m.weight[i, i - n] = kernel
        last = convs[-1]
        last.weight.mul_(200.0)
    return det.eval()
