"""Batched keypoint wrappers: ONE detector call per vector step for all sub-environments.

* :class:`MintKeypointVectorWrapper` wraps a gymnasium ``VectorEnv`` (0.29 API: autoreset,
  ``infos["final_observation"]``);
* :class:`MintKeypointVecEnv` wraps a stable-baselines3 ``VecEnv`` (and, like
  ``VecTransposeImage``, transforms ``infos[i]["terminal_observation"]``).

On CUDA that call is one forward of the whole batch; on CPU the encoder runs it frame by
frame by default (``chunk_size``, see :class:`~mint_rl.wrappers.encoder.KeypointEncoder`),
which is faster there. Both keep one history per sub-environment; when a sub-environment's episode ends its history
is refilled with the first frame of the next episode, and the final observation is encoded
with the history of the episode that ended. Final frames are batched with the step's frames,
so each step still runs one forward pass.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import torch
from gymnasium.vector import VectorEnv, VectorEnvWrapper
from gymnasium.vector.utils import batch_space
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from mint_rl.wrappers.encoder import KeypointEncoder, KeypointHistory, find_image, keypoint_box, load_detector
from mint_rl.wrappers.keypoints import check_history, check_num_keypoints, checked_frames


def _stack_single(encoder: KeypointEncoder, observations: list[Any], names: list[str]) -> np.ndarray:
    """Newest frames ``(n, H, W, 3)`` of a list of single (unbatched) observations, each checked
    (:func:`~mint_rl.wrappers.keypoints.checked_frames`) and named by ``names`` in errors."""
    return np.concatenate([checked_frames(encoder, o, name) for o, name in zip(observations, names)], axis=0)


class _BatchedKeypoints:
    """Shared state of the two vector wrappers."""

    def __init__(self, single_space: Any, num_envs: int, detector: Any, history: int, key: Optional[str],
                 num_keypoints: Optional[int], device: Union[str, torch.device], chunk_size: Optional[int],
                 orientation: bool, final_name: str) -> None:
        history = check_history(history)
        image = find_image(single_space, key)
        self.detector = load_detector(detector, check_num_keypoints(num_keypoints))
        self.encoder = KeypointEncoder(self.detector, image, device, chunk_size, orientation=orientation)
        f = self.encoder.num_features
        self.num_envs = int(num_envs)
        self.final_name = final_name
        self.history = KeypointHistory(num_envs, history, self.detector.num_keypoints, f)
        self.single_space = keypoint_box(history, self.detector.num_keypoints, f)

    def frames(self, observations: Any, where: str) -> np.ndarray:
        """The newest frames of a batch of ``num_envs`` observations, checked (errors name ``where``)."""
        return checked_frames(self.encoder, observations, where, count=self.num_envs)

    def reset(self, observations: Any) -> np.ndarray:
        self.history.reset(self.encoder(self.frames(observations, "observations of the sub-envs at reset")))
        return self.history.get()

    def step(self, observations: Any, done: np.ndarray, finals: dict[int, Any]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Encode the step's observations and the final observations of ended episodes together.

        Returns the new ``(N, history, K, F)`` batch and, per ended env, its final keypoint
        observation ``(history, K, F)``.

        Raises:
            ValueError: observations or final observations of another dtype or shape than the
                observation space says, a ``Dict`` without the image key, or ``done`` not of
                length ``num_envs`` (the message names which one).
        """
        if np.shape(done) != (self.num_envs,):
            raise ValueError(f"dones of the sub-envs: expected shape ({self.num_envs},), got {np.shape(done)}")
        frames = self.frames(observations, "observations of the sub-envs")
        ended = sorted(finals)
        if ended:
            names = [self.final_name.format(i=i) for i in ended]
            frames = np.concatenate([frames, _stack_single(self.encoder, [finals[i] for i in ended], names)], axis=0)
        rows = self.encoder(frames)
        n = len(done)
        final_obs = {i: self.history.peek_with(i, rows[n + j]) for j, i in enumerate(ended)}
        self.history.push(rows[:n])
        restart = np.flatnonzero(done)
        if len(restart):
            self.history.reset(rows[restart], restart)
        return self.history.get(), final_obs


class MintKeypointVectorWrapper(VectorEnvWrapper):
    """Keypoint observations for a gymnasium ``VectorEnv`` with one detector forward per step.

    Observations are ``(num_envs, history, K, F)`` float32 (see
    :class:`~mint_rl.wrappers.MintKeypointWrapper` for the layout and ``orientation``);
    ``infos["final_observation"][i]`` of an ended sub-env is replaced by its keypoint
    observation.

    Raises:
        ValueError: ``history`` not an integer >= 1, a detector whose K differs from
            ``num_keypoints``; at reset/step, observations or final observations of the
            sub-envs with another dtype or shape than the observation space says (or a ``Dict``
            without the image key). Each message says what was expected and what came.

    Example:
        >>> import gymnasium                                            # doctest: +SKIP
        >>> venv = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make("magical/MoveToCorner-Demo-v0")] * 8)  # doctest: +SKIP
        >>> venv = MintKeypointVectorWrapper(venv, detector="magical")   # doctest: +SKIP
    """

    def __init__(self, env: VectorEnv, detector: Any = "magical", history: int = 4, key: Optional[str] = "allo",
                 num_keypoints: Optional[int] = None, device: Union[str, torch.device] = "cpu",
                 chunk_size: Optional[int] = None, orientation: bool = False) -> None:
        super().__init__(env)
        self.num_envs = env.num_envs  # set here: reading it through the wrapper is deprecated
        self._kp = _BatchedKeypoints(env.single_observation_space, env.num_envs, detector, history, key,
                                     num_keypoints, device, chunk_size, orientation,
                                     final_name="infos['final_observation'][{i}]")
        self.detector = self._kp.detector
        self.single_observation_space = self._kp.single_space
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def reset_wait(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, infos = self.env.reset_wait(**kwargs)
        return self._kp.reset(obs), infos

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, rewards, terminated, truncated, infos = self.env.step_wait()
        done = np.logical_or(terminated, truncated)
        finals: dict[int, Any] = {}
        if "final_observation" in infos:
            mask = infos.get("_final_observation", done)
            finals = {i: infos["final_observation"][i] for i in np.flatnonzero(mask)}
        keypoints, final_obs = self._kp.step(obs, done, finals)
        if final_obs:
            converted = np.empty(self.num_envs, dtype=object)
            for i, o in final_obs.items():
                converted[i] = o
            infos["final_observation"] = converted
        return keypoints, rewards, terminated, truncated, infos


class MintKeypointVecEnv(VecEnvWrapper):
    """Keypoint observations for a stable-baselines3 ``VecEnv`` with one detector forward per step.

    ``infos[i]["terminal_observation"]`` is transformed too (as ``VecTransposeImage`` does), so
    bootstrapping on truncation sees keypoints.

    Raises:
        ValueError: as :class:`MintKeypointVectorWrapper` (``infos[i]["terminal_observation"]``
            is checked like the step's observations).

    Example:
        >>> from stable_baselines3.common.env_util import make_vec_env  # doctest: +SKIP
        >>> venv = make_vec_env("magical/MoveToCorner-Demo-v0", n_envs=8)  # doctest: +SKIP
        >>> venv = MintKeypointVecEnv(venv, detector="magical")          # doctest: +SKIP
    """

    def __init__(self, venv: VecEnv, detector: Any = "magical", history: int = 4, key: Optional[str] = "allo",
                 num_keypoints: Optional[int] = None, device: Union[str, torch.device] = "cpu",
                 chunk_size: Optional[int] = None, orientation: bool = False) -> None:
        self._kp = _BatchedKeypoints(venv.observation_space, venv.num_envs, detector, history, key, num_keypoints,
                                     device, chunk_size, orientation, final_name="infos[{i}]['terminal_observation']")
        self.detector = self._kp.detector
        super().__init__(venv, observation_space=self._kp.single_space)

    def reset(self) -> np.ndarray:
        return self._kp.reset(self.venv.reset())

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        obs, rewards, dones, infos = self.venv.step_wait()
        finals = {i: infos[i]["terminal_observation"] for i in np.flatnonzero(dones) if "terminal_observation" in infos[i]}
        keypoints, final_obs = self._kp.step(obs, np.asarray(dones, bool), finals)
        for i, o in final_obs.items():
            infos[i]["terminal_observation"] = o
        return keypoints, rewards, dones, infos
