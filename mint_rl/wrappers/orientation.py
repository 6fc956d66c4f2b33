"""Per-keypoint orientation: the intensity centroid of the image contrast around each keypoint.

Keypoints are positions; what an object's *pose* shows only in its appearance (MAGICAL's robot is
a round body whose heading shows in its eyes and gripper) they carry at best indirectly. The
intensity centroid (Rosin, "Measuring corner properties", CVIU 1999; the orientation of ORB
features) adds it as two numbers per keypoint: within a disc of radius ``r`` around keypoint
``q``, with the *contrast* ``m(p)`` of pixel ``p`` as mass,

.. math::

    o(q) = \\frac{1}{r} \\frac{\\sum_{\\|p - q\\| \\le r} m(p)\\,(p - q)}{\\sum_{\\|p - q\\| \\le r} m(p)},
    \\qquad m(p) = \\frac{1}{3} \\sum_c |I_c(p) - b_c|,

where ``b`` is the frame's per-channel median colour (its background). ``o`` lies in the unit
disc: its direction points to where the disc's contrast is, its length says how lopsided the
disc is (0 for a symmetric one or an empty one). On MAGICAL's robot the dark eyes and gripper sit
in front of the body, so the centroid around the robot's keypoints points along its heading.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ORIENTATION_RADIUS", "IntensityCentroid", "intensity_centroid"]

#: Default disc radius, in pixels of the frames given to :func:`intensity_centroid` (the
#: detector's input: 96x96 for the ``magical`` detector, where the robot's radius is ~9 pixels).
ORIENTATION_RADIUS = 7.0


def _disc_offsets(radius: float, device: torch.device) -> Tensor:
    r = int(radius)
    d = torch.arange(-r, r + 1, device=device, dtype=torch.float32)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    keep = dx.square() + dy.square() <= radius * radius
    return torch.stack([dx[keep], dy[keep]], dim=-1)  # (P, 2) pixel offsets (dx, dy)


def intensity_centroid(frames: Tensor, keypoints: Tensor, radius: float = ORIENTATION_RADIUS) -> Tensor:
    """Intensity-centroid orientation ``(N, K, 2)`` of keypoints in frames (module docstring).

    Args:
        frames: ``(N, C, H, W)`` images, ``uint8`` or float in ``[0, 1]``.
        keypoints: ``(N, K, 2)`` normalised ``(x, y)`` in ``[-1, 1]`` on the frames' pixel grid
            (:mod:`mint_rl.coords`). The disc is sampled bilinearly at integer offsets around the
            (sub-pixel) keypoint; outside the frame the contrast is 0.
        radius: disc radius in pixels (``>= 1``).

    Returns:
        ``(N, K, 2)`` float32 offsets ``(dx, dy)`` in units of ``radius`` (x right, y down), each
        inside the unit disc.

    Example:
        >>> frames = torch.ones(1, 3, 9, 9)           # white background
        >>> frames[0, :, 4, 6] = 0.0                  # one black pixel 2 px right of the centre
        >>> intensity_centroid(frames, torch.zeros(1, 1, 2), radius=3) * 3  # 2 px to the right
        tensor([[[2., 0.]]])
    """
    if not isinstance(frames, Tensor) or frames.dim() != 4:
        raise ValueError(f"frames: expected a (N, C, H, W) tensor, got {getattr(frames, 'shape', type(frames))}")
    if not isinstance(keypoints, Tensor) or keypoints.dim() != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints: expected a (N, K, 2) tensor, got {getattr(keypoints, 'shape', type(keypoints))}")
    if keypoints.shape[0] != frames.shape[0]:
        raise ValueError(f"keypoints: expected N={frames.shape[0]} (as frames), got {keypoints.shape[0]}")
    if radius < 1:
        raise ValueError(f"radius: expected >= 1 pixel, got {radius}")
    x = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
    n, _, h, w = x.shape
    background = x.flatten(2).median(dim=-1).values  # (N, C)
    mass = (x - background[..., None, None]).abs().mean(dim=1, keepdim=True)  # (N, 1, H, W)
    offsets = _disc_offsets(radius, x.device)  # (P, 2)
    scale = x.new_tensor([(w - 1) / 2.0, (h - 1) / 2.0])
    centre = (keypoints.float() + 1.0) * scale  # (N, K, 2) pixels
    where = centre[:, :, None, :] + offsets  # (N, K, P, 2)
    grid = where / scale - 1.0
    m = F.grid_sample(mass, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, 0]  # (N, K, P)
    total = m.sum(dim=-1, keepdim=True)
    moment = torch.einsum("nkp,pd->nkd", m, offsets)
    return torch.where(total > 1e-6, moment / total.clamp_min(1e-6), torch.zeros_like(moment)) / radius


class IntensityCentroid(nn.Module):
    """Module twin of :func:`intensity_centroid` holding the radius."""

    def __init__(self, radius: float = ORIENTATION_RADIUS) -> None:
        super().__init__()
        if radius < 1:
            raise ValueError(f"radius: expected >= 1 pixel, got {radius}")
        self.radius = float(radius)

    def forward(self, frames: Tensor, keypoints: Tensor) -> Tensor:
        return intensity_centroid(frames, keypoints, self.radius)

    def extra_repr(self) -> str:
        return f"radius={self.radius}"
