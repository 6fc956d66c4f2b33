#!/usr/bin/env python
"""Entropy demo: a synthetic natural-looking frame beside its local-entropy map (PNG).

    python scripts/entropy_demo.py --out out/entropy_demo

Needs no data and no network; runs in a few seconds on a CPU. The frame is drawn with numpy
(floor gradient, shaded spheres and boxes with shadows, a little sensor noise);
``synthetic_scenes`` is also used by ``scripts/benchmark_entropy.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def synthetic_scenes(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """``n`` synthetic scenes, uint8 ``(n, 3, height, width)``.

    Each scene: a floor with a vertical brightness gradient and a faint texture, 3-6 shaded
    spheres and boxes in random colours with soft shadows, and Gaussian noise (sigma 2).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    out = np.empty((n, 3, height, width), dtype=np.uint8)
    scale = min(height, width)
    for i in range(n):
        base = rng.uniform(90, 150, size=3)
        ramp = 0.6 + 0.5 * yy / max(height - 1, 1)
        texture = 4.0 * np.sin(xx / (scale / 9.0) + rng.uniform(0, 6)) * np.sin(yy / (scale / 7.0))
        img = base[:, None, None] * ramp[None] + texture[None]
        for _ in range(int(rng.integers(3, 7))):
            colour = rng.uniform(30, 240, size=3)
            cy = rng.uniform(0.25, 0.9) * height
            cx = rng.uniform(0.1, 0.9) * width
            size = rng.uniform(0.06, 0.16) * scale
            shadow = ((xx - cx - 0.4 * size) / (1.2 * size)) ** 2 + ((yy - cy - 0.8 * size) / (0.45 * size)) ** 2
            img *= 1.0 - 0.35 * np.exp(-2.0 * shadow)[None]
            if rng.random() < 0.6:  # sphere, lit from the upper left
                d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / size**2
                inside = d2 < 1.0
                nz = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
                lam = np.clip((-(xx - cx) / size * 0.5 - (yy - cy) / size * 0.5 + nz * 0.7), 0.0, 1.0)
                shade = 0.35 + 0.65 * lam
                spec = 60.0 * lam**30
                obj = colour[:, None, None] * shade[None] + spec[None]
            else:  # box, shaded left to right
                inside = (np.abs(xx - cx) < size) & (np.abs(yy - cy) < 0.8 * size)
                shade = 0.95 - 0.35 * (xx - cx + size) / (2 * size)
                obj = colour[:, None, None] * shade[None]
            img = np.where(inside[None], obj, img)
        img += rng.normal(0.0, 2.0, size=img.shape)
        out[i] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/entropy_demo"), help="output folder")
    parser.add_argument("--height", type=int, default=160)
    parser.add_argument("--width", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from mint_rl.entropy import local_entropy

    frame = torch.from_numpy(synthetic_scenes(1, args.height, args.width, args.seed)[0])
    t0 = time.perf_counter()
    entropy = local_entropy(frame)  # (H, W) nats
    ms = 1e3 * (time.perf_counter() - t0)

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "entropy_demo.png"
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    axes[0].imshow(frame.permute(1, 2, 0).numpy())
    axes[0].set_title("frame")
    im = axes[1].imshow(entropy.numpy(), cmap="magma", vmin=0.0, vmax=float(np.log(27.0)))
    axes[1].set_title("local entropy (3x3x3 patches, nats)")
    for ax in axes:
        ax.axis("off")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"entropy of a {args.height}x{args.width} frame in {ms:.1f} ms; mean {float(entropy.mean()):.3f} nats")
    print(path)


if __name__ == "__main__":
    main()
