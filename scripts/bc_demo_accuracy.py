#!/usr/bin/env python
"""How many of their own demonstration actions trained BC policies reproduce (argmax).

Rebuilds the demonstrations ``bc_magical.py`` trained on (same task, demo source, count and
seeds), runs each saved policy on every demo observation and prints the fraction of actions it
gets right. A policy that cannot reach ~100% here cannot tell some demo states apart from its
observations (or is under-fitted), whatever its evaluation score.

    python scripts/bc_demo_accuracy.py MoveToCorner out/bc/MoveToCorner-mint/policies/*.safetensors
    python scripts/bc_demo_accuracy.py MoveToCorner out/bc/MoveToCorner-cnn/policies/*.safetensors

The agent (MINT, CNN or state) is read from each policy file. Last line:
``accuracy=<mean over policies>``.

``--recalibrate-bn`` first recomputes the BatchNorm running statistics of each policy from the
demo observations (:func:`mint_rl.policies.recalibrate_policy_batchnorm`; the CNN agent) and
prints the accuracy before and after; ``--eval-episodes N`` also scores each policy (after
recalibration, if asked) on N episodes of ``TASK-Demo`` and of ``TASK-TestJitter`` with the
evaluation seeds ``bc_magical.py`` gave that training seed (read from the policy file); ``--save-dir DIR`` keeps the recalibrated policies.

    python scripts/bc_demo_accuracy.py MakeLine out/bc/MakeLine-cnn/policies/MakeLine-cnn-seed3.safetensors \
        --recalibrate-bn --eval-episodes 25
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from mint_rl.envs.registry import TASKS
from mint_rl.experiments.magical_bc import (
    VARIANTS,
    BCExperimentConfig,
    build_demos,
    evaluate_variant,
    score_key,
)
from mint_rl.policies.batchnorm import batchnorm_layers, recalibrate_policy_batchnorm
from mint_rl.policies.bc import AGENT_POLICIES
from mint_rl.policies.serialization import load_policy, policy_extra

#: The ``bc_magical.py --agent`` that trains each policy class.
AGENT_OF = {cls: agent for agent, cls in AGENT_POLICIES.items()}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("task", help=f"one of {', '.join(TASKS)}")
    p.add_argument("policies", nargs="+", type=Path, help="policy files written by bc_magical.py")
    p.add_argument("--demos", default="expert", help="as bc_magical.py: expert | human | PATH")
    p.add_argument("--human-dir", default=None)
    p.add_argument("--n-demos", type=int, default=10)
    p.add_argument("--detector", default="magical", help="detector of the MINT policies")
    p.add_argument("--recalibrate-bn", action="store_true",
                   help="recompute BatchNorm running statistics from the demo observations first")
    p.add_argument("--eval-episodes", type=int, default=0,
                   help="also score each policy on this many Demo and TestJitter episodes (default 0: none)")
    p.add_argument("--save-dir", type=Path, default=None, help="write the recalibrated policies here")
    return p.parse_args(argv)


def demo_observations(demos) -> np.ndarray:
    """Every demo observation that has an action after it (the final one of each demo is dropped)."""
    return np.concatenate([np.asarray(d.obs[:-1]) for d in demos])


def demo_action_accuracy(policy, demos) -> float:
    """Fraction of demo transitions whose action is the policy's most likely one."""
    obs = demo_observations(demos)
    acts = np.concatenate([np.asarray(d.acts) for d in demos])
    with torch.no_grad():
        pred = np.concatenate([policy.predict(obs[i:i + 64], deterministic=True)[0] for i in range(0, len(obs), 64)])
    return float((pred.reshape(-1) == acts.reshape(-1)).mean())


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.task not in TASKS:
        print(f"error: unknown task {args.task!r}; expected one of {', '.join(TASKS)}", file=sys.stderr)
        return 2
    if args.eval_episodes < 0:
        print(f"error: --eval-episodes: expected >= 0, got {args.eval_episodes}", file=sys.stderr)
        return 2
    if args.save_dir is not None and not args.recalibrate_bn:
        print("error: --save-dir keeps recalibrated policies: expected --recalibrate-bn with it", file=sys.stderr)
        return 2
    demos_by_kind: dict[tuple[str, bool, int], list] = {}
    mint_detector = None  # loaded once, for the demos and the evaluation of every MINT policy
    scores = []
    for path in args.policies:
        policy = load_policy(path)
        agent = AGENT_OF[type(policy)]
        # a MINT policy trained with keypoint orientation reads rows of 5 features
        orientation = agent == "mint" and policy.observation_space.shape[-1] == 5
        # and (history, K, F) keypoint rows: its history is the first dimension
        history = int(policy.observation_space.shape[0]) if agent == "mint" else 4
        kind = (agent, orientation, history)
        detector = None
        if agent == "mint":
            if mint_detector is None:
                from mint_rl.wrappers.encoder import load_detector

                mint_detector = load_detector(args.detector)
            detector = mint_detector
        if kind not in demos_by_kind:
            cfg = BCExperimentConfig(task=args.task, agent=agent, demos=args.demos, human_dir=args.human_dir,
                                     n_demos=args.n_demos, detector=args.detector, orientation=orientation,
                                     history=history)
            demos_by_kind[kind] = build_demos(cfg, detector, False)
        demos = demos_by_kind[kind]
        acc = demo_action_accuracy(policy, demos)
        n = sum(len(d.acts) for d in demos)
        print(f"{path}: {agent} agent reproduces {acc:.4f} of {n} demo actions")
        if args.recalibrate_bn:
            if not batchnorm_layers(policy):
                print(f"error: --recalibrate-bn: {path} ({agent} agent) has no BatchNorm layer", file=sys.stderr)
                return 2
            recalibrate_policy_batchnorm(policy, demo_observations(demos))
            acc = demo_action_accuracy(policy, demos)
            print(f"{path}: after BatchNorm recalibration on the demos: {acc:.4f}")
            if args.save_dir is not None:
                args.save_dir.mkdir(parents=True, exist_ok=True)
                print(f"wrote {policy.save(args.save_dir / path.name)}")
        scores.append(acc)
        if args.eval_episodes:
            cfg = BCExperimentConfig(task=args.task, agent=agent, eval_episodes=args.eval_episodes,
                                     orientation=orientation, eval_modes=("argmax",), history=history)
            seed = policy_extra(path).get("seed")
            if not isinstance(seed, int):
                print(f"error: --eval-episodes: {path} does not say which training seed it is "
                      f"(expected an integer 'seed' in its metadata, got {seed!r})", file=sys.stderr)
                return 2
            for variant in VARIANTS:
                episode_scores = evaluate_variant(policy, cfg, seed, variant, detector)[score_key(variant, "argmax")]
                print(f"{path}: {variant} {np.mean(episode_scores):.3f} over {len(episode_scores)} episodes")
    print(f"accuracy={np.mean(scores):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
