"""``MintKeypointWrapper``: a gymnasium observation wrapper that emits MINT keypoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, SupportsFloat, Union

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from mint_rl.wrappers.encoder import (
    KeypointEncoder,
    KeypointHistory,
    find_image,
    fully_connected_edges,
    keypoint_box,
    keypoint_feature_bounds,
    load_detector,
)

OUTPUTS = ("box", "graph")


def check_history(history: Any) -> int:
    """``history`` as an int, checked: an integer >= 1 (``bool``, floats and strings are refused).

    Example:
        >>> check_history(4)
        4
        >>> check_history(2.5)
        Traceback (most recent call last):
        ...
        ValueError: history: expected an integer >= 1, got 2.5 (float)
    """
    if isinstance(history, bool) or not isinstance(history, (int, np.integer)) or history < 1:
        raise ValueError(f"history: expected an integer >= 1, got {history!r} ({type(history).__name__})")
    return int(history)


def check_num_keypoints(num_keypoints: Any) -> Optional[int]:
    """``num_keypoints`` checked: ``None`` or an integer >= 1.

    Example:
        >>> check_num_keypoints(None), check_num_keypoints(25)
        (None, 25)
    """
    if num_keypoints is None:
        return None
    if isinstance(num_keypoints, bool) or not isinstance(num_keypoints, (int, np.integer)) or num_keypoints < 1:
        raise ValueError(f"num_keypoints: expected None or an integer >= 1, got {num_keypoints!r} "
                         f"({type(num_keypoints).__name__})")
    return int(num_keypoints)


def checked_frames(encoder: KeypointEncoder, observations: Any, where: str, count: Optional[int] = None) -> np.ndarray:
    """The newest RGB frame(s) ``(N, H, W, 3)`` of observation(s), after checking them.

    Args:
        encoder: knows where the image is (``encoder.image``: ``Dict`` key, size, channels).
        observations: one observation (``count=None``) or a batch of ``count`` of them.
        where: how the error names the observation (e.g. ``"observations of the sub-envs"``).
        count: batch size expected, or ``None`` for a single observation.

    Raises:
        ValueError: a ``Dict`` observation without the image key, or an image entry whose
            dtype is not uint8 or whose shape differs from the observation space's; the message
            says what was expected and what came.
    """
    spec = encoder.image
    x = observations
    if spec.key is not None:
        if not isinstance(observations, Mapping) or spec.key not in observations:
            got = (f"a Dict with keys {sorted(map(str, observations))}" if isinstance(observations, Mapping)
                   else type(observations).__name__)
            raise ValueError(f"{where}: expected a Dict observation with the image key {spec.key!r}, got {got}")
        x = observations[spec.key]
        where = f"{where}[{spec.key!r}]"
    x = np.asarray(x)
    want = (spec.height, spec.width, spec.channels)
    if count is not None:
        want = (int(count), *want)
    if x.dtype != np.uint8 or tuple(x.shape) != want:
        raise ValueError(f"{where}: expected uint8 {want}, got {x.dtype} {tuple(x.shape)}")
    return encoder.frames(observations, batched=count is not None)


class MintKeypointWrapper(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Replace image observations by MINT keypoints over a short history.

    Each step the newest RGB frame of the observation is resized to the detector's input size
    and passed through a frozen :class:`~mint_rl.models.MintDetector` (under
    ``torch.inference_mode()``); the wrapper keeps the last ``history`` results.

    Observation (``output="box"``, the default): a float32 ``Box`` of shape
    ``(history, K, 3)`` holding ``(x, y, status)`` per keypoint, ``x`` and ``y`` normalised to
    ``[-1, 1]`` (``-1`` = centre of the left column / top row of the frame), status in
    ``[0, 1]``; oldest frame first. At ``reset`` the history is filled with the first frame.
    With ``orientation=True`` the shape is ``(history, K, 5)``: each row gains the keypoint's
    intensity-centroid orientation ``(ox, oy)`` in the unit disc
    (:func:`~mint_rl.wrappers.orientation.intensity_centroid`, radius
    :data:`~mint_rl.wrappers.orientation.ORIENTATION_RADIUS` pixels of the detector's input),
    which tells which way a round object such as MAGICAL's robot faces.

    With ``output="graph"``: a gymnasium ``Graph`` whose nodes are the K keypoints with their
    ``history * F`` features (the rows of all frames, oldest first) and whose edges are
    all ordered pairs ``(i, j)``, ``i != j``, with one constant edge type (``edges`` are zeros
    in ``Discrete(1)``: no edge features; gymnasium 0.29 needs an edge space to carry
    ``edge_links``). Note that stable-baselines3
    does not accept ``Graph`` spaces; use the Box with
    :class:`mint_rl.policies.KeypointGraphExtractor` there.

    Args:
        env: an environment whose observations are an RGB image ``(H, W, 3)`` uint8, a channel
            stack ``(H, W, 3n)`` (the newest frame last, as MAGICAL's ``-LoRes4A``), or a
            ``Dict`` holding one.
        detector: a pretrained name (e.g. ``"magical"``), a checkpoint path, or a
            :class:`~mint_rl.models.MintDetector`.
        history: frames of keypoints per observation.
        key: the ``Dict`` entry holding the image (MAGICAL's allocentric ``"allo"`` by default).
        num_keypoints: if given, the detector must have exactly this many keypoints.
        output: ``"box"`` or ``"graph"``.
        device: torch device for the detector.
        orientation: add each keypoint's orientation ``(ox, oy)`` to its row (``F = 5``).
        render_only_observed: when ``env`` is a MAGICAL env observing both views (the default of
            ``magical/<id>``) and no wrapper in between declares its own observation space, switch
            it to render only the view ``key`` (:func:`mint_rl.envs.render_only_observed`): the other
            view's camera pass (~45% of a MAGICAL step) is skipped, the keypoints are the same.

    Raises:
        TypeError: the observation space holds no image.
        ValueError: wrong image dtype/channels, unknown ``output``, K mismatch, unknown name,
            ``history`` not an integer >= 1 (``2.5``, ``"3"`` and ``True`` are refused, not
            truncated). At ``reset``/``step``: an observation without the ``Dict`` key or whose
            image has another dtype or shape than the observation space says.

    Example:
        >>> import gymnasium, mint_rl
        >>> from mint_rl.models import MintDetector, DetectorConfig
        >>> env = gymnasium.make("magical/MoveToCorner-Demo-v0")        # doctest: +SKIP
        >>> env = MintKeypointWrapper(env, detector="magical", history=4)  # doctest: +SKIP
        >>> obs, info = env.reset(seed=0)                              # doctest: +SKIP
        >>> obs.shape                                                  # doctest: +SKIP
        (4, 25, 3)
    """

    def __init__(
        self,
        env: gym.Env,
        detector: Any = "magical",
        history: int = 4,
        key: Optional[str] = "allo",
        num_keypoints: Optional[int] = None,
        output: str = "box",
        device: Union[str, torch.device] = "cpu",
        orientation: bool = False,
        render_only_observed: bool = True,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, detector=detector, history=history, key=key, num_keypoints=num_keypoints, output=output,
            device=str(device), orientation=bool(orientation), render_only_observed=bool(render_only_observed),
        )
        gym.ObservationWrapper.__init__(self, env)
        if output not in OUTPUTS:
            raise ValueError(f"output: expected one of {OUTPUTS}, got {output!r}")
        history = check_history(history)
        image = find_image(env.observation_space, key)
        #: True when the MAGICAL env below was switched to render only the view the wrapper reads
        self.renders_only_observed = False
        if render_only_observed and image.key is not None:
            from mint_rl.envs.magical import render_only_observed as _switch

            self.renders_only_observed = _switch(env, image.key)
            if self.renders_only_observed:
                image = find_image(env.observation_space, key)
        self.detector = load_detector(detector, check_num_keypoints(num_keypoints))
        self.encoder = KeypointEncoder(self.detector, image, device, orientation=orientation)
        self.history = history
        self.output = output
        k, f = self.detector.num_keypoints, self.encoder.num_features
        self._history = KeypointHistory(1, self.history, k, f)
        self._box = keypoint_box(self.history, k, f)
        self._edges = fully_connected_edges(k)
        if output == "box":
            self.observation_space = self._box
        else:
            low, high = keypoint_feature_bounds(f)
            node = spaces.Box(low=np.tile(low, self.history), high=np.tile(high, self.history), dtype=np.float32)
            # gymnasium 0.29's Graph only carries edge_links together with edges, so the edges
            # get a single constant type (Discrete(1)): no edge features, as in the paper.
            self.observation_space = spaces.Graph(node_space=node, edge_space=spaces.Discrete(1))
        self._last_frame: Optional[np.ndarray] = None

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        rows = self._encode(obs)
        self._history.reset(rows)
        return self._emit(), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._history.push(self._encode(obs))
        return self._emit(), reward, terminated, truncated, info

    def observation(self, observation: Any) -> Any:
        """Keypoint observation for one raw observation pushed onto the current history."""
        self._history.push(self._encode(observation))
        return self._emit()

    def render(self) -> Optional[np.ndarray]:
        """The latest frame (at the env's resolution) with the newest keypoints drawn.

        Active keypoints are discs coloured per keypoint id; inactive ones are faint.
        """
        if self._last_frame is None:
            return None
        from mint_rl.viz import draw_keypoints

        rows = self._history.buffer[0, -1]
        return draw_keypoints(self._last_frame, rows[:, :2], rows[:, 2])

    # ------------------------------------------------------------------ helpers

    def _encode(self, obs: Any) -> np.ndarray:
        frames = checked_frames(self.encoder, obs, "observation")
        self._last_frame = frames[0]
        return self.encoder(frames)

    def _emit(self) -> Any:
        box = self._history.get()[0]
        if self.output == "box":
            return box
        nodes = np.ascontiguousarray(box.transpose(1, 0, 2).reshape(box.shape[1], -1))
        edges = np.zeros(len(self._edges), np.int64)
        return spaces.GraphInstance(nodes=nodes, edges=edges, edge_links=self._edges.copy())
