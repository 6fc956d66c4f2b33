#!/usr/bin/env python
"""Behaviour-cloning step time of the CNN agent (fp32 vs bf16 mixed precision) and the MINT agent.

One BC gradient step = the policy's ``evaluate_actions`` on a batch of demo-shaped observations,
imitation's loss, backward and Adam, exactly what ``train_bc`` repeats. Prints the seconds per
step for each configuration and the ratio of each to the fp32 CNN agent measured in the same
run, then, as the last line, ``cnn_fp32_s=<f> cnn_bf16_s=<f> bf16_speedup=<f> mint_s=<f>``.

    python scripts/benchmark_bc.py                       # CPU, torch's default threads
    python scripts/benchmark_bc.py --threads 1 --batch-size 32
    python scripts/benchmark_bc.py --device cuda

bf16 only pays off on hardware with bfloat16 arithmetic (AVX512-BF16 / AMX CPUs, Ampere+ GPUs);
elsewhere autocast emulates it and can be slower, which this script shows.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
import torch

from mint_rl.policies import CnnAgentPolicy, MintGraphPolicy


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds; the median is reported")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def time_bc_steps(policy, obs: torch.Tensor, acts: torch.Tensor, steps: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean seconds per BC step (after two warm-up steps)."""
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    policy.set_training_mode(True)

    def step() -> None:
        _, log_prob, entropy = policy.evaluate_actions(obs, acts)
        loss = -log_prob.mean() - 1e-3 * entropy.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    step()
    rounds = []
    for _ in range(repeats):
        if obs.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if obs.device.type == "cuda":
            torch.cuda.synchronize()
        rounds.append((time.perf_counter() - start) / steps)
    return statistics.median(rounds)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(args.seed)
    actions = gym.spaces.Discrete(18)
    acts = torch.randint(0, 18, (args.batch_size,), generator=gen).to(device)

    pixels = gym.spaces.Box(0, 255, shape=(96, 96, 12), dtype=np.uint8)
    pixel_obs = torch.randint(0, 256, (args.batch_size, 96, 96, 12), generator=gen, dtype=torch.uint8).to(device)
    keypoints = gym.spaces.Box(-1.0, 1.0, shape=(4, 25, 3), dtype=np.float32)
    keypoint_obs = (torch.rand(args.batch_size, 4, 25, 3, generator=gen) * 2 - 1).to(device)

    print(f"BC step, batch {args.batch_size}, device {device}, {torch.get_num_threads()} threads")
    results: dict[str, float] = {}
    for name, dtype in (("cnn_fp32", "fp32"), ("cnn_bf16", "bf16")):
        torch.manual_seed(args.seed)
        policy = CnnAgentPolicy(pixels, actions, lambda _: 1e-3,
                                features_extractor_kwargs={"compute_dtype": dtype}).to(device)
        results[name] = time_bc_steps(policy, pixel_obs, acts, args.steps, args.repeats)
    torch.manual_seed(args.seed)
    mint = MintGraphPolicy(keypoints, actions, lambda _: 1e-3).to(device)
    results["mint"] = time_bc_steps(mint, keypoint_obs, acts, args.steps, args.repeats)

    base = results["cnn_fp32"]
    for name, seconds in results.items():
        print(f"{name:<9} {seconds * 1e3:9.1f} ms/step   {base / seconds:6.2f}x vs cnn_fp32")
    print(f"cnn_fp32_s={results['cnn_fp32']:.4f} cnn_bf16_s={results['cnn_bf16']:.4f} "
          f"bf16_speedup={base / results['cnn_bf16']:.2f} mint_s={results['mint']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
