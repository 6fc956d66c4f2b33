"""Video files: decoding and encoding frames with imageio (ffmpeg for video containers).

The one place that talks to imageio's video plugins, so that the clip reader
(:mod:`mint_rl.data.io`) and the drawing helpers (:mod:`mint_rl.viz`) both import it and
neither imports the other. It imports nothing from the rest of ``mint_rl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["FFMPEG_SUFFIXES", "require_ffmpeg", "read_video", "write_video", "to_rgb_uint8"]


def to_rgb_uint8(frame: np.ndarray) -> np.ndarray:
    """``(H, W)`` grey, ``(H, W, 1|3|4)`` -> ``(H, W, 3)`` uint8 (alpha dropped, floats in [0,1] scaled).

    Example:
        >>> to_rgb_uint8(np.full((2, 2), 7, np.uint8)).shape
        (2, 2, 3)
    """
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.floating) and frame.max(initial=0.0) <= 1.0:
            frame = frame * 255.0
        frame = np.clip(np.round(frame), 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.ndim != 3 or frame.shape[-1] not in (1, 3, 4):
        raise ValueError(f"frame: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {frame.shape}")
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, axis=-1)
    return np.ascontiguousarray(frame[..., :3])


#: video containers that imageio reads and writes through its ffmpeg plugin (imageio-ffmpeg)
FFMPEG_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def require_ffmpeg(path: str | Path, action: str) -> None:
    """Raise a clear ImportError when ``path`` is a video container and imageio-ffmpeg is missing
    (imageio would otherwise fall back to another plugin and fail with an unrelated message).

    Example:
        >>> require_ffmpeg("frames.gif", "write")  # GIF needs no ffmpeg
    """
    import importlib.util

    if Path(path).suffix.lower() in FFMPEG_SUFFIXES and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ImportError(f"to {action} {Path(path).name}: expected the imageio-ffmpeg package "
                          "(pip install imageio-ffmpeg), which is not installed; GIF needs no ffmpeg")


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a video (mp4/avi/gif/...) with imageio into ``(T, H, W, 3)`` uint8 and its fps."""
    import imageio.v2 as imageio

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video: expected an existing file, got {path}")
    require_ffmpeg(path, "read")
    frames: list[np.ndarray] = []
    reader = imageio.get_reader(str(path))
    try:
        meta = reader.get_meta_data()
        fps = float(meta.get("fps") or (1000.0 / meta["duration"] if meta.get("duration") else 25.0))
        for frame in reader:
            frames.append(to_rgb_uint8(frame))
            if max_frames is not None and len(frames) >= max_frames:
                break
    finally:
        reader.close()
    if not frames:
        raise ValueError(f"{path}: expected at least one decodable frame, got none")
    return np.stack(frames), fps


def write_video(frames: Sequence[np.ndarray] | np.ndarray, path: str | Path, fps: float = 10.0) -> Path:
    """Write ``(T, H, W, 3)`` uint8 frames as MP4 (libx264 via imageio-ffmpeg) or GIF by suffix.

    MP4 needs even sizes; odd sizes are padded by one pixel (edge copy).
    """
    import imageio.v2 as imageio

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames: expected (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        imageio.mimsave(str(path), list(frames), duration=1000.0 / fps, loop=0)
    elif suffix in (".mp4", ".avi", ".mov", ".mkv"):
        require_ffmpeg(path, "write")
        pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
        if pad_h or pad_w:
            frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        with imageio.get_writer(str(path), fps=fps, codec="libx264", quality=8,
                                macro_block_size=1, ffmpeg_log_level="error") as writer:
            for f in frames:
                writer.append_data(f)
    else:
        raise ValueError(f"path: expected a .gif or .mp4/.avi/.mov/.mkv suffix, got {path.suffix!r}")
    return path
