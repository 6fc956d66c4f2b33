"""The MINT keypoint detector (Sec. 2.2, Appendix A.1-A.2) and its configuration.

``MintDetector`` is the paper's hourglass CNN: three convolutions (kernels 5, 3, 3) and three
transposed convolutions (kernels 3, 3, 3), each followed by LeakyReLU(0.01) and BatchNorm,
then Softplus, giving one positive feature map per keypoint. Keypoints are the spatial
soft-argmax of the maps, in the package's one convention (:mod:`mint_rl.coords`): ``(x, y)``
normalised to ``[-1, 1]`` with ``align_corners=True`` semantics **on the feature-map grid**
(``x = -1`` is the centre of the leftmost column of the ``h x w`` map, which spans the same
field of view as the input image). The status is ``sigmoid(1000 (max f_k - gamma))``.

For C=3 input channels and K=25 keypoints the network has 58,725 parameters, as in the paper.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

import torch
from torch import nn

from mint_rl._config import ConfigMixin
from mint_rl.ops import active_status, check_frames, normalize_frames, spatial_soft_argmax

if TYPE_CHECKING:
    from mint_rl.inference import InferenceDetector

__all__ = [
    "DetectorConfig",
    "DETECTOR_PRESETS",
    "detector_preset",
    "DetectorOutput",
    "MintDetector",
    "conv_transpose2d_by_phases",
    "PhaseConvTranspose2d",
    "CHECKPOINT_FORMAT",
    "SMALL_IMAGE_WIDTH",
]

CHECKPOINT_FORMAT = "mint_rl.MintDetector"
#: inputs narrower than this use the small-image strides (the authors' rule for 96x96 MAGICAL)
SMALL_IMAGE_WIDTH = 100
_LARGE_STRIDES = ((3, 2, 2), (1, 2, 2))
_SMALL_STRIDES = ((3, 2, 1), (2, 2, 2))
_CONV_KERNELS = (5, 3, 3)
_CONV_PADDING = 1
_DECONV_KERNELS = (3, 3, 3)


def _conv_out(n: int, kernel: int, stride: int, padding: int) -> int:
    return (n + 2 * padding - kernel) // stride + 1


def _deconv_out(n: int, kernel: int, stride: int) -> int:
    return (n - 1) * stride + kernel


def conv_transpose2d_by_phases(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None, stride: int | tuple[int, int] = 1
) -> torch.Tensor:
    r"""``torch.nn.functional.conv_transpose2d`` (no padding) as ``stride**2`` ordinary convolutions.

    A transposed convolution with stride :math:`s` and kernel :math:`k` writes output row
    :math:`o = s m + p` (phase :math:`0 \le p < s`) from the kernel taps :math:`k_a = p + s a`
    only: :math:`y[s m + p] = \sum_a x[m - a]\, w[p + s a]`. Each phase is thus a plain
    correlation of ``x`` with its flipped taps, padded by ``taps - 1`` on both sides, and the
    phases interleave into the output. Same result (up to float rounding), none of the
    multiplications by the zeros a transposed convolution inserts, and ordinary convolution
    kernels instead of transposed ones: the MINT detector's forward on 25 frames runs 1.45x
    faster on a 2-core AVX2 CPU (``scripts/benchmark_wrapper.py --deconv --num-envs 25``);
    with gradients it is no faster than torch's kernel (0.94x and 1.07x in two runs).

    Args:
        x: ``(B, C_in, H, W)``.
        weight: ``(C_in, C_out, kH, kW)``, ``ConvTranspose2d``'s layout.
        bias: ``(C_out,)`` or ``None``.
        stride: ``s`` or ``(s_h, s_w)``.

    Returns:
        ``(B, C_out, s_h (H - 1) + kH, s_w (W - 1) + kW)``.

    Example:
        >>> x, w = torch.randn(2, 4, 5, 5), torch.randn(4, 3, 3, 3)
        >>> y = conv_transpose2d_by_phases(x, w, stride=2)
        >>> y.shape, torch.allclose(y, torch.nn.functional.conv_transpose2d(x, w, stride=2), atol=1e-5)
        (torch.Size([2, 3, 11, 11]), True)
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"expected x of shape (B, C_in, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    if weight.dim() != 4 or weight.shape[0] != x.shape[1]:
        raise ValueError(f"expected weight of shape ({x.shape[1]}, C_out, kH, kW), got {tuple(weight.shape)}")
    if bias is not None and bias.shape != (weight.shape[1],):
        raise ValueError(f"expected bias of shape ({weight.shape[1]},), got {tuple(bias.shape)}")
    s_h, s_w = (stride, stride) if isinstance(stride, int) else tuple(stride)
    if s_h < 1 or s_w < 1:
        raise ValueError(f"expected positive strides, got {(s_h, s_w)}")
    batch, _, height, width = x.shape
    k_h, k_w = weight.shape[-2:]
    out = x.new_empty(batch, weight.shape[1], s_h * (height - 1) + k_h, s_w * (width - 1) + k_w)
    for p_h in range(s_h):
        for p_w in range(s_w):
            taps = weight[:, :, p_h::s_h, p_w::s_w]
            target = out[:, :, p_h::s_h, p_w::s_w]
            if taps.shape[-1] == 0 or taps.shape[-2] == 0:  # a kernel smaller than the stride
                target.copy_((bias if bias is not None else x.new_zeros(1)).view(1, -1, 1, 1).expand_as(target))
                continue
            kernel = taps.flip(-2, -1).transpose(0, 1)
            pad = (taps.shape[-2] - 1, taps.shape[-1] - 1)
            target.copy_(nn.functional.conv2d(x, kernel, bias, padding=pad))
    return out


class PhaseConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` computed by :func:`conv_transpose2d_by_phases` when no gradient is recorded.

    Under ``torch.no_grad()`` / ``torch.inference_mode()`` (the keypoint wrappers, evaluation)
    it uses the phases, which are faster there; with gradients enabled (training) it uses
    torch's own kernel, as fast for forward + backward and bit-for-bit what detector training
    did before. Both compute the same function.
    Same parameters and ``state_dict`` keys as ``nn.ConvTranspose2d``, so checkpoints load in
    either; only ``padding=0``, ``output_padding=0``, ``dilation=1``, ``groups=1`` (the MINT
    detector's decoder) are supported.

    Example:
        >>> layer = PhaseConvTranspose2d(4, 3, 3, stride=2)
        >>> layer(torch.zeros(1, 4, 8, 8)).shape
        torch.Size([1, 3, 17, 17])
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        unsupported = {name: getattr(self, name) for name, ok in (
            ("padding", (0, 0)), ("output_padding", (0, 0)), ("dilation", (1, 1)), ("groups", 1))
            if getattr(self, name) != ok}
        if unsupported or self.padding_mode != "zeros":
            raise ValueError(f"PhaseConvTranspose2d supports padding=0, output_padding=0, dilation=1, groups=1 "
                             f"and padding_mode='zeros' only, got {unsupported or self.padding_mode}")

    def forward(self, input: torch.Tensor, output_size: Optional[list[int]] = None) -> torch.Tensor:
        if output_size is not None:
            raise ValueError("PhaseConvTranspose2d: output_size is not supported (its output size is fixed)")
        if torch.is_grad_enabled():
            return super().forward(input)
        return conv_transpose2d_by_phases(input, self.weight, self.bias, self.stride)


def receptive_field_centres(
    n: int, conv_strides: tuple[int, ...], deconv_strides: tuple[int, ...]
) -> tuple[int, float, float]:
    """Length ``m`` of the raw feature-map axis for an input axis of ``n`` pixels, and the affine map
    ``pixel = a * index + b`` from a map index to the input pixel at the centre of its receptive field.

    A convolution (kernel ``k``, stride ``s``, padding ``p``) centres output ``o`` on input
    ``s*o - p + (k-1)/2``; a transposed convolution (padding 0) centres output ``o`` on input
    ``(o - (k-1)/2) / s``. Composing the six layers gives ``(a, b)``.

    Raises:
        ValueError: ``n`` is too small for the convolutions (an output length below 1).

    Example:
        >>> receptive_field_centres(160, (3, 2, 2), (1, 2, 2))   # map pixel o sits on image pixel 3o - 20
        (67, 3.0, -20.0)
    """
    a, b = 1.0, 0.0  # pixel = a * index + b, for the index of the layer reached so far
    m = n
    for k, s in zip(_CONV_KERNELS, conv_strides):
        m = _conv_out(m, k, s, _CONV_PADDING)
        if m < 1:
            raise ValueError(f"an input of {n} pixels is too small for conv strides {tuple(conv_strides)}")
        b = a * (-_CONV_PADDING + (k - 1) / 2) + b
        a = a * s
    for k, s in zip(_DECONV_KERNELS, deconv_strides):
        m = _deconv_out(m, k, s)
        b = b - a * (k - 1) / 2 / s
        a = a / s
    return m, a, b


def image_crop(n: int, conv_strides: tuple[int, ...], deconv_strides: tuple[int, ...]) -> tuple[int, int]:
    """``(start, stop)`` of the raw feature-map indices whose receptive-field centres lie inside
    ``[0, n - 1]``: the part of the map that is aligned with the input image (see
    :attr:`DetectorConfig.crop_to_image`).

    Example:
        >>> image_crop(160, (3, 2, 2), (1, 2, 2))    # indices 7..59 sit on pixels 1..157
        (7, 60)
    """
    m, a, b = receptive_field_centres(n, conv_strides, deconv_strides)
    start = max(0, math.ceil(-b / a - 1e-9))
    stop = min(m, math.floor((n - 1 - b) / a + 1e-9) + 1)
    if stop - start < 2:
        return 0, m
    return start, stop


def _as_int_tuple(value: Any, length: int, name: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise ValueError(f"DetectorConfig.{name}: expected {length} integers, got {value!r}") from None
    if len(out) != length or any(v < 1 for v in out):
        raise ValueError(f"DetectorConfig.{name}: expected {length} positive integers, got {value!r}")
    return out


@dataclass
class DetectorConfig(ConfigMixin):
    """Hyperparameters of :class:`MintDetector` (defaults: the paper's CLEVRER setting).

    Attributes:
        in_channels: input channels ``C``.
        num_keypoints: ``K``.
        image_size: ``(height, width)`` the detector is meant for (320x480 for CLEVRER). The
            network is fully convolutional and accepts other sizes; this value fixes the feature
            map size used by the losses and is checked when loading a checkpoint.
        conv_strides: strides of the three convolutions (paper: 3, 2, 2).
        deconv_strides: strides of the three transposed convolutions (paper: 1, 2, 2). For
            inputs narrower than 100 px the authors use conv (3, 2, 1) / deconv (2, 2, 2), which
            maps 96x96 to 135x135; :meth:`for_image` applies that rule.
        gamma: activation threshold on a feature map's peak.
        status_sharpness: slope of the status sigmoid (authors: 1000).
        status_surrogate: slope of the sigmoid whose gradient the status uses in the backward
            pass (straight-through; see :func:`mint_rl.ops.active_status`), or ``None`` for
            the plain steep sigmoid of the paper, whose gradient vanishes once a keypoint is off.
        leaky_slope: negative slope of the LeakyReLUs.
        crop_to_image: crop the decoder output to the map pixels whose receptive fields are
            centred inside the image (:func:`image_crop`). The soft-argmax and the losses treat
            the map's corners as the image's corners; the paper's uncropped maps break that: on
            a 160x96 input the 67-pixel-wide map's natural stride is 3 image pixels, not 160/67,
            so a keypoint that follows an object moves only 0.8 times as far as the object and
            lands up to ~16 px off it near the borders. Cropped, the maps are 53x32 there (160x107
            at 480x320, 127x127 at 96x96) and the residual misalignment is below one map pixel.
            ``False`` is the paper's geometry (and what checkpoints without this field used).
    """

    in_channels: int = 3
    num_keypoints: int = 25
    image_size: tuple[int, int] = (320, 480)
    conv_strides: tuple[int, int, int] = _LARGE_STRIDES[0]
    deconv_strides: tuple[int, int, int] = _LARGE_STRIDES[1]
    gamma: float = 15.0
    status_sharpness: float = 1000.0
    status_surrogate: Optional[float] = None
    leaky_slope: float = 0.01
    crop_to_image: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DetectorConfig":
        """Like :meth:`ConfigMixin.from_dict`; a config saved before ``crop_to_image`` existed means ``False``."""
        if isinstance(data, dict) and "crop_to_image" not in data:
            data = {**data, "crop_to_image": False}
        return super().from_dict(data)

    def __post_init__(self) -> None:
        if int(self.in_channels) < 1:
            raise ValueError(f"DetectorConfig.in_channels: expected >= 1, got {self.in_channels}")
        if int(self.num_keypoints) < 1:
            raise ValueError(f"DetectorConfig.num_keypoints: expected >= 1, got {self.num_keypoints}")
        self.in_channels = int(self.in_channels)
        self.num_keypoints = int(self.num_keypoints)
        self.image_size = _as_int_tuple(self.image_size, 2, "image_size")  # type: ignore[assignment]
        self.conv_strides = _as_int_tuple(self.conv_strides, 3, "conv_strides")  # type: ignore[assignment]
        self.deconv_strides = _as_int_tuple(self.deconv_strides, 3, "deconv_strides")  # type: ignore[assignment]
        if not self.status_sharpness > 0:
            raise ValueError(f"DetectorConfig.status_sharpness: expected > 0, got {self.status_sharpness}")
        self.gamma = float(self.gamma)
        self.status_sharpness = float(self.status_sharpness)
        if self.status_surrogate is not None:
            if not float(self.status_surrogate) > 0:
                raise ValueError(f"DetectorConfig.status_surrogate: expected None or > 0, got {self.status_surrogate}")
            self.status_surrogate = float(self.status_surrogate)
        self.leaky_slope = float(self.leaky_slope)
        self.crop_to_image = bool(self.crop_to_image)
        self.map_size_for(*self.image_size)  # raises for images too small for the strides

    @classmethod
    def for_image(cls, height: int, width: int, **kwargs: Any) -> "DetectorConfig":
        """Config for ``height x width`` inputs with the authors' stride rule (width < 100: small strides).

        Example:
            >>> DetectorConfig.for_image(96, 96).feature_map_size
            (127, 127)
            >>> DetectorConfig.for_image(96, 160).feature_map_size
            (32, 53)
            >>> DetectorConfig.for_image(96, 96, crop_to_image=False).feature_map_size
            (135, 135)
        """
        conv, deconv = _SMALL_STRIDES if width < SMALL_IMAGE_WIDTH else _LARGE_STRIDES
        kwargs.setdefault("conv_strides", conv)
        kwargs.setdefault("deconv_strides", deconv)
        return cls(image_size=(height, width), **kwargs)

    def map_size_for(self, height: int, width: int) -> tuple[int, int]:
        """Feature-map ``(h, w)`` produced for a ``height x width`` input.

        Example:
            >>> DetectorConfig().map_size_for(320, 480)
            (107, 160)
            >>> DetectorConfig(crop_to_image=False).map_size_for(320, 480)
            (119, 171)
        """
        return tuple(stop - start for start, stop in self.map_crop_for(height, width))  # type: ignore[return-value]

    def map_crop_for(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((y0, y1), (x0, x1))``: the slice of the raw decoder output kept for a ``height x width`` input.

        Example:
            >>> DetectorConfig.for_image(96, 160).map_crop_for(96, 160)
            ((7, 39), (7, 60))
        """
        out = []
        for n, axis in ((height, "height"), (width, "width")):
            try:
                if self.crop_to_image:
                    out.append(image_crop(n, self.conv_strides, self.deconv_strides))
                else:
                    out.append((0, receptive_field_centres(n, self.conv_strides, self.deconv_strides)[0]))
            except ValueError:
                raise ValueError(
                    f"DetectorConfig: image {axis} too small for conv strides {self.conv_strides} "
                    f"(got {height}x{width})"
                ) from None
        return out[0], out[1]

    @property
    def feature_map_size(self) -> tuple[int, int]:
        """Feature-map ``(h, w)`` for :attr:`image_size`."""
        return self.map_size_for(*self.image_size)


#: Named presets from the authors' run scripts (NOTES.md / paper Appendix E.2).
DETECTOR_PRESETS: dict[str, DetectorConfig] = {
    "clevrer": DetectorConfig(in_channels=3, num_keypoints=25, image_size=(320, 480), gamma=15.0),
    "magical": DetectorConfig.for_image(96, 96, in_channels=3, num_keypoints=25, gamma=10.0),
}


def detector_preset(name: str, **overrides: Any) -> DetectorConfig:
    """A fresh copy of a named :data:`DETECTOR_PRESETS` entry, with optional field overrides.

    Example:
        >>> detector_preset("magical").feature_map_size
        (127, 127)
        >>> detector_preset("clevrer", num_keypoints=10).num_keypoints
        10
    """
    if name not in DETECTOR_PRESETS:
        raise ValueError(f"unknown detector preset {name!r}; expected one of {sorted(DETECTOR_PRESETS)}")
    return dataclasses.replace(DETECTOR_PRESETS[name], **overrides)


class DetectorOutput(NamedTuple):
    """What :class:`MintDetector` returns (leading dims ``(B,)`` or ``(B, T)`` like the input).

    Attributes:
        keypoints: ``(..., K, 2)`` normalised ``(x, y)`` in ``[-1, 1]`` on the feature-map grid.
        status: ``(..., K)`` soft activation status in ``[0, 1]``.
        feature_maps: ``(..., K, h, w)`` positive feature maps.
    """

    keypoints: torch.Tensor
    status: torch.Tensor
    feature_maps: torch.Tensor

    @property
    def active(self) -> torch.Tensor:
        """``(..., K)`` bool: hard activation ``status > 0.5``."""
        return self.status > 0.5


class MintDetector(nn.Module):
    """The MINT hourglass keypoint detector ``Phi(I_t)`` (Sec. 2.2, Appendix A.1).

    Layers (C input channels, K keypoints): conv k5 (C->K), k3 (K->K), k3 (K->2K) with padding
    1; transposed conv k3 (2K->2K), k3 (2K->K), k3 (K->K); each followed by LeakyReLU(0.01)
    and BatchNorm2d; Softplus on the output. Xavier-normal initialisation, zero biases.

    Input: ``(B, C, H, W)`` or ``(B, T, C, H, W)`` frames, uint8 or float on the 0..255 scale
    (normalised to ``[-0.5, 0.5]`` inside; float frames with NaN or inf raise ``ValueError``,
    float frames that look like ``[0, 1]`` warn, see :func:`mint_rl.ops.check_frames`).

    For a frozen detector, :meth:`for_inference` gives the same keypoints and status about 3x
    faster on a CPU (2.9-3.1x measured at batch 1, one thread; what the keypoint wrappers use).

    Example:
        >>> model = MintDetector(DetectorConfig.for_image(96, 96, num_keypoints=4))
        >>> out = model(torch.zeros(2, 3, 3, 96, 96, dtype=torch.uint8))
        >>> out.keypoints.shape, out.status.shape, out.feature_maps.shape
        (torch.Size([2, 3, 4, 2]), torch.Size([2, 3, 4]), torch.Size([2, 3, 4, 127, 127]))
    """

    def __init__(self, config: DetectorConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        config = DetectorConfig() if config is None else config
        if not isinstance(config, DetectorConfig):
            raise TypeError(f"MintDetector: expected a DetectorConfig, got {type(config).__name__}")
        if overrides:
            config = config.replace(**overrides)
        self.config = config
        c, k = config.in_channels, config.num_keypoints
        slope = config.leaky_slope
        enc_channels = [(c, k), (k, k), (k, 2 * k)]
        dec_channels = [(2 * k, 2 * k), (2 * k, k), (k, k)]
        enc: list[nn.Module] = []
        for (ci, co), ks, s in zip(enc_channels, _CONV_KERNELS, config.conv_strides):
            enc += [nn.Conv2d(ci, co, ks, stride=s, padding=_CONV_PADDING), nn.LeakyReLU(slope), nn.BatchNorm2d(co)]
        dec: list[nn.Module] = []
        for (ci, co), ks, s in zip(dec_channels, _DECONV_KERNELS, config.deconv_strides):
            dec += [PhaseConvTranspose2d(ci, co, ks, stride=s), nn.LeakyReLU(slope), nn.BatchNorm2d(co)]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.softplus = nn.Softplus()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal weights and zero biases for all (transposed) convolutions; BatchNorm reset."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()

    @property
    def num_keypoints(self) -> int:
        return self.config.num_keypoints

    def feature_maps(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` frames on 0..255 -> ``(B, K, h, w)`` positive feature maps."""
        # computed first: a clear error for images too small for the strides
        (y0, y1), (x0, x1) = self.config.map_crop_for(frames.shape[-2], frames.shape[-1])
        x = normalize_frames(frames)
        maps = self.decoder(self.encoder(x))[..., y0:y1, x0:x1]  # the whole map unless crop_to_image
        return self.softplus(maps)

    def forward(self, frames: torch.Tensor) -> DetectorOutput:
        """Detect keypoints in ``(B, C, H, W)`` or ``(B, T, C, H, W)`` frames (0..255 scale)."""
        if not isinstance(frames, torch.Tensor):
            raise TypeError(f"MintDetector: expected a torch.Tensor, got {type(frames).__name__}")
        if frames.ndim not in (4, 5) or frames.shape[-3] != self.config.in_channels:
            raise ValueError(
                f"MintDetector: expected frames of shape (B, {self.config.in_channels}, H, W) or "
                f"(B, T, {self.config.in_channels}, H, W), got {tuple(frames.shape)}"
            )
        check_frames(frames, "MintDetector")
        lead = frames.shape[:-3]
        maps = self.feature_maps(frames.reshape(-1, *frames.shape[-3:]))
        maps = maps.reshape(*lead, *maps.shape[1:])
        keypoints = spatial_soft_argmax(maps)
        status = active_status(maps, self.config.gamma, self.config.status_sharpness, self.config.status_surrogate)
        return DetectorOutput(keypoints, status, maps)

    def for_inference(self) -> "InferenceDetector":
        """A fast, frozen copy computing this detector's keypoints and status (not its feature maps).

        BatchNorm and the input normalisation folded into the convolutions, the transposed
        convolutions as one phase-stacked convolution each, channels-last memory, soft-argmax
        and status in one pass over the last layer (:mod:`mint_rl.inference`). Same keypoints
        as ``forward`` within float rounding (1e-5 on real frames), about 3x faster on the
        project's 2-core CPU at batch 1, one thread (2.9-3.1x measured). A snapshot: build a new
        one after changing the weights.

        Raises:
            ValueError: the detector is in training mode or its parameters require gradients
                (call ``detector.eval().requires_grad_(False)`` first).

        Example:
            >>> model = MintDetector(DetectorConfig.for_image(96, 96, num_keypoints=4)).eval().requires_grad_(False)
            >>> out = model.for_inference()(torch.zeros(2, 3, 96, 96, dtype=torch.uint8))
            >>> out.keypoints.shape, out.status.shape
            (torch.Size([2, 4, 2]), torch.Size([2, 4]))
        """
        from mint_rl.inference import InferenceDetector

        return InferenceDetector(self)

    # ---------------------------------------------------------------------------------------
    # checkpoints
    # ---------------------------------------------------------------------------------------

    def save_pretrained(self, path: str | os.PathLike, *, extra: dict | None = None) -> Path:
        """Save weights (safetensors) and config (JSON) to ``path``; see :mod:`mint_rl.checkpoint`.

        ``path`` ending in ``.safetensors`` writes one file (config in its metadata); any other
        path is a directory receiving ``model.safetensors`` and ``config.json``. Atomic.
        """
        from mint_rl.checkpoint import save_checkpoint

        return save_checkpoint(path, self.state_dict(), format=CHECKPOINT_FORMAT, config=self.config.to_dict(), extra=extra)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        num_keypoints: int | None = None,
        in_channels: int | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> "MintDetector":
        """Load a detector by shipped name (see :mod:`mint_rl.pretrained`) or from a checkpoint path.

        The model is returned in eval mode on the CPU. ``num_keypoints``, ``in_channels`` and
        ``image_size`` (``(height, width)``), when given, must match the checkpoint.

        Raises:
            ValueError: unknown shipped name (lists the known ones), or a checkpoint whose K,
                channels or image size differ from the requested ones
                (:class:`mint_rl.checkpoint.CheckpointError`, a ``ValueError``), or a corrupt,
                truncated or foreign file (same class).
            FileNotFoundError: the path does not exist, or a known name's weights are not shipped.
        """
        from mint_rl import pretrained
        from mint_rl.checkpoint import CheckpointError, load_checkpoint

        if isinstance(name_or_path, str) and name_or_path in pretrained.PRETRAINED:
            path = pretrained.resolve(name_or_path)
        else:
            text = os.fspath(name_or_path)
            looks_like_path = (
                not isinstance(name_or_path, str)
                or os.sep in text
                or "/" in text
                or text.endswith((".safetensors", ".json"))
                or os.path.exists(text)
            )
            if not looks_like_path:
                pretrained.resolve(text)  # raises ValueError listing the known names
            path = Path(text)
        ckpt = load_checkpoint(path, format=CHECKPOINT_FORMAT)
        try:
            config = DetectorConfig.from_dict(ckpt.config)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: invalid detector config in checkpoint ({e})") from None
        requested = {"num_keypoints": num_keypoints, "in_channels": in_channels}
        for key, want in requested.items():
            if want is not None and int(want) != getattr(config, key):
                raise CheckpointError(
                    f"{path}: checkpoint has {key}={getattr(config, key)} but {key}={want} was requested"
                )
        if image_size is not None and tuple(int(v) for v in image_size) != tuple(config.image_size):
            raise CheckpointError(
                f"{path}: checkpoint was trained for image_size (height, width)={tuple(config.image_size)} "
                f"but image_size={tuple(image_size)} was requested"
            )
        model = cls(config)
        expected = model.state_dict()
        got = ckpt.state_dict
        missing = sorted(set(expected) - set(got))
        unexpected = sorted(set(got) - set(expected))
        if missing or unexpected:
            raise CheckpointError(
                f"{path}: weights do not match the config (missing {missing[:5]}, unexpected {unexpected[:5]})"
            )
        for key, tensor in expected.items():
            if tuple(got[key].shape) != tuple(tensor.shape):
                raise CheckpointError(
                    f"{path}: tensor {key!r} has shape {tuple(got[key].shape)}, expected {tuple(tensor.shape)} "
                    f"for the config in the checkpoint"
                )
        model.load_state_dict(got, strict=True)
        return model.eval()
