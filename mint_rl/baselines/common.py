"""Pieces shared by the reconstruction-based keypoint baselines (Transporter, Video Structure).

* frame checks and resizing: both baselines see frames on the 0..255 scale like
  :class:`mint_rl.models.MintDetector` and resize them (bilinear) to their own ``image_size``;
* the geometry of a convolution stack (which input pixel each feature-map pixel is centred on),
  so keypoints found on a small feature map are reported in the package's one convention
  (:mod:`mint_rl.coords`: normalised ``(x, y)`` of the **input image**);
* Gaussian maps in normalised units and the spatial soft-argmax on a ``linspace(-1, 1)`` grid;
* :class:`BaselineDetector`: ``save_pretrained`` / ``from_pretrained`` with a format tag per
  method, so that a checkpoint of one method loaded as another fails with a clear message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mint_rl.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mint_rl.ops import check_frames, normalize_frames

__all__ = [
    "METHOD_FORMATS",
    "check_baseline_frames",
    "resize_to",
    "conv_geometry",
    "map_to_image_affine",
    "normalized_gaussians",
    "soft_argmax_normalized",
    "ConvBlock",
    "BaselineDetector",
]

#: checkpoint ``format`` tag of each keypoint method (MINT's is ``mint_rl.models.CHECKPOINT_FORMAT``)
METHOD_FORMATS: dict[str, str] = {
    "mint": "mint_rl.MintDetector",
    "transporter": "mint_rl.Transporter",
    "transporter-modified": "mint_rl.Transporter",
    "video-structure": "mint_rl.VideoStructure",
}


def check_baseline_frames(frames: object, channels: int, name: str) -> torch.Tensor:
    """Check ``(B, C, H, W)`` / ``(B, T, C, H, W)`` frames on the 0..255 scale; returns them.

    Raises:
        TypeError: not a tensor.
        ValueError: wrong rank or channel count (the message gives expected and got), or
            floating-point frames holding NaN or inf.

    Warns:
        UserWarning: float frames whose largest value is in ``(0, 1]`` (frames divided by 255).

    Example:
        >>> check_baseline_frames(torch.zeros(2, 3, 8, 8), 3, "demo").shape
        torch.Size([2, 3, 8, 8])
        >>> check_baseline_frames(torch.zeros(2, 1, 8, 8), 3, "demo")
        Traceback (most recent call last):
        ...
        ValueError: demo: expected frames of shape (B, 3, H, W) or (B, T, 3, H, W), got (2, 1, 8, 8)
    """
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(frames).__name__}")
    if frames.ndim not in (4, 5) or frames.shape[-3] != channels:
        raise ValueError(
            f"{name}: expected frames of shape (B, {channels}, H, W) or (B, T, {channels}, H, W), got {tuple(frames.shape)}"
        )
    check_frames(frames, name)  # NaN/inf raise; float frames that look like [0, 1] warn
    return frames


def resize_to(images: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of float ``(N, C, H, W)`` images to ``size = (h, w)`` (no-op when equal).

    Example:
        >>> resize_to(torch.zeros(1, 3, 96, 160), (128, 128)).shape
        torch.Size([1, 3, 128, 128])
    """
    h, w = int(size[0]), int(size[1])
    if tuple(images.shape[-2:]) == (h, w):
        return images
    return F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False, antialias=True)


def prepare_frames(frames: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``(N, C, H, W)`` frames on 0..255 -> float in ``[-0.5, 0.5]`` (the baselines' ``x/255 - 0.5``) at ``size``."""
    return resize_to(normalize_frames(frames), size)


def conv_geometry(n: int, layers: Sequence[tuple[int, int, int]]) -> tuple[int, float, float]:
    """Length ``m`` of a feature axis after convolutions ``(kernel, stride, padding)`` of an
    ``n``-pixel axis, and the affine ``pixel = a * index + b`` from an output index to the input
    pixel its receptive field is centred on (a convolution centres output ``o`` on input
    ``s o - p + (k - 1) / 2``).

    Example:
        >>> conv_geometry(128, [(7, 1, 3), (5, 1, 2), (4, 2, 1), (3, 1, 1), (4, 2, 1)])  # Transporter
        (32, 4.0, 1.5)
        >>> conv_geometry(128, [(3, 1, 0)] * 3)  # Transporter-modified: pixel = index + 3
        (122, 1.0, 3.0)
    """
    m, a, b = int(n), 1.0, 0.0
    for k, s, p in layers:
        m = (m + 2 * p - k) // s + 1
        if m < 1:
            raise ValueError(f"conv_geometry: an input of {n} pixels is too small for layers {list(layers)}")
        b = a * (-p + (k - 1) / 2) + b
        a = a * s
    return m, a, b


def map_to_image_affine(n: int, layers: Sequence[tuple[int, int, int]]) -> tuple[float, float]:
    """``(scale, offset)`` with ``x_image = scale * x_map + offset`` in normalised coordinates.

    ``x_map`` is a keypoint on the feature map's ``linspace(-1, 1)`` grid, ``x_image`` the same
    point in normalised coordinates of the ``n``-pixel input axis (:mod:`mint_rl.coords`).

    Example:
        >>> s, o = map_to_image_affine(128, [(7, 1, 3), (5, 1, 2), (4, 2, 1), (3, 1, 1), (4, 2, 1)])
        >>> round(s, 4), round(o, 4)   # map pixel 0 sits on image pixel 1.5, map pixel 31 on 125.5
        (0.9764, 0.0)
    """
    m, a, b = conv_geometry(n, layers)
    if m < 2 or n < 2:
        return 1.0, 0.0
    scale = a * (m - 1) / (n - 1)
    offset = (a * (m - 1) + 2 * b) / (n - 1) - 1.0
    return scale, offset


def _linspace_grid(height: int, width: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    xs = torch.linspace(-1.0, 1.0, width, device=like.device, dtype=like.dtype) * float(width > 1)
    ys = torch.linspace(-1.0, 1.0, height, device=like.device, dtype=like.dtype) * float(height > 1)
    return xs, ys


def normalized_gaussians(keypoints: torch.Tensor, height: int, width: int, std: float) -> torch.Tensor:
    """``exp(-d^2 / (2 std^2))`` around each keypoint on a ``height x width`` ``linspace(-1, 1)`` grid.

    ``d`` and ``std`` are in normalised units (both axes run from -1 to 1), as in Kulkarni et
    al. (2019), whose ``exp(-d^2 inv_std^2)`` is ``std = 1 / (sqrt(2) inv_std)``, and Minderer et
    al. (2019), whose ``std`` is given in grid cells (``std_n = std_cells * 2 / (size - 1)``).

    Args:
        keypoints: ``(..., K, 2)`` normalised ``(x, y)``.

    Returns:
        ``(..., K, height, width)`` in ``(0, 1]``.

    Example:
        >>> g = normalized_gaussians(torch.zeros(1, 2), 5, 5, std=0.5)
        >>> g.shape, g[0, 2, 2].item(), round(g[0, 2, 3].item(), 4)   # one cell = 0.5 units
        (torch.Size([1, 5, 5]), 1.0, 0.6065)
    """
    if not isinstance(keypoints, torch.Tensor) or keypoints.ndim < 2 or keypoints.shape[-1] != 2:
        got = tuple(keypoints.shape) if isinstance(keypoints, torch.Tensor) else type(keypoints).__name__
        raise ValueError(f"normalized_gaussians: expected keypoints of shape (..., K, 2), got {got}")
    if not std > 0:
        raise ValueError(f"normalized_gaussians: expected std > 0, got {std}")
    xs, ys = _linspace_grid(height, width, keypoints)
    gx = torch.exp(-((xs - keypoints[..., 0:1]) ** 2) / (2.0 * std * std))  # (..., K, w)
    gy = torch.exp(-((ys - keypoints[..., 1:2]) ** 2) / (2.0 * std * std))  # (..., K, h)
    return gy[..., :, None] * gx[..., None, :]


def soft_argmax_normalized(maps: torch.Tensor) -> torch.Tensor:
    """Spatial soft-argmax on a ``linspace(-1, 1)`` grid: ``softmax`` over pixels, expected ``(x, y)``.

    Kulkarni et al. (2019), Sec. 3 (the keypoint bottleneck of Jakab et al. 2018).

    Example:
        >>> m = torch.full((1, 1, 3, 3), -50.0); m[0, 0, 0, 2] = 50.0
        >>> soft_argmax_normalized(m)
        tensor([[[ 1., -1.]]])
    """
    h, w = maps.shape[-2:]
    weights = torch.softmax(maps.flatten(-2), dim=-1).reshape(maps.shape)
    xs, ys = _linspace_grid(h, w, maps)
    return torch.stack([(weights.sum(-2) * xs).sum(-1), (weights.sum(-1) * ys).sum(-1)], dim=-1)


class ConvBlock(nn.Sequential):
    """``Conv2d`` (or ``ConvTranspose2d``) -> optional ``BatchNorm2d`` -> ``LeakyReLU``.

    Example:
        >>> ConvBlock(3, 8, 4, stride=2, padding=1)(torch.zeros(1, 3, 16, 16)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0,
                 slope: float = 0.2, batch_norm: bool = True, transposed: bool = False) -> None:
        conv_cls = nn.ConvTranspose2d if transposed else nn.Conv2d
        layers: list[nn.Module] = [conv_cls(c_in, c_out, kernel, stride=stride, padding=padding)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.LeakyReLU(slope))
        super().__init__(*layers)


def _looks_like_path(name_or_path: object) -> bool:
    if not isinstance(name_or_path, str):
        return True
    return (os.sep in name_or_path or "/" in name_or_path or name_or_path.endswith((".safetensors", ".json"))
            or os.path.exists(name_or_path))


def resolve_name_or_path(name_or_path: str | os.PathLike) -> Path:
    """A shipped detector name (:mod:`mint_rl.pretrained`) or a checkpoint path -> the path."""
    from mint_rl import pretrained

    if isinstance(name_or_path, str) and name_or_path in pretrained.known_detector_names():
        return pretrained.resolve_any(name_or_path)
    if not _looks_like_path(name_or_path):
        pretrained.entry(str(name_or_path))  # raises ValueError listing the known names
    return Path(os.fspath(name_or_path))


class BaselineDetector(nn.Module):
    """Base of the baseline keypoint detectors: the detector interface of :class:`MintDetector`.

    Subclasses set :attr:`CHECKPOINT_FORMAT` and :attr:`CONFIG_CLASS`, hold ``self.config``
    (with ``in_channels``, ``num_keypoints``, ``image_size``) and implement ``forward(frames) ->
    DetectorOutput`` (keypoints in the input image's normalised coordinates, status in [0, 1])
    and ``training_loss(frames, generator) -> (loss, terms, reconstruction)``.
    """

    CHECKPOINT_FORMAT: ClassVar[str] = ""
    CONFIG_CLASS: ClassVar[type] = object

    config: Any

    @property
    def num_keypoints(self) -> int:
        return int(self.config.num_keypoints)

    @property
    def method(self) -> str:
        """The method name (``"transporter"``, ``"transporter-modified"``, ``"video-structure"``)."""
        raise NotImplementedError

    #: top-level submodules that :meth:`forward` uses (the keypoint path); the rest (decoder,
    #: feature transport, refiner) only serve the reconstruction loss during training.
    KEYPOINT_MODULES: ClassVar[tuple[str, ...]] = ()

    #: True for a detector loaded from a keypoint-only checkpoint: it detects, but cannot be trained.
    keypoints_only: bool = False

    def keypoint_state_dict(self) -> dict[str, torch.Tensor]:
        """The entries of :meth:`state_dict` that :meth:`forward` reads (``KEYPOINT_MODULES``).

        Example:
            >>> from mint_rl.baselines import VideoStructure, VideoStructureConfig
            >>> vs = VideoStructure(VideoStructureConfig(num_keypoints=2, initial_filters=2, image_size=(16, 16)))
            >>> sorted({k.split(".")[0] for k in vs.keypoint_state_dict()})
            ['encoder', 'heatmap_head']
        """
        return {k: v for k, v in self.state_dict().items() if k.split(".", 1)[0] in self.KEYPOINT_MODULES}

    def save_pretrained(self, path: str | os.PathLike, *, extra: dict | None = None,
                        keypoints_only: bool = False) -> Path:
        """Weights (safetensors) and config (JSON, with ``method``) to ``path``; see :mod:`mint_rl.checkpoint`.

        ``keypoints_only=True`` writes only :meth:`keypoint_state_dict` (and ``"keypoints_only":
        true`` in the checkpoint's ``extra``): a smaller file that detects exactly as the full one
        (:meth:`forward` reads nothing else) but cannot resume training (no decoder / refiner).
        """
        extra = {**(extra or {}), "method": self.method}
        state = self.state_dict()
        if keypoints_only:
            if not self.KEYPOINT_MODULES:
                raise ValueError(f"{type(self).__name__}: no KEYPOINT_MODULES declared, cannot save keypoints only")
            state = self.keypoint_state_dict()
            extra["keypoints_only"] = True
        elif self.keypoints_only:
            raise ValueError(f"{type(self).__name__}.save_pretrained: this detector was loaded from a keypoint-only "
                             "checkpoint and has no trained reconstruction weights; pass keypoints_only=True")
        return save_checkpoint(path, state, format=self.CHECKPOINT_FORMAT, config=self.config.to_dict(), extra=extra)

    def _check_trainable(self, where: str) -> None:
        """Refuse the reconstruction path of a detector loaded from a keypoint-only checkpoint."""
        if self.keypoints_only:
            raise ValueError(
                f"{type(self).__name__}.{where}: this detector was loaded from a keypoint-only checkpoint "
                f"(only {', '.join(self.KEYPOINT_MODULES)}); its reconstruction weights are not in the file, so "
                "it can detect keypoints but not reconstruct or train; train from a full checkpoint "
                "(the trainer's detector.safetensors) instead")

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        num_keypoints: Optional[int] = None,
        in_channels: Optional[int] = None,
        image_size: Optional[tuple[int, int]] = None,
    ) -> "BaselineDetector":
        """Load a shipped name or a checkpoint path of this method (eval mode, CPU).

        Raises:
            CheckpointError: a checkpoint of another method (the message names it and says how to
                load it), a config or weights that do not fit, or a mismatch with the requested
                ``num_keypoints`` / ``in_channels`` / ``image_size``; or a corrupt file.
            FileNotFoundError: no such file.
            ValueError: an unknown shipped name.
        """
        path = resolve_name_or_path(name_or_path)
        ckpt = load_checkpoint(path)
        if ckpt.format != cls.CHECKPOINT_FORMAT:
            methods = sorted(m for m, f in METHOD_FORMATS.items() if f == ckpt.format)
            what = f"a {' / '.join(methods)} detector" if methods else f"not a keypoint detector ({ckpt.format!r})"
            raise CheckpointError(
                f"{path}: expected a checkpoint of format {cls.CHECKPOINT_FORMAT!r} ({cls.__name__}), got "
                f"{ckpt.format!r}: this is {what}; mint_rl.detectors.load_detector loads any method"
            )
        try:
            config = cls.CONFIG_CLASS.from_dict(ckpt.config)  # type: ignore[attr-defined]
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: invalid {cls.__name__} config in checkpoint ({e})") from None
        for key, want in (("num_keypoints", num_keypoints), ("in_channels", in_channels)):
            if want is not None and int(want) != getattr(config, key):
                raise CheckpointError(f"{path}: checkpoint has {key}={getattr(config, key)} but {key}={want} was requested")
        if image_size is not None and tuple(int(v) for v in image_size) != tuple(config.image_size):
            raise CheckpointError(f"{path}: checkpoint was made for image_size (height, width)={tuple(config.image_size)} "
                                  f"but image_size={tuple(image_size)} was requested")
        model = cls(config)
        keypoints_only = bool(ckpt.extra.get("keypoints_only", False))
        expected, got = (model.keypoint_state_dict() if keypoints_only else model.state_dict()), ckpt.state_dict
        missing, unexpected = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        if missing or unexpected:
            what = "keypoint-only checkpoint" if keypoints_only else "config"
            raise CheckpointError(f"{path}: weights do not match the {what} (missing {missing[:5]}, unexpected {unexpected[:5]})")
        for key, tensor in expected.items():
            if tuple(got[key].shape) != tuple(tensor.shape):
                raise CheckpointError(f"{path}: tensor {key!r} has shape {tuple(got[key].shape)}, expected "
                                      f"{tuple(tensor.shape)} for the config in the checkpoint")
        model.load_state_dict(got, strict=not keypoints_only)
        if keypoints_only:
            model.keypoints_only = True
        return model.eval()

    def _check_inference_ready(self) -> None:
        if self.training or any(p.requires_grad for p in self.parameters()):
            raise ValueError(f"{type(self).__name__}.for_inference: expects a frozen detector; call "
                             "detector.eval().requires_grad_(False) first")
