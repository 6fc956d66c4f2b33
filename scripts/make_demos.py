#!/usr/bin/env python
"""Roll out the scripted MAGICAL expert, print per-episode scores, optionally save the demos.

    python scripts/make_demos.py MakeLine --variant TestJitter --episodes 50 --seed 0 \
        [--out DIR] [--view allo] [--resolution 96]

Episode i is reset with seed ``SEED + i``. With ``--out`` the trajectories are saved to
``DIR/<Task>-<Variant>-v0.npz`` (see ``mint_rl.envs.demos.save_demos``) and a JSON summary to
``DIR/<Task>-<Variant>-v0.scores.json``. The last line printed is exactly ``mean_score=<float>``.
With ``--view state`` no images are rendered (fast score measurement).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mint_rl.envs.experts import EXPERTS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", help=f"one of {sorted(EXPERTS)}")
    p.add_argument("--variant", default="Demo", help="Demo or TestJitter (any MAGICAL variant of the task)")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    p.add_argument("--out", type=Path, default=None, help="folder for the .npz demos and score JSON")
    p.add_argument("--view", default="allo", choices=["allo", "ego", "both", "state"])
    p.add_argument("--resolution", type=int, default=96)
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> float:
    args = build_parser().parse_args(argv)
    from mint_rl.envs.demos import rollout_expert, save_demos, trajectory_scores
    from mint_rl.envs.magical import make_magical_env

    if args.task not in EXPERTS:
        raise SystemExit(f"error: no scripted expert for {args.task!r}; expected one of {sorted(EXPERTS)}")
    env = make_magical_env(args.task, args.variant, view=args.view, resolution=args.resolution)
    t0 = time.perf_counter()
    try:
        trajs = rollout_expert(env, args.episodes, seed=args.seed, progress=not args.no_progress)
    finally:
        env.close()
    elapsed = time.perf_counter() - t0
    scores = trajectory_scores(trajs)
    steps = sum(len(t.acts) for t in trajs)
    for i, s in enumerate(scores):
        print(f"episode {i:3d} seed {args.seed + i:6d} score {s:.3f}")
    mean = float(scores.mean())
    print(
        f"{env.env_id}: {len(scores)} episodes, mean {mean:.4f}, min {scores.min():.3f}, "
        f"std {scores.std():.3f}, {steps / elapsed:.1f} env steps/s (view={args.view}, "
        f"resolution={args.resolution})"
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        extra = {"view": args.view, "resolution": args.resolution}
        path = save_demos(args.out / f"{env.env_id}.npz", trajs, env.env_id,
                          seeds=[args.seed + i for i in range(len(trajs))], extra=extra)
        summary = {"env_id": env.env_id, "seed": args.seed, "episodes": len(scores),
                   "scores": scores.tolist(), "mean_score": mean, "steps_per_s": steps / elapsed, **extra}
        (args.out / f"{env.env_id}.scores.json").write_text(json.dumps(summary, indent=1))
        print(f"saved {path}")
    print(f"mean_score={mean}")
    return mean


if __name__ == "__main__":
    main(sys.argv[1:])
