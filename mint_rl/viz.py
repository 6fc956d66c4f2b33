"""Drawing helpers: keypoints and mask outlines over frames, videos, and count plots.

Pure numpy drawing (no OpenCV needed); matplotlib is imported lazily, only by the plot
functions, and nothing else in mint_rl imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from mint_rl.coords import normalized_to_pixel
from mint_rl.video import write_video


def palette(n: int) -> np.ndarray:
    """``(n, 3)`` uint8 distinct, saturated colours (golden-ratio hues), stable for each index.

    Example:
        >>> palette(3).shape, palette(3).dtype
        ((3, 3), dtype('uint8'))
    """
    if n < 0:
        raise ValueError(f"n: expected >= 0, got {n}")
    hue = (np.arange(n) * 0.618033988749895) % 1.0
    h6 = hue * 6.0
    c = np.ones(n)
    x = 1.0 - np.abs(h6 % 2.0 - 1.0)
    zero = np.zeros(n)
    sector = h6.astype(int) % 6
    rgb = np.select(
        [sector[:, None] == k for k in range(6)],
        [np.stack(v, 1) for v in ((c, x, zero), (x, c, zero), (zero, c, x), (zero, x, c), (x, zero, c), (c, zero, x))],
    )
    return (55 + 200 * rgb).astype(np.uint8)


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        got = (type(frame).__name__, getattr(frame, "shape", None), getattr(frame, "dtype", None))
        raise ValueError(f"frame: expected an (H, W, 3) uint8 numpy array, got {got}")


def _to_numpy(x: object) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()  # type: ignore[attr-defined]
    return np.asarray(x)


def draw_disc(frame: np.ndarray, u: float, v: float, radius: float, color: np.ndarray, alpha: float = 1.0,
              ring: bool = False) -> None:
    """Blend a filled disc (or a 1.5 px ring) of ``color`` at pixel ``(u, v)`` into ``frame`` in place."""
    h, w = frame.shape[:2]
    x0, x1 = max(int(u - radius - 2), 0), min(int(u + radius + 3), w)
    y0, y1 = max(int(v - radius - 2), 0), min(int(v + radius + 3), h)
    if x0 >= x1 or y0 >= y1:
        return
    d = np.hypot(np.arange(x0, x1)[None, :] - u, np.arange(y0, y1)[:, None] - v)
    cover = np.clip(radius + 0.5 - d, 0.0, 1.0)
    if ring:
        cover = cover * np.clip(d - (radius - 1.5) + 0.5, 0.0, 1.0)
    a = (alpha * cover)[..., None]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.round(region + a * (np.asarray(color, np.float32) - region)).astype(np.uint8)


def draw_keypoints(
    frame: np.ndarray,
    keypoints: object,
    status: object | None = None,
    radius: float | None = None,
    pixel: bool = False,
    threshold: float = 0.5,
) -> np.ndarray:
    """Draw keypoints over a frame: active ones as discs coloured per keypoint id, inactive faint.

    Args:
        frame: ``(H, W, 3)`` uint8 (not modified).
        keypoints: ``(K, 2)`` (x, y), normalised ``[-1, 1]`` unless ``pixel=True``.
        status: ``(K,)`` bool or float (active iff ``> threshold``); None: all active.
        radius: disc radius in pixels (default ``max(2, min(H, W) / 60)``).

    Returns:
        A new ``(H, W, 3)`` uint8 frame.

    Example:
        >>> out = draw_keypoints(np.zeros((9, 9, 3), np.uint8), np.array([[0.0, 0.0]]), radius=2)
        >>> bool(out[4, 4].any()), bool(out[0, 0].any())
        (True, False)
    """
    _check_frame(frame)
    kp = _to_numpy(keypoints).astype(np.float64)
    if kp.ndim != 2 or kp.shape[-1] != 2:
        raise ValueError(f"keypoints: expected shape (K, 2), got {kp.shape}")
    k = kp.shape[0]
    if status is None:
        active = np.ones(k, bool)
    else:
        s = _to_numpy(status)
        if s.shape != (k,):
            raise ValueError(f"status: expected shape ({k},), got {s.shape}")
        active = s if s.dtype == bool else s > threshold
    h, w = frame.shape[:2]
    if not pixel:
        import torch

        kp = normalized_to_pixel(torch.from_numpy(kp), h, w).numpy()
    r = radius if radius is not None else max(2.0, min(h, w) / 60.0)
    out = frame.copy()
    colours = palette(k)
    for i in np.argsort(active, kind="stable"):  # inactive first, active on top
        u, v = kp[i]
        if active[i]:
            draw_disc(out, u, v, r + 1.0, np.zeros(3), 1.0)
            draw_disc(out, u, v, r, colours[i], 1.0)
        else:
            draw_disc(out, u, v, r, colours[i], 0.35, ring=True)
    return out


def mask_outlines(masks: np.ndarray) -> np.ndarray:
    """``(..., H, W)`` ids -> bool ``(..., H, W)``: pixels whose id differs from a 4-neighbour's
    and which belong to an object (id > 0).

    Example:
        >>> m = np.zeros((5, 5), int); m[1:4, 1:4] = 2
        >>> mask_outlines(m).astype(int)[2]
        array([0, 1, 0, 1, 0])
    """
    m = np.asarray(masks)
    edge = np.zeros(m.shape, bool)
    edge[..., 1:, :] |= m[..., 1:, :] != m[..., :-1, :]
    edge[..., :-1, :] |= m[..., :-1, :] != m[..., 1:, :]
    edge[..., :, 1:] |= m[..., :, 1:] != m[..., :, :-1]
    edge[..., :, :-1] |= m[..., :, :-1] != m[..., :, 1:]
    return edge & (m > 0)


def draw_mask_outlines(frame: np.ndarray, mask: np.ndarray, colors: np.ndarray | None = None) -> np.ndarray:
    """Draw the outline of every instance of ``mask (H, W)`` in its own colour (new frame).

    Example:
        >>> m = np.zeros((5, 5), int); m[1:4, 1:4] = 1
        >>> out = draw_mask_outlines(np.zeros((5, 5, 3), np.uint8), m)
        >>> bool(out[1, 1].any()), bool(out[2, 2].any())
        (True, False)
    """
    _check_frame(frame)
    mask = np.asarray(mask)
    if mask.shape != frame.shape[:2]:
        raise ValueError(f"mask: expected shape {frame.shape[:2]}, got {mask.shape}")
    if colors is None:
        colors = palette(int(mask.max(initial=0)) + 1)
    out = frame.copy()
    edge = mask_outlines(mask)
    out[edge] = colors[mask[edge] % len(colors)]
    return out


def colorize_mask(mask: np.ndarray) -> np.ndarray:
    """``(H, W)`` ids -> ``(H, W, 3)`` uint8: black background, id ``i`` in ``palette(n)[i]`` (the
    same colour for the same id in every frame).

    Example:
        >>> colorize_mask(np.array([[0, 3]]))[0, 0].tolist()
        [0, 0, 0]
    """
    mask = np.asarray(mask)
    colors = palette(int(mask.max(initial=0)) + 1)
    colors[0] = 0
    return colors[mask]


def frame_and_mask(frame: np.ndarray, mask: np.ndarray, gap: int = 4) -> np.ndarray:
    """Side-by-side picture ``frame | colorize_mask(mask)`` with a white gap.

    Example:
        >>> frame_and_mask(np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5), int)).shape
        (4, 14, 3)
    """
    _check_frame(frame)
    return np.concatenate([frame, np.full((frame.shape[0], gap, 3), 255, np.uint8), colorize_mask(mask)], 1)


def plot_counts(
    n_active: np.ndarray | dict[str, np.ndarray], n_visible: np.ndarray, path: str | Path, title: str = ""
) -> Path:
    """Plot active keypoints and visible objects per frame (come-and-go) to a PNG.

    ``n_active`` is one ``(T,)`` series, or a dict of them by label (several detectors on one clip).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = n_active if isinstance(n_active, dict) else {"active keypoints": n_active}
    fig, ax = plt.subplots(figsize=(6, 2.5 if len(series) == 1 else 3.2), dpi=100)
    for label, counts in series.items():
        if len(counts) != len(n_visible):
            raise ValueError(f"plot_counts: expected {len(n_visible)} frames of active counts for {label!r}, got {len(counts)}")
        ax.step(np.arange(len(counts)), counts, where="mid", label=label if len(series) == 1 else f"active: {label}")
    ax.step(np.arange(len(n_visible)), n_visible, where="mid", color="black", label="visible objects")
    ax.set_xlabel("frame")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_variant_scores(scores: dict[str, dict[str, tuple[float, float]]], path: str | Path, title: str = "") -> Path:
    """Grouped bars of the score per test variant of several runs to a PNG.

    ``scores`` maps a run's label to ``{variant: (mean, std)}`` (its mean and standard deviation
    over seeds); variants are the union in first-seen order, a run without a variant has no bar
    there. Bars show the mean, whiskers one standard deviation (clipped to [0, 1]).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not scores:
        raise ValueError("plot_variant_scores: expected at least one run's scores, got none")
    variants = list(dict.fromkeys(v for row in scores.values() for v in row))
    for label, row in scores.items():
        for variant, (mean, std) in row.items():
            if not (0.0 <= mean <= 1.0) or std < 0:
                raise ValueError(f"plot_variant_scores: expected a mean in [0, 1] and std >= 0 for {label!r} "
                                 f"{variant}, got ({mean}, {std})")
    n = len(scores)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(variants) + 2), 3.2 + 0.22 * n), dpi=100)
    colors = palette(n) / 255.0
    for i, (label, row) in enumerate(scores.items()):
        xs = [j + (i - (n - 1) / 2) * width for j, v in enumerate(variants) if v in row]
        means = np.array([row[v][0] for v in variants if v in row])
        stds = np.array([row[v][1] for v in variants if v in row])
        err = np.stack([np.minimum(stds, means), np.minimum(stds, 1.0 - means)])
        ax.bar(xs, means, width=width, yerr=err, capsize=2, color=colors[i], label=label)
    ax.set_xticks(range(len(variants)))
    ax.set_xticklabels(variants)
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=7, ncol=1, frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
