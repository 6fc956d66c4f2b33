"""Information status: keep a keypoint active only if it covers information no stronger keypoint covers.

An inference-time status rule for keypoint economy (an extension, not in the paper; measured
in ``docs/results.md#keypoint-economy``). The learned status of :class:`mint_rl.models.MintDetector`
switches a keypoint on when its feature map's peak passes ``gamma``; trained detectors keep
several keypoints on every object, and the active count hardly moves when objects enter or
leave. This rule uses the quantity the MINT losses are built on, the local entropy ``E`` of the
frame at the feature-map size, and the keypoints' thresholded heatmaps ``h_k`` (Sec. 2.2.1):

1. Candidates are the keypoints the detector marks active.
2. They are visited in decreasing order of covered entropy ``C_k = sum_x E(x) h_k(x)``.
3. A candidate stays active iff the entropy it adds to the mask ``M`` of the keypoints kept so
   far, ``U_k = sum_x E(x) h_k(x) (1 - M(x))``, is at least ``min_unique * C_k`` and at least
   ``min_density * A_h`` nats (``A_h`` the area of one heatmap); then ``M = min(M + h_k, 1)``.

A non-maximum suppression by information: one keypoint per object where a heatmap covers the
object, more for larger ones, none on entropy-free background. Frames are independent, or, with
``temporal=True`` (:func:`information_status_sequence`), the keypoints kept in the previous frame
are visited first and need only ``keep_unique`` of their entropy to be their own (hysteresis), so
that the keypoint representing an object stays the same one while the object is there.

Example:
    >>> e = torch.zeros(1, 16, 16); e[0, 6:10, 6:10] = 2.0  # one textured object
    >>> kp = torch.tensor([[[0.0, 0.0], [0.05, 0.0], [0.8, 0.8]]])  # two on it, one on the floor
    >>> information_status(kp, e, torch.ones(1, 3, dtype=torch.bool), sigma=2.0).tolist()
    [[1.0, 0.0, 0.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from mint_rl._config import ConfigMixin
from mint_rl.ops import gaussian_maps, heatmap_area, threshold_gaussians

__all__ = ["InformationStatusConfig", "information_status", "information_status_sequence", "InformationStatus"]


@dataclass
class InformationStatusConfig(ConfigMixin):
    """Thresholds of :func:`information_status`.

    Attributes:
        min_unique: fraction of a keypoint's covered entropy that must be new (0.5).
        min_density: new entropy a keypoint must add, in nats per heatmap pixel (``A_h``
            pixels): 0.03, about 2 nats for the CLEVRER-like detector's 32x53 maps.
        temporal: carry the status from frame to frame (:func:`information_status_sequence`):
            keypoints kept in the previous frame are visited first and stay with ``keep_unique``,
            so the same keypoint keeps representing an object (False: frames independent).
        keep_unique: the ``min_unique`` of keypoints kept in the previous frame (0.25).
    """

    min_unique: float = 0.5
    min_density: float = 0.03
    temporal: bool = False
    keep_unique: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.min_unique) <= 1.0:
            raise ValueError(f"InformationStatusConfig.min_unique: expected in [0, 1], got {self.min_unique}")
        if not float(self.min_density) >= 0.0:
            raise ValueError(f"InformationStatusConfig.min_density: expected >= 0, got {self.min_density}")
        if not 0.0 <= float(self.keep_unique) <= 1.0:
            raise ValueError(f"InformationStatusConfig.keep_unique: expected in [0, 1], got {self.keep_unique}")
        if not isinstance(self.temporal, bool):
            raise ValueError(f"InformationStatusConfig.temporal: expected a bool, got {self.temporal!r}")
        self.min_unique, self.min_density = float(self.min_unique), float(self.min_density)
        self.keep_unique = float(self.keep_unique)


def information_status(
    keypoints: torch.Tensor,
    entropy: torch.Tensor,
    candidates: torch.Tensor,
    *,
    sigma: float,
    eta: float = 3.5,
    tau: float = 0.1,
    min_unique: float = 0.5,
    min_density: float = 0.03,
    previous: Optional[torch.Tensor] = None,
    keep_unique: Optional[float] = None,
) -> torch.Tensor:
    """The information status of keypoints (module docstring), one frame at a time, batched.

    Args:
        keypoints: ``(..., K, 2)`` normalised ``(x, y)``.
        entropy: ``(..., h, w)`` local entropy at the feature-map size
            (:func:`mint_rl.losses.entropy_targets`).
        candidates: ``(..., K)`` bool, the keypoints that may be active (the learned status).
        sigma, eta, tau: the heatmap's width (feature-map pixels), scale and threshold, as in
            training (:class:`mint_rl.losses.LossConfig` scaled to the map size).
        min_unique, min_density: :class:`InformationStatusConfig`.
        previous: optional ``(..., K)`` bool, the keypoints kept in the previous frame: visited
            before the others (each group in decreasing order of covered entropy) and kept with
            the fraction ``keep_unique`` instead of ``min_unique`` (hysteresis).
        keep_unique: see ``previous``; default ``min_unique``.

    Returns:
        ``(..., K)`` float status, 0 or 1.
    """
    if keypoints.ndim < 2 or keypoints.shape[-1] != 2:
        raise ValueError(f"information_status: expected keypoints of shape (..., K, 2), got {tuple(keypoints.shape)}")
    lead, k = keypoints.shape[:-2], keypoints.shape[-2]
    if entropy.ndim != len(lead) + 2 or tuple(entropy.shape[:-2]) != tuple(lead):
        raise ValueError(
            f"information_status: expected entropy of shape {(*lead, 'h', 'w')} for keypoints {tuple(keypoints.shape)}, "
            f"got {tuple(entropy.shape)}"
        )
    if tuple(candidates.shape) != (*lead, k) or candidates.dtype != torch.bool:
        raise ValueError(
            f"information_status: expected bool candidates of shape {(*lead, k)}, got {candidates.dtype} {tuple(candidates.shape)}"
        )
    if previous is not None and (tuple(previous.shape) != (*lead, k) or previous.dtype != torch.bool):
        raise ValueError(
            f"information_status: expected bool previous of shape {(*lead, k)}, got {previous.dtype} {tuple(previous.shape)}"
        )
    h, w = entropy.shape[-2:]
    e = entropy.reshape(-1, h, w).to(keypoints.dtype)
    kp = keypoints.reshape(-1, k, 2)
    cand = candidates.reshape(-1, k)
    heat = threshold_gaussians(gaussian_maps(kp, h, w, sigma), eta, tau)  # (N, K, h, w)
    weighted = e[:, None] * heat
    covered = weighted.sum(dim=(-2, -1))  # (N, K)
    min_mass = min_density * heatmap_area(sigma, eta, tau)
    # covered >= 0, so shifting the previously kept ones up by more than any covered value
    # visits them first; non-candidates (-1) last
    rank = torch.where(cand, covered, torch.full_like(covered, -1.0))
    fraction = torch.full_like(covered, min_unique)
    if previous is not None:
        prev = previous.reshape(-1, k) & cand
        rank = rank + prev.to(rank.dtype) * (covered.max() + 1.0)
        fraction = torch.where(prev, torch.full_like(covered, min_unique if keep_unique is None else keep_unique), fraction)
    order = torch.argsort(rank, dim=1, descending=True)
    status = torch.zeros_like(covered)
    mask = torch.zeros_like(e)
    rows = torch.arange(len(e))
    for i in range(k):
        idx = order[:, i]
        unique = (weighted[rows, idx] * (1.0 - mask)).sum(dim=(-2, -1))
        keep = cand[rows, idx] & (unique >= fraction[rows, idx] * covered[rows, idx]) & (unique >= min_mass)
        status[rows, idx] = keep.to(status.dtype)
        mask = torch.where(keep[:, None, None], torch.clamp(mask + heat[rows, idx], max=1.0), mask)
    return status.reshape(*lead, k)


def information_status_sequence(
    keypoints: torch.Tensor,
    entropy: torch.Tensor,
    candidates: torch.Tensor,
    *,
    sigma: float,
    eta: float = 3.5,
    tau: float = 0.1,
    min_unique: float = 0.5,
    min_density: float = 0.03,
    keep_unique: float = 0.25,
    previous: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """:func:`information_status` over the frames of one video in order, with hysteresis.

    Frame ``t`` visits the keypoints kept at ``t - 1`` first and keeps each of them while at
    least ``keep_unique`` of the entropy it covers is its own; the others need ``min_unique``
    as in the single-frame rule. A keypoint that represented an object keeps doing so while it
    stays on it, instead of giving way to whichever overlapping keypoint covers a little more.

    Args:
        keypoints: ``(T, K, 2)``; entropy ``(T, h, w)``; candidates ``(T, K)`` bool.
        previous: ``(K,)`` bool, what was kept before the first frame (None: nothing).
        sigma, eta, tau, min_unique, min_density: see :func:`information_status`.

    Returns:
        ``(T, K)`` float status, 0 or 1.

    Example:
        >>> e = torch.zeros(2, 16, 16); e[:, 6:10, 6:10] = 2.0
        >>> kp = torch.tensor([[[0.0, 0.0], [0.15, 0.0]], [[0.1, 0.0], [0.0, 0.0]]])  # they trade places
        >>> cand = torch.ones(2, 2, dtype=torch.bool)
        >>> information_status_sequence(kp, e, cand, sigma=2.0).tolist()  # keypoint 0 keeps the object
        [[1.0, 0.0], [1.0, 0.0]]
        >>> information_status(kp, e, cand, sigma=2.0).tolist()  # frame by frame it changes hands
        [[1.0, 0.0], [0.0, 1.0]]
    """
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"information_status_sequence: expected keypoints of shape (T, K, 2), got {tuple(keypoints.shape)}")
    t, k = keypoints.shape[:2]
    if previous is None:
        previous = torch.zeros(k, dtype=torch.bool, device=keypoints.device)
    if tuple(previous.shape) != (k,) or previous.dtype != torch.bool:
        raise ValueError(f"information_status_sequence: expected bool previous of shape ({k},), got "
                         f"{previous.dtype} {tuple(previous.shape)}")
    out = []
    for i in range(t):
        st = information_status(keypoints[i : i + 1], entropy[i : i + 1], candidates[i : i + 1], sigma=sigma, eta=eta,
                                tau=tau, min_unique=min_unique, min_density=min_density, previous=previous[None],
                                keep_unique=keep_unique)
        out.append(st)
        previous = st[0] > 0.5
    return torch.cat(out)


class InformationStatus(nn.Module):
    """Module twin of :func:`information_status`: frames and a detector's output -> the information status.

    Args:
        loss_config: the :class:`mint_rl.losses.LossConfig` the detector was trained with (its
            heatmap width and entropy settings; rescaled to the detector's map size here).
        config: :class:`InformationStatusConfig`.

    Example:
        >>> from mint_rl.losses import loss_preset
        >>> from mint_rl.models import DetectorConfig, MintDetector
        >>> det = MintDetector(DetectorConfig.for_image(32, 48, num_keypoints=3)).eval()
        >>> frames = torch.zeros(2, 3, 32, 48, dtype=torch.uint8)
        >>> out = det(frames)
        >>> InformationStatus(loss_preset("clevrer"))(frames, det, out.keypoints, out.status).shape
        torch.Size([2, 3])
    """

    def __init__(self, loss_config: "LossConfig", config: InformationStatusConfig | None = None) -> None:  # noqa: F821
        super().__init__()
        self.loss_config = loss_config
        self.config = InformationStatusConfig() if config is None else config
        self._previous: Optional[torch.Tensor] = None

    def reset(self) -> None:
        """Forget the previous frame's status (``temporal``): call at the start of each video."""
        self._previous = None

    def forward(self, frames: torch.Tensor, detector: nn.Module, keypoints: torch.Tensor, status: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` frames on 0..255, the detector that gave ``keypoints (N, K, 2)`` and
        ``status (N, K)`` -> ``(N, K)`` information status.

        With ``config.temporal`` the N frames are consecutive frames of one video, continuing the
        previous call's (until :meth:`reset`)."""
        from mint_rl.losses import entropy_targets

        map_size = detector.config.map_size_for(*frames.shape[-2:])
        cfg = self.loss_config.scaled_to(map_size)  # the identity when already at this size
        entropy = entropy_targets(frames, map_size, cfg)
        kwargs = dict(sigma=cfg.sigma, eta=cfg.eta, tau=cfg.tau, min_unique=self.config.min_unique,
                      min_density=self.config.min_density)
        if not self.config.temporal:
            return information_status(keypoints, entropy, status > 0.5, **kwargs)
        previous = getattr(self, "_previous", None)
        if previous is not None and previous.shape[0] != keypoints.shape[-2]:
            raise ValueError(f"InformationStatus: the previous frame had {previous.shape[0]} keypoints, this one "
                             f"{keypoints.shape[-2]}; call reset() between videos")
        out = information_status_sequence(keypoints, entropy, status > 0.5, keep_unique=self.config.keep_unique,
                                          previous=previous, **kwargs)
        self._previous = out[-1] > 0.5
        return out

    def extra_repr(self) -> str:
        return repr(self.config)
