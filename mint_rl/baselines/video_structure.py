"""Video Structure (Minderer et al., 2019): keypoints from reconstructing videos (MINT paper App. E.3).

A keypoint encoder ``phi_det`` maps each frame (with two coordinate channels appended) to K
positive heatmaps (Softplus); a keypoint is the heatmap-weighted mean of the grid and its
intensity the heatmap's mean, divided by the largest mean over the keypoints of that frame.
Each keypoint becomes a Gaussian map scaled by its intensity, and a decoder ``phi_rec``
reconstructs frame ``v_t`` from the Gaussians of frame ``t``, appearance features and Gaussians
of the first frame ``v_1`` and coordinate channels; a skip connection adds ``v_1`` to its output,
so it predicts ``v_t - v_1``. Losses (MINT paper App. E.3):

* reconstruction ``L_image = sum_t ||v_t - v_hat_t||^2`` (0.5 x the sum of squared errors per
  frame, weight 0.01);
* temporal separation ``L_sep = sum_{k != k'} exp(-d_kk' / (2 sigma^2)) / (K (K - 1))`` with
  ``d_kk' = mean_t ||(x_tk - mean_t x_k) - (x_tk' - mean_t x_k')||^2`` (weight 0.02, sigma 0.002);
* sparsity, an L1 penalty on the keypoint intensities (weight 0.1).

A keypoint is active when its intensity relative to the strongest keypoint of the frame is at
least a threshold (0.9 in the MINT authors' comparison).

As the MINT authors ran it (NOTES, "Baselines"): 64x64 frames plus two coordinate channels;
a conv stack of 32 filters, two stride-2 scales (64, 128 filters), a 1x1 conv to K = 25 heatmaps
+ Softplus, so 16x16 heatmaps; Gaussians of std 1.5 grid cells; decoder with two x2 upsamplings
to 64x64; 16-frame windows, batch 16, Adam lr 1e-3, weight decay 5e-5, gradient norm clipped at 1.

Here the sparsity penalty is on the normalised intensities (``mu_k / max_k' mu_k'``, the
quantity the activity threshold reads; ``sparsity_normalized=True``): an L1 penalty on the raw
means can be met by shrinking every heatmap together, which changes neither the keypoints nor
which of them are active. ``sparsity_normalized=False`` penalises the raw means (the paper's
wording). Keypoints are reported in the input image's normalised coordinates: the 16x16 map's
pixel ``i`` is centred on image pixel ``4 i`` of the 64-pixel input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from mint_rl._config import ConfigMixin
from mint_rl.baselines.common import (
    BaselineDetector,
    check_baseline_frames,
    map_to_image_affine,
    normalized_gaussians,
    prepare_frames,
)
from mint_rl.models import DetectorOutput

__all__ = [
    "VideoStructureConfig",
    "VideoStructure",
    "coordinate_channels",
    "heatmap_keypoints",
    "activity_status",
    "intensity_gaussians",
    "temporal_separation_loss",
    "sparsity_loss",
    "reconstruction_loss",
]

CHECKPOINT_FORMAT = "mint_rl.VideoStructure"


@dataclass
class VideoStructureConfig(ConfigMixin):
    """Hyperparameters of :class:`VideoStructure` (defaults: the MINT authors' comparison run).

    Attributes:
        in_channels: ``C``.
        num_keypoints: ``K``.
        image_size: ``(height, width)`` frames are resized to (64x64).
        initial_filters: filters of the first scale (32); each further scale doubles them.
        num_scales: resolutions of the encoder (3: 64, 32, 16 for a 64-pixel input).
        layers_per_scale: extra 3x3 convolutions per scale (encoder and decoder).
        heatmap_std: std of the decoder's Gaussian maps, in heatmap grid cells (1.5).
        leaky_slope: LeakyReLU slope.
        activity_threshold: active iff intensity / max intensity >= this (0.9).
        reconstruction_weight, separation_weight, sparsity_weight: loss weights (0.01, 0.02, 0.1).
        separation_sigma: ``sigma`` of the separation loss in normalised units (0.002).
        sparsity_normalized: L1 on the normalised intensities (default) or on the raw heatmap means.
    """

    in_channels: int = 3
    num_keypoints: int = 25
    image_size: tuple[int, int] = (64, 64)
    initial_filters: int = 32
    num_scales: int = 3
    layers_per_scale: int = 2
    heatmap_std: float = 1.5
    leaky_slope: float = 0.2
    activity_threshold: float = 0.9
    reconstruction_weight: float = 0.01
    separation_weight: float = 0.02
    separation_sigma: float = 0.002
    sparsity_weight: float = 0.1
    sparsity_normalized: bool = True

    def __post_init__(self) -> None:
        for name in ("in_channels", "num_keypoints", "initial_filters", "num_scales"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"VideoStructureConfig.{name}: expected >= 1, got {getattr(self, name)!r}")
            setattr(self, name, int(getattr(self, name)))
        if int(self.layers_per_scale) < 0:
            raise ValueError(f"VideoStructureConfig.layers_per_scale: expected >= 0, got {self.layers_per_scale!r}")
        self.layers_per_scale = int(self.layers_per_scale)
        try:
            size = tuple(int(v) for v in self.image_size)
        except TypeError:
            size = ()
        factor = 2 ** (self.num_scales - 1)
        if len(size) != 2 or min(size) < 2 * factor or any(s % factor for s in size):
            raise ValueError(f"VideoStructureConfig.image_size: expected (height, width) divisible by {factor} and "
                             f">= {2 * factor} for {self.num_scales} scales, got {self.image_size!r}")
        self.image_size = size  # type: ignore[assignment]
        if not 0.0 < float(self.activity_threshold) <= 1.0:
            raise ValueError(f"VideoStructureConfig.activity_threshold: expected in (0, 1], got {self.activity_threshold!r}")
        for name in ("heatmap_std", "separation_sigma"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"VideoStructureConfig.{name}: expected > 0, got {getattr(self, name)!r}")
        for name in ("reconstruction_weight", "separation_weight", "sparsity_weight"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"VideoStructureConfig.{name}: expected >= 0, got {getattr(self, name)!r}")
        for name in ("heatmap_std", "separation_sigma", "reconstruction_weight", "separation_weight",
                     "sparsity_weight", "activity_threshold", "leaky_slope"):
            setattr(self, name, float(getattr(self, name)))
        self.sparsity_normalized = bool(self.sparsity_normalized)

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """``(h, w)`` of the heatmaps (16x16 for 64x64 frames and 3 scales)."""
        factor = 2 ** (self.num_scales - 1)
        return self.image_size[0] // factor, self.image_size[1] // factor


def coordinate_channels(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """``(B, 2, h, w)`` x and y coordinates on a ``linspace(-1, 1)`` grid (Minderer et al., Sec. 3.1).

    Example:
        >>> coordinate_channels(1, 2, 3, torch.zeros(1))[0, 0]
        tensor([[-1.,  0.,  1.],
                [-1.,  0.,  1.]])
    """
    ys, xs = torch.meshgrid(torch.linspace(-1.0, 1.0, height, device=like.device, dtype=like.dtype),
                            torch.linspace(-1.0, 1.0, width, device=like.device, dtype=like.dtype), indexing="ij")
    return torch.stack([xs, ys])[None].expand(batch, 2, height, width)


def heatmap_keypoints(heatmaps: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keypoints and intensities of positive heatmaps (Minderer et al. 2019, Sec. 3.1).

    ``x_k = sum_ij h_kij grid_ij / sum_ij h_kij``; raw intensity ``mu_k = mean_ij h_kij``;
    intensity ``mu_k / max_k' mu_k'`` (per frame, over the keypoints).

    Args:
        heatmaps: ``(..., K, h, w)`` non-negative.

    Returns:
        ``(keypoints (..., K, 2), intensity (..., K) in [0, 1], raw mu (..., K))``.

    Example:
        >>> h = torch.zeros(2, 3, 3); h[0, 0, 2] = 4.0; h[1, 1, 1] = 1.0
        >>> kp, inten, mu = heatmap_keypoints(h)
        >>> kp.tolist(), inten.tolist()
        ([[1.0, -1.0], [0.0, 0.0]], [1.0, 0.25])
    """
    if not isinstance(heatmaps, torch.Tensor) or heatmaps.ndim < 3:
        got = tuple(heatmaps.shape) if isinstance(heatmaps, torch.Tensor) else type(heatmaps).__name__
        raise ValueError(f"heatmap_keypoints: expected heatmaps of shape (..., K, h, w), got {got}")
    h, w = heatmaps.shape[-2:]
    xs = torch.linspace(-1.0, 1.0, w, device=heatmaps.device, dtype=heatmaps.dtype)
    ys = torch.linspace(-1.0, 1.0, h, device=heatmaps.device, dtype=heatmaps.dtype)
    mass = heatmaps.sum(dim=(-2, -1)).clamp_min(eps)
    x = (heatmaps.sum(-2) * xs).sum(-1) / mass
    y = (heatmaps.sum(-1) * ys).sum(-1) / mass
    mu = heatmaps.mean(dim=(-2, -1))
    intensity = mu / mu.max(dim=-1, keepdim=True).values.clamp_min(eps)
    return torch.stack([x, y], dim=-1), intensity, mu


def activity_status(intensity: torch.Tensor, threshold: float = 0.9) -> torch.Tensor:
    """Status of Video Structure keypoints: ``1.0`` where the normalised intensity is ``>= threshold``, else ``0.0``.

    Example:
        >>> activity_status(torch.tensor([1.0, 0.95, 0.9, 0.89, 0.0]))
        tensor([1., 1., 1., 0., 0.])
    """
    return (intensity >= threshold).to(intensity.dtype if intensity.is_floating_point() else torch.float32)


def intensity_gaussians(keypoints: torch.Tensor, intensity: torch.Tensor, height: int, width: int, std: float) -> torch.Tensor:
    """Gaussian maps of keypoints scaled by their intensity: ``mu_k exp(-d^2 / (2 std^2))`` (``std`` in normalised units).

    Example:
        >>> g = intensity_gaussians(torch.zeros(1, 2), torch.tensor([0.5]), 3, 3, std=1.0)
        >>> g[0, 1, 1].item()
        0.5
    """
    return normalized_gaussians(keypoints, height, width, std) * intensity[..., None, None]


def temporal_separation_loss(keypoints: torch.Tensor, sigma: float = 0.002) -> torch.Tensor:
    """Temporal separation loss (Minderer et al. 2019, Sec. 3.3; MINT paper App. E.3).

    Trajectories are centred over time, ``d_kk' = mean_t ||c_tk - c_tk'||^2``, and
    ``L = sum_{k != k'} exp(-d_kk' / (2 sigma^2)) / (K (K - 1))``, averaged over the batch: 1 when
    all keypoints move alike, falling towards 0 as their trajectories move apart.

    Args:
        keypoints: ``(B, T, K, 2)``.

    Example:
        >>> still = torch.zeros(1, 4, 3, 2)
        >>> temporal_separation_loss(still).item()
        1.0
    """
    if not isinstance(keypoints, torch.Tensor) or keypoints.ndim != 4 or keypoints.shape[-1] != 2:
        got = tuple(keypoints.shape) if isinstance(keypoints, torch.Tensor) else type(keypoints).__name__
        raise ValueError(f"temporal_separation_loss: expected keypoints of shape (B, T, K, 2), got {got}")
    k = keypoints.shape[2]
    if k < 2:
        return keypoints.new_zeros(())
    centred = keypoints - keypoints.mean(dim=1, keepdim=True)
    diff = centred[:, :, :, None, :] - centred[:, :, None, :, :]  # (B, T, K, K, 2)
    d = (diff**2).sum(-1).mean(dim=1)  # (B, K, K)
    pair = torch.exp(-d / (2.0 * sigma * sigma))
    off_diagonal = pair.sum(dim=(-2, -1)) - pair.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (off_diagonal / (k * (k - 1))).mean()


def sparsity_loss(intensity: torch.Tensor) -> torch.Tensor:
    """L1 of the keypoint intensities ``sum_k |mu_k|``, averaged over frames (Minderer et al. 2019).

    Example:
        >>> sparsity_loss(torch.tensor([[1.0, 0.5], [1.0, 0.0]]))
        tensor(1.2500)
    """
    return intensity.abs().sum(dim=-1).mean()


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``0.5 x`` the sum of squared errors per frame, averaged over frames (``(..., C, H, W)`` images).

    Example:
        >>> reconstruction_loss(torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2))
        tensor(2.)
    """
    if reconstruction.shape != target.shape:
        raise ValueError(f"reconstruction_loss: expected a reconstruction of shape {tuple(target.shape)}, "
                         f"got {tuple(reconstruction.shape)}")
    return 0.5 * ((reconstruction - target) ** 2).flatten(-3).sum(-1).mean()


def _conv(c_in: int, c_out: int, slope: float, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.LeakyReLU(slope))


class _Encoder(nn.Sequential):
    """Conv stack: ``initial_filters`` at full size, then per further scale a stride-2 conv doubling the filters."""

    def __init__(self, c_in: int, cfg: VideoStructureConfig) -> None:
        f, slope = cfg.initial_filters, cfg.leaky_slope
        layers: list[nn.Module] = [_conv(c_in, f, slope)] + [_conv(f, f, slope) for _ in range(cfg.layers_per_scale)]
        for _ in range(cfg.num_scales - 1):
            layers.append(_conv(f, 2 * f, slope, stride=2))
            f *= 2
            layers += [_conv(f, f, slope) for _ in range(cfg.layers_per_scale)]
        super().__init__(*layers)
        self.out_channels = f

    @staticmethod
    def layer_geometry(cfg: VideoStructureConfig) -> list[tuple[int, int, int]]:
        per = [(3, 1, 1)] * (1 + cfg.layers_per_scale)
        for _ in range(cfg.num_scales - 1):
            per += [(3, 2, 1)] + [(3, 1, 1)] * cfg.layers_per_scale
        return per


class _Decoder(nn.Module):
    """Conv stack at the heatmap size, then per scale a bilinear x2 upsampling and convs halving the filters; linear 1x1 output."""

    def __init__(self, c_in: int, c_out: int, cfg: VideoStructureConfig) -> None:
        super().__init__()
        f, slope = cfg.initial_filters * 2 ** (cfg.num_scales - 1), cfg.leaky_slope
        self.stem = nn.Sequential(_conv(c_in, f, slope), *[_conv(f, f, slope) for _ in range(cfg.layers_per_scale)])
        ups = []
        for _ in range(cfg.num_scales - 1):
            ups.append(nn.Sequential(_conv(f, f // 2, slope), *[_conv(f // 2, f // 2, slope) for _ in range(cfg.layers_per_scale)]))
            f //= 2
        self.ups = nn.ModuleList(ups)
        self.out = nn.Conv2d(f, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.ups:
            x = block(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        return self.out(x)


class _KeypointPath(nn.Module):
    """The keypoint encoder alone: what the keypoint wrappers need (no decoder)."""

    def __init__(self, model: "VideoStructure") -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> DetectorOutput:
        return self.model(frames)


class VideoStructure(BaselineDetector):
    """Video Structure keypoint detector (Minderer et al. 2019) as in the MINT paper's comparison.

    ``forward`` takes ``(B, C, H, W)`` or ``(B, T, C, H, W)`` frames on the 0..255 scale (resized
    to ``image_size`` when they differ) and returns :class:`~mint_rl.models.DetectorOutput`:
    keypoints ``(..., K, 2)`` in the input's normalised coordinates, status ``(..., K)`` = 1 where
    the normalised intensity reaches ``activity_threshold``, else 0, and the ``(..., K, 16, 16)`` heatmaps.

    Example:
        >>> model = VideoStructure(VideoStructureConfig(num_keypoints=4, initial_filters=4, image_size=(16, 16)))
        >>> out = model(torch.zeros(2, 3, 3, 16, 16, dtype=torch.uint8))
        >>> out.keypoints.shape, out.status.shape, out.feature_maps.shape
        (torch.Size([2, 3, 4, 2]), torch.Size([2, 3, 4]), torch.Size([2, 3, 4, 4, 4]))
    """

    CHECKPOINT_FORMAT = CHECKPOINT_FORMAT
    CONFIG_CLASS = VideoStructureConfig
    KEYPOINT_MODULES = ("encoder", "heatmap_head")

    def __init__(self, config: Optional[VideoStructureConfig] = None, **overrides: Any) -> None:
        super().__init__()
        config = VideoStructureConfig() if config is None else config
        if not isinstance(config, VideoStructureConfig):
            raise TypeError(f"VideoStructure: expected a VideoStructureConfig, got {type(config).__name__}")
        if overrides:
            config = config.replace(**overrides)
        self.config = config
        c, k = config.in_channels, config.num_keypoints
        self.encoder = _Encoder(c + 2, config)
        self.heatmap_head = nn.Sequential(nn.Conv2d(self.encoder.out_channels, k, 1), nn.Softplus())
        self.appearance = _Encoder(c + 2, config)
        self.decoder = _Decoder(2 * k + self.appearance.out_channels + 2, c, config)
        h, w = config.image_size
        layers = _Encoder.layer_geometry(config)
        ax, ay = map_to_image_affine(w, layers), map_to_image_affine(h, layers)
        self.register_buffer("_kp_scale", torch.tensor([ax[0], ay[0]]), persistent=False)
        self.register_buffer("_kp_offset", torch.tensor([ax[1], ay[1]]), persistent=False)
        hh, hw = config.heatmap_size
        # std in grid cells -> normalised units of the heatmap grid (the same for x and y on square maps)
        self._std = config.heatmap_std * 2.0 / max(max(hh, hw) - 1, 1)

    @property
    def method(self) -> str:
        return "video-structure"

    def _with_coords(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, coordinate_channels(x.shape[0], x.shape[-2], x.shape[-1], x)], dim=1)

    def detect(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised ``(N, C, H, W)`` images -> heatmaps ``(N, K, h, w)``, keypoints on the map grid, intensity, raw mu."""
        heatmaps = self.heatmap_head(self.encoder(self._with_coords(x)))
        keypoints, intensity, mu = heatmap_keypoints(heatmaps)
        return heatmaps, keypoints, intensity, mu

    def forward(self, frames: torch.Tensor) -> DetectorOutput:
        """Keypoints ``(..., K, 2)``, status ``(..., K)`` and heatmaps of ``(B[, T], C, H, W)`` frames."""
        check_baseline_frames(frames, self.config.in_channels, "VideoStructure")
        lead = frames.shape[:-3]
        x = prepare_frames(frames.reshape(-1, *frames.shape[-3:]), self.config.image_size)
        heatmaps, keypoints, intensity, _ = self.detect(x)
        keypoints = keypoints * self._kp_scale + self._kp_offset
        status = activity_status(intensity, self.config.activity_threshold)
        return DetectorOutput(keypoints.reshape(*lead, *keypoints.shape[1:]), status.reshape(*lead, -1),
                              heatmaps.reshape(*lead, *heatmaps.shape[1:]))

    def reconstruct(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reconstruct every frame of ``(B, T, C, H, W)`` windows from its keypoints and the first frame.

        Returns:
            dict with ``reconstruction`` and ``target`` ``(B, T, C, h, w)`` (``x/255 - 0.5``),
            ``keypoints`` ``(B, T, K, 2)`` on the heatmap grid, ``intensity`` and ``mu`` ``(B, T, K)``.
        """
        self._check_trainable("reconstruct")
        b, t = frames.shape[:2]
        x = prepare_frames(frames.reshape(b * t, *frames.shape[2:]), self.config.image_size)
        _, keypoints, intensity, mu = self.detect(x)
        hh, hw = self.config.heatmap_size
        gauss = intensity_gaussians(keypoints, intensity, hh, hw, self._std).reshape(b, t, -1, hh, hw)
        x = x.reshape(b, t, *x.shape[1:])
        first = x[:, 0]
        appearance = self.appearance(self._with_coords(first))  # (B, F, hh, hw)
        per_frame = torch.cat([
            gauss,
            appearance[:, None].expand(b, t, *appearance.shape[1:]),
            gauss[:, :1].expand(b, t, *gauss.shape[2:]),
            coordinate_channels(b * t, hh, hw, x).reshape(b, t, 2, hh, hw),
        ], dim=2)
        delta = self.decoder(per_frame.reshape(b * t, *per_frame.shape[2:])).reshape(x.shape)
        return {"reconstruction": delta + first[:, None], "target": x,
                "keypoints": keypoints.reshape(b, t, -1, 2), "intensity": intensity.reshape(b, t, -1),
                "mu": mu.reshape(b, t, -1)}

    def training_loss(
        self, frames: torch.Tensor, generator: Optional[torch.Generator] = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Weighted reconstruction + temporal separation + sparsity losses of ``(B, T, C, H, W)`` windows.

        ``generator`` is unused (the loss is deterministic); it is accepted for the trainer's one call form.

        Returns:
            ``(loss, {"total", "reconstruction", "separation", "sparsity", "active"}, images)`` with
            ``images`` ``(B, 2, C, h, w)``: the last frame and its reconstruction (for logging).
        """
        check_baseline_frames(frames, self.config.in_channels, "VideoStructure.training_loss")
        self._check_trainable("training_loss")
        if frames.ndim != 5 or frames.shape[1] < 2:
            raise ValueError(f"VideoStructure.training_loss: expected (B, T >= 2, C, H, W) windows, got {tuple(frames.shape)}")
        cfg = self.config
        out = self.reconstruct(frames)
        rec = reconstruction_loss(out["reconstruction"], out["target"])
        sep = temporal_separation_loss(out["keypoints"], cfg.separation_sigma)
        sparse = sparsity_loss(out["intensity"] if cfg.sparsity_normalized else out["mu"])
        loss = cfg.reconstruction_weight * rec + cfg.separation_weight * sep + cfg.sparsity_weight * sparse
        active = activity_status(out["intensity"].detach(), cfg.activity_threshold).sum(-1).mean()
        terms = {"total": loss.detach(), "reconstruction": rec.detach(), "separation": sep.detach(),
                 "sparsity": sparse.detach(), "active": active}
        images = torch.stack([out["target"][:, -1], out["reconstruction"][:, -1].detach()], 1)
        return loss, terms, images

    def for_inference(self) -> _KeypointPath:
        """The keypoint encoder alone, for a frozen detector (the wrappers' entry point).

        Raises:
            ValueError: the detector is in training mode or has parameters requiring gradients.
        """
        self._check_inference_ready()
        return _KeypointPath(self)
