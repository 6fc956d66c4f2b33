"""Transporter (Kulkarni et al., 2019) and the MINT paper's Transporter-modified (Appendix E.3).

Transporter learns keypoints by reconstructing a target frame ``x_t`` from a source frame
``x_s``: a ConvNet ``Phi`` gives feature maps of both frames, a KeyNet ``Psi`` gives K
keypoints per frame (spatial soft-argmax of K maps), the keypoints become Gaussian heatmaps
``H``, and the features are *transported* (Kulkarni et al., Eq. 1; MINT paper App. E.3)

    Phi_hat = (1 - H_s) (1 - H_t) Phi(x_s) + H_t Phi(x_t),

which a refiner decodes into ``x_t``. Loss: ``10 x MSE(refined, x_t)``. Every keypoint is
always active (status 1).

As the MINT authors ran it (NOTES, "Baselines"): frames resized to 128x128 and scaled
``x/255 - 0.5``; ``Phi`` and ``Psi`` are 5 conv blocks each (kernels 7, 5, 4/s2, 3, 4/s2; BatchNorm
+ LeakyReLU(0.2); ``nf, nf, 2nf, 2nf, 4nf`` channels, nf = 25) giving 32x32 maps; ``Psi`` ends in a
1x1 conv to K maps; heatmaps ``exp(-d^2 inv_std^2)`` with ``inv_std = 10`` in ``[-1, 1]`` units,
summed over the keypoints; the refiner mirrors ``Phi`` with transposed convolutions back to
128x128 and a linear output. Adam, lr 1e-4, batch 8, pairs of frames from 8-frame windows.

**Transporter-modified** (MINT paper App. E.3: receptive field 7, 122x122 feature maps, for a
fair comparison with MINT's 3x3 entropy regions): ``Phi`` becomes three unpadded 3x3 conv
blocks (``nf, 2nf, 4nf`` channels), the heatmaps are rendered on its 122x122 grid, the refiner is
a 3x3 and a 5x5 transposed convolution back to 128x128; ``Psi`` is unchanged.

Keypoints are reported in the package's convention (normalised ``(x, y)`` of the input image,
:mod:`mint_rl.coords`): ``Psi``'s 32x32 map pixel ``i`` is centred on image pixel ``4 i + 1.5``,
so the soft-argmax on the map's ``linspace(-1, 1)`` grid is scaled by 124/127 (and mapped onto
the modified ``Phi``'s grid, centred on pixels ``3 .. 124``, for its heatmaps).
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
    ConvBlock,
    check_baseline_frames,
    conv_geometry,
    map_to_image_affine,
    prepare_frames,
    soft_argmax_normalized,
)
from mint_rl.models import DetectorOutput

__all__ = [
    "TRANSPORTER_VARIANTS",
    "TransporterConfig",
    "Transporter",
    "transporter_heatmaps",
    "feature_transport",
    "transporter_loss",
    "sample_frame_pairs",
]

TRANSPORTER_VARIANTS = ("original", "modified")
CHECKPOINT_FORMAT = "mint_rl.Transporter"
#: (kernel, stride, padding) of the 5 conv blocks of Phi and Psi (original)
ENCODER_LAYERS = ((7, 1, 3), (5, 1, 2), (4, 2, 1), (3, 1, 1), (4, 2, 1))
#: (kernel, stride, padding) of the modified Phi: three unpadded 3x3 convolutions (receptive field 7)
MODIFIED_FEATURE_LAYERS = ((3, 1, 0), (3, 1, 0), (3, 1, 0))


@dataclass
class TransporterConfig(ConfigMixin):
    """Hyperparameters of :class:`Transporter` (defaults: the MINT authors' CLEVRER run).

    Attributes:
        variant: ``"original"`` (Kulkarni et al.) or ``"modified"`` (MINT paper App. E.3).
        in_channels: ``C``.
        num_keypoints: ``K``.
        image_size: ``(height, width)`` frames are resized to (128x128).
        num_features: ``nf``; the blocks have ``nf, nf, 2nf, 2nf, 4nf`` channels.
        inv_std: heatmap ``exp(-d^2 inv_std^2)``, ``d`` in ``[-1, 1]`` units of the feature grid.
        leaky_slope: LeakyReLU slope.
        reconstruction_weight: the loss is ``weight x MSE`` (10).
    """

    variant: str = "original"
    in_channels: int = 3
    num_keypoints: int = 25
    image_size: tuple[int, int] = (128, 128)
    num_features: int = 25
    inv_std: float = 10.0
    leaky_slope: float = 0.2
    reconstruction_weight: float = 10.0

    def __post_init__(self) -> None:
        if self.variant not in TRANSPORTER_VARIANTS:
            raise ValueError(f"TransporterConfig.variant: expected one of {TRANSPORTER_VARIANTS}, got {self.variant!r}")
        for name in ("in_channels", "num_keypoints", "num_features"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TransporterConfig.{name}: expected >= 1, got {getattr(self, name)!r}")
            setattr(self, name, int(getattr(self, name)))
        try:
            size = tuple(int(v) for v in self.image_size)
        except TypeError:
            size = ()
        if len(size) != 2 or min(size) < 16:
            raise ValueError(f"TransporterConfig.image_size: expected (height, width) >= 16, got {self.image_size!r}")
        self.image_size = size  # type: ignore[assignment]
        for name in ("inv_std", "reconstruction_weight"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"TransporterConfig.{name}: expected > 0, got {getattr(self, name)!r}")
            setattr(self, name, float(getattr(self, name)))
        self.leaky_slope = float(self.leaky_slope)

    @property
    def method(self) -> str:
        return "transporter" if self.variant == "original" else "transporter-modified"


def transporter_heatmaps(keypoints: torch.Tensor, height: int, width: int, inv_std: float) -> torch.Tensor:
    """Gaussian heatmaps ``exp(-d^2 inv_std^2)`` of keypoints on a ``linspace(-1, 1)`` grid (Kulkarni et al., Sec. 3).

    Args:
        keypoints: ``(..., K, 2)`` normalised ``(x, y)`` on the heatmap's grid.

    Returns:
        ``(..., K, height, width)`` in ``(0, 1]``.

    Example:
        >>> h = transporter_heatmaps(torch.zeros(1, 2), 5, 5, inv_std=2.0)
        >>> h[0, 2, 2].item(), round(h[0, 2, 3].item(), 4)     # d = 0.5: exp(-1)
        (1.0, 0.3679)
    """
    if not isinstance(keypoints, torch.Tensor) or keypoints.ndim < 2 or keypoints.shape[-1] != 2:
        got = tuple(keypoints.shape) if isinstance(keypoints, torch.Tensor) else type(keypoints).__name__
        raise ValueError(f"transporter_heatmaps: expected keypoints of shape (..., K, 2), got {got}")
    xs = torch.linspace(-1.0, 1.0, width, device=keypoints.device, dtype=keypoints.dtype)
    ys = torch.linspace(-1.0, 1.0, height, device=keypoints.device, dtype=keypoints.dtype)
    gx = torch.exp(-((xs - keypoints[..., 0:1]) ** 2) * inv_std**2)
    gy = torch.exp(-((ys - keypoints[..., 1:2]) ** 2) * inv_std**2)
    return gy[..., :, None] * gx[..., None, :]


def feature_transport(
    source_features: torch.Tensor,
    target_features: torch.Tensor,
    source_heatmap: torch.Tensor,
    target_heatmap: torch.Tensor,
) -> torch.Tensor:
    """Feature transport (Kulkarni et al. 2019, Eq. 1; MINT paper App. E.3).

    ``(1 - H_s) (1 - H_t) Phi(x_s) + H_t Phi(x_t)``: the source features with both frames'
    keypoint neighbourhoods suppressed, and the target features pasted in around the target
    keypoints. Where ``H_t = 1`` the result is the target's features; where both heatmaps are 0
    it is the source's.

    Args:
        source_features, target_features: ``(B, C, h, w)``.
        source_heatmap, target_heatmap: ``(B, 1, h, w)`` (all keypoints combined) or ``(B, h, w)``.

    Example:
        >>> fs, ft = torch.full((1, 2, 1, 3), 5.0), torch.ones(1, 2, 1, 3)   # source 5, target 1
        >>> hs, ht = torch.tensor([[[[1.0, 0.0, 0.0]]]]), torch.tensor([[[[0.0, 1.0, 0.0]]]])
        >>> feature_transport(fs, ft, hs, ht)[0, 0]
        tensor([[0., 1., 5.]])
    """
    for name, t in (("source_features", source_features), ("target_features", target_features)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            raise ValueError(f"feature_transport: expected {name} of shape (B, C, h, w), got "
                             f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
    if source_features.shape != target_features.shape:
        raise ValueError(f"feature_transport: expected target_features of shape {tuple(source_features.shape)}, "
                         f"got {tuple(target_features.shape)}")
    b, _, h, w = source_features.shape
    maps = []
    for name, heat in (("source_heatmap", source_heatmap), ("target_heatmap", target_heatmap)):
        if isinstance(heat, torch.Tensor) and heat.ndim == 3:
            heat = heat[:, None]
        if not isinstance(heat, torch.Tensor) or tuple(heat.shape) != (b, 1, h, w):
            raise ValueError(f"feature_transport: expected {name} of shape ({b}, 1, {h}, {w}), got "
                             f"{tuple(heat.shape) if isinstance(heat, torch.Tensor) else type(heat).__name__}")
        maps.append(heat)
    hs, ht = maps
    return (1.0 - hs) * (1.0 - ht) * source_features + ht * target_features


def transporter_loss(reconstruction: torch.Tensor, target: torch.Tensor, weight: float = 10.0) -> torch.Tensor:
    """``weight x MSE`` between the refined reconstruction and the target frame (both ``x/255 - 0.5``).

    Example:
        >>> transporter_loss(torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5))
        tensor(2.5000)
    """
    if reconstruction.shape != target.shape:
        raise ValueError(f"transporter_loss: expected a reconstruction of shape {tuple(target.shape)}, "
                         f"got {tuple(reconstruction.shape)}")
    return weight * F.mse_loss(reconstruction, target)


def sample_frame_pairs(batch: int, frames: int, generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Source and target frame indices ``(B,)`` each, distinct within each window, uniformly drawn.

    Example:
        >>> s, t = sample_frame_pairs(100, 8, torch.Generator().manual_seed(0))
        >>> bool((s != t).all()), int(s.max()) < 8, int(t.max()) < 8
        (True, True, True)
    """
    if frames < 2:
        raise ValueError(f"sample_frame_pairs: expected windows of >= 2 frames, got {frames}")
    source = torch.randint(0, frames, (batch,), generator=generator)
    shift = torch.randint(1, frames, (batch,), generator=generator)
    return source, (source + shift) % frames


def _encoder(channels: list[int], layers: tuple[tuple[int, int, int], ...], slope: float) -> nn.Sequential:
    return nn.Sequential(*[ConvBlock(ci, co, k, s, p, slope) for (ci, co), (k, s, p) in zip(zip(channels, channels[1:]), layers)])


class _KeypointPath(nn.Module):
    """``Psi`` alone: what the keypoint wrappers need (no features, no refiner)."""

    def __init__(self, model: "Transporter") -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> DetectorOutput:
        return self.model(frames)


class Transporter(BaselineDetector):
    """Transporter keypoint detector (Kulkarni et al. 2019), original or modified (MINT App. E.3).

    ``forward`` takes ``(B, C, H, W)`` or ``(B, T, C, H, W)`` frames on the 0..255 scale (resized
    to ``image_size`` when they differ) and returns :class:`~mint_rl.models.DetectorOutput`:
    keypoints ``(..., K, 2)`` in the input's normalised coordinates, status all ones (every
    keypoint is always active), feature maps = the KeyNet's ``(..., K, 32, 32)`` soft-argmax logits.

    Example:
        >>> model = Transporter(TransporterConfig(num_keypoints=4, num_features=4, image_size=(32, 32)))
        >>> out = model(torch.zeros(2, 3, 3, 32, 32, dtype=torch.uint8))
        >>> out.keypoints.shape, out.status.shape, out.feature_maps.shape
        (torch.Size([2, 3, 4, 2]), torch.Size([2, 3, 4]), torch.Size([2, 3, 4, 8, 8]))
    """

    CHECKPOINT_FORMAT = CHECKPOINT_FORMAT
    CONFIG_CLASS = TransporterConfig
    KEYPOINT_MODULES = ("keynet",)

    def __init__(self, config: Optional[TransporterConfig] = None, **overrides: Any) -> None:
        super().__init__()
        config = TransporterConfig() if config is None else config
        if not isinstance(config, TransporterConfig):
            raise TypeError(f"Transporter: expected a TransporterConfig, got {type(config).__name__}")
        if overrides:
            config = config.replace(**overrides)
        self.config = config
        c, k, nf, slope = config.in_channels, config.num_keypoints, config.num_features, config.leaky_slope
        chans = [c, nf, nf, 2 * nf, 2 * nf, 4 * nf]
        self.keynet = nn.Sequential(_encoder(chans, ENCODER_LAYERS, slope), nn.Conv2d(4 * nf, k, 1))
        if config.variant == "original":
            self.features = _encoder(chans, ENCODER_LAYERS, slope)
            self.refiner = nn.Sequential(
                ConvBlock(4 * nf, 4 * nf, 3, 1, 1, slope),
                ConvBlock(4 * nf, 2 * nf, 4, 2, 1, slope, transposed=True),
                ConvBlock(2 * nf, 2 * nf, 3, 1, 1, slope),
                ConvBlock(2 * nf, nf, 4, 2, 1, slope, transposed=True),
                ConvBlock(nf, nf, 5, 1, 2, slope),
                nn.Conv2d(nf, c, 7, padding=3),  # linear output
            )
            feature_layers = ENCODER_LAYERS
        else:
            self.features = _encoder([c, nf, 2 * nf, 4 * nf], MODIFIED_FEATURE_LAYERS, slope)
            self.refiner = nn.Sequential(
                ConvBlock(4 * nf, 2 * nf, 3, slope=slope, transposed=True),
                nn.ConvTranspose2d(2 * nf, c, 5),  # linear output
            )
            feature_layers = MODIFIED_FEATURE_LAYERS
        h, w = config.image_size
        # normalised-coordinate affines: keypoint map -> image, feature map -> image (x uses widths, y heights)
        kx, ky = map_to_image_affine(w, ENCODER_LAYERS), map_to_image_affine(h, ENCODER_LAYERS)
        fx, fy = map_to_image_affine(w, feature_layers), map_to_image_affine(h, feature_layers)
        self.feature_size = (conv_geometry(h, feature_layers)[0], conv_geometry(w, feature_layers)[0])
        self.register_buffer("_kp_scale", torch.tensor([kx[0], ky[0]]), persistent=False)
        self.register_buffer("_kp_offset", torch.tensor([kx[1], ky[1]]), persistent=False)
        self.register_buffer("_feat_scale", torch.tensor([fx[0], fy[0]]), persistent=False)
        self.register_buffer("_feat_offset", torch.tensor([fx[1], fy[1]]), persistent=False)

    @property
    def method(self) -> str:
        return self.config.method

    # ------------------------------------------------------------------------------ pieces

    def keypoint_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``Psi``: normalised ``(N, C, H, W)`` images -> keypoints in image coordinates ``(N, K, 2)``, logits ``(N, K, h, w)``."""
        logits = self.keynet(x)
        on_map = soft_argmax_normalized(logits)
        return on_map * self._kp_scale + self._kp_offset, logits

    def heatmap(self, keypoints: torch.Tensor) -> torch.Tensor:
        """All keypoints' Gaussians on ``Phi``'s grid, summed: ``(N, K, 2)`` image coords -> ``(N, 1, h, w)``."""
        on_features = (keypoints - self._feat_offset) / self._feat_scale
        h, w = self.feature_size
        return transporter_heatmaps(on_features, h, w, self.config.inv_std).sum(dim=1, keepdim=True)

    def reconstruct(self, source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Refined reconstruction of ``target`` from ``source`` (``(N, C, H, W)`` frames on 0..255).

        Returns:
            ``(reconstruction, target)`` both ``(N, C, h, w)`` at ``image_size`` on the ``x/255 - 0.5`` scale.
        """
        self._check_trainable("reconstruct")
        n = source.shape[0]
        x = prepare_frames(torch.cat([source, target]), self.config.image_size)
        feats = self.features(x)
        keypoints, _ = self.keypoint_maps(x)
        heat = self.heatmap(keypoints)
        transported = feature_transport(feats[:n], feats[n:], heat[:n], heat[n:])
        return self.refiner(transported), x[n:]

    # ------------------------------------------------------------------------------ interface

    def forward(self, frames: torch.Tensor) -> DetectorOutput:
        """Keypoints ``(..., K, 2)``, status (ones) ``(..., K)`` and KeyNet maps of ``(B[, T], C, H, W)`` frames."""
        check_baseline_frames(frames, self.config.in_channels, "Transporter")
        lead = frames.shape[:-3]
        x = prepare_frames(frames.reshape(-1, *frames.shape[-3:]), self.config.image_size)
        keypoints, logits = self.keypoint_maps(x)
        status = torch.ones(keypoints.shape[:-1], dtype=keypoints.dtype, device=keypoints.device)
        return DetectorOutput(keypoints.reshape(*lead, *keypoints.shape[1:]), status.reshape(*lead, -1),
                              logits.reshape(*lead, *logits.shape[1:]))

    def training_loss(
        self, frames: torch.Tensor, generator: Optional[torch.Generator] = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """``10 x MSE`` of the target frame reconstructed from a source frame of the same window.

        Args:
            frames: ``(B, T, C, H, W)`` windows (T >= 2); one (source, target) pair of distinct
                frames is drawn per window with ``generator``.

        Returns:
            ``(loss, {"total", "reconstruction"}, images)`` with ``images`` ``(B, 2, C, h, w)``:
            target and reconstruction on the ``x/255 - 0.5`` scale (for logging).
        """
        check_baseline_frames(frames, self.config.in_channels, "Transporter.training_loss")
        self._check_trainable("training_loss")
        if frames.ndim != 5 or frames.shape[1] < 2:
            raise ValueError(f"Transporter.training_loss: expected (B, T >= 2, C, H, W) windows, got {tuple(frames.shape)}")
        src, tgt = sample_frame_pairs(frames.shape[0], frames.shape[1], generator)
        rows = torch.arange(frames.shape[0])
        recon, target = self.reconstruct(frames[rows, src.to(frames.device)], frames[rows, tgt.to(frames.device)])
        loss = transporter_loss(recon, target, self.config.reconstruction_weight)
        return loss, {"total": loss.detach(), "reconstruction": loss.detach()}, torch.stack([target, recon.detach()], 1)

    def for_inference(self) -> _KeypointPath:
        """The keypoint path alone (KeyNet + soft-argmax), for a frozen detector (the wrappers' entry point).

        Raises:
            ValueError: the detector is in training mode or has parameters requiring gradients.
        """
        self._check_inference_ready()
        return _KeypointPath(self)
