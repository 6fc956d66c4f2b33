"""Local image entropy: the entropy layer of MINT (paper Sec. 2.1, Eq. 1; Appendix B, Eqs. 11-16).

Every pixel gets the Shannon entropy (nats) of the intensity histogram of the ``R x R`` patch
around it, all three colour channels pooled (``n = 3 R^2`` samples; 27 for the paper's R = 3).
The result is zero on the border of width ``R // 2`` (valid patches only, then padded), like
the published layer. Values lie in ``[0, ln n]`` (``ln 27 = 3.2958`` for R = 3).

Two histogram estimators, chosen automatically:

* **Hard path** (integer-valued samples, ``bandwidth <= HARD_BANDWIDTH_MAX``): the exact
  histogram of the ``n`` integers, ``H = -sum_v (c_v/n) ln(c_v/n + 1e-8)``. After
  :func:`preprocess` the samples are always integers, so this is what the layer runs in
  training. It equals the published 256-bin sigmoid-KDE formula (bin width ``L = 1/256``,
  ``B = 0.001``, normalised by ``dmax``) to well below ``1e-5``. (Both paths clamp at 0: the
  ``1e-8`` inside the logarithm would make a single-valued patch ``-1e-8``.)
* **Soft-KDE path** (non-integer float input with ``preprocess=False``, or a large bandwidth):
  unit-width bins centred on the integers 0..255; a sample ``v`` puts
  ``sigmoid((b + 0.5 - v)/h) - sigmoid((b - 0.5 - v)/h)`` into bin ``b`` (a logistic kernel of
  scale ``h = bandwidth``, **in intensity units on the 0..255 scale**), the end bins are open
  (bin 0 takes everything below 0.5, bin 255 everything above 254.5), so each sample's mass
  sums to exactly one. The published kernel instead uses bins of width ``L = 1/256`` around
  each integer, so a non-integer sample falls between bins and its mass is silently lost; for
  integer samples and small ``h`` both definitions agree.

Dispatch: CUDA tensors run the CUDA kernels of the compiled extension ``mint_rl._C``, CPU
tensors its C++/OpenMP kernels (both share one header of per-pixel functions,
``csrc/entropy_kernels.h``); the pure-torch implementation (:func:`local_entropy_torch`) is
used only when the extension is missing (with one warning) or for other device types.

The entropy is a function of the images only: no autograd graph is built through it (it runs
under ``torch.no_grad()`` and returns a tensor that does not require grad).
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mint_rl._ext import load_extension

__all__ = [
    "HARD_BANDWIDTH_MAX",
    "MAX_REGION_SIZE",
    "EntropyLayer",
    "local_entropy",
    "local_entropy_torch",
    "preprocess",
    "published_local_entropy",
    "soft_histogram",
]

#: Largest bandwidth (intensity units) for which integer samples use the hard histogram: the
#: logistic kernel then leaks less than 1e-8 of a sample's mass into the neighbouring bins.
HARD_BANDWIDTH_MAX = 0.025

#: Largest supported region size (the CUDA kernels keep a per-thread count buffer in shared
#: memory sized for it).
MAX_REGION_SIZE = 31

_NUM_BINS = 256
_LOG_EPS = 1e-8


# ----------------------------------------------------------------------------- validation


def _check_region_and_bandwidth(region_size: int, bandwidth: float) -> None:
    if isinstance(region_size, bool) or not isinstance(region_size, int):
        raise ValueError(f"region_size: expected an odd int, got {type(region_size).__name__}")
    if region_size < 1 or region_size % 2 == 0 or region_size > MAX_REGION_SIZE:
        raise ValueError(
            f"region_size: expected an odd integer in [1, {MAX_REGION_SIZE}], got {region_size}"
        )
    if not isinstance(bandwidth, (int, float)) or isinstance(bandwidth, bool):
        raise ValueError(f"bandwidth: expected a positive float, got {type(bandwidth).__name__}")
    if not math.isfinite(bandwidth) or bandwidth <= 0:
        raise ValueError(f"bandwidth: expected a finite value > 0 (intensity units), got {bandwidth}")


def _check_frames(frames: Tensor, min_size: int = 1) -> None:
    """Shape, dtype and value checks shared by every public function (ValueError on failure)."""
    if not isinstance(frames, Tensor):
        raise ValueError(f"frames: expected a torch.Tensor, got {type(frames).__name__}")
    if frames.dim() < 3:
        raise ValueError(f"frames: expected shape (..., 3, H, W) with >= 3 dims, got {tuple(frames.shape)}")
    if frames.shape[-3] != 3:
        raise ValueError(
            f"frames: expected 3 colour channels at dim -3, shape (..., 3, H, W), got {tuple(frames.shape)}"
        )
    if frames.dtype != torch.uint8 and not frames.is_floating_point():
        raise ValueError(f"frames: expected dtype uint8 or a floating dtype (0..255 scale), got {frames.dtype}")
    h, w = frames.shape[-2], frames.shape[-1]
    if h < min_size or w < min_size:
        raise ValueError(f"frames: expected H and W >= {min_size} (the region size), got H={h}, W={w}")
    if frames.is_floating_point() and frames.numel() > 0:
        if not bool(torch.isfinite(frames).all()):
            raise ValueError("frames: expected finite values on the 0..255 scale, got NaN or inf")
        lo, hi = float(frames.min()), float(frames.max())
        if lo < 0.0 or hi > 255.0:
            raise ValueError(f"frames: expected values in [0, 255], got values in [{lo}, {hi}]")


def _flatten(frames: Tensor) -> Tuple[Tensor, Tuple[int, ...]]:
    """(..., 3, H, W) -> contiguous (N, 3, H, W) and the leading shape."""
    lead = tuple(frames.shape[:-3])
    return frames.reshape(-1, *frames.shape[-3:]).contiguous(), lead


# ----------------------------------------------------------------------------- preprocessing


def _preprocess(x: Tensor) -> Tensor:
    x = x.to(torch.float32)
    smooth = torch.round(F.avg_pool2d(x, kernel_size=5, stride=1, padding=2, count_include_pad=True))
    sharp = torch.round(torch.clamp(2.5 * x - 1.25 * smooth, 0.0, 255.0))
    return torch.round(torch.clamp(255.0 * sharp / (smooth + 1e-8), 0.0, 255.0))


def preprocess(frames: Tensor) -> Tensor:
    """Blur, sharpen and divide (Appendix B.1), as the published layer does before the entropy.

    ``smooth = round(avgpool5x5(I))`` (stride 1, zero padding 2, padding counted in the mean),
    ``sharp = round(clamp(2.5 I - 1.25 smooth, 0, 255))``,
    ``div = round(clamp(255 sharp / (smooth + 1e-8), 0, 255))``; computed in float32 with
    ``torch.round`` (half to even), elementwise per channel.

    Args:
        frames: ``(..., 3, H, W)`` uint8 or float on the 0..255 scale.

    Returns:
        ``(..., 3, H, W)`` float32, integer-valued in [0, 255], same device.

    Example:
        >>> x = torch.full((1, 3, 8, 8), 100, dtype=torch.uint8)
        >>> y = preprocess(x)
        >>> y.dtype, y.shape, float(y[0, 0, 4, 4]), float(y[0, 0, 0, 0])
        (torch.float32, torch.Size([1, 3, 8, 8]), 255.0, 255.0)
        >>> float(preprocess(torch.zeros(3, 5, 5)).max())
        0.0
    """
    _check_frames(frames)
    x, lead = _flatten(frames)
    with torch.no_grad():
        out = _preprocess(x)
    return out.reshape(*lead, *out.shape[-3:])


# ----------------------------------------------------------------------------- pure torch


def _pad_border(valid: Tensor, r: int) -> Tensor:
    return F.pad(valid, (r, r, r, r)) if r > 0 else valid


def _patches(x: Tensor, region_size: int) -> Tensor:
    """(N, 3, H, W) -> (N * Ho * Wo, 3 R^2) samples of every valid patch (row-major pixels)."""
    cols = F.unfold(x, kernel_size=region_size)  # (N, 3 R^2, Ho * Wo)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _hard_entropy_torch(x: Tensor, region_size: int, chunk: int = 8192) -> Tensor:
    """Hard-histogram entropy of integer-valued (N, 3, H, W) -> (N, H, W) float32.

    Pairwise equality counts ``c_i = sum_j [v_i == v_j]`` give
    ``-sum_i (1/n) ln(c_i/n + 1e-8)``, the same as the sum over distinct values.
    """
    n_img, _, h, w = x.shape
    r = region_size // 2
    samples = _patches(x.to(torch.float32), region_size)
    n = samples.shape[1]
    out = torch.empty(samples.shape[0], dtype=torch.float64, device=x.device)
    for s in range(0, samples.shape[0], chunk):
        v = samples[s : s + chunk]
        counts = (v[:, :, None] == v[:, None, :]).sum(-1).to(torch.float64)
        out[s : s + chunk] = (-torch.log(counts / n + _LOG_EPS).sum(-1) / n).clamp_min(0.0)
    valid = out.to(torch.float32).reshape(n_img, h - 2 * r, w - 2 * r)
    return _pad_border(valid, r)


def _soft_histogram(samples: Tensor, bandwidth: float) -> Tensor:
    """(P, n) float64 samples -> (P, 256) float64 unit-bin logistic-KDE histogram."""
    inner_edges = torch.arange(_NUM_BINS - 1, dtype=torch.float64, device=samples.device) + 0.5
    cdf = torch.sigmoid((inner_edges - samples[..., None]) / bandwidth)  # (P, n, 255)
    zeros = torch.zeros_like(cdf[..., :1])
    cdf = torch.cat([zeros, cdf, zeros + 1.0], dim=-1)  # open end bins
    return (cdf[..., 1:] - cdf[..., :-1]).mean(dim=-2)


def _soft_entropy_torch(x: Tensor, region_size: int, bandwidth: float, chunk: int = 512) -> Tensor:
    """Soft-KDE entropy of real (N, 3, H, W) -> (N, H, W) float32."""
    n_img, _, h, w = x.shape
    r = region_size // 2
    samples = _patches(x.to(torch.float64), region_size)
    out = torch.empty(samples.shape[0], dtype=torch.float64, device=x.device)
    for s in range(0, samples.shape[0], chunk):
        p = _soft_histogram(samples[s : s + chunk], bandwidth)
        out[s : s + chunk] = (-(p * torch.log(p + _LOG_EPS)).sum(-1)).clamp_min(0.0)
    valid = out.to(torch.float32).reshape(n_img, h - 2 * r, w - 2 * r)
    return _pad_border(valid, r)


def soft_histogram(samples: Tensor, bandwidth: float = 1e-3) -> Tensor:
    """The soft path's 256-bin histogram of a set of samples (Eqs. 13-14 with unit bins).

    Bin ``b`` (centred on intensity ``b``) receives
    ``mean_i [sigmoid((b + 0.5 - v_i)/h) - sigmoid((b - 0.5 - v_i)/h)]`` with ``h = bandwidth``
    in intensity units; bin 0 is open to the left and bin 255 to the right, so every row sums
    to one.

    Args:
        samples: ``(..., n)`` values in [0, 255] (one patch's samples per row).
        bandwidth: logistic kernel scale in intensity units, > 0.

    Returns:
        ``(..., 256)`` float64 probabilities.

    Example:
        >>> p = soft_histogram(torch.tensor([3.0, 3.0, 7.5]), bandwidth=1e-3)
        >>> [round(float(v), 4) for v in p[[3, 7, 8]]], round(float(p.sum()), 6)
        ([0.6667, 0.1667, 0.1667], 1.0)
    """
    if not isinstance(samples, Tensor) or samples.dim() < 1 or samples.shape[-1] < 1:
        raise ValueError(f"samples: expected a tensor of shape (..., n) with n >= 1, got {samples!r:.60}")
    _check_region_and_bandwidth(1, bandwidth)
    v = samples.to(torch.float64)
    if not bool(torch.isfinite(v).all()) or float(v.min()) < 0 or float(v.max()) > 255:
        raise ValueError("samples: expected finite values in [0, 255]")
    lead = v.shape[:-1]
    return _soft_histogram(v.reshape(-1, v.shape[-1]), float(bandwidth)).reshape(*lead, _NUM_BINS)


# ----------------------------------------------------------------------------- dispatch


def _kernel_input(x: Tensor, apply_preprocess: bool, bandwidth: float) -> Tuple[Tensor, bool]:
    """Return the kernel input and whether the hard path applies."""
    if apply_preprocess:
        x = _preprocess(x)
        integer = True
    elif x.dtype == torch.uint8:
        integer = True
    else:
        integer = bool((x == torch.round(x)).all())
    if integer and bandwidth <= HARD_BANDWIDTH_MAX:
        return x.to(torch.uint8), True
    if x.dtype != torch.float64:
        x = x.to(torch.float32)
    return x, False


def _prepare(
    frames: Tensor, region_size: int, bandwidth: float, apply_preprocess: bool
) -> Tuple[Tensor, Tuple[int, ...], bool]:
    _check_region_and_bandwidth(region_size, bandwidth)
    _check_frames(frames, min_size=region_size)
    x, lead = _flatten(frames)
    x, hard = _kernel_input(x, bool(apply_preprocess), float(bandwidth))
    return x, lead, hard


def _entropy_torch(x: Tensor, region_size: int, bandwidth: float, hard: bool) -> Tensor:
    if x.shape[0] == 0:
        return torch.zeros(0, *x.shape[-2:], dtype=torch.float32, device=x.device)
    if hard:
        return _hard_entropy_torch(x, region_size)
    return _soft_entropy_torch(x, region_size, bandwidth)


def local_entropy_torch(
    frames: Tensor, region_size: int = 3, bandwidth: float = 1e-3, preprocess: bool = True
) -> Tensor:
    """Pure-torch local entropy (same contract as :func:`local_entropy`, any device).

    The fallback when the compiled extension is missing, and an independent implementation
    for tests: pairwise-equality counts for the hard path, chunked ``(P, n, 256)`` logistic CDF
    differences for the soft path.

    Example:
        >>> e = local_entropy_torch(torch.zeros(3, 5, 5, dtype=torch.uint8))
        >>> e.shape, float(e.abs().max())
        (torch.Size([5, 5]), 0.0)
    """
    with torch.no_grad():
        x, lead, hard = _prepare(frames, region_size, bandwidth, preprocess)
        out = _entropy_torch(x, region_size, float(bandwidth), hard)
    return out.reshape(*lead, *out.shape[-2:])


def local_entropy(
    frames: Tensor, region_size: int = 3, bandwidth: float = 1e-3, preprocess: bool = True
) -> Tensor:
    """Per-pixel local entropy image ``E(I)`` (Sec. 2.1, Eq. 1; Appendix B, Eqs. 13-16).

    Args:
        frames: ``(..., 3, H, W)`` uint8, or float on the 0..255 scale; any leading batch dims,
            any memory layout (channels-last and non-contiguous inputs are fine).
        region_size: odd patch side ``R`` (paper: 3); the patch holds ``3 R^2`` samples.
        bandwidth: logistic kernel scale ``h`` in intensity units (0..255 scale; paper:
            ``B = 0.001``). Integer-valued samples with ``h <= HARD_BANDWIDTH_MAX`` use the exact
            hard histogram; otherwise the soft-KDE path (unit bins, see the module docstring).
        preprocess: apply :func:`preprocess` (blur / sharpen / divide) first, as the published
            layer does.

    Returns:
        ``(..., H, W)`` float32 entropy in nats, zero on the border of width ``R // 2``, on the
        input's device. No autograd graph: the entropy is a function of the images only.

    Raises:
        ValueError: wrong shape / channel count / dtype, NaN or inf, values outside [0, 255],
            H or W smaller than ``region_size``, a bad ``region_size`` or ``bandwidth``.
        RuntimeError: a CUDA tensor while the extension was built without CUDA kernels (use
            :func:`local_entropy_torch` then, or rebuild on a CUDA machine).

    Example:
        >>> frame = torch.zeros(3, 6, 6, dtype=torch.uint8)
        >>> frame[:, :, 3:] = 200  # a vertical edge
        >>> e = local_entropy(frame, preprocess=False)
        >>> e.shape, round(float(e[2, 1]), 4), round(float(e[2, 2]), 4), float(e[0, 2])
        (torch.Size([6, 6]), 0.0, 0.6365, 0.0)
        >>> round(float(local_entropy(torch.arange(27.0).reshape(3, 3, 3), preprocess=False)[1, 1]), 4)
        3.2958
    """
    with torch.no_grad():
        x, lead, hard = _prepare(frames, region_size, bandwidth, preprocess)
        ext = load_extension() if x.device.type in ("cpu", "cuda") else None
        if ext is None:  # extension missing (warned once), or another device type (e.g. mps)
            out = _entropy_torch(x, region_size, float(bandwidth), hard)
        elif x.is_cuda and not ext.with_cuda():
            raise RuntimeError(
                "local_entropy: got a CUDA tensor, but mint_rl._C was built without CUDA kernels "
                "(rebuild with a CUDA torch and nvcc: `pip install --no-build-isolation --no-deps -e .`), "
                "or call mint_rl.entropy.local_entropy_torch"
            )
        elif hard:
            out = ext.entropy_hard(x, region_size)
        else:
            out = ext.entropy_soft(x, region_size, float(bandwidth))
    return out.reshape(*lead, *out.shape[-2:])


def published_local_entropy(
    frames: Tensor, region_size: int = 3, bandwidth: float = 1e-3, chunk: int = 1024
) -> Tensor:
    """Reference: vectorised torch port of the published formula (Appendix B.2, Eqs. 13-16).

    Bins ``t = 0..255`` of width ``L = 1/256``:
    ``p_t = sum_i [sig((v_i - t + L/2)/B) - sig((v_i - t - L/2)/B)] / (n dmax)``,
    ``dmax = sig(L/2B) - sig(-L/2B)``, entropy ``-sum_t p_t ln(p_t + 1e-8)``; float32, chunked
    over pixels (``chunk x n x 256`` at a time). No preprocessing is applied here (pass
    ``preprocess(frames)`` to reproduce the layer). Slow (256 bins x n samples x 2 sigmoids
    per pixel): for benchmarks and checks only.

    Args:
        frames: ``(N, 3, H, W)`` on the 0..255 scale.

    Returns:
        ``(N, H, W)`` float32, zero border.
    """
    _check_region_and_bandwidth(region_size, bandwidth)
    _check_frames(frames, min_size=region_size)
    if frames.dim() != 4:
        raise ValueError(f"frames: expected (N, 3, H, W), got {tuple(frames.shape)}")
    n_img, _, h, w = frames.shape
    r = region_size // 2
    with torch.no_grad():
        samples = _patches(frames.to(torch.float32).contiguous(), region_size)  # (P, n)
        n = samples.shape[1]
        b = torch.tensor(float(bandwidth), dtype=torch.float32)
        half = torch.tensor(0.5 / _NUM_BINS, dtype=torch.float32)
        dmax = torch.sigmoid(half / b) - torch.sigmoid(-half / b)
        bins = torch.arange(_NUM_BINS, dtype=torch.float32, device=frames.device)
        out = torch.empty(samples.shape[0], dtype=torch.float32, device=frames.device)
        for s in range(0, samples.shape[0], chunk):
            d = samples[s : s + chunk, :, None] - bins  # (P, n, 256)
            hist = (torch.sigmoid((d + half) / b) - torch.sigmoid((d - half) / b)).sum(dim=1)
            p = hist / (n * dmax)
            out[s : s + chunk] = -(p * torch.log(p + _LOG_EPS)).sum(dim=-1)
    return _pad_border(out.reshape(n_img, h - 2 * r, w - 2 * r), r)


class EntropyLayer(nn.Module):
    """Module twin of :func:`local_entropy` (no parameters, no autograd graph).

    Args:
        region_size: odd patch side (paper: 3).
        bandwidth: logistic kernel scale in intensity units (paper: 0.001).
        preprocess: apply the blur / sharpen / divide step first (paper: yes).

    Example:
        >>> layer = EntropyLayer()
        >>> layer
        EntropyLayer(region_size=3, bandwidth=0.001, preprocess=True)
        >>> layer(torch.zeros(2, 3, 8, 8)).shape
        torch.Size([2, 8, 8])
    """

    def __init__(self, region_size: int = 3, bandwidth: float = 1e-3, preprocess: bool = True) -> None:
        super().__init__()
        _check_region_and_bandwidth(region_size, bandwidth)
        self.region_size = region_size
        self.bandwidth = bandwidth
        self.preprocess = preprocess

    def forward(self, frames: Tensor) -> Tensor:
        """``(..., 3, H, W)`` frames -> ``(..., H, W)`` float32 entropy (nats)."""
        return local_entropy(frames, self.region_size, self.bandwidth, self.preprocess)

    def extra_repr(self) -> str:
        return f"region_size={self.region_size}, bandwidth={self.bandwidth}, preprocess={self.preprocess}"
