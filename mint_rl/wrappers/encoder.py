"""Image observations -> keypoint observations: the part shared by the single and vector wrappers.

:class:`KeypointEncoder` finds the image inside an observation space (a ``(H, W, 3)`` uint8
image, a channel stack of them, or a ``Dict`` holding one), runs a :class:`MintDetector` on a
batch of such observations in ONE forward pass, and returns ``(N, K, F)`` rows of
``(x, y, status)`` with ``x, y`` normalised to ``[-1, 1]`` (``F = 3``), followed by the keypoint's
orientation ``(ox, oy)`` (:func:`~mint_rl.wrappers.orientation.intensity_centroid`, ``F = 5``)
when asked for.
:class:`KeypointHistory` keeps the last ``history`` of those per environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from gymnasium import spaces

from torch import nn

from mint_rl.detectors import load_detector as load_any_detector
from mint_rl.inference import resize_area
from mint_rl.models import MintDetector
from mint_rl.ops import check_frames
from mint_rl.wrappers.orientation import ORIENTATION_RADIUS, intensity_centroid

DetectorLike = Union[str, "os.PathLike[str]", MintDetector]


def load_detector(detector: Any, num_keypoints: Optional[int] = None) -> nn.Module:
    """A keypoint detector (MINT or a baseline) from an instance, a shipped name or a checkpoint path.

    The checkpoint's ``format`` tag picks the class (:func:`mint_rl.detectors.load_detector`), so
    ``MintKeypointWrapper(env, detector="transporter-clevrer-like")`` works like ``"magical"``.

    Raises:
        ValueError: unknown pretrained name (the message lists the known ones), or a detector
            whose number of keypoints differs from ``num_keypoints``.
        TypeError: anything else.
    """
    return load_any_detector(detector, num_keypoints=num_keypoints)


@dataclass(frozen=True)
class ImageSpec:
    """Where the RGB image is inside an observation.

    Attributes:
        key: ``Dict`` key holding the image, or ``None`` for a plain ``Box``.
        height, width: image size.
        channels: channels of that entry (3, or ``3 * n`` for a stack of ``n`` frames, the
            newest last, as MAGICAL's ``-LoRes4A`` stacks them).
    """

    key: Optional[str]
    height: int
    width: int
    channels: int


def find_image(space: spaces.Space, key: Optional[str] = "allo") -> ImageSpec:
    """The :class:`ImageSpec` of an observation space.

    Args:
        space: a ``Box`` of shape ``(H, W, 3k)`` uint8, or a ``Dict`` with such an entry.
        key: which ``Dict`` entry; when the space is a ``Dict`` without ``key`` and holds exactly
            one image entry, that one is used.

    Raises:
        TypeError: the space holds no image (the message names the space).
        ValueError: the image has a wrong dtype or channel count, or ``key`` is ambiguous/missing.
    """

    def is_image_box(s: spaces.Space) -> bool:
        return isinstance(s, spaces.Box) and len(s.shape) == 3

    def check_box(s: spaces.Box, where: str) -> tuple[int, int, int]:
        h, w, c = s.shape
        if s.dtype != np.uint8:
            raise ValueError(f"{where}: expected a uint8 image, got dtype {s.dtype}")
        if c % 3 != 0 or c == 0:
            raise ValueError(f"{where}: expected (H, W, 3) RGB or a stack (H, W, 3n), got shape {s.shape}")
        return h, w, c

    if isinstance(space, spaces.Dict):
        images = [k for k, s in space.spaces.items() if is_image_box(s)]
        if not images:
            raise TypeError(f"observation space holds no image: {space}")
        if key is None or key not in space.spaces:
            if len(images) == 1 and key not in space.spaces:
                key = images[0]
            else:
                raise ValueError(f"image key {key!r} not in the observation Dict; expected one of {images}")
        if not is_image_box(space.spaces[key]):
            raise TypeError(f"observation entry {key!r} is not an image: {space.spaces[key]}")
        h, w, c = check_box(space.spaces[key], f"observation[{key!r}]")
        return ImageSpec(key, h, w, c)
    if is_image_box(space):
        h, w, c = check_box(space, "observation")
        return ImageSpec(None, h, w, c)
    raise TypeError(f"observation space holds no image (expected a (H, W, 3) uint8 Box or a Dict with one), got {space}")


class KeypointEncoder:
    """Batched image -> ``(x, y, status[, ox, oy])`` keypoints with a frozen detector.

    The keypoints come from the detector's inference path (:meth:`MintDetector.for_inference`:
    BatchNorm folded, channels-last, no feature maps; the same keypoints as ``forward`` within
    1e-5, about 3x faster on the project's CPU), built once here: a snapshot of the weights, so
    build a new encoder after changing them. ``fast=False`` (or setting :attr:`inference` to
    ``None``) runs ``detector.forward`` instead.

    Args:
        detector: the :class:`MintDetector` (put in eval mode, its parameters frozen
            (``requires_grad=False``), moved to ``device``).
        image: where the image is in the observation (:func:`find_image`).
        device: torch device for inference.
        chunk_size: frames per detector call. ``None`` (default): the whole batch on CUDA,
            one frame at a time on CPU, where the 96x96 detector's activations stop fitting in
            cache when batched: on this project's 2-core machine, per frame, one call of 8
            frames took 1.37x as long as 8 calls of one with the inference path on one thread
            (the same on two threads; ``scripts/benchmark_wrapper.py --compare``).
        orientation: also return each keypoint's intensity-centroid orientation ``(ox, oy)``.
        orientation_radius: radius of its disc, in pixels of the detector's input.
        fast: use the inference path (default) rather than ``detector.forward``.
    """

    def __init__(
        self,
        detector: MintDetector,
        image: ImageSpec,
        device: Union[str, torch.device] = "cpu",
        chunk_size: Optional[int] = None,
        orientation: bool = False,
        orientation_radius: float = ORIENTATION_RADIUS,
        fast: bool = True,
    ) -> None:
        self.device = torch.device(device)
        if not orientation_radius >= 1:
            raise ValueError(f"orientation_radius: expected >= 1 pixel, got {orientation_radius}")
        self.orientation = bool(orientation)
        self.orientation_radius = float(orientation_radius)
        #: Features per keypoint and frame: 3 (x, y, status), or 5 with the orientation.
        self.num_features = 5 if self.orientation else 3
        if chunk_size is not None and int(chunk_size) < 1:
            raise ValueError(f"chunk_size: expected None or >= 1, got {chunk_size}")
        self.chunk_size = int(chunk_size) if chunk_size is not None else (None if self.device.type == "cuda" else 1)
        self.detector = detector.to(self.device).eval()
        for p in self.detector.parameters():
            p.requires_grad_(False)
        self.image = image
        self.size = tuple(detector.config.image_size)
        self.num_keypoints = detector.num_keypoints
        self.fast = bool(fast)
        #: the detector's inference path (``None`` with ``fast=False``)
        self.inference = None
        if self.fast:
            try:
                self.inference = self.detector.for_inference()
            except TypeError as e:
                raise TypeError(f"{e}; KeypointEncoder(fast=False) runs detector.forward instead") from None

    def detect(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, C, H, W)`` frames on the 0..255 scale -> keypoints ``(N, K, 2)`` and status ``(N, K)``."""
        out = self.inference(frames) if self.inference is not None else self.detector(frames)
        return out.keypoints, out.status

    def frames(self, observations: Any, batched: bool) -> np.ndarray:
        """The newest RGB frame(s) of observation(s): ``(N, H, W, 3)`` uint8 (``N = 1`` if not batched)."""
        x = observations[self.image.key] if self.image.key is not None else observations
        x = np.asarray(x)
        want = (self.image.height, self.image.width, self.image.channels)
        shape = tuple(x.shape[1:] if batched else x.shape)
        if shape != want or x.dtype != np.uint8:
            raise ValueError(f"image observation: expected uint8 {want}, got {x.dtype} {shape}")
        if not batched:
            x = x[None]
        return x[..., -3:]

    def resize(self, frames: np.ndarray) -> np.ndarray:
        """Resize ``(N, H, W, 3)`` frames to the detector's input size (area down, bilinear up):
        :func:`mint_rl.inference.resize_area`, one pass for integer factors such as MAGICAL's
        384x384 renders to 96x96."""
        return resize_area(frames, self.size)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """``(N, H, W, C)`` frames (any size) -> ``(N, K, F)`` float32 ``(x, y, status[, ox, oy])``.

        Frames are uint8, or floating point on the same 0..255 scale.

        Raises:
            ValueError: not ``(N, H, W, C)`` with the detector's ``C``; another dtype; NaN or inf.

        Warns:
            UserWarning: float frames that look like ``[0, 1]`` (:func:`mint_rl.ops.check_frames`).
        """
        frames = np.asarray(frames)
        channels = self.detector.config.in_channels
        if frames.ndim != 4 or frames.shape[-1] != channels:
            raise ValueError(f"KeypointEncoder: expected frames of shape (N, H, W, {channels}), got {frames.shape}")
        if frames.dtype != np.uint8:
            if not np.issubdtype(frames.dtype, np.floating):
                raise ValueError(f"KeypointEncoder: expected uint8 or float frames (0..255 scale), got {frames.dtype}")
            check_frames(torch.from_numpy(frames), "KeypointEncoder")
            frames = frames.astype(np.float32, copy=False)
        frames = self.resize(frames)
        rows = np.empty((len(frames), self.num_keypoints, self.num_features), np.float32)
        with torch.inference_mode():
            # (N, H, W, C) permuted to (N, C, H, W) is channels-last memory: what the inference path wants
            x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 3, 1, 2)
            step = self.chunk_size or len(x)
            for i in range(0, len(x), step):
                # the rows are filled as numpy arrays: a frame's few torch glue ops cost as much
                # as its resize on the project's CPU
                chunk, out = x[i : i + step], rows[i : i + step]
                keypoints, status = self.detect(chunk)
                out[..., :2] = keypoints.cpu().numpy()
                out[..., 2] = status.cpu().numpy()
                if self.orientation:
                    keypoints = keypoints.clamp(-1.0, 1.0)
                    out[..., 3:] = intensity_centroid(chunk, keypoints, self.orientation_radius).cpu().numpy()
        return np.clip(rows, -1.0, 1.0, out=rows)

    def encode(self, observations: Any, batched: bool) -> np.ndarray:
        """Observation(s) -> ``(N, K, F)`` keypoints."""
        return self(self.frames(observations, batched))


def keypoint_feature_bounds(num_features: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature ``(low, high)`` of a keypoint row: x, y in [-1, 1], status in [0, 1], the
    orientation ``ox, oy`` (``num_features=5``) in [-1, 1]."""
    if num_features not in (3, 5):
        raise ValueError(f"num_features: expected 3 (x, y, status) or 5 (with ox, oy), got {num_features}")
    low = np.array([-1.0, -1.0, 0.0, -1.0, -1.0][:num_features], np.float32)
    return low, np.ones(num_features, np.float32)


def keypoint_box(history: int, num_keypoints: int, num_features: int = 3) -> spaces.Box:
    """The ``(history, K, F)`` float32 Box of ``(x, y, status[, ox, oy])`` rows (:func:`keypoint_feature_bounds`)."""
    low, high = keypoint_feature_bounds(num_features)
    shape = (history, num_keypoints, num_features)
    return spaces.Box(low=np.broadcast_to(low, shape).copy(), high=np.broadcast_to(high, shape).copy(), dtype=np.float32)


def fully_connected_edges(num_nodes: int) -> np.ndarray:
    """``(K (K - 1), 2)`` int64 directed edges ``(i, j)``, ``i != j``, row-major.

    Example:
        >>> fully_connected_edges(3).tolist()
        [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]
    """
    i, j = np.meshgrid(np.arange(num_nodes), np.arange(num_nodes), indexing="ij")
    keep = i != j
    return np.stack([i[keep], j[keep]], axis=1).astype(np.int64)


class KeypointHistory:
    """The last ``history`` keypoint rows of ``num_envs`` environments, oldest first.

    Example:
        >>> h = KeypointHistory(num_envs=2, history=3, num_keypoints=1)
        >>> h.reset(np.array([[[0.1, 0.2, 1.0]], [[0.5, 0.5, 0.0]]], np.float32))
        >>> h.push(np.array([[[0.3, 0.4, 1.0]], [[0.6, 0.6, 1.0]]], np.float32))
        >>> h.get()[0, :, 0, 0].tolist()  # env 0, x over time, oldest first
        [0.10000000149011612, 0.10000000149011612, 0.30000001192092896]
    """

    def __init__(self, num_envs: int, history: int, num_keypoints: int, num_features: int = 3) -> None:
        if history < 1:
            raise ValueError(f"history: expected >= 1, got {history}")
        self.buffer = np.zeros((num_envs, history, num_keypoints, num_features), np.float32)

    def reset(self, rows: np.ndarray, envs: Optional[Sequence[int]] = None) -> None:
        """Fill the whole history of ``envs`` (default all) with ``rows`` ``(len(envs), K, F)``."""
        idx = slice(None) if envs is None else np.asarray(envs)
        self.buffer[idx] = rows[:, None]

    def push(self, rows: np.ndarray) -> None:
        """Append one ``(num_envs, K, F)`` row per env, dropping the oldest."""
        self.buffer[:, :-1] = self.buffer[:, 1:]
        self.buffer[:, -1] = rows

    def peek_with(self, env: int, rows: np.ndarray) -> np.ndarray:
        """The history of ``env`` as it would be after pushing ``rows`` ``(K, F)`` (no change)."""
        return np.concatenate([self.buffer[env, 1:], rows[None]], axis=0)

    def get(self) -> np.ndarray:
        """A copy of the ``(num_envs, history, K, F)`` buffer."""
        return self.buffer.copy()
