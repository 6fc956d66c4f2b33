#!/usr/bin/env python
"""How much the keypoint wrapper costs on top of MAGICAL and the detector, in one run.

Prints: raw env steps/s; the detector's own forward time on one 96x96 frame; wrapped steps/s
(single env) and the wrapper's overhead beyond the forward (target: wrapped step - raw step
<= 1.15 x forward); for N sub-envs (default 8) the per-step time of N unbatched wrappers vs
the batched vector wrapper (target on CPU: batched never slower), and the per-env detector
cost batched vs unbatched (target on a GPU: <= 1/4); and what ``orientation=True`` adds per frame
(the intensity centroid of every keypoint) relative to the forward.

    python scripts/benchmark_wrapper.py                       # CPU, paper-sized untrained detector
    python scripts/benchmark_wrapper.py --device cuda --detector magical
    python scripts/benchmark_wrapper.py --device cuda --forward-only   # detector alone, no MAGICAL
    python scripts/benchmark_wrapper.py --deconv      # decoder by phases vs torch's ConvTranspose2d

The detector's speed does not depend on its weights, so the default is an untrained detector of
the ``magical`` preset (58,725 parameters, 96x96 input). The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import gymnasium as gym
import numpy as np
import torch

import mint_rl  # noqa: F401  (registers magical/<id>)
from mint_rl.models import MintDetector, detector_preset
from mint_rl.wrappers import ORIENTATION_RADIUS, MintKeypointVectorWrapper, MintKeypointWrapper, intensity_centroid


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="magical/MoveToCorner-Demo-v0")
    p.add_argument("--detector", default="untrained", help="'untrained' (paper-sized, random weights), a name or a path")
    p.add_argument("--steps", type=int, default=300, help="env steps per measurement")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--forward-only", action="store_true",
                   help="time only the detector (batch 1 vs one batch of --num-envs frames); needs no MAGICAL")
    p.add_argument("--deconv", action="store_true",
                   help="time the detector with its transposed convolutions computed by phases (what it uses "
                        "without gradients) against torch's ConvTranspose2d kernels; needs no MAGICAL")
    p.add_argument("--repeats", type=int, default=3, help="repeat each measurement (single env: --steps x repeats interleaved steps), report the median")
    return p.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_env_steps(env: gym.Env, steps: int, seed: int = 0) -> float:
    """Seconds per step of ``env`` under random actions (resets excluded)."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    total = 0.0
    for _ in range(steps):
        a = env.action_space.sample()
        t0 = time.perf_counter()
        _, _, term, trunc, _ = env.step(a)
        total += time.perf_counter() - t0
        if term or trunc:
            env.reset()
    return total / steps


def time_forward(detector: MintDetector, batch: int, device: torch.device, iters: int = 100) -> float:
    """Seconds per forward of ``batch`` 96x96 frames (uint8 -> keypoints), inference mode."""
    h, w = detector.config.image_size
    x = torch.randint(0, 256, (batch, 3, h, w), dtype=torch.uint8, device=device)
    with torch.inference_mode():
        for _ in range(10):
            detector(x)
        _sync(device)
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            out = detector(x)
            out.keypoints.cpu()
            _sync(device)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_vector_steps(step_fn, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        step_fn()
    return (time.perf_counter() - t0) / steps


def forward_only(detector: MintDetector, device: torch.device, args, n_params: int, med) -> int:
    """The detector's per-frame cost at batch 1 and in one batch of ``--num-envs`` frames."""
    n = args.num_envs
    fwd1 = med(lambda: time_forward(detector, 1, device))
    fwd_n = med(lambda: time_forward(detector, n, device))
    print(f"detector: {args.detector} ({n_params:,} parameters, input {detector.config.image_size}) on {device}")
    print(f"detector forward   : {fwd1 * 1e3:8.2f} ms per frame (batch 1)")
    print(f"detector per env   : one forward of {n} frames {fwd_n / n * 1e3:.2f} ms per frame  "
          f"ratio = {fwd_n / n / fwd1:.3f} (GPU target <= 0.25)")
    print(f"forward_ms={fwd1 * 1e3:.3f} per_env_detector_batched_over_unbatched={fwd_n / n / fwd1:.3f}")
    return 0


def time_train_step(detector: MintDetector, batch: int, device: torch.device, iters: int = 10) -> float:
    """Seconds per forward + backward of ``batch`` frames through the feature maps (training mode)."""
    h, w = detector.config.image_size
    x = torch.randint(0, 256, (batch, 3, h, w), dtype=torch.uint8, device=device)
    detector.train()
    times = []
    for i in range(iters + 2):
        t0 = time.perf_counter()
        detector.feature_maps(x).sum().backward()
        _sync(device)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    detector.eval()
    return statistics.median(times)


def deconv_comparison(detector: MintDetector, device: torch.device, args, med) -> int:
    """The detector with :class:`~mint_rl.models.PhaseConvTranspose2d` vs torch's kernels, same weights."""
    import copy

    from mint_rl.models import conv_transpose2d_by_phases

    class AlwaysPhases(torch.nn.ConvTranspose2d):  # phases with gradients too (the detector uses them without)
        def forward(self, x, output_size=None):
            return conv_transpose2d_by_phases(x, self.weight, self.bias, self.stride)

    reference, phases = copy.deepcopy(detector), copy.deepcopy(detector)
    for model, cls in ((reference, torch.nn.ConvTranspose2d), (phases, AlwaysPhases)):
        for m in model.decoder:
            if isinstance(m, torch.nn.ConvTranspose2d):
                m.__class__ = cls
    n = args.num_envs
    rows = {}
    for name, model in (("torch", reference), ("phases", phases)):
        rows[name] = (med(lambda: time_forward(model, 1, device)), med(lambda: time_forward(model, n, device)),
                      med(lambda: time_train_step(model, n, device)))
    print(f"detector: {args.detector} on {device}, {torch.get_num_threads()} threads; ConvTranspose2d kernels")
    print(f"{'decoder':<8} {'forward b=1':>12} {f'forward b={n}':>12} {f'fwd+bwd b={n}':>13}")
    for name, (f1, fn, tr) in rows.items():
        print(f"{name:<8} {f1 * 1e3:9.2f} ms {fn * 1e3:9.2f} ms {tr * 1e3:10.2f} ms")
    speed = [t / p for t, p in zip(rows["torch"], rows["phases"])]
    print(f"speed-up {speed[0]:9.2f} x  {speed[1]:9.2f} x  {speed[2]:10.2f} x")
    print(f"deconv_speedup_b1={speed[0]:.3f} deconv_speedup_b{n}={speed[1]:.3f} deconv_speedup_train={speed[2]:.3f}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.detector == "untrained":
        torch.manual_seed(0)
        detector = MintDetector(detector_preset("magical")).eval()
    else:
        detector = MintDetector.from_pretrained(args.detector).eval()
    detector = detector.to(device)
    n_params = sum(p.numel() for p in detector.parameters())
    med = lambda f: statistics.median(f() for _ in range(args.repeats))  # noqa: E731
    if args.forward_only:
        return forward_only(detector, device, args, n_params, med)
    if args.deconv:
        return deconv_comparison(detector, device, args, med)

    # Interleave raw steps, wrapped steps and bare detector forwards in one loop, so that all
    # three see the same machine state (CPU frequency, other load); report medians.
    raw_env = gym.make(args.env)
    wrapped_env = MintKeypointWrapper(gym.make(args.env), detector=detector, device=device)
    raw_times, wrapped_times, fwd_times, orient_times = [], [], [], []
    raw_env.reset(seed=0)
    wrapped_env.reset(seed=0)
    rng = np.random.default_rng(0)
    h, w = detector.config.image_size
    with torch.inference_mode():
        for i in range(args.steps * args.repeats):
            a = int(rng.integers(raw_env.action_space.n))
            t0 = time.perf_counter()
            _, _, term, trunc, _ = raw_env.step(a)
            t1 = time.perf_counter()
            _, _, wterm, wtrunc, _ = wrapped_env.step(a)
            t2 = time.perf_counter()
            frame = torch.from_numpy(wrapped_env.encoder.resize(wrapped_env._last_frame[None]).copy()).permute(0, 3, 1, 2)
            frame = frame.contiguous().to(device)
            _sync(device)
            t3 = time.perf_counter()
            keypoints = detector(frame).keypoints
            keypoints.cpu()
            _sync(device)
            t4 = time.perf_counter()
            intensity_centroid(frame, keypoints, ORIENTATION_RADIUS).cpu()
            _sync(device)
            t5 = time.perf_counter()
            raw_times.append(t1 - t0)
            wrapped_times.append(t2 - t1)
            fwd_times.append(t4 - t3)
            orient_times.append(t5 - t4)
            if term or trunc:
                raw_env.reset()
            if wterm or wtrunc:
                wrapped_env.reset()
    raw, wrapped, fwd1, orient = (statistics.median(x) for x in (raw_times, wrapped_times, fwd_times, orient_times))
    overhead = (wrapped - raw) / fwd1
    print(f"detector: {args.detector} ({n_params:,} parameters, input {detector.config.image_size}) on {device}")
    print(f"raw env            : {1 / raw:8.1f} steps/s ({raw * 1e3:.2f} ms/step)  [{args.env}]")
    print(f"detector forward   : {fwd1 * 1e3:8.2f} ms per frame (batch 1)")
    print(f"wrapped env        : {1 / wrapped:8.1f} steps/s ({wrapped * 1e3:.2f} ms/step)")
    print(f"wrapper cost       : wrapped - raw = {(wrapped - raw) * 1e3:.2f} ms = {overhead:.2f} x forward (target <= 1.15)")
    print(f"orientation        : {orient * 1e3:8.2f} ms per frame ({detector.num_keypoints} keypoints) = "
          f"{orient / fwd1:.3f} x forward (what orientation=True adds)")

    n = args.num_envs
    singles = [MintKeypointWrapper(gym.make(args.env), detector=detector, device=device) for _ in range(n)]
    for i, e in enumerate(singles):
        e.reset(seed=i)
        e.action_space.seed(i)

    def step_unbatched():
        for e in singles:
            _, _, term, trunc, _ = e.step(e.action_space.sample())
            if term or trunc:
                e.reset()

    # copy=False: the wrapper consumes the image batch at once, so the vector env need not copy it
    venv = MintKeypointVectorWrapper(gym.vector.SyncVectorEnv([lambda: gym.make(args.env)] * n, copy=False), detector=detector, device=device)
    venv.reset(seed=list(range(n)))
    venv.action_space.seed(0)
    # interleaved, one vector step of each at a time, medians
    unbatched_times, batched_times = [], []
    for _ in range(max(args.steps // n, 20) * args.repeats):
        unbatched_times.append(time_vector_steps(step_unbatched, 1))
        batched_times.append(time_vector_steps(lambda: venv.step(venv.action_space.sample()), 1))
    unbatched, batched = statistics.median(unbatched_times), statistics.median(batched_times)
    fwd_n = med(lambda: time_forward(detector, n, device))
    print(f"{n} sub-envs, unbatched: {unbatched * 1e3:8.2f} ms per vector step ({n} wrappers, {n} forwards)")
    print(f"{n} sub-envs, batched  : {batched * 1e3:8.2f} ms per vector step (1 forward)  ratio batched/unbatched = {batched / unbatched:.3f} (target <= 1)")
    print(f"detector per env   : unbatched {fwd1 * 1e3:.2f} ms, one forward of {n} frames {fwd_n / n * 1e3:.2f} ms per frame  ratio = {fwd_n / n / fwd1:.3f} (GPU target <= 0.25)")
    for e in singles:
        e.close()
    venv.close()
    raw_env.close()
    wrapped_env.close()
    print(
        f"raw_steps_per_s={1 / raw:.1f} forward_ms={fwd1 * 1e3:.3f} wrapped_steps_per_s={1 / wrapped:.1f} "
        f"overhead_x_forward={overhead:.3f} batched_over_unbatched={batched / unbatched:.3f} "
        f"per_env_detector_batched_over_unbatched={fwd_n / n / fwd1:.3f} orientation_x_forward={orient / fwd1:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
