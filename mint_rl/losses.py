"""The MINT losses (Sec. 2.2.1-2.2.3, Appendix E.1-E.2) as pure functions of keypoints and entropy.

Every loss takes precomputed local-entropy maps ``E(I_t)`` at the **feature-map size**
``(h, w)`` (see :func:`entropy_targets`, which prepares frames as the authors do and calls
:func:`mint_rl.entropy.local_entropy`) and the detector's outputs; nothing here logs, plots
or moves tensors between devices.

Shapes: a window of ``T`` consecutive frames per sample gives ``entropy (B, T, h, w)``,
``keypoints (B, T, K, 2)`` (normalised ``(x, y)``, :mod:`mint_rl.coords`), ``status (B, T, K)``
and heatmaps ``(B, T, K, h, w)``. Temporal terms use the pairs ``(t-1, t)`` for ``t = 1..T-1``
inside each window, **without** wrap-around (the authors' code rolls frame 0 onto the last
frame; that pair is not formed here).

Total (Eq. 9): ``L = l_ME ME + l_MCE MCE + l_IT IT + l_O O + (1 - ME) l_S S``, plus the
redundancy term ``l_R R`` of :func:`redundancy_loss` (an extension for keypoint economy, off by
default: ``l_R = 0``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mint_rl._config import ConfigMixin
from mint_rl.ops import adjust_sharpness, aggregated_mask, gaussian_maps, heatmap_area, threshold_gaussians

__all__ = [
    "LossConfig",
    "LOSS_PRESETS",
    "ABLATIONS",
    "loss_preset",
    "masked_entropy_loss",
    "conditional_entropy",
    "masked_conditional_entropy_loss",
    "information_transport_loss",
    "overlap_loss",
    "active_status_loss",
    "redundancy_loss",
    "mint_loss",
    "MintLoss",
    "prepare_frames_for_entropy",
    "entropy_targets",
]

_EPS = 1e-8
_REDUCTIONS = ("mean", "sum", "none")


@dataclass
class LossConfig(ConfigMixin):
    """Weights and hyperparameters of the MINT loss (defaults: the authors' CLEVRER run).

    Attributes:
        lambda_me, lambda_mce, lambda_it, lambda_overlap, lambda_status: loss weights
            (100 / 100 / 20 / 30 / 10).
        kappa: weight of the conditional entropy in the transport target (0.9).
        beta: overlap allowance on the peak of the summed Gaussians (4).
        movement_weight: ``m_d``, weight of the keypoint movement term in IT (1).
        sigma: Gaussian width in feature-map pixels at :attr:`reference_map_size` (9).
        eta: heatmap scale (3.5).
        tau: heatmap threshold on the Gaussian (0.1).
        reference_map_size: feature-map ``(h, w)`` for which :attr:`sigma` was chosen
            (119x171 = the 320x480 CLEVRER input). Use :meth:`scaled_to` for other map sizes.
        region_size: entropy patch size ``R`` (3).
        bandwidth: entropy kernel bandwidth ``B`` (0.001).
        sharpen_below_width: frames narrower than this (in input pixels) are sharpened before
            the entropy (the authors' rule for 96x96 MAGICAL frames).
        sharpness_factor: the sharpening factor then used (10).
        it_keypoint_reduction: "sum" (the paper's Eq. 8) or "mean" of the IT cost over the K
            keypoints; with "sum" and K=25 the weighted IT term dominates the total early on.
        overlap_keypoints: "all" (the paper: every keypoint's Gaussian, active or not) or
            "active" (Gaussians weighted by the status, so that only active keypoints may not
            pile up: with a small ``beta`` the gradient then switches one of two active keypoints
            on the same spot off instead of only pushing them apart; see :func:`overlap_loss`).
        lambda_redundancy: weight of :func:`redundancy_loss` (0: the paper's loss). It switches
            off active keypoints whose covered entropy other active keypoints already cover.
    """

    lambda_me: float = 100.0
    lambda_mce: float = 100.0
    lambda_it: float = 20.0
    lambda_overlap: float = 30.0
    lambda_status: float = 10.0
    kappa: float = 0.9
    beta: float = 4.0
    movement_weight: float = 1.0
    sigma: float = 9.0
    eta: float = 3.5
    tau: float = 0.1
    reference_map_size: tuple[int, int] = (119, 171)
    region_size: int = 3
    bandwidth: float = 1e-3
    sharpen_below_width: int = 100
    sharpness_factor: float = 10.0
    it_keypoint_reduction: str = "sum"
    overlap_keypoints: str = "all"
    lambda_redundancy: float = 0.0

    def __post_init__(self) -> None:
        for name in ("lambda_me", "lambda_mce", "lambda_it", "lambda_overlap", "lambda_status", "movement_weight",
                     "lambda_redundancy"):
            value = float(getattr(self, name))
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"LossConfig.{name}: expected a finite value >= 0, got {value}")
            setattr(self, name, value)
        if not 0.0 <= self.kappa <= 1.0:
            raise ValueError(f"LossConfig.kappa: expected 0 <= kappa <= 1, got {self.kappa}")
        for name in ("sigma", "eta", "bandwidth"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"LossConfig.{name}: expected > 0, got {getattr(self, name)}")
        if not 0.0 < self.tau < 1.0:
            raise ValueError(f"LossConfig.tau: expected 0 < tau < 1, got {self.tau}")
        ref = tuple(int(v) for v in self.reference_map_size)
        if len(ref) != 2 or min(ref) < 1:
            raise ValueError(f"LossConfig.reference_map_size: expected (h, w) > 0, got {self.reference_map_size}")
        self.reference_map_size = ref  # type: ignore[assignment]
        if int(self.region_size) < 1 or int(self.region_size) % 2 == 0:
            raise ValueError(f"LossConfig.region_size: expected an odd integer >= 1, got {self.region_size}")
        self.region_size = int(self.region_size)
        if self.it_keypoint_reduction not in ("sum", "mean"):
            raise ValueError(
                f"LossConfig.it_keypoint_reduction: expected 'sum' or 'mean', got {self.it_keypoint_reduction!r}"
            )
        if self.overlap_keypoints not in ("all", "active"):
            raise ValueError(
                f"LossConfig.overlap_keypoints: expected 'all' or 'active', got {self.overlap_keypoints!r}"
            )
        self.kappa, self.beta, self.sigma = float(self.kappa), float(self.beta), float(self.sigma)
        self.eta, self.tau, self.bandwidth = float(self.eta), float(self.tau), float(self.bandwidth)

    @property
    def heatmap_area(self) -> float:
        """``A_h``: the sum of one unclipped heatmap (normaliser of the IT loss)."""
        return heatmap_area(self.sigma, self.eta, self.tau)

    def scaled_to(self, map_size: tuple[int, int]) -> "LossConfig":
        """Copy whose :attr:`sigma` is rescaled to feature maps of size ``map_size = (h, w)``.

        ``sigma' = sigma * sqrt((h / h_ref) * (w / w_ref))`` (geometric mean of the two axis
        ratios), so a heatmap covers the same fraction of the field of view as at the reference
        size; ``tau``, ``eta`` and ``beta`` are unitless and kept. NOTES.md: with the unscaled
        sigma=7 on 43x67 maps, 16 masks cover the whole map and ME collapses.

        Example:
            >>> round(LossConfig().scaled_to((43, 67)).sigma, 2)
            3.39
            >>> LossConfig().scaled_to((119, 171)).sigma
            9.0
        """
        h, w = (int(v) for v in map_size)
        if h < 1 or w < 1:
            raise ValueError(f"LossConfig.scaled_to: expected a positive (h, w), got {map_size}")
        rh, rw = self.reference_map_size
        factor = math.sqrt((h / rh) * (w / rw))
        return dataclasses.replace(self, sigma=self.sigma * factor, reference_map_size=(h, w))

    def without_regularization(self) -> "LossConfig":
        """The "MINT w/o Reg." ablation (Appendix E.1): ``m_d = 0``, ``l_O = 0``, ``l_S = 0``."""
        return dataclasses.replace(self, movement_weight=0.0, lambda_overlap=0.0, lambda_status=0.0)

    def without_temporal(self) -> "LossConfig":
        """The "MINT w/o Temp." ablation (Appendix E.1): ``l_MCE = 0``, ``l_IT = 0``."""
        return dataclasses.replace(self, lambda_mce=0.0, lambda_it=0.0)

    @property
    def uses_temporal(self) -> bool:
        """Whether the loss needs windows of at least two frames."""
        return self.lambda_mce > 0 or self.lambda_it > 0


#: Named presets from the authors' run scripts (NOTES.md). The reference map sizes are the
#: uncropped feature-map sizes of the detector presets (320x480 -> 119x171, 96x96 -> 135x135): sigma is
#: rescaled to the actual (cropped) map size by :meth:`LossConfig.scaled_to` (its size in image pixels
#: then changes by under 7%).
LOSS_PRESETS: dict[str, LossConfig] = {
    "clevrer": LossConfig(sigma=9.0, tau=0.1, reference_map_size=(119, 171)),
    "magical": LossConfig(sigma=7.0, tau=0.2, reference_map_size=(135, 135)),
}

#: Ablation switches of Appendix E.1, by name.
ABLATIONS: dict[str, Any] = {
    "mint": lambda c: c,
    "wo-reg": LossConfig.without_regularization,
    "wo-temp": LossConfig.without_temporal,
}


def loss_preset(name: str, ablation: str = "mint", **overrides: Any) -> LossConfig:
    """A named preset, optionally with an ablation ("mint", "wo-reg", "wo-temp") and overrides.

    Example:
        >>> c = loss_preset("magical", "wo-temp")
        >>> c.sigma, c.tau, c.lambda_it, c.lambda_mce, c.lambda_me
        (7.0, 0.2, 0.0, 0.0, 100.0)
        >>> loss_preset("clevrer", "wo-reg").lambda_status
        0.0
    """
    if name not in LOSS_PRESETS:
        raise ValueError(f"unknown loss preset {name!r}; expected one of {sorted(LOSS_PRESETS)}")
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; expected one of {sorted(ABLATIONS)}")
    return ABLATIONS[ablation](dataclasses.replace(LOSS_PRESETS[name], **overrides))


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _reduce(values: torch.Tensor, reduction: str, name: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"{name}: expected reduction in {_REDUCTIONS}, got {reduction!r}")


def _check(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    return x


def _check_window(entropy: torch.Tensor, name: str) -> tuple[int, int, int, int]:
    _check(entropy, f"{name}: entropy")
    if entropy.ndim != 4:
        raise ValueError(f"{name}: expected entropy of shape (B, T, h, w), got {tuple(entropy.shape)}")
    if entropy.shape[1] < 2:
        raise ValueError(f"{name}: expected windows of T >= 2 frames, got T={entropy.shape[1]}")
    return tuple(entropy.shape)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Sec. 2.2.1: information maximisation
# --------------------------------------------------------------------------------------------


def masked_entropy_loss(entropy: torch.Tensor, mask: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Masked entropy loss, the paper's Eq. 3.

    ``L_ME(I_t) = 1 - sum_{x,y} E(I_t) * M_t / sum_{x,y} E(I_t)``, with ``M_t`` the aggregated
    mask of the active keypoints (:func:`mint_rl.ops.aggregated_mask`). An image without
    entropy (constant frame) gives ``L_ME = 1`` (a tiny epsilon in the denominator).

    Args:
        entropy: ``(..., h, w)`` non-negative local entropy.
        mask: ``(..., h, w)`` in ``[0, 1]``, same shape.
        reduction: "mean" | "sum" over frames, or "none" for the ``(...)`` per-frame values.

    Example:
        >>> e = torch.ones(1, 4, 4)
        >>> masked_entropy_loss(e, torch.zeros(1, 4, 4)).item(), masked_entropy_loss(e, torch.ones(1, 4, 4)).item()
        (1.0, 0.0)
    """
    _check(entropy, "masked_entropy_loss: entropy")
    _check(mask, "masked_entropy_loss: mask")
    if entropy.ndim < 2 or entropy.shape != mask.shape:
        raise ValueError(
            f"masked_entropy_loss: expected entropy and mask of the same shape (..., h, w), got "
            f"{tuple(entropy.shape)} and {tuple(mask.shape)}"
        )
    covered = (entropy * mask).sum(dim=(-2, -1))
    total = entropy.sum(dim=(-2, -1))
    return _reduce(1.0 - covered / (total + _EPS), reduction, "masked_entropy_loss")


def conditional_entropy(entropy: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Pixel-wise conditional entropy ``E(I_t | I_{t-1}) = max(E(I_t), E(I_{t-1})) - E(I_{t-1})``.

    The joint entropy is approximated by the maximum (the paper's Lemma 1), so the result is
    ``relu(E(I_t) - E(I_{t-1}))``: the information that appeared at ``t``.

    Example:
        >>> conditional_entropy(torch.tensor([2.0, 1.0]), torch.tensor([0.5, 3.0]))
        tensor([1.5000, 0.0000])
    """
    _check(entropy, "conditional_entropy: entropy")
    _check(previous, "conditional_entropy: previous")
    if entropy.shape != previous.shape:
        raise ValueError(
            f"conditional_entropy: expected equal shapes, got {tuple(entropy.shape)} and {tuple(previous.shape)}"
        )
    return torch.maximum(entropy, previous) - previous


def masked_conditional_entropy_loss(entropy: torch.Tensor, mask: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Masked conditional entropy loss, the paper's Eq. 5, over the pairs of a window.

    ``L_MCE(I_t, I_{t-1}) = 1 - sum E(I_t|I_{t-1}) * M_t / sum E(I_t|I_{t-1})`` for
    ``t = 1..T-1`` (no wrap-around: frame 0 is only ever a reference, its mask is unused).

    Args:
        entropy: ``(B, T, h, w)``, ``T >= 2``.
        mask: ``(B, T, h, w)`` aggregated masks.
        reduction: "mean" | "sum" over the ``B x (T-1)`` pairs, or "none" for ``(B, T-1)``.

    Example:
        >>> e = torch.zeros(1, 2, 3, 3); e[0, 1, 1, 1] = 2.0  # information appears at t=1
        >>> m = torch.zeros(1, 2, 3, 3); m[0, 1, 1, 1] = 1.0
        >>> masked_conditional_entropy_loss(e, m).item()
        0.0
    """
    _check_window(entropy, "masked_conditional_entropy_loss")
    _check(mask, "masked_conditional_entropy_loss: mask")
    if mask.shape != entropy.shape:
        raise ValueError(
            f"masked_conditional_entropy_loss: expected mask of shape {tuple(entropy.shape)}, got {tuple(mask.shape)}"
        )
    cond = conditional_entropy(entropy[:, 1:], entropy[:, :-1])
    return masked_entropy_loss(cond, mask[:, 1:], reduction)


# --------------------------------------------------------------------------------------------
# Sec. 2.2.2: information transportation
# --------------------------------------------------------------------------------------------


def information_transport_loss(
    entropy: torch.Tensor,
    heatmaps: torch.Tensor,
    keypoints: torch.Tensor,
    status: torch.Tensor,
    *,
    kappa: float = 0.9,
    movement_weight: float = 1.0,
    area: float,
    reduction: str = "mean",
    keypoint_reduction: str = "sum",
) -> torch.Tensor:
    """Information transportation loss, the paper's Sec. 2.2.2 (Eq. 7-8), per pair ``(t-1, t)``.

    For keypoint ``i`` with heatmaps ``h_t``, ``h_{t-1}``, entropies ``E_t``, ``E_{t-1}`` and
    ``E_c = E(I_t | I_{t-1})`` (:func:`conditional_entropy`):

    * source ``S = E_{t-1} (1 - h_t) (1 - h_{t-1})``
    * target ``T = E_t h_t + kappa E_c (1 - h_t)``
    * reconstruction ``R = S + T``
    * pixel-wise mutual information ``MI = R + E_t - max(R, E_t)`` (= ``min(R, E_t)``)
    * cost ``(sum E_t - sum MI) / A_h + m_d ||p_t - p_{t-1}||_2 s_t s_{t-1}``

    Since ``MI = min(R, E_t)``, ``sum(E_t - MI) = sum relu(E_t - R)``, and
    ``E_t - R = (1 - h_t) (E_t - kappa E_c - E_{t-1} (1 - h_{t-1}))``; the code evaluates this
    equivalent form (fewer K-sized temporaries). The cost is
    summed over the K keypoints (as the paper's Eq. 8) and reduced over the ``B x (T-1)``
    pairs ``t = 1..T-1`` of each window (no wrap-around). ``A_h`` is the constant area of one
    heatmap (:func:`mint_rl.ops.heatmap_area`). Distances are in normalised coordinates and not
    squared (the authors' code; the paper's text writes a squared norm).

    Args:
        entropy: ``(B, T, h, w)``.
        heatmaps: ``(B, T, K, h, w)`` per-keypoint heatmaps (not weighted by status).
        keypoints: ``(B, T, K, 2)``.
        status: ``(B, T, K)``.
        kappa: conditional-entropy weight in ``[0, 1]``.
        movement_weight: ``m_d >= 0``.
        area: ``A_h > 0``.
        reduction: "mean" | "sum" over pairs, or "none" for ``(B, T-1)``.
        keypoint_reduction: "sum" over the K keypoints (the paper's Eq. 8) or "mean".

    Example:
        >>> e = torch.rand(1, 2, 6, 6)
        >>> h = torch.ones(1, 2, 1, 6, 6)  # the keypoint covers everything at t-1 and t
        >>> information_transport_loss(e, h, torch.zeros(1, 2, 1, 2), torch.ones(1, 2, 1), area=10.0).item()
        0.0
    """
    b, t, hh, ww = _check_window(entropy, "information_transport_loss")
    _check(heatmaps, "information_transport_loss: heatmaps")
    _check(keypoints, "information_transport_loss: keypoints")
    _check(status, "information_transport_loss: status")
    if heatmaps.ndim != 5 or heatmaps.shape[:2] != (b, t) or heatmaps.shape[-2:] != (hh, ww):
        raise ValueError(
            f"information_transport_loss: expected heatmaps of shape ({b}, {t}, K, {hh}, {ww}), got {tuple(heatmaps.shape)}"
        )
    k = heatmaps.shape[2]
    if tuple(keypoints.shape) != (b, t, k, 2):
        raise ValueError(f"information_transport_loss: expected keypoints of shape {(b, t, k, 2)}, got {tuple(keypoints.shape)}")
    if tuple(status.shape) != (b, t, k):
        raise ValueError(f"information_transport_loss: expected status of shape {(b, t, k)}, got {tuple(status.shape)}")
    if not 0.0 <= kappa <= 1.0:
        raise ValueError(f"information_transport_loss: expected 0 <= kappa <= 1, got {kappa}")
    if not area > 0:
        raise ValueError(f"information_transport_loss: expected area > 0, got {area}")
    if keypoint_reduction not in ("sum", "mean"):
        raise ValueError(
            f"information_transport_loss: expected keypoint_reduction 'sum' or 'mean', got {keypoint_reduction!r}"
        )
    e_now = entropy[:, 1:, None]  # (B, T-1, 1, h, w)
    e_prev = entropy[:, :-1, None]
    h_now, h_prev = heatmaps[:, 1:], heatmaps[:, :-1]  # (B, T-1, K, h, w)
    # sum(E_t - MI) = sum relu(E_t - R), and E_t - R = (1 - h_t)(E_t - kappa E_c - E_{t-1}(1 - h_{t-1})),
    # so the K-sized work is a few elementwise ops (same values and gradients as the direct form)
    residual = e_now - kappa * conditional_entropy(e_now, e_prev)  # (B, T-1, 1, h, w)
    deficit = (1.0 - h_now) * F.relu(residual - e_prev * (1.0 - h_prev))
    info_cost = deficit.sum(dim=(-2, -1)) / area  # (B, T-1, K)
    movement = torch.linalg.vector_norm(keypoints[:, 1:] - keypoints[:, :-1], dim=-1)
    cost = info_cost + movement_weight * movement * status[:, 1:] * status[:, :-1]
    per_pair = cost.sum(dim=-1) if keypoint_reduction == "sum" else cost.mean(dim=-1)
    return _reduce(per_pair, reduction, "information_transport_loss")


# --------------------------------------------------------------------------------------------
# Sec. 2.2.3: auxiliary losses and the total
# --------------------------------------------------------------------------------------------


def overlap_loss(
    gaussians: torch.Tensor, beta: float = 4.0, reduction: str = "mean", status: torch.Tensor | None = None
) -> torch.Tensor:
    """Overlapping loss of Sec. 2.2.3: ``L_O = relu(max_{x,y} sum_k G_k - beta) / K``.

    The paper prints ``min(max(sum G) - beta, 0) / K``, which is never positive and so could
    not penalise anything; its text ("a lower bound beta to allow occlusion") and the authors'
    runs (the term "stays at zero" while the peak is below beta) give the hinge used here.

    With ``status`` the sum runs over ``s_k G_k`` (only active keypoints may not pile up; an
    extension for keypoint economy, not in the paper): the gradient with respect to ``s_k`` is
    ``G_k(x*, y*) / K >= 0`` at the peak ``(x*, y*)``, so it lowers the status of the keypoints
    stacked there as well as pushing them apart.

    Args:
        gaussians: ``(..., K, h, w)`` Gaussians (:func:`mint_rl.ops.gaussian_maps`).
        beta: allowed peak of the summed Gaussians.
        reduction: "mean" | "sum" over frames, or "none" for ``(...)``.
        status: optional ``(..., K)`` status weights in ``[0, 1]``.

    Example:
        >>> g = torch.ones(1, 5, 3, 3)  # five keypoints on top of each other
        >>> round(overlap_loss(g, beta=4.0).item(), 4)
        0.2
    """
    _check(gaussians, "overlap_loss")
    if gaussians.ndim < 3:
        raise ValueError(f"overlap_loss: expected gaussians of shape (..., K, h, w), got {tuple(gaussians.shape)}")
    k = gaussians.shape[-3]
    if status is not None:
        _check(status, "overlap_loss: status")
        if tuple(status.shape) != tuple(gaussians.shape[:-2]):
            raise ValueError(
                f"overlap_loss: expected status of shape {tuple(gaussians.shape[:-2])}, got {tuple(status.shape)}"
            )
        gaussians = gaussians * status[..., None, None]
    peak = gaussians.sum(dim=-3).flatten(-2).amax(dim=-1)
    return _reduce(F.relu(peak - beta) / k, reduction, "overlap_loss")


def active_status_loss(status: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Active status loss of Sec. 2.2.3: ``L_S = sum_k s_k / K`` (fraction of active keypoints).

    Args:
        status: ``(..., K)`` in ``[0, 1]``.

    Example:
        >>> active_status_loss(torch.tensor([[1.0, 0.0, 1.0, 0.0]])).item()
        0.5
    """
    _check(status, "active_status_loss")
    if status.ndim < 1 or status.shape[-1] < 1:
        raise ValueError(f"active_status_loss: expected status of shape (..., K), got {tuple(status.shape)}")
    return _reduce(status.mean(dim=-1), reduction, "active_status_loss")


def redundancy_loss(
    entropy: torch.Tensor, heatmaps: torch.Tensor, status: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Redundancy of active keypoints (an extension for keypoint economy, not in the paper).

    For keypoint ``k`` with heatmap ``h_k``, status ``s_k`` and entropy ``E``:

    * covered entropy ``C_k = sum_x E(x) h_k(x)``
    * of it, covered by the other active keypoints too:
      ``D_k = sum_x E(x) h_k(x) min(1, sum_{j != k} s_j h_j(x))``
    * ``L_R = (1 / K) sum_k s_k D_k / (C_k + eps)``

    ``D_k / C_k`` is the fraction of keypoint ``k``'s information that is already contained in
    the others' ("deactivating excessive ones when the information is well contained", Sec. 1).
    Unlike the status loss (Sec. 2.2.3), which charges every active keypoint the same, it costs
    nothing for a keypoint alone on an object, however small the object's entropy; it charges a
    keypoint that duplicates another one in full, and the gradient ``D_k / C_k >= 0`` with
    respect to ``s_k`` switches it off (with a straight-through status:
    :func:`mint_rl.ops.active_status`). A keypoint over no entropy has ``C_k = 0`` and costs
    nothing here (the status loss switches it off).

    Args:
        entropy: ``(B, T, h, w)`` (or ``(B, h, w)``).
        heatmaps: ``(B, T, K, h, w)`` per-keypoint heatmaps.
        status: ``(B, T, K)``.
        reduction: "mean" | "sum" over frames, or "none".

    Example:
        >>> e = torch.ones(1, 1, 4, 4)
        >>> h = torch.ones(1, 1, 2, 4, 4)  # two keypoints covering the same entropy
        >>> redundancy_loss(e, h, torch.tensor([[[1.0, 1.0]]])).item()
        1.0
        >>> redundancy_loss(e, h, torch.tensor([[[1.0, 0.0]]])).item()  # the other one is off
        0.0
    """
    _check(entropy, "redundancy_loss: entropy")
    _check(heatmaps, "redundancy_loss: heatmaps")
    _check(status, "redundancy_loss: status")
    if heatmaps.ndim != entropy.ndim + 1 or heatmaps.shape[:-3] != entropy.shape[:-2] or heatmaps.shape[-2:] != entropy.shape[-2:]:
        raise ValueError(
            f"redundancy_loss: expected heatmaps of shape {(*entropy.shape[:-2], 'K', *entropy.shape[-2:])} for entropy "
            f"of shape {tuple(entropy.shape)}, got {tuple(heatmaps.shape)}"
        )
    if tuple(status.shape) != tuple(heatmaps.shape[:-2]):
        raise ValueError(f"redundancy_loss: expected status of shape {tuple(heatmaps.shape[:-2])}, got {tuple(status.shape)}")
    weighted = entropy.unsqueeze(-3) * heatmaps  # (..., K, h, w)
    covered = weighted.sum(dim=(-2, -1))
    active_maps = heatmaps * status[..., None, None]
    others = torch.clamp(active_maps.sum(dim=-3, keepdim=True) - active_maps, 0.0, 1.0)
    shared = (weighted * others).sum(dim=(-2, -1))
    per_frame = (status * shared / (covered + _EPS)).mean(dim=-1)
    return _reduce(per_frame, reduction, "redundancy_loss")


def mint_loss(
    keypoints: torch.Tensor,
    status: torch.Tensor,
    entropy: torch.Tensor,
    config: LossConfig | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The total MINT loss, the paper's Eq. 9, for windows of ``T`` consecutive frames.

    ``L = l_ME ME + l_MCE MCE + l_IT IT + l_O O + (1 - ME) l_S S`` with ME, O and S averaged
    over all ``B x T`` frames and MCE, IT over the ``B x (T-1)`` consecutive pairs.
    Gaussians and heatmaps are built on the entropy's ``(h, w)`` grid (the feature-map size)
    with ``config.sigma`` (call :meth:`LossConfig.scaled_to` first if the maps differ from
    ``config.reference_map_size``).

    The status weight ``(1 - ME)`` is **detached**: the paper uses it to *schedule* the status
    term by the covered entropy; letting gradients through it would reward a larger ME (less
    coverage) whenever keypoints are active.

    Args:
        keypoints: ``(B, T, K, 2)`` normalised ``(x, y)``.
        status: ``(B, T, K)`` in ``[0, 1]``.
        entropy: ``(B, T, h, w)`` local entropy at the feature-map size (no gradient needed).
        config: :class:`LossConfig` (default: the CLEVRER preset values).

    Returns:
        ``(loss, terms)``: the scalar loss and a dict of detached scalars ``me``, ``mce``,
        ``it``, ``overlap``, ``status``, ``redundancy``, ``active`` (mean hard-active fraction) and ``total``.
        Temporal terms with weight 0 are skipped and reported as 0.

    Example:
        >>> loss, terms = mint_loss(torch.zeros(2, 3, 4, 2), torch.ones(2, 3, 4), torch.rand(2, 3, 16, 16),
        ...                         LossConfig(sigma=2.0, reference_map_size=(16, 16)))
        >>> loss.shape, sorted(terms)
        (torch.Size([]), ['active', 'it', 'mce', 'me', 'overlap', 'redundancy', 'status', 'total'])
    """
    config = LossConfig() if config is None else config
    _check(keypoints, "mint_loss: keypoints")
    _check(status, "mint_loss: status")
    _check(entropy, "mint_loss: entropy")
    if entropy.ndim != 4:
        raise ValueError(f"mint_loss: expected entropy of shape (B, T, h, w), got {tuple(entropy.shape)}")
    b, t, h, w = entropy.shape
    if keypoints.ndim != 4 or keypoints.shape[:2] != (b, t) or keypoints.shape[-1] != 2:
        raise ValueError(f"mint_loss: expected keypoints of shape ({b}, {t}, K, 2), got {tuple(keypoints.shape)}")
    k = keypoints.shape[2]
    if tuple(status.shape) != (b, t, k):
        raise ValueError(f"mint_loss: expected status of shape {(b, t, k)}, got {tuple(status.shape)}")
    if t < 2 and config.uses_temporal:
        raise ValueError(
            f"mint_loss: expected windows of T >= 2 frames for the temporal terms (MCE, IT), got T={t}; "
            "use LossConfig.without_temporal() for single frames"
        )
    entropy = entropy.detach().to(keypoints.dtype)
    gaussians = gaussian_maps(keypoints, h, w, config.sigma)  # (B, T, K, h, w)
    heatmaps = threshold_gaussians(gaussians, config.eta, config.tau)
    mask = aggregated_mask(heatmaps, status)  # (B, T, h, w)

    me = masked_entropy_loss(entropy, mask)
    zero = me.new_zeros(())
    mce = masked_conditional_entropy_loss(entropy, mask) if config.lambda_mce > 0 else zero
    it = (
        information_transport_loss(
            entropy,
            heatmaps,
            keypoints,
            status,
            kappa=config.kappa,
            movement_weight=config.movement_weight,
            area=config.heatmap_area,
            keypoint_reduction=config.it_keypoint_reduction,
        )
        if config.lambda_it > 0
        else zero
    )
    overlap_status = status if config.overlap_keypoints == "active" else None
    overlap = overlap_loss(gaussians, config.beta, status=overlap_status) if config.lambda_overlap > 0 else zero
    status_term = active_status_loss(status)
    redundancy = redundancy_loss(entropy, heatmaps, status) if config.lambda_redundancy > 0 else zero
    total = (
        config.lambda_me * me
        + config.lambda_mce * mce
        + config.lambda_it * it
        + config.lambda_overlap * overlap
        + (1.0 - me.detach()) * config.lambda_status * status_term
        + config.lambda_redundancy * redundancy
    )
    terms = {
        "total": total.detach(),
        "me": me.detach(),
        "mce": mce.detach(),
        "it": it.detach(),
        "overlap": overlap.detach(),
        "status": status_term.detach(),
        "redundancy": redundancy.detach(),
        "active": (status.detach() > 0.5).float().mean(),
    }
    return total, terms


class MintLoss(nn.Module):
    """Module twin of :func:`mint_loss` holding a :class:`LossConfig`.

    Example:
        >>> crit = MintLoss(loss_preset("magical", "wo-temp").scaled_to((16, 16)))
        >>> loss, terms = crit(torch.zeros(1, 1, 3, 2), torch.ones(1, 1, 3), torch.rand(1, 1, 16, 16))
        >>> float(terms["it"])
        0.0
    """

    def __init__(self, config: LossConfig | None = None) -> None:
        super().__init__()
        self.config = LossConfig() if config is None else config

    def forward(
        self, keypoints: torch.Tensor, status: torch.Tensor, entropy: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return mint_loss(keypoints, status, entropy, self.config)

    def extra_repr(self) -> str:
        return repr(self.config)


# --------------------------------------------------------------------------------------------
# Frames -> entropy at the heatmap size
# --------------------------------------------------------------------------------------------


def prepare_frames_for_entropy(
    frames: torch.Tensor,
    size: tuple[int, int],
    *,
    sharpen_below_width: int = 100,
    sharpness_factor: float = 10.0,
) -> torch.Tensor:
    """Frames as the authors feed them to the entropy layer inside the loss.

    1. Bilinear resize to the heatmap size ``(h, w)`` (``align_corners=True``, matching the
       keypoint convention: the outer pixel centres of the frame and of the map coincide).
    2. If the **input** width is below ``sharpen_below_width``: torchvision-style
       ``adjust_sharpness(x / 255, sharpness_factor) * 255``, rounded
       (:func:`mint_rl.ops.adjust_sharpness`).

    Args:
        frames: ``(..., 3, H, W)`` uint8 or float on 0..255.
        size: ``(h, w)`` target (feature-map) size.

    Returns:
        ``(..., 3, h, w)`` float32 on 0..255.

    Example:
        >>> x = torch.full((2, 3, 3, 96, 96), 200, dtype=torch.uint8)
        >>> prepare_frames_for_entropy(x, (135, 135)).shape
        torch.Size([2, 3, 3, 135, 135])
    """
    _check(frames, "prepare_frames_for_entropy")
    if frames.ndim < 3 or frames.shape[-3] != 3:
        raise ValueError(f"prepare_frames_for_entropy: expected frames of shape (..., 3, H, W), got {tuple(frames.shape)}")
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"prepare_frames_for_entropy: expected size (h, w) > 0, got {size}")
    if frames.dtype != torch.uint8 and not frames.is_floating_point():
        raise ValueError(f"prepare_frames_for_entropy: expected uint8 or float frames, got {frames.dtype}")
    lead, (height, width) = frames.shape[:-3], frames.shape[-2:]
    x = frames.reshape(-1, 3, height, width).float()
    if (height, width) != tuple(size):
        x = F.interpolate(x, size=tuple(int(s) for s in size), mode="bilinear", align_corners=True)
        x = x.clamp_(0.0, 255.0)  # bilinear weights can overshoot 255 by float rounding
    if width < sharpen_below_width:
        x = torch.round(adjust_sharpness(torch.clamp(x / 255.0, 0.0, 1.0), sharpness_factor) * 255.0)
    return x.reshape(*lead, 3, *x.shape[-2:])


@torch.no_grad()
def entropy_targets(frames: torch.Tensor, size: tuple[int, int], config: LossConfig | None = None) -> torch.Tensor:
    """Local entropy ``E(I_t)`` of frames at the heatmap size, as the MINT loss uses it.

    :func:`prepare_frames_for_entropy` then :func:`mint_rl.entropy.local_entropy` with
    ``config.region_size`` and ``config.bandwidth`` (imported lazily; no autograd graph).

    Args:
        frames: ``(..., 3, H, W)`` uint8 or float on 0..255 (e.g. ``(B, T, 3, H, W)``).
        size: ``(h, w)`` feature-map size (``DetectorConfig.map_size_for(H, W)``).

    Returns:
        ``(..., h, w)`` float32 entropy in nats.
    """
    from mint_rl.entropy import local_entropy

    config = LossConfig() if config is None else config
    prepared = prepare_frames_for_entropy(
        frames, size, sharpen_below_width=config.sharpen_below_width, sharpness_factor=config.sharpness_factor
    )
    return local_entropy(prepared, region_size=config.region_size, bandwidth=config.bandwidth)
