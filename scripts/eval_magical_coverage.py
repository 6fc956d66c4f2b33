#!/usr/bin/env python
"""How often a MINT detector puts an active keypoint on MAGICAL's robot and on every block.

Runs the scripted expert for ``--episodes`` episodes per task and variant (seeds ``--seed ..``,
held out from the training episodes, whose seeds start at 0), detects keypoints on the
allocentric 96x96 frames and compares them with the simulator's object positions
(:func:`mint_rl.training.evaluation.magical_keypoint_coverage`: an object is covered when an
active keypoint lies within its radius of its centre).

Example:
    python scripts/eval_magical_coverage.py --detector magical --episodes 5 --variants TestJitter

Prints one row per task and, as its last line, ``robot=<float> blocks=<float> all_objects=<float>``;
writes ``OUT/coverage.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mint_rl.envs.registry import TASKS
from mint_rl.experiments.magical_bc import VARIANTS
from mint_rl.detectors import load_detector
from mint_rl.training.evaluation import magical_keypoint_coverage


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--detector", default="magical", help="pretrained name or checkpoint path")
    p.add_argument("--tasks", nargs="+", default=["MoveToRegion", "MoveToCorner", "MakeLine"], choices=list(TASKS))
    p.add_argument("--variants", nargs="+", default=["TestJitter"], choices=VARIANTS)
    p.add_argument("--episodes", type=int, default=5, help="expert episodes per task and variant")
    p.add_argument("--seed", type=int, default=10_000, help="first episode seed (training episodes start at 0)")
    p.add_argument("--out", type=Path, default=Path("out/magical_coverage"))
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.episodes < 1:
        p.error(f"--episodes: expected >= 1, got {args.episodes}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    det = load_detector(args.detector)  # any keypoint method: MINT or a baseline
    cov = magical_keypoint_coverage(det, tasks=args.tasks, variants=args.variants, episodes=args.episodes,
                                    seed=args.seed, progress=not args.no_progress)
    print(f"{'task':<14} {'robot':>7} {'blocks':>7} {'all':>7} {'frames':>7}")
    for task, row in cov["per_task"].items():
        print(f"{task:<14} {row['robot']:7.3f} {row['blocks']:7.3f} {row['all_objects']:7.3f} {row['frames']:7d}")
    print(f"{'all':<14} {cov['robot']:7.3f} {cov['blocks']:7.3f} {cov['all_objects']:7.3f} {cov['frames']:7d}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "coverage.json").write_text(json.dumps({"detector": args.detector, "variants": args.variants,
                                                         "episodes": args.episodes, "seed": args.seed, **cov}, indent=2))
    print(f"robot={cov['robot']:.4f} blocks={cov['blocks']:.4f} all_objects={cov['all_objects']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
