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
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from mint_rl.envs.registry import TASKS
from mint_rl.experiments.magical_bc import BCExperimentConfig, build_demos
from mint_rl.policies.bc import AGENT_POLICIES
from mint_rl.policies.serialization import load_policy

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
    return p.parse_args(argv)


def demo_action_accuracy(policy, demos) -> float:
    """Fraction of demo transitions whose action is the policy's most likely one."""
    obs = np.concatenate([np.asarray(d.obs[:-1]) for d in demos])
    acts = np.concatenate([np.asarray(d.acts) for d in demos])
    with torch.no_grad():
        pred = np.concatenate([policy.predict(obs[i:i + 64], deterministic=True)[0] for i in range(0, len(obs), 64)])
    return float((pred.reshape(-1) == acts.reshape(-1)).mean())


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.task not in TASKS:
        print(f"error: unknown task {args.task!r}; expected one of {', '.join(TASKS)}", file=sys.stderr)
        return 2
    demos_by_kind: dict[tuple[str, bool], list] = {}
    scores = []
    for path in args.policies:
        policy = load_policy(path)
        agent = AGENT_OF[type(policy)]
        # a MINT policy trained with keypoint orientation reads rows of 5 features
        orientation = agent == "mint" and policy.observation_space.shape[-1] == 5
        kind = (agent, orientation)
        if kind not in demos_by_kind:
            cfg = BCExperimentConfig(task=args.task, agent=agent, demos=args.demos, human_dir=args.human_dir,
                                     n_demos=args.n_demos, detector=args.detector, orientation=orientation)
            detector = None
            if agent == "mint":
                from mint_rl.wrappers.encoder import load_detector

                detector = load_detector(args.detector)
            demos_by_kind[kind] = build_demos(cfg, detector, False)
        acc = demo_action_accuracy(policy, demos_by_kind[kind])
        scores.append(acc)
        n = sum(len(d.acts) for d in demos_by_kind[kind])
        print(f"{path}: {agent} agent reproduces {acc:.4f} of {n} demo actions")
    print(f"accuracy={np.mean(scores):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
