#!/usr/bin/env python
"""How often a keypoint detector puts an active keypoint on MAGICAL's robot, on every block and in
every goal region, per variant, and whether the same keypoint indices do so from one variant to another.

Runs the scripted expert for ``--episodes`` episodes per task and variant (seeds ``--seed ..``,
held out from the training episodes, whose seeds start at 0), detects keypoints on the
allocentric 96x96 frames and compares them with the simulator's object positions
(:func:`mint_rl.training.evaluation.magical_keypoint_coverage`: an object is covered when an
active keypoint lies within its radius of its centre; a goal region when an active keypoint lies
inside it and is on neither robot nor block: ``goals``, not part of ``all``; ``mirror``: the same
for the goal's box reflected through the image centre, the level of keypoints that ignore the goal).

Keypoint identity, per variant against ``--reference`` (TestJitter, where the BC demos come
from): ``robot idx`` / ``block idx`` = histogram intersection of *which* keypoint index covers
the robot / the blocks, ``roles`` = mean over keypoint indices of the intersection of their role
histograms (inactive, spare = active on no object, robot, block). 1.0: the same indices play the
same parts as often; a policy that reads keypoints by index then sees the same kind of input.

Example:
    python scripts/eval_magical_coverage.py --detector magical --episodes 5 --variants TestJitter
    python scripts/eval_magical_coverage.py --tasks MoveToCorner --episodes 3 --seed 20000   # every variant

Prints one row per task and variant, one per task, and, as its last line,
``robot=<float> blocks=<float> all_objects=<float>`` (over everything evaluated); writes
``OUT/coverage.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from mint_rl.detectors import load_detector
from mint_rl.envs.registry import TASK_VARIANTS, TASKS
from mint_rl.training.evaluation import magical_keypoint_coverage


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--detector", default="magical", help="pretrained name or checkpoint path")
    p.add_argument("--tasks", nargs="+", default=["MoveToRegion", "MoveToCorner", "MakeLine"], choices=list(TASKS))
    p.add_argument("--variants", nargs="+", default=["all"],
                   help="variants to evaluate, or 'all' (default): every variant MAGICAL defines for each task")
    p.add_argument("--reference", default="TestJitter", help="variant the keypoint identity is compared with")
    p.add_argument("--episodes", type=int, default=5, help="expert episodes per task and variant")
    p.add_argument("--seed", type=int, default=10_000, help="first episode seed (training episodes start at 0)")
    p.add_argument("--out", type=Path, default=Path("out/magical_coverage"))
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.episodes < 1:
        p.error(f"--episodes: expected >= 1, got {args.episodes}")
    if args.variants == ["all"]:
        args.variants = None
    else:
        for task in args.tasks:
            wrong = [v for v in args.variants if v not in TASK_VARIANTS[task]]
            if wrong:
                p.error(f"--variants: {wrong} are not variants of {task}; expected 'all' or some of "
                        f"{list(TASK_VARIANTS[task])}")
    return args


def top_indices(histogram: np.ndarray, n: int = 2) -> str:
    """``"k7 62%, k3 30%"``: the keypoint indices that cover an object most often."""
    order = np.argsort(-histogram, kind="stable")[:n]
    return ", ".join(f"k{i} {100 * histogram[i]:.0f}%" for i in order if histogram[i] > 0) or "-"


def _fmt(value: float | None) -> str:
    return f"{'-':>7}" if value is None or np.isnan(value) else f"{value:7.3f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    det = load_detector(args.detector)  # any keypoint method: MINT or a baseline
    cov = magical_keypoint_coverage(det, tasks=args.tasks, variants=args.variants, episodes=args.episodes,
                                    seed=args.seed, progress=not args.no_progress, reference=args.reference)
    print(f"{'task':<14} {'variant':<14} {'robot':>7} {'blocks':>7} {'goals':>7} {'mirror':>7} {'all':>7} "
          f"{'frames':>7} "
          f"{'robot idx':>9} {'block idx':>9} {'roles':>7}  robot's keypoints")
    for task, rows in cov["per_variant"].items():
        for variant, row in rows.items():
            print(f"{task:<14} {variant:<14} {_fmt(row['robot'])} {_fmt(row['blocks'])} {_fmt(row['goals'])} "
                  f"{_fmt(row['goals_mirrored'])} {_fmt(row['all_objects'])} "
                  f"{row['frames']:7d} {_fmt(row['robot_agreement']):>9} {_fmt(row['block_agreement']):>9} "
                  f"{_fmt(row['role_agreement'])}  {top_indices(row['robot_index'])}")
    print()
    print(f"{'task':<14} {'robot':>7} {'blocks':>7} {'goals':>7} {'mirror':>7} {'all':>7} {'frames':>7}")
    for task, row in cov["per_task"].items():
        print(f"{task:<14} {_fmt(row['robot'])} {_fmt(row['blocks'])} {_fmt(row['goals'])} "
              f"{_fmt(row['goals_mirrored'])} {_fmt(row['all_objects'])} {row['frames']:7d}")
    print(f"{'all':<14} {_fmt(cov['robot'])} {_fmt(cov['blocks'])} {_fmt(cov['goals'])} {_fmt(cov['goals_mirrored'])} "
          f"{_fmt(cov['all_objects'])} {cov['frames']:7d}")
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"detector": args.detector, "variants": args.variants or "all", "episodes": args.episodes,
              "seed": args.seed, **cov}
    (args.out / "coverage.json").write_text(json.dumps(record, indent=2, default=lambda a: np.asarray(a).tolist()))
    print(f"robot={cov['robot']:.4f} blocks={cov['blocks']:.4f} all_objects={cov['all_objects']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
