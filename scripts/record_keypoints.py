#!/usr/bin/env python
"""Record a scripted-expert MAGICAL episode with the MINT keypoints drawn on every frame.

    python scripts/record_keypoints.py MoveToCorner --out out/record            # GIF
    python scripts/record_keypoints.py MakeLine --variant TestJitter --format mp4 --detector runs/magical/detector.safetensors

Active keypoints are discs coloured per keypoint id, inactive ones are faint. The last line
printed is the path of the written file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

import mint_rl  # noqa: F401  (registers magical/<id>)
from mint_rl.envs import TASKS, expert_episode
from mint_rl.viz import write_video
from mint_rl.wrappers import MintKeypointWrapper


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("task", help=f"one of {', '.join(TASKS)}")
    p.add_argument("--variant", default="Demo", help="Demo, TestJitter, ...")
    p.add_argument("--detector", default="magical", help="pretrained name or checkpoint path")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resolution", type=int, default=192, help="side of the recorded frames")
    p.add_argument("--format", choices=("gif", "mp4"), default="gif")
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=Path("out/record_keypoints"))
    return p.parse_args(argv)


def record_episode(task: str, variant: str, detector, seed: int, resolution: int) -> tuple[list[np.ndarray], float]:
    """Frames with keypoints of one expert episode, and its ``eval_score``."""
    if task not in TASKS:
        raise ValueError(f"task: expected one of {list(TASKS)}, got {task!r}")
    env = MintKeypointWrapper(gym.make(f"magical/{task}-{variant}-v0", view="allo", resolution=resolution), detector=detector)
    try:
        episode = expert_episode(env, seed, per_frame=lambda e: e.render())
    finally:
        env.close()
    return episode.frames, episode.score


def main(argv=None) -> int:
    args = parse_args(argv)
    frames, score = record_episode(args.task, args.variant, args.detector, args.seed, args.resolution)
    args.out.mkdir(parents=True, exist_ok=True)
    path = write_video(frames, args.out / f"{args.task}-{args.variant}-seed{args.seed}.{args.format}", fps=args.fps)
    print(f"{len(frames)} frames, expert eval_score={score:.2f}", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
