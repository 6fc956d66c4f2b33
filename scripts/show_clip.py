"""Write an MP4 or GIF of a clip with its mask outlines and, optionally, keypoints on top.

    python scripts/show_clip.py --clip-dir data/clevrer_like_small --index 0 --out out/show
    python scripts/show_clip.py --preset small --seed 3 --out out/show --gif
    python scripts/show_clip.py --clip-dir DIR --keypoints kp.npz --out out/show

``--keypoints`` is an ``.npz`` with ``keypoints (T, K, 2)`` normalised to [-1, 1] and optionally
``status (T, K)``; with masks the clip metrics are printed too. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mint_rl.data.clip import Clip
from mint_rl.data.io import ClipFormatError, clip_files, load_clip, read_video
from mint_rl.data.synthetic import CLEVRER_LIKE_PRESETS, clevrer_like_preset, generate_clip
from mint_rl.viz import draw_keypoints, draw_mask_outlines, frame_and_mask, write_video


def _clip(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Clip:
    """The clip the arguments name; a bad ``--index`` or an unreadable clip is a usage error."""
    if args.clip_dir:
        try:
            files = clip_files(args.clip_dir)
            if not files:
                parser.error(f"--clip-dir: expected <name>.json + <name>.npz clip files in {args.clip_dir}, found none")
            if not 0 <= args.index < len(files):
                parser.error(f"--index: expected 0..{len(files) - 1} ({len(files)} clips in {args.clip_dir}), "
                             f"got {args.index}")
            return load_clip(files[args.index])
        except (FileNotFoundError, ClipFormatError) as exc:
            parser.error(f"--clip-dir: {exc}")
    if args.video:
        frames, fps = read_video(args.video)
        return Clip(frames=frames, name=Path(args.video).stem, fps=fps)
    return generate_clip(clevrer_like_preset(args.preset), args.seed)


def _keypoints(path: str, num_frames: int, parser: argparse.ArgumentParser) -> tuple[np.ndarray, np.ndarray | None]:
    """``keypoints (T, K, 2)`` and optional ``status (T, K)`` of a ``--keypoints`` file, checked."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "keypoints" not in data.files:
                parser.error(f"--keypoints {path}: expected an entry 'keypoints' (T, K, 2), got {sorted(data.files)}")
            kp = data["keypoints"]
            status = data["status"] if "status" in data.files else None
    except (OSError, ValueError, EOFError) as exc:
        parser.error(f"--keypoints {path}: expected an .npz file, could not read it ({type(exc).__name__}: {exc})")
    if kp.ndim != 3 or kp.shape[-1] != 2 or kp.shape[0] != num_frames:
        parser.error(f"--keypoints {path}: expected keypoints of shape ({num_frames}, K, 2), got {kp.shape}")
    if status is not None and status.shape != kp.shape[:2]:
        parser.error(f"--keypoints {path}: expected status of shape {kp.shape[:2]}, got {status.shape}")
    return kp, status


def write_frames_png(clip: Clip, frames: list[int], path: Path, scale: float) -> None:
    """One row per frame: the frame (area-resized) | its colourised mask (nearest-resized)."""
    import imageio.v2 as imageio
    import torch

    from mint_rl.data.datasets import resize_frames, resize_masks

    size = (max(int(round(clip.height * scale)), 1), max(int(round(clip.width * scale)), 1))
    rows = []
    for t in frames:
        f = resize_frames(torch.from_numpy(clip.frames[t : t + 1]).permute(0, 3, 1, 2), size)
        m = resize_masks(torch.from_numpy(clip.masks[t : t + 1]).long(), size)
        rows.append(frame_and_mask(f[0].permute(1, 2, 0).numpy(), m[0].numpy()))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(path, np.concatenate(rows[:-1]), optimize=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--clip-dir", help="clip directory (scripts/make_clevrer_like.py)")
    src.add_argument("--video", help="a plain video file")
    parser.add_argument("--index", type=int, default=0, help="clip index in --clip-dir")
    parser.add_argument("--preset", choices=sorted(CLEVRER_LIKE_PRESETS), default="small",
                        help="generate a clip when no --clip-dir/--video is given")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keypoints", help=".npz with keypoints (T, K, 2) normalised, status (T, K)")
    parser.add_argument("--no-outlines", action="store_true")
    parser.add_argument("--gif", action="store_true", help="write a GIF instead of an MP4")
    parser.add_argument("--fps", type=float, default=None)
    parser.add_argument("--png-frames", type=int, nargs="*", default=[],
                        help="also write <name>_frames.png: one row (frame | colourised mask) per frame")
    parser.add_argument("--png-scale", type=float, default=1.0, help="scale of that picture")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)

    clip = _clip(args, parser)
    kp = status = None
    if args.keypoints:
        kp, status = _keypoints(args.keypoints, len(clip), parser)
    bad_frames = [t for t in args.png_frames if not 0 <= t < len(clip)]
    if bad_frames:
        parser.error(f"--png-frames: expected frame numbers in 0..{len(clip) - 1}, got {bad_frames}")
    frames = []
    for t in range(len(clip)):
        f = clip.frames[t]
        if clip.masks is not None and not args.no_outlines:
            f = draw_mask_outlines(f, clip.masks[t])
        if kp is not None:
            f = draw_keypoints(f, kp[t], None if status is None else status[t])
        frames.append(f)
    out = Path(args.out) / f"{clip.name}.{'gif' if args.gif else 'mp4'}"
    write_video(np.stack(frames), out, fps=args.fps or clip.fps)
    summary: dict = {"video": str(out), "frames": len(clip), "size": [clip.height, clip.width]}
    if args.png_frames:
        if clip.masks is None:
            parser.error("--png-frames: expected a clip with masks")
        png = Path(args.out) / f"{clip.name}_frames.png"
        write_frames_png(clip, args.png_frames, png, args.png_scale)
        summary["png"] = str(png)
    if kp is not None and clip.masks is not None:
        from mint_rl.metrics import clip_metrics

        st = np.ones(kp.shape[:2], bool) if status is None else status
        summary["metrics"] = clip_metrics(kp.astype(np.float32), st, clip.masks).as_dict()
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
