"""Pure tensor operations of MINT: feature maps -> keypoints -> Gaussians -> heatmaps -> masks.

Every function is stateless and differentiable where the paper needs gradients; the
:class:`torch.nn.Module` twins only hold hyperparameters. Coordinates follow
:mod:`mint_rl.coords`: keypoints are ``(..., 2)`` tensors of normalised ``(x, y)`` in
``[-1, 1]`` with ``align_corners=True`` semantics on the **feature-map grid** (``x = -1`` is the
centre of the leftmost column of the ``h x w`` map). Gaussian widths are in feature-map pixels,
as in the authors' code.

Paper references: spatial soft-argmax (Appendix A.2, Eq. 10), Gaussians and thresholded
heatmaps (Appendix A.3), aggregated mask and activation status (Sec. 2.2, 2.2.1).
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "spatial_soft_argmax",
    "SpatialSoftArgmax",
    "pixel_grid",
    "gaussian_maps",
    "threshold_gaussians",
    "keypoint_heatmaps",
    "KeypointHeatmaps",
    "heatmap_area",
    "aggregated_mask",
    "active_status",
    "ActiveStatus",
    "normalize_frames",
    "check_frames",
    "adjust_sharpness",
]


def _check_tensor(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    return x


def _check_min_ndim(x: torch.Tensor, ndim: int, expected: str, name: str) -> None:
    if x.ndim < ndim:
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(x.shape)}")


def _check_positive(value: float, name: str) -> None:
    if not value > 0:
        raise ValueError(f"{name}: expected a positive number, got {value}")


# --------------------------------------------------------------------------------------------
# Feature maps -> keypoints (Appendix A.2)
# --------------------------------------------------------------------------------------------


def spatial_soft_argmax(feature_maps: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Spatial soft-argmax (Levine et al., 2016; the paper's Eq. 10, Appendix A.2).

    Each map ``f`` of size ``h x w`` is flattened and turned into weights
    ``w = exp(f/T - max(f/T)) / sum(exp(f/T - max(f/T)))`` (``T`` the temperature, 1 in the
    paper); the keypoint is the expectation of the coordinate grid under ``w``.

    Args:
        feature_maps: ``(..., h, w)`` real maps (usually ``(B, K, h, w)``), ``h, w >= 1``.
        temperature: softmax temperature ``T > 0``.

    Returns:
        ``(..., 2)`` expected ``(x, y)`` in normalised ``[-1, 1]`` coordinates (align_corners).

    Example:
        >>> f = torch.zeros(1, 1, 5, 9)
        >>> f[0, 0, 4, 0] = 100.0  # bottom-left pixel
        >>> spatial_soft_argmax(f)
        tensor([[[-1.,  1.]]])
    """
    _check_tensor(feature_maps, "spatial_soft_argmax")
    _check_min_ndim(feature_maps, 2, "(..., h, w)", "spatial_soft_argmax")
    _check_positive(temperature, "spatial_soft_argmax: temperature")
    if not feature_maps.is_floating_point():
        raise ValueError(f"spatial_soft_argmax: expected a floating-point tensor, got {feature_maps.dtype}")
    h, w = feature_maps.shape[-2:]
    if h < 1 or w < 1:
        raise ValueError(f"spatial_soft_argmax: expected non-empty maps, got {h}x{w}")
    flat = feature_maps.reshape(*feature_maps.shape[:-2], h * w) / temperature
    # softmax subtracts the max internally (the paper's numerical-stability trick)
    weights = torch.softmax(flat, dim=-1).reshape(feature_maps.shape)
    # linspace(-1, 1, 1) is [-1]; a single row/column is the centre, 0
    xs = torch.linspace(-1.0, 1.0, w, device=feature_maps.device, dtype=feature_maps.dtype) * float(w > 1)
    ys = torch.linspace(-1.0, 1.0, h, device=feature_maps.device, dtype=feature_maps.dtype) * float(h > 1)
    x = (weights.sum(dim=-2) * xs).sum(dim=-1)
    y = (weights.sum(dim=-1) * ys).sum(dim=-1)
    return torch.stack([x, y], dim=-1)


class SpatialSoftArgmax(nn.Module):
    """Module twin of :func:`spatial_soft_argmax`: ``(..., h, w) -> (..., 2)``.

    Example:
        >>> SpatialSoftArgmax()(torch.zeros(2, 3, 4, 4)).shape
        torch.Size([2, 3, 2])
    """

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        _check_positive(temperature, "SpatialSoftArgmax: temperature")
        self.temperature = float(temperature)

    def forward(self, feature_maps: torch.Tensor) -> torch.Tensor:
        return spatial_soft_argmax(feature_maps, self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


# --------------------------------------------------------------------------------------------
# Keypoints -> Gaussians -> heatmaps (Appendix A.3)
# --------------------------------------------------------------------------------------------


def pixel_grid(
    height: int, width: int, *, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``(height, width, 2)`` grid of pixel coordinates ``(u, v)`` (column, row).

    Example:
        >>> pixel_grid(2, 3)[1, 2]
        tensor([2., 1.])
    """
    if height < 1 or width < 1:
        raise ValueError(f"pixel_grid: expected a positive size, got {height}x{width}")
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([u, v], dim=-1)


def gaussian_maps(keypoints: torch.Tensor, height: int, width: int, sigma: float) -> torch.Tensor:
    """Distance-based Gaussians around keypoints (Appendix A.3).

    ``G(u, v) = exp(-d^2 / sigma^2)`` with ``d`` the distance, in pixels of the ``height x width``
    map, between pixel ``(u, v)`` and the keypoint (the authors' form: ``sigma^2``, not
    ``2 sigma^2``).

    Args:
        keypoints: ``(..., K, 2)`` normalised ``(x, y)``.
        height: map height ``h``.
        width: map width ``w``.
        sigma: Gaussian width in map pixels (> 0).

    Returns:
        ``(..., K, h, w)`` values in ``(0, 1]``, 1 at the keypoint.

    Example:
        >>> g = gaussian_maps(torch.tensor([[0.0, 0.0]]), 5, 5, sigma=1.0)
        >>> g[0, 2, 2].item(), round(g[0, 2, 3].item(), 4)
        (1.0, 0.3679)
    """
    _check_tensor(keypoints, "gaussian_maps")
    if keypoints.ndim < 2 or keypoints.shape[-1] != 2:
        raise ValueError(f"gaussian_maps: expected keypoints of shape (..., K, 2), got {tuple(keypoints.shape)}")
    _check_positive(sigma, "gaussian_maps: sigma")
    if height < 1 or width < 1:
        raise ValueError(f"gaussian_maps: expected a positive map size, got {height}x{width}")
    scale = keypoints.new_tensor([(width - 1) / 2.0, (height - 1) / 2.0])
    uv = (keypoints + 1.0) * scale  # (..., K, 2) in pixels
    # separable: exp(-(du^2 + dv^2)/s^2) = exp(-du^2/s^2) * exp(-dv^2/s^2)
    us = torch.arange(width, device=keypoints.device, dtype=keypoints.dtype)
    vs = torch.arange(height, device=keypoints.device, dtype=keypoints.dtype)
    gx = torch.exp(-((us - uv[..., 0:1]) ** 2) / (sigma * sigma))  # (..., K, w)
    gy = torch.exp(-((vs - uv[..., 1:2]) ** 2) / (sigma * sigma))  # (..., K, h)
    return gy[..., :, None] * gx[..., None, :]


def threshold_gaussians(gaussians: torch.Tensor, eta: float, tau: float) -> torch.Tensor:
    """Thresholded, scaled and clamped Gaussians: the heatmaps ``h = clamp(eta * relu(G - tau), 0, 1)``.

    Appendix A.3: the heatmap is 1 around the keypoint and falls to 0 where ``G <= tau``.

    Example:
        >>> threshold_gaussians(torch.tensor([1.0, 0.3, 0.05]), eta=3.5, tau=0.1)
        tensor([1.0000, 0.7000, 0.0000])
    """
    _check_tensor(gaussians, "threshold_gaussians")
    _check_positive(eta, "threshold_gaussians: eta")
    return torch.clamp(eta * F.relu(gaussians - tau), 0.0, 1.0)


def keypoint_heatmaps(
    keypoints: torch.Tensor, height: int, width: int, sigma: float, eta: float, tau: float
) -> torch.Tensor:
    """Heatmaps ``h_k`` of keypoints: :func:`threshold_gaussians` of :func:`gaussian_maps`.

    Args:
        keypoints: ``(..., K, 2)`` normalised ``(x, y)``.

    Returns:
        ``(..., K, height, width)`` in ``[0, 1]``.

    Example:
        >>> h = keypoint_heatmaps(torch.zeros(1, 2), 7, 7, sigma=2.0, eta=3.5, tau=0.1)
        >>> h.shape, h[0, 3, 3].item(), h[0, 0, 0].item()
        (torch.Size([1, 7, 7]), 1.0, 0.0)
    """
    return threshold_gaussians(gaussian_maps(keypoints, height, width, sigma), eta, tau)


class KeypointHeatmaps(nn.Module):
    """Module twin of :func:`keypoint_heatmaps` for a fixed ``(height, width)`` map size.

    Example:
        >>> KeypointHeatmaps((6, 8), sigma=2.0, eta=3.5, tau=0.1)(torch.zeros(3, 4, 2)).shape
        torch.Size([3, 4, 6, 8])
    """

    def __init__(self, size: tuple[int, int], sigma: float, eta: float, tau: float) -> None:
        super().__init__()
        if len(size) != 2:
            raise ValueError(f"KeypointHeatmaps: expected size (height, width), got {size}")
        self.size = (int(size[0]), int(size[1]))
        self.sigma, self.eta, self.tau = float(sigma), float(eta), float(tau)

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        return keypoint_heatmaps(keypoints, self.size[0], self.size[1], self.sigma, self.eta, self.tau)

    def extra_repr(self) -> str:
        return f"size={self.size}, sigma={self.sigma}, eta={self.eta}, tau={self.tau}"


def heatmap_area(sigma: float, eta: float, tau: float) -> float:
    """Area ``A_h`` (sum of pixel values) of one heatmap centred on a pixel, far from any border.

    The paper normalises the information-transport loss by "the area of the heatmap (equal for
    all keypoints)"; this is that constant, summed on the integer pixel lattice. For very wide
    heatmaps (support radius above 256 px) the continuous integral is returned instead:
    ``pi sigma^2 [u1 + eta (exp(-u1) - tau) - eta tau (u2 - u1)]`` with
    ``u1 = -ln min(tau + 1/eta, 1)``, ``u2 = -ln tau`` (``u = r^2 / sigma^2``).

    Example:
        >>> round(heatmap_area(9.0, 3.5, 0.1), 1)
        376.5
        >>> round(heatmap_area(900.0, 3.5, 0.1) / 100 ** 2, 1)  # continuous: 376.7
        376.7
    """
    _check_positive(sigma, "heatmap_area: sigma")
    _check_positive(eta, "heatmap_area: eta")
    if not 0.0 < tau < 1.0:
        raise ValueError(f"heatmap_area: expected 0 < tau < 1, got {tau}")
    radius = int(math.ceil(sigma * math.sqrt(math.log(1.0 / tau)))) + 1
    if radius > 256:
        u1 = -math.log(min(tau + 1.0 / eta, 1.0))
        u2 = -math.log(tau)
        return math.pi * sigma * sigma * (u1 + eta * (math.exp(-u1) - tau) - eta * tau * (u2 - u1))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    d2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
    values = torch.clamp(eta * F.relu(torch.exp(-d2 / (sigma * sigma)) - tau), 0.0, 1.0)
    return float(values.sum())


# --------------------------------------------------------------------------------------------
# Status and aggregated mask (Sec. 2.2, 2.2.1)
# --------------------------------------------------------------------------------------------


def active_status(
    feature_maps: torch.Tensor, gamma: float, sharpness: float = 1000.0, surrogate: Optional[float] = None
) -> torch.Tensor:
    """Soft activation status ``s_k = sigmoid(sharpness * (max_{u,v} f_k - gamma))``.

    The paper's binary status ``s in {0, 1}`` realised as a steep sigmoid of the feature map's
    peak around the activation threshold ``gamma`` (authors: sharpness 1000).

    At sharpness 1000 the sigmoid is saturated almost everywhere, so a keypoint whose peak falls
    below ``gamma`` receives no gradient and can never be re-activated by the masked-entropy
    loss. With ``surrogate`` set, the forward value is unchanged but the backward pass uses the
    gradient of ``sigmoid(surrogate * (peak - gamma))`` (a straight-through estimator), so the
    losses can switch keypoints on as well as off.

    Args:
        feature_maps: ``(..., K, h, w)``.
        gamma: activation threshold on the peak.
        sharpness: slope of the forward sigmoid.
        surrogate: slope of the backward sigmoid, or ``None`` for the plain steep sigmoid.

    Returns:
        ``(..., K)`` in ``[0, 1]``.

    Example:
        >>> f = torch.zeros(1, 2, 3, 3)
        >>> f[0, 0, 1, 1] = 20.0
        >>> active_status(f, gamma=15.0)
        tensor([[1., 0.]])
        >>> f.requires_grad_(True)
        tensor(...)
        >>> active_status(f, gamma=15.0, surrogate=0.2).sum().backward()
        >>> bool(f.grad[0, 1, 0, 0] > 0)  # the inactive keypoint still gets a gradient
        True
    """
    _check_tensor(feature_maps, "active_status")
    _check_min_ndim(feature_maps, 3, "(..., K, h, w)", "active_status")
    _check_positive(sharpness, "active_status: sharpness")
    peak = feature_maps.flatten(-2).amax(dim=-1)
    hard = torch.sigmoid(sharpness * (peak - gamma))
    if surrogate is None:
        return hard
    _check_positive(surrogate, "active_status: surrogate")
    soft = torch.sigmoid(surrogate * (peak - gamma))
    return soft + (hard - soft).detach()


class ActiveStatus(nn.Module):
    """Module twin of :func:`active_status`.

    Example:
        >>> ActiveStatus(gamma=10.0)(torch.full((1, 3, 2, 2), 11.0))
        tensor([[1., 1., 1.]])
    """

    def __init__(self, gamma: float, sharpness: float = 1000.0) -> None:
        super().__init__()
        _check_positive(sharpness, "ActiveStatus: sharpness")
        self.gamma, self.sharpness = float(gamma), float(sharpness)

    def forward(self, feature_maps: torch.Tensor) -> torch.Tensor:
        return active_status(feature_maps, self.gamma, self.sharpness)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, sharpness={self.sharpness}"


def aggregated_mask(heatmaps: torch.Tensor, status: torch.Tensor) -> torch.Tensor:
    """Aggregated mask of the active keypoints, ``M = min(sum_k h_k * s_k, 1)`` (Sec. 2.2.1).

    Args:
        heatmaps: ``(..., K, h, w)`` in ``[0, 1]``.
        status: ``(..., K)`` in ``[0, 1]``.

    Returns:
        ``(..., h, w)`` in ``[0, 1]``.

    Example:
        >>> h = torch.ones(1, 2, 2, 2)
        >>> aggregated_mask(h, torch.tensor([[0.3, 0.4]]))
        tensor([[[0.7000, 0.7000],
                 [0.7000, 0.7000]]])
    """
    _check_tensor(heatmaps, "aggregated_mask: heatmaps")
    _check_tensor(status, "aggregated_mask: status")
    _check_min_ndim(heatmaps, 3, "(..., K, h, w)", "aggregated_mask: heatmaps")
    if tuple(status.shape) != tuple(heatmaps.shape[:-2]):
        raise ValueError(
            f"aggregated_mask: expected status of shape {tuple(heatmaps.shape[:-2])} (heatmaps' leading "
            f"dims), got {tuple(status.shape)}"
        )
    summed = (heatmaps * status[..., None, None]).sum(dim=-3)
    # min(., 1) only: heatmaps and status are non-negative; clamp at 0 too for safety
    return torch.clamp(summed, 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Image helpers
# --------------------------------------------------------------------------------------------


def normalize_frames(frames: torch.Tensor) -> torch.Tensor:
    """Map frames on the 0..255 scale (uint8 or float) to float32 in ``[-0.5, 0.5]`` (Appendix A.1).

    Example:
        >>> normalize_frames(torch.tensor([0, 255], dtype=torch.uint8))
        tensor([-0.5000,  0.5000])
    """
    _check_tensor(frames, "normalize_frames")
    if frames.dtype == torch.uint8:
        frames = frames.float()
    elif not frames.is_floating_point():
        raise ValueError(f"normalize_frames: expected uint8 or floating-point frames, got {frames.dtype}")
    return frames / 255.0 - 0.5


def check_frames(frames: torch.Tensor, name: str = "frames") -> None:
    """Refuse NaN/inf frames and warn about float frames that look like ``[0, 1]`` instead of 0..255.

    The detector expects frames on the 0..255 scale (uint8, or float without a division by 255);
    a frame divided by 255 still runs, but every keypoint and status is then wrong. uint8 (and
    other integer) frames need no check; for floating-point frames this is one ``aminmax``
    pass (NaN and inf show up in it) and one device sync.

    Args:
        frames: the frames, any shape.
        name: who is checking, for the messages.

    Raises:
        ValueError: a NaN or an infinite value.

    Warns:
        UserWarning: floating-point frames whose largest value lies in ``(0, 1]`` (an all-zero
            frame, black on either scale, is not warned about).

    Example:
        >>> check_frames(torch.full((1, 3, 4, 4), 200.0))
        >>> check_frames(torch.tensor([0.0, float("nan")]))
        Traceback (most recent call last):
            ...
        ValueError: frames: expected finite values on the 0..255 scale, got NaN or inf
    """
    _check_tensor(frames, name)
    if not frames.is_floating_point() or frames.numel() == 0:
        return
    with torch.no_grad():
        lo, hi = torch.stack(torch.aminmax(frames)).tolist()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name}: expected finite values on the 0..255 scale, got NaN or inf")
    if 0.0 < hi <= 1.0:
        warnings.warn(
            f"{name}: float frames with a largest value of {hi:.4g}; frames are expected on the 0..255 scale "
            f"(uint8, or float not divided by 255), these look like [0, 1]",
            UserWarning,
            stacklevel=3,
        )


def adjust_sharpness(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Sharpen float images on ``[0, 1]`` like torchvision's ``adjust_sharpness``.

    The degenerate image is the input smoothed with the 3x3 kernel
    ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13`` on interior pixels (border pixels are copied
    unchanged); the result is ``clamp(factor * img + (1 - factor) * degenerate, 0, 1)``.
    ``factor = 1`` is the identity, ``factor > 1`` sharpens. Images with height or width <= 2
    are returned unchanged.

    Args:
        images: ``(..., C, H, W)`` floating point on ``[0, 1]``.
        factor: non-negative sharpness factor.

    Example:
        >>> img = torch.zeros(1, 3, 3)
        >>> img[0, 1, 1] = 0.5
        >>> adjust_sharpness(img, 2.0)[0, 1, 1]  # 2*0.5 - (5*0.5/13) = 0.8077
        tensor(0.8077)
    """
    _check_tensor(images, "adjust_sharpness")
    _check_min_ndim(images, 3, "(..., C, H, W)", "adjust_sharpness")
    if not images.is_floating_point():
        raise ValueError(f"adjust_sharpness: expected floating-point images on [0, 1], got {images.dtype}")
    if factor < 0:
        raise ValueError(f"adjust_sharpness: expected a non-negative factor, got {factor}")
    c, h, w = images.shape[-3:]
    if h <= 2 or w <= 2:
        return images
    flat = images.reshape(-1, c, h, w)
    kernel = torch.ones(3, 3, dtype=images.dtype, device=images.device)
    kernel[1, 1] = 5.0
    kernel = (kernel / kernel.sum()).expand(c, 1, 3, 3)
    smooth = F.conv2d(flat, kernel, groups=c)
    degenerate = flat.clone()
    degenerate[..., 1:-1, 1:-1] = smooth
    out = torch.clamp(factor * flat + (1.0 - factor) * degenerate, 0.0, 1.0)
    return out.reshape(images.shape)
