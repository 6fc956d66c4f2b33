"""The one coordinate convention of mint_rl, and its conversions at the edges.

Keypoints are ``(..., 2)`` tensors holding ``(x, y)`` in **normalised coordinates** in
``[-1, 1]``: ``x = -1`` is the centre of the leftmost pixel column and ``x = +1`` the centre of
the rightmost one; ``y = -1`` is the centre of the top row and ``y = +1`` of the bottom row
(the ``align_corners=True`` convention of :func:`torch.nn.functional.grid_sample`).
Pixel coordinates ``(u, v)`` count columns and rows from the centre of the top-left pixel.
Metrics and drawing convert to pixels with :func:`normalized_to_pixel`; nothing else does.
"""

from __future__ import annotations

import torch


def _check_xy(xy: torch.Tensor, name: str) -> None:
    if not isinstance(xy, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(xy).__name__}")
    if xy.ndim < 1 or xy.shape[-1] != 2:
        raise ValueError(f"{name}: expected shape (..., 2), got {tuple(xy.shape)}")


def normalized_to_pixel(xy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Map normalised ``(x, y)`` in ``[-1, 1]`` to pixel ``(u, v)`` for an ``height x width`` image.

    Args:
        xy: ``(..., 2)`` normalised coordinates, x then y.
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        ``(..., 2)`` float pixel coordinates, column then row.

    Example:
        >>> normalized_to_pixel(torch.tensor([[-1.0, 1.0], [0.0, 0.0]]), 5, 9)
        tensor([[0., 4.],
                [4., 2.]])
    """
    _check_xy(xy, "normalized_to_pixel")
    scale = xy.new_tensor([(width - 1) / 2.0, (height - 1) / 2.0])
    return (xy + 1.0) * scale


def pixel_to_normalized(uv: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`normalized_to_pixel`.

    Example:
        >>> pixel_to_normalized(torch.tensor([[0.0, 4.0], [4.0, 2.0]]), 5, 9)
        tensor([[-1.,  1.],
                [ 0.,  0.]])
    """
    _check_xy(uv, "pixel_to_normalized")
    scale = uv.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    return uv * scale - 1.0
