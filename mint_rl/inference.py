"""The inference path of a frozen MINT detector: the same keypoints as ``forward``, several times faster.

:meth:`mint_rl.models.MintDetector.for_inference` returns an :class:`InferenceDetector`; the
keypoint wrappers use it (through :class:`mint_rl.wrappers.encoder.KeypointEncoder`). It
computes what ``MintDetector.forward`` computes, ``keypoints`` and ``status`` (not the feature
maps), in eval mode and without autograd, rewritten for speed:

1. **Affine steps folded into the next convolution.** The detector is a chain of
   ``linear -> LeakyReLU -> BatchNorm``; the BatchNorm (an affine ``a v + b`` per channel in
   eval mode) comes after the activation, so it folds into the *next* linear layer, like the
   input normalisation ``x / 255 - 0.5`` folds into the first. The scale ``a`` multiplies the
   next layer's weights per input channel; the shift ``b`` becomes a *bias map*, the next layer
   applied to the constant image ``b`` (:func:`fold_affine`). Because the layers zero-pad, the
   bias map is one constant per channel inside and differs only in a rim of rows and columns
   at the border: the constant is the convolution's bias and the rim is added after it, one
   ``index_add_`` (:class:`BiasMap`). Exact for any weights and running statistics (up to float rounding).
2. **Transposed convolutions as one ordinary convolution.** A stride-``s`` transposed
   convolution is ``s * s`` phase convolutions (:func:`mint_rl.models.conv_transpose2d_by_phases`);
   here all phases are ONE convolution with ``s * s`` groups of output channels
   (:func:`phase_weight`), then :func:`depth_to_space` interleaves them.
3. **channels-last memory** throughout (an ``(N, H, W, 3)`` frame array permuted to
   ``(N, 3, H, W)`` is already channels-last), LeakyReLU in place.
4. **The last layer is never interleaved, nor its softplus computed.** Its BatchNorm scale
   ``|a|`` goes into its weights (LeakyReLU is positively homogeneous), leaving
   ``y = sign(a) v + b``. The soft-argmax weights of the softplus maps are
   ``exp(softplus(y)) = 1 + exp(y)``, and ``max softplus(y) = softplus(max y)``, so one max
   reduction, one ``exp`` and one weighted sum with the map coordinates of the phase-stacked
   entries (:class:`SoftArgmaxHead`) give every keypoint and status. Entries outside the map
   crop are ``-inf`` after the bias map and drop out.
5. **Fused CPU kernels** (csrc/inference_cpu.cpp, compiled into ``mint_rl._C``): after a hidden
   layer's convolution, one pass adds the rim, applies LeakyReLU and interleaves and crops the
   phases (``rim_lrelu_interleave``); the head reads the last convolution's output once
   (``softargmax_head``: rim, LeakyReLU, sign, max and exp-weighted sums a grid row at a time,
   the max kept online). Without them (:func:`compiled_kernels` is ``None``: no compiler at
   install time, or a CUDA tensor) the same steps run as torch operations, with the same results.

Measured on the project's 2-core AVX-512 Xeon, one thread, one 96x96 frame through the
``magical`` detector, the two paths interleaved (``scripts/benchmark_wrapper.py --compare``):
2.42-2.53 ms instead of 7.14-7.35 ms on the idle machine (2.90-2.94x, three runs), 2.20-2.34
instead of 6.73-7.22 ms while two training jobs kept both cores busy (3.06-3.08x), keypoints
within 2.1e-5 of ``forward`` and the same active/inactive decisions on real MAGICAL and
CLEVRER-like frames (docs/performance.md). The fused kernels took the
head from 0.40 to 0.23 ms and the glue of the two hidden transposed layers from about
0.12 + 0.05 to 0.06 + 0.02 ms (each timed alone, same machine); with the torch steps instead
the path is 2.7-2.9x. What is left is mostly convolution (1.4 of the 2.2 ms): the three phase
convolutions carry zero taps (16 taps per input pixel where a stride-2, 3x3 transposed
convolution has 9; split into exact per-phase convolutions they are no faster, small kernels
running less efficiently) and run near the fp32 peak of one AVX-512 core. Measured and not used: ``torch.compile``
(10 to 50 s to compile, then 2x slower), oneDNN's fused convolution + LeakyReLU (no faster),
bf16 convolutions on AMX (1.3x faster, keypoints off by 0.02), ``torch.jit.trace`` + ``freeze``
(10% faster, deprecated).

An :class:`InferenceDetector` is a snapshot: it copies the weights when it is built. Build a
new one after the detector's weights or BatchNorm statistics change.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mint_rl._ext import load_extension
from mint_rl.ops import check_frames

__all__ = [
    "InferenceDetector",
    "InferenceOutput",
    "BiasMap",
    "area_downsample",
    "resize_area",
    "SoftArgmaxHead",
    "batchnorm_affine",
    "compiled_kernels",
    "depth_to_space",
    "fold_affine",
    "phase_weight",
]

_CHANNELS_LAST = torch.channels_last
#: bias-map entries within this (relative) distance of the interior value count as interior
_RIM_TOLERANCE = 1e-12
#: ``exp(-max y)`` is clamped here: beyond it the soft-argmax weights are uniform to 1e-35
_MAX_UNIFORM_EXPONENT = 80.0


_KERNELS: list = []  # [the ops namespace or None], filled on first use


def compiled_kernels():
    """The fused CPU kernels (``torch.ops.mint_rl_inference``), or ``None`` when ``mint_rl._C`` lacks them.

    They are compiled into the extension from csrc/inference_cpu.cpp. Without them (no compiler
    at install time, or an extension built before they existed) the inference path runs the
    same steps as torch operations: same results, slower.
    """
    if not _KERNELS:
        ops = None
        if load_extension(warn=False) is not None:
            try:
                ops = torch.ops.mint_rl_inference
                ops.softargmax_head  # noqa: B018  (raises when the extension predates the kernel)
            except (AttributeError, RuntimeError):
                ops = None
        _KERNELS.append(ops)
    return _KERNELS[0]


def area_downsample(frames: Tensor, size: Sequence[int]) -> Tensor:
    """uint8 ``(N, H, W, C)`` frames shrunk by integer factors to ``size = (h, w)``: each pixel the
    mean of its ``(H / h) x (W / w)`` block, rounded to uint8 exactly as OpenCV's
    ``cv2.resize(..., interpolation=cv2.INTER_AREA)`` rounds it (half up for 2 x 2 blocks, else
    to nearest even after a float32 multiply by the block's reciprocal).

    The wrappers shrink every rendered frame to the detector's input with it: the fused kernel of
    ``mint_rl._C`` reads the frame once (any strides, e.g. the newest frame of a channel stack);
    without it, cv2 computes the same numbers.

    Raises:
        ValueError: not uint8 ``(N, H, W, C)`` on the CPU, or ``size`` does not divide ``(H, W)``.

    Example:
        >>> frames = torch.arange(16, dtype=torch.uint8).reshape(1, 4, 4, 1)
        >>> area_downsample(frames, (2, 2))[0, ..., 0].tolist()  # means 2.5, 4.5, 10.5, 12.5, half up
        [[3, 5], [11, 13]]
    """
    h, w = (int(v) for v in size)
    if not isinstance(frames, Tensor) or frames.ndim != 4 or frames.dtype != torch.uint8 or frames.device.type != "cpu":
        got = (f"{frames.dtype} {tuple(frames.shape)} on {frames.device}" if isinstance(frames, Tensor)
               else type(frames).__name__)
        raise ValueError(f"area_downsample: expected a uint8 (N, H, W, C) CPU tensor, got {got}")
    height, width = frames.shape[1:3]
    if h < 1 or w < 1 or height % h or width % w:
        raise ValueError(f"area_downsample: expected an output size that divides the {height} x {width} frames, "
                         f"got {h} x {w}")
    ops = compiled_kernels()
    if ops is not None:
        return ops.area_downsample(frames, h, w)
    return torch.from_numpy(_cv2_resize(frames.numpy(), h, w))


def _cv2_resize(frames: np.ndarray, h: int, w: int) -> np.ndarray:
    """``(N, H, W, C)`` frames through ``cv2.resize`` one by one: ``INTER_AREA`` down, ``INTER_LINEAR`` up."""
    import cv2

    interp = cv2.INTER_AREA if frames.shape[1] >= h and frames.shape[2] >= w else cv2.INTER_LINEAR
    return np.stack([cv2.resize(np.ascontiguousarray(f), (w, h), interpolation=interp).reshape(h, w, -1)
                     for f in frames])


def resize_area(frames: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """uint8 frames ``(H, W, C)`` or ``(N, H, W, C)`` resized to ``size = (h, w)`` with OpenCV's
    ``INTER_AREA`` numbers: by :func:`area_downsample` when ``size`` divides the frame (MAGICAL's
    384x384 renders to 96x96), else by ``cv2.resize``. The wrappers and the MAGICAL envs resize
    with it.

    Example:
        >>> resize_area(np.full((8, 8, 3), 7, np.uint8), (2, 2)).shape
        (2, 2, 3)
    """
    h, w = (int(v) for v in size)
    single = frames.ndim == 3
    batch = frames[None] if single else frames
    if batch.ndim != 4:
        raise ValueError(f"resize_area: expected (H, W, C) or (N, H, W, C) frames, got shape {frames.shape}")
    if batch.shape[1:3] == (h, w):
        out = batch
    elif (batch.dtype == np.uint8 and batch.shape[1] % h == 0 and batch.shape[2] % w == 0
          and batch.flags.writeable and min(batch.strides) >= 0):  # what torch.from_numpy takes as is
        out = area_downsample(torch.from_numpy(batch), (h, w)).numpy()
    else:
        out = _cv2_resize(batch, h, w)
    return out[0] if single else out


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def batchnorm_affine(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """An eval-mode ``BatchNorm2d`` as ``(scale, shift)``: ``bn(x) = scale * x + shift`` per channel (float64).

    Raises:
        ValueError: a BatchNorm without running statistics (it normalises with batch statistics).

    Example:
        >>> bn = nn.BatchNorm2d(2, eps=0.0).eval()
        >>> bn.running_var.fill_(4.0), bn.running_mean.fill_(1.0)
        (tensor([4., 4.]), tensor([1., 1.]))
        >>> [t.tolist() for t in batchnorm_affine(bn)]
        [[0.5, 0.5], [-0.5, -0.5]]
    """
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"{bn}: a BatchNorm without running statistics cannot be folded")
    var, mean = bn.running_var.detach().cpu().double(), bn.running_mean.detach().cpu().double()
    scale = 1.0 / torch.sqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.detach().cpu().double()
    shift = -mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().cpu().double()
    return scale, shift


def phase_weight(weight: Tensor, stride: int | Sequence[int]) -> tuple[Tensor, tuple[int, int]]:
    r"""A transposed convolution's weight as ONE ordinary convolution's, a group of output channels per phase.

    ``conv_transpose2d`` (no padding, stride :math:`s`, kernel :math:`k`) writes output row
    :math:`o = s i + p` (phase :math:`0 \le p < s`) from the taps :math:`p + s a` only:
    :math:`y[s i + p] = \sum_a x[i - a]\, w[p + s a]`, a correlation of ``x`` with the phase's
    flipped taps. With :math:`A = \lceil k / s \rceil` taps per phase (taps past the kernel are
    zero) all phases are one convolution with padding :math:`A - 1`, whose output channel
    ``(p_h * s_w + p_w) * C_out + c`` at grid position ``(i, j)`` is the transposed
    convolution's channel ``c`` at ``(s_h i + p_h, s_w j + p_w)``. :func:`depth_to_space`
    interleaves the phases.

    Args:
        weight: ``(C_in, C_out, k_h, k_w)``, ``ConvTranspose2d``'s layout.
        stride: ``s`` or ``(s_h, s_w)``.

    Returns:
        ``(weight, taps)``: ``(s_h s_w C_out, C_in, A_h, A_w)`` and ``(A_h, A_w)``.

    Example:
        >>> x, w = torch.randn(1, 4, 5, 6), torch.randn(4, 3, 3, 3)
        >>> u, (a_h, a_w) = phase_weight(w, 2)
        >>> y = depth_to_space(F.conv2d(x, u, padding=(a_h - 1, a_w - 1)), 2)[..., :11, :13]
        >>> torch.allclose(y, F.conv_transpose2d(x, w, stride=2), atol=1e-5)
        True
    """
    if weight.dim() != 4:
        raise ValueError(f"phase_weight: expected weight of shape (C_in, C_out, kH, kW), got {tuple(weight.shape)}")
    c_in, c_out, k_h, k_w = weight.shape
    s_h, s_w = _pair(stride)
    if s_h < 1 or s_w < 1:
        raise ValueError(f"phase_weight: expected positive strides, got {(s_h, s_w)}")
    a_h, a_w = -(-k_h // s_h), -(-k_w // s_w)
    w = F.pad(weight, (0, a_w * s_w - k_w, 0, a_h * s_h - k_h))  # taps past the kernel are zero
    w = w.reshape(c_in, c_out, a_h, s_h, a_w, s_w).flip(2, 4)  # tap s*a + p -> [a, p]; a -> A - 1 - a
    w = w.permute(3, 5, 1, 0, 2, 4)  # (p_h, p_w, c_out, c_in, A_h, A_w)
    return w.reshape(s_h * s_w * c_out, c_in, a_h, a_w), (a_h, a_w)


def depth_to_space(x: Tensor, stride: int | Sequence[int], rows: slice = slice(None),
                   cols: slice = slice(None)) -> Tensor:
    """Interleave phase groups: ``(N, s_h s_w C, I, J)`` -> ``(N, C, s_h I, s_w J)``, channels-last.

    Channel ``(p_h * s_w + p_w) * C + c`` at ``(i, j)`` goes to channel ``c`` at
    ``(s_h i + p_h, s_w j + p_w)``: the layout of :func:`phase_weight` (``pixel_shuffle``
    expects the phases innermost instead). One copy; ``rows`` and ``cols`` crop the result
    (a second, smaller copy, so that the result is contiguous).

    Example:
        >>> x = torch.arange(8.0).reshape(1, 4, 1, 2)   # phases (0,0), (0,1), (1,0), (1,1) of C = 1
        >>> depth_to_space(x, 2)[0, 0]
        tensor([[0., 2., 1., 3.],
                [4., 6., 5., 7.]])
        >>> depth_to_space(x, 2, slice(1, 2), slice(1, 4))[0, 0]
        tensor([[6., 5., 7.]])
    """
    s_h, s_w = _pair(stride)
    n, channels, i, j = x.shape
    if channels % (s_h * s_w):
        raise ValueError(f"depth_to_space: expected a multiple of {s_h * s_w} channels, got {channels}")
    c = channels // (s_h * s_w)
    phases = x.permute(0, 2, 3, 1).reshape(n, i, j, s_h, s_w, c)
    out = x.new_empty(n, i, s_h, j, s_w, c)
    out.copy_(phases.permute(0, 1, 3, 2, 4, 5))
    out = out.view(n, i * s_h, j * s_w, c).permute(0, 3, 1, 2)  # (N, C, H, W), channels-last
    for crop, size in ((rows, i * s_h), (cols, j * s_w)):
        start, stop, step = crop.indices(size)
        if step != 1 or stop <= start or crop.start is not None and not 0 <= crop.start <= size \
                or crop.stop is not None and not 0 <= crop.stop <= size:
            raise ValueError(f"depth_to_space: crop {rows}, {cols} outside the {i * s_h}x{j * s_w} output")
    return out[..., rows, cols].contiguous(memory_format=_CHANNELS_LAST)


@dataclass(frozen=True)
class BiasMap:
    """A bias map stored as its interior value per channel plus the rim where it differs.

    Add it to a convolution's output by passing :attr:`interior` as the convolution's bias and
    then calling :meth:`add_rim_`, one ``index_add_`` of the few rim pixels instead of a pass
    over the whole map.

    Attributes:
        interior: ``(C,)`` the value inside.
        index: ``(R,)`` the rim: flat positions ``h * W + w`` where the map differs from it.
        delta: ``(1, R, C)`` the map minus :attr:`interior` there (``inf`` allowed).
        size: ``(H, W)``.
    """

    interior: Tensor
    index: Tensor
    delta: Tensor
    size: tuple[int, int]

    @classmethod
    def from_map(cls, bias_map: Tensor) -> "BiasMap":
        """Split a ``(1, C, H, W)`` bias map (float64; ``inf`` entries allowed) into interior and rim.

        The interior value is the map's centre; the rim is every pixel where some channel
        differs from it by more than a relative 1e-12.

        Example:
            >>> m = torch.ones(1, 2, 5, 6, dtype=torch.float64)
            >>> m[..., 0, :] = 3.0
            >>> b = BiasMap.from_map(m)
            >>> b.interior.tolist(), b.index.tolist(), tuple(b.delta.shape)
            ([1.0, 1.0], [0, 1, 2, 3, 4, 5], (1, 6, 2))
        """
        if bias_map.dim() != 4 or bias_map.shape[0] != 1:
            raise ValueError(f"BiasMap: expected a (1, C, H, W) map, got {tuple(bias_map.shape)}")
        c, h, w = bias_map.shape[1:]
        interior = bias_map[0, :, h // 2, w // 2]
        interior = torch.where(torch.isfinite(interior), interior, torch.zeros_like(interior))
        delta = (bias_map[0] - interior.view(-1, 1, 1)).reshape(c, h * w).t()  # (H W, C)
        differs = (delta.abs() > _RIM_TOLERANCE * (1.0 + interior.abs())).any(dim=1)  # True for inf too
        index = differs.nonzero().flatten()
        return cls(interior, index, delta[index].unsqueeze(0).contiguous(), (h, w))

    def to(self, device: torch.device, dtype: torch.dtype) -> "BiasMap":
        return BiasMap(self.interior.to(device, dtype), self.index.to(device), self.delta.to(device, dtype), self.size)

    def add_rim_(self, x: Tensor) -> Tensor:
        """Add the rim to ``x``, the ``(N, C, H, W)`` output of a convolution with :attr:`interior` as its bias.

        In place for a channels-last ``x`` (what the inference path produces); returns the result.
        """
        if self.index.numel():
            n, c = x.shape[:2]
            x = x.contiguous(memory_format=_CHANNELS_LAST)
            delta = self.delta if n == 1 else self.delta.expand(n, -1, -1)
            x.permute(0, 2, 3, 1).view(n, -1, c).index_add_(1, self.index, delta)
        return x

    def dense(self) -> Tensor:
        """The whole ``(1, C, H, W)`` map (for tests)."""
        out = self.interior.view(1, -1, 1, 1).expand(1, -1, *self.size).contiguous(memory_format=_CHANNELS_LAST)
        return self.add_rim_(out)


def fold_affine(weight: Tensor, bias: Optional[Tensor], scale: Tensor, shift: Tensor, size: tuple[int, int],
                stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0) -> tuple[Tensor, BiasMap]:
    """Fold a per-channel affine ``scale * v + shift`` that feeds a zero-padded convolution into it.

    ``conv2d(scale * v + shift, weight, bias)`` (zero padding applied to the affine's output)
    equals ``conv2d(v, weight * scale, bias=None) + conv2d(shift * 1, weight, bias)``: the
    weights scaled per input channel, and a bias map, the layer applied to the constant image
    ``shift`` of ``v``'s ``size``, which carries the effect of the padding near the border.

    Args:
        weight: ``(C_out, C_in, kh, kw)``; bias: ``(C_out,)`` or ``None``.
        scale, shift: ``(C_in,)``.
        size: ``(H, W)`` of ``v``.
        stride, padding: the convolution's.

    Returns:
        ``(folded weight, bias map)`` in float64, the map ``(1, C_out, H_out, W_out)``
        (:meth:`BiasMap.from_map` stores it compactly).

    Example:
        >>> w, b, a, s = torch.randn(3, 2, 3, 3), torch.randn(3), torch.rand(2) + 0.5, torch.randn(2)
        >>> v = torch.randn(1, 2, 7, 8)
        >>> folded, bias_map = fold_affine(w, b, a, s, (7, 8), padding=1)
        >>> ref = F.conv2d(a.view(1, -1, 1, 1) * v + s.view(1, -1, 1, 1), w, b, padding=1)
        >>> torch.allclose(F.conv2d(v.double(), folded, padding=1) + bias_map, ref.double(), atol=1e-5)
        True
    """
    w = weight.detach().double()
    b = None if bias is None else bias.detach().double()
    scale, shift = scale.detach().double().to(w.device), shift.detach().double().to(w.device)
    if scale.shape != (w.shape[1],) or shift.shape != (w.shape[1],):
        raise ValueError(f"fold_affine: expected scale and shift of shape ({w.shape[1]},), "
                         f"got {tuple(scale.shape)} and {tuple(shift.shape)}")
    constant = shift.view(1, -1, 1, 1).expand(1, -1, *size)
    bias_map = F.conv2d(constant, w, b, stride=_pair(stride), padding=_pair(padding))
    return w * scale.view(1, -1, 1, 1), bias_map


# --------------------------------------------------------------------------------------------
# The last layer: soft-argmax and status in one pass
# --------------------------------------------------------------------------------------------


class InferenceOutput(NamedTuple):
    """What :class:`InferenceDetector` returns (leading dims ``(B,)`` or ``(B, T)`` like the input).

    Attributes:
        keypoints: ``(..., K, 2)`` normalised ``(x, y)``, as :attr:`mint_rl.models.DetectorOutput.keypoints`.
        status: ``(..., K)`` soft activation status, as :attr:`mint_rl.models.DetectorOutput.status`.
    """

    keypoints: Tensor
    status: Tensor

    @property
    def active(self) -> Tensor:
        """``(..., K)`` bool: hard activation ``status > 0.5``."""
        return self.status > 0.5


@dataclass(frozen=True)
class SoftArgmaxHead:
    """Keypoints and status from the last layer's phase-stacked convolution output, without softplus maps.

    The last layer's output is ``v = lrelu(conv + rim)`` (the convolution with its bias map's
    interior as bias, then the bias map's rim, :class:`BiasMap`). The feature maps are
    ``f = softplus(y)`` with ``y = sign * v + shift`` (the last BatchNorm, its scale already in
    the weights). Softmax weights of ``f`` are ``exp(f) = 1 + exp(y)``, ``exp(y - Y) + exp(-Y)``
    after dividing by ``exp(Y)``, ``Y = max y``; and the peak of ``f`` is ``softplus(Y)``. So:
    one max reduction, one ``exp`` and one product with the map coordinates of the entries give
    the status and the expected coordinates. Entries outside the map crop are ``-sign * inf`` in
    the rim, so ``y = -inf`` there and they drop out of the max and the sums.

    Two implementations of the same steps: the compiled kernel ``softargmax_head``
    (csrc/inference_cpu.cpp: one pass over ``v``, the max kept per grid row and the sums
    rescaled when it grows) for CPU tensors when ``mint_rl._C`` has it, else :meth:`torch_steps`.

    Attributes:
        coords: ``(3, M)`` for the ``M = I * J * P * Q`` entries of the phase-stacked output in
            memory order: ``[1, x, y]`` of the map pixel each one is, zero where it is outside the map.
        totals: ``(3, 1)`` ``coords`` summed: pixels in the map, sum of their x, sum of their y.
        row_in, row_y: ``(I, P Q K)`` per grid row and channel ``(p * Q + q) * K + k``: 1 where the
            map row ``s_h i + p`` is inside the map, and that row's y (0 outside).
        col_in, col_x: ``(J, P Q K)`` the same per grid column: inside, and x. ``coords`` of entry
            ``(i, j, p, q)`` is ``[row_in col_in, row_in col_x, row_y col_in]``.
        sign: ``(K,)`` of the last BatchNorm's scale.
        shift: ``(1, 1, K)`` the last BatchNorm's shift.
        flip: whether any sign is negative.
    """

    coords: Tensor
    totals: Tensor
    row_in: Tensor
    row_y: Tensor
    col_in: Tensor
    col_x: Tensor
    sign: Tensor
    shift: Tensor
    gamma: float
    sharpness: float
    flip: bool

    def __call__(self, v: Tensor, rim: BiasMap, slope: float) -> tuple[Tensor, Tensor]:
        """Keypoints ``(N, K, 2)`` and status ``(N, K)`` of the last convolution's output ``v``.

        ``v``: ``(N, P Q K, I, J)`` channels-last, the bias map's interior added (the
        convolution's bias), its rim ``rim`` and the LeakyReLU of slope ``slope`` not yet applied.
        May be overwritten.
        """
        kernels = compiled_kernels()
        if kernels is not None and v.device.type == "cpu":
            return kernels.softargmax_head(
                v.contiguous(memory_format=_CHANNELS_LAST), rim.index, rim.delta, slope, self.sign, self.shift,
                self.row_in, self.row_y, self.col_in, self.col_x, self.totals, self.gamma, self.sharpness)
        return self.torch_steps(v, rim, slope)

    def torch_steps(self, v: Tensor, rim: BiasMap, slope: float) -> tuple[Tensor, Tensor]:
        """What :meth:`__call__` computes, in torch operations (any device; overwrites ``v``)."""
        v = F.leaky_relu_(rim.add_rim_(v), slope)
        n, k = v.shape[0], self.sign.numel()
        grid = v.permute(0, 2, 3, 1).view(n, v.shape[2], -1, k)  # (N, I, J P Q, K): memory order
        if self.flip:
            grid.mul_(self.sign)  # y - shift = sign * v
        # max over the grid rows first: it reduces the outer dim of long contiguous rows, which
        # torch vectorises (one reduction over all entries at once is several times slower)
        peak = grid.amax(dim=1).amax(dim=1, keepdim=True)  # (N, 1, K): max y - shift
        weights = grid.view(n, -1, k).sub_(peak).exp_()  # exp(y - max y), 0 outside the map
        sums = torch.matmul(self.coords, weights)  # (N, 3, K): sum w, sum w x, sum w y
        peak_y = peak.add_(self.shift)  # max y
        # exp(softplus(y)) = 1 + exp(y): the "1" is exp(-max y) in units of the weights
        uniform = torch.clamp(peak_y, min=-_MAX_UNIFORM_EXPONENT).neg_().exp_()
        sums = torch.addcmul(sums, uniform, self.totals)
        keypoints = torch.div(sums[:, 1:], sums[:, :1]).transpose(1, 2)
        status = F.softplus(peak_y.view(n, k)).sub_(self.gamma).mul_(self.sharpness).sigmoid_()
        return keypoints, status


# --------------------------------------------------------------------------------------------
# The folded network
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layer:
    """One folded layer at one input size: [window ->] conv -> rim -> LeakyReLU [-> interleaved phases, cropped]."""

    window: Optional[tuple[slice, slice]]  # rows and columns of the input it reads, None for all
    weight: Tensor
    bias: BiasMap
    stride: tuple[int, int]
    padding: tuple[int, int]
    slope: float
    phases: tuple[int, int]  # (1, 1) for a convolution
    crop: Optional[tuple[slice, slice]]  # of the interleaved output; None: keep the phases stacked (last layer)

    def conv(self, x: Tensor) -> Tensor:
        """[window ->] the convolution, with the bias map's interior as its bias."""
        if self.window is not None:
            x = x[..., self.window[0], self.window[1]].contiguous(memory_format=_CHANNELS_LAST)
        return F.conv2d(x, self.weight, self.bias.interior, self.stride, self.padding)

    def __call__(self, x: Tensor) -> Tensor:
        """A hidden layer: conv -> rim -> LeakyReLU [-> interleaved phases, cropped].

        After the convolution, the compiled kernel ``rim_lrelu_interleave`` (one pass; a plain
        convolution is one phase, uncropped) or the same steps in torch.
        """
        x = self.conv(x)
        kernels = compiled_kernels()
        if kernels is not None and x.device.type == "cpu":
            rows, cols = self.crop or (slice(0, x.shape[2]), slice(0, x.shape[3]))
            return kernels.rim_lrelu_interleave(x.contiguous(memory_format=_CHANNELS_LAST), self.bias.index,
                                                self.bias.delta, self.slope, *self.phases,
                                                rows.start, rows.stop, cols.start, cols.stop)
        x = F.leaky_relu_(self.bias.add_rim_(x), self.slope)
        if self.crop is not None:
            x = depth_to_space(x, self.phases, *self.crop)
        return x


def _phase_window(n: int, stride: int, taps: int, lo: int, hi: int) -> tuple[slice, int, int]:
    """Along one axis: the input window, padding and first grid index for outputs ``[lo, hi)`` of a phase conv.

    Grid index ``i`` holds outputs ``s i + p``; it needs inputs ``i - taps + 1 .. i``. Returns
    ``(input slice, symmetric padding, grid index of the first output row)``.
    """
    i_lo, i_hi = lo // stride, -(-hi // stride)
    m_lo, m_hi = max(0, i_lo - taps + 1), min(n, i_hi)
    pad = max(0, taps - 1 - i_lo, i_hi - n)
    return slice(m_lo, m_hi), pad, m_lo - pad + taps - 1


def _layer_triples(detector: nn.Module) -> list[tuple[nn.Module, float, nn.BatchNorm2d]]:
    """``(linear, LeakyReLU slope, BatchNorm)`` of every layer, checked."""
    modules = list(detector.encoder) + list(detector.decoder)
    if len(modules) % 3:
        raise TypeError(f"for_inference: expected (conv, LeakyReLU, BatchNorm2d) triples, got {len(modules)} modules")
    triples = []
    for i in range(0, len(modules), 3):
        linear, act, bn = modules[i : i + 3]
        if isinstance(linear, nn.ConvTranspose2d):
            ok = (tuple(linear.padding) == (0, 0) and tuple(linear.output_padding) == (0, 0)
                  and tuple(linear.dilation) == (1, 1) and linear.groups == 1)
        elif isinstance(linear, nn.Conv2d):
            ok = tuple(linear.dilation) == (1, 1) and linear.groups == 1 and linear.padding_mode == "zeros" \
                and not isinstance(linear.padding, str)
        else:
            ok = False
        if not ok:
            raise TypeError(f"for_inference: unsupported layer {linear} (expected Conv2d with zero padding or "
                            f"ConvTranspose2d without padding, no dilation or groups)")
        if isinstance(act, nn.LeakyReLU):
            slope = float(act.negative_slope)
        elif isinstance(act, nn.ReLU):
            slope = 0.0
        else:
            raise TypeError(f"for_inference: expected LeakyReLU or ReLU after {linear}, got {act}")
        if not isinstance(bn, nn.BatchNorm2d):
            raise TypeError(f"for_inference: expected BatchNorm2d after {act}, got {bn}")
        triples.append((linear, slope, bn))
    return triples


class InferenceDetector:
    """A frozen :class:`~mint_rl.models.MintDetector` computing keypoints and status fast (no feature maps).

    Built by :meth:`MintDetector.for_inference`; see the module docstring for how. Same
    results as ``detector(frames)`` within float rounding (1e-5 in normalised units on real
    frames), on the detector's device, for any input size (the bias maps and coordinate table
    are built once per size).

    Args:
        detector: a ``MintDetector`` in eval mode whose parameters do not require gradients.

    Raises:
        ValueError: the detector is in training mode or has parameters requiring gradients.
        TypeError: a layer this path cannot fold.

    Example:
        >>> from mint_rl.models import MintDetector, DetectorConfig
        >>> model = MintDetector(DetectorConfig.for_image(48, 48, num_keypoints=4)).eval().requires_grad_(False)
        >>> fast = model.for_inference()
        >>> frames = torch.randint(0, 256, (2, 3, 48, 48), dtype=torch.uint8)
        >>> out, ref = fast(frames), model(frames)
        >>> out.keypoints.shape, bool((out.keypoints - ref.keypoints).abs().max() < 1e-4)
        (torch.Size([2, 4, 2]), True)
    """

    def __init__(self, detector: nn.Module) -> None:
        if detector.training:
            raise ValueError("for_inference: the detector is in training mode; call detector.eval() first "
                             "(the inference path folds the BatchNorm running statistics)")
        if any(p.requires_grad for p in detector.parameters()):
            raise ValueError("for_inference: the detector's parameters require gradients; call "
                             "detector.requires_grad_(False) first (the inference path is a snapshot without autograd)")
        softplus = detector.softplus
        if not isinstance(softplus, nn.Softplus) or softplus.beta != 1:
            raise TypeError(f"for_inference: expected Softplus(beta=1) on the output, got {softplus}")
        self.config = detector.config
        self._triples = [(_snapshot(linear), slope, bn_affine)
                         for (linear, slope, bn), bn_affine in
                         ((t, batchnorm_affine(t[2])) for t in _layer_triples(detector))]
        self.device = next(detector.parameters()).device
        self.num_keypoints = int(self.config.num_keypoints)
        self._plans: dict[tuple[int, int], tuple[list[_Layer], SoftArgmaxHead]] = {}

    def __repr__(self) -> str:
        return (f"InferenceDetector(num_keypoints={self.num_keypoints}, image_size={tuple(self.config.image_size)}, "
                f"device={self.device})")

    # ------------------------------------------------------------------ plan for one input size

    @torch.no_grad()
    def _plan(self, height: int, width: int) -> tuple[list[_Layer], SoftArgmaxHead]:
        """The folded layers and the head for ``height x width`` inputs (built once, float64 then float32)."""
        key = (height, width)
        if key in self._plans:
            return self._plans[key]
        crop = self.config.map_crop_for(height, width)  # raises for images too small for the strides
        channels = self.config.in_channels
        scale = torch.full((channels,), 1.0 / 255.0, dtype=torch.float64)  # x / 255 - 0.5
        shift = torch.full((channels,), -0.5, dtype=torch.float64)
        size = (height, width)
        layers: list[_Layer] = []
        head: Optional[SoftArgmaxHead] = None
        for index, (linear, slope, (bn_scale, bn_shift)) in enumerate(self._triples):
            last = index == len(self._triples) - 1
            if linear["transposed"]:
                phases, stride = linear["stride"], (1, 1)
                weight, taps = phase_weight(linear["weight"], phases)
                bias = linear["bias"].repeat(phases[0] * phases[1])
                out = tuple(s * (n - 1) + k for s, n, k in zip(phases, size, linear["kernel"]))
                targets = crop if last else ((0, out[0]), (0, out[1]))
                # read only the input rows/columns that the target outputs need (the map crop, for the last)
                (rows, pad_h, first_h), (cols, pad_w, first_w) = (
                    _phase_window(n, s, a, lo, hi) for n, s, a, (lo, hi) in zip(size, phases, taps, targets))
                padding, first = (pad_h, pad_w), (first_h, first_w)
            else:
                phases, first = (1, 1), (0, 0)
                weight, bias, stride, padding = linear["weight"], linear["bias"], linear["stride"], linear["padding"]
                out = tuple((n + 2 * p - k) // s + 1 for n, p, k, s in zip(size, padding, linear["kernel"], stride))
                targets = crop if last else ((0, out[0]), (0, out[1]))
                rows, cols = slice(0, size[0]), slice(0, size[1])
            window_size = (rows.stop - rows.start, cols.stop - cols.start)
            weight, bias_map = fold_affine(weight, bias, scale, shift, window_size, stride, padding)
            if last:
                weight, bias_map, head = self._head(weight, bias_map, bn_scale, bn_shift, phases, first, targets)
            # a hidden transposed convolution interleaves its phases, cropped to its output
            interleave = None if last or phases == (1, 1) else tuple(
                slice(lo - s * f, hi - s * f) for (lo, hi), s, f in zip(targets, phases, first))
            window = None if (rows, cols) == (slice(0, size[0]), slice(0, size[1])) else (rows, cols)
            if window is not None and layers and layers[-1].crop is not None:
                # the previous layer interleaves exactly the window: one copy instead of two
                crop_ = tuple(slice(c.start + w.start, c.start + w.stop) for c, w in zip(layers[-1].crop, window))
                layers[-1], window = dataclasses.replace(layers[-1], crop=crop_), None
            layers.append(_Layer(
                window=window,
                weight=weight.to(self.device, torch.float32).contiguous(memory_format=_CHANNELS_LAST),
                bias=BiasMap.from_map(bias_map).to(self.device, torch.float32),
                stride=stride, padding=padding, slope=slope, phases=phases, crop=interleave,
            ))
            scale, shift, size = bn_scale, bn_shift, out
        assert head is not None
        self._plans[key] = (layers, head)
        return layers, head

    def _head(self, weight: Tensor, bias_map: Tensor, bn_scale: Tensor, bn_shift: Tensor, phases: tuple[int, int],
              first: tuple[int, int], targets: tuple[tuple[int, int], ...]) -> tuple[Tensor, Tensor, SoftArgmaxHead]:
        """Fold the last BatchNorm's ``|scale|``, mark the entries outside the map ``-sign * inf``, build the head."""
        groups = phases[0] * phases[1]
        sign = torch.where(bn_scale >= 0, 1.0, -1.0).double()
        channel_scale = bn_scale.abs().repeat(groups)  # lrelu(|a| z) = |a| lrelu(z)
        weight = weight * channel_scale.view(-1, 1, 1, 1)
        grid = bias_map * channel_scale.view(1, -1, 1, 1)
        (y0, y1), (x0, x1) = targets
        i_size, j_size = grid.shape[-2:]
        # map row of grid row i, phase p: s_h (first_h + i) + p; same for columns
        out_rows = phases[0] * (first[0] + torch.arange(i_size))[:, None] + torch.arange(phases[0])[None, :]  # (I, P)
        out_cols = phases[1] * (first[1] + torch.arange(j_size))[:, None] + torch.arange(phases[1])[None, :]  # (J, Q)
        in_rows, in_cols = (out_rows >= y0) & (out_rows < y1), (out_cols >= x0) & (out_cols < x1)
        inside = in_rows[:, None, :, None] & in_cols[None, :, None, :]  # (I, J, P, Q)
        ys = torch.where(in_rows, _linspace_at(out_rows - y0, y1 - y0), 0.0)
        xs = torch.where(in_cols, _linspace_at(out_cols - x0, x1 - x0), 0.0)
        coords = torch.stack([inside.double(), xs[None, :, None, :] * inside, ys[:, None, :, None] * inside])
        k = sign.numel()
        outside = ~inside.permute(2, 3, 0, 1).reshape(groups, 1, i_size, j_size)  # channel order (p, q, k)
        outside = outside.expand(groups, k, i_size, j_size).reshape(1, groups * k, i_size, j_size)
        masked = -sign.repeat(groups).view(1, -1, 1, 1) * math.inf
        grid = torch.where(outside, masked.expand_as(grid), grid)
        # the same tables per grid row / column and channel (p * Q + q) * K + k, for the compiled kernel
        channel_p = torch.arange(phases[0]).repeat_interleave(phases[1] * k)
        channel_q = torch.arange(phases[1]).repeat_interleave(k).repeat(phases[0])
        table = lambda t: t.to(self.device, torch.float32).contiguous()  # noqa: E731
        head = SoftArgmaxHead(
            coords=table(coords.reshape(3, -1)),
            totals=table(coords.reshape(3, -1).sum(1, keepdim=True)),
            row_in=table(in_rows[:, channel_p]), row_y=table(ys[:, channel_p]),
            col_in=table(in_cols[:, channel_q]), col_x=table(xs[:, channel_q]),
            sign=sign.to(self.device, torch.float32),
            shift=bn_shift.view(1, 1, -1).to(self.device, torch.float32),
            gamma=float(self.config.gamma),
            sharpness=float(self.config.status_sharpness),
            flip=bool((sign < 0).any()),
        )
        return weight, grid, head

    # ------------------------------------------------------------------ forward

    @torch.inference_mode()
    def __call__(self, frames: Tensor) -> InferenceOutput:
        """Keypoints and status of ``(B, C, H, W)`` or ``(B, T, C, H, W)`` frames on the 0..255 scale.

        uint8 frames are best passed as a permuted ``(B, H, W, C)`` array (channels-last, no copy).
        """
        if not isinstance(frames, Tensor):
            raise TypeError(f"InferenceDetector: expected a torch.Tensor, got {type(frames).__name__}")
        channels = self.config.in_channels
        if frames.ndim not in (4, 5) or frames.shape[-3] != channels:
            raise ValueError(f"InferenceDetector: expected frames of shape (B, {channels}, H, W) or "
                             f"(B, T, {channels}, H, W), got {tuple(frames.shape)}")
        if frames.dtype != torch.uint8 and not frames.is_floating_point():
            raise ValueError(f"InferenceDetector: expected uint8 or floating-point frames, got {frames.dtype}")
        check_frames(frames, "InferenceDetector")
        lead = frames.shape[:-3]
        x = frames.reshape(-1, *frames.shape[-3:]).to(self.device, torch.float32)
        layers, head = self._plan(x.shape[-2], x.shape[-1])
        x = x.contiguous(memory_format=_CHANNELS_LAST)
        for layer in layers[:-1]:
            x = layer(x)
        last = layers[-1]  # its rim and LeakyReLU are part of the head
        keypoints, status = head(last.conv(x), last.bias, last.slope)
        return InferenceOutput(keypoints.reshape(*lead, *keypoints.shape[1:]), status.reshape(*lead, status.shape[-1]))


def _linspace_at(index: Tensor, length: int) -> Tensor:
    """Entry ``index`` of ``linspace(-1, 1, length)`` (0 for a single pixel), as the soft-argmax grid."""
    if length <= 1:
        return torch.zeros(index.shape, dtype=torch.float64)
    return -1.0 + 2.0 * index.double() / (length - 1)


def _snapshot(linear: nn.Module) -> dict:
    """The parameters and geometry of a (transposed) convolution, detached, float64."""
    return {
        "transposed": isinstance(linear, nn.ConvTranspose2d),
        "weight": linear.weight.detach().cpu().double(),
        "bias": (linear.bias.detach().cpu().double() if linear.bias is not None
                 else torch.zeros(linear.out_channels, dtype=torch.float64)),
        "stride": _pair(linear.stride),
        "padding": _pair(linear.padding),
        "kernel": _pair(linear.kernel_size),
    }
