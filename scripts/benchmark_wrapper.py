#!/usr/bin/env python
"""How much the keypoint wrapper costs on top of MAGICAL and the detector, in one run.

Prints first the detector's two paths side by side (``--compare`` prints only this part):
``forward`` (today's ``MintDetector.forward``) and the inference path the wrappers use
(``MintDetector.for_inference``: BatchNorm folded, channels-last, one-pass soft-argmax, the fused
C++ kernels of csrc/inference_cpu.cpp when ``mint_rl._C`` has them; the first line says which), in ms
per frame at 1 and 2 threads and batch 1 and 8, interleaved (target: inference >= 3x faster at
1 thread, batch 1); the wrapped/raw env steps/s on one thread with either path (target with the
inference path: >= 0.6); and the largest keypoint / status difference between the paths on
real MAGICAL frames and CLEVRER-like frames (shipped ``magical`` / ``clevrer-like`` detectors).

Then, with the path the wrappers use (``--path``, default ``inference``): raw env steps/s; the
detector's own time on one 96x96 frame; wrapped steps/s (single env) and the wrapper's overhead
beyond the detector (target: wrapped step - raw step <= 1.15 x detector); for N sub-envs
(default 8) the per-step time of N unbatched wrappers vs the batched vector wrapper (target on
CPU: batched never slower), and the per-env detector cost batched vs unbatched (target on a
GPU: <= 1/4); and what ``orientation=True`` adds per frame (the intensity centroid of every
keypoint) relative to the detector.

    python scripts/benchmark_wrapper.py --detector magical --repeats 4   # everything, CPU
    python scripts/benchmark_wrapper.py --compare                       # forward vs inference path only
    python scripts/benchmark_wrapper.py --device cuda --detector magical
    python scripts/benchmark_wrapper.py --device cuda --forward-only   # detector alone, no MAGICAL
    python scripts/benchmark_wrapper.py --deconv      # decoder by phases vs torch's ConvTranspose2d

The detector's speed does not depend on its weights, so the default is an untrained detector of
the ``magical`` preset (58,725 parameters, 96x96 input). The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time

import gymnasium as gym
import numpy as np
import torch

import mint_rl  # noqa: F401  (registers magical/<id>)
from mint_rl.inference import compiled_kernels
from mint_rl.models import MintDetector, detector_preset
from mint_rl.wrappers.encoder import KeypointEncoder
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
    p.add_argument("--path", choices=("inference", "forward"), default="inference",
                   help="detector path timed by --forward-only and the wrapper sections (the wrappers' default: inference)")
    p.add_argument("--compare", action="store_true",
                   help="only the forward vs inference path comparison (tables, wrapped/raw, differences on real frames)")
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


def detector_call(detector: MintDetector, path: str):
    """``frames -> output with .keypoints``: ``detector.forward`` or its inference path."""
    if path == "forward":
        return detector
    return detector.eval().requires_grad_(False).for_inference()


def random_frames(detector: MintDetector, batch: int, device: torch.device) -> torch.Tensor:
    """``(batch, 3, H, W)`` uint8 frames laid out as the wrappers pass them (an NHWC array, permuted)."""
    h, w = detector.config.image_size
    return torch.randint(0, 256, (batch, h, w, 3), dtype=torch.uint8, device=device).permute(0, 3, 1, 2)


def time_forward(detector, batch: int, device: torch.device, iters: int = 100, config_from=None) -> float:
    """Seconds per call of ``detector`` (a module or an inference path) on ``batch`` frames, inference mode."""
    x = random_frames(config_from or detector, batch, device)
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
    """The detector's per-frame cost (``--path``) at batch 1 and in one batch of ``--num-envs`` frames."""
    n = args.num_envs
    call = detector_call(detector, args.path)
    fwd1 = med(lambda: time_forward(call, 1, device, config_from=detector))
    fwd_n = med(lambda: time_forward(call, n, device, config_from=detector))
    print(f"detector: {args.detector} ({n_params:,} parameters, input {detector.config.image_size}) on {device}, "
          f"{args.path} path")
    print(f"detector forward   : {fwd1 * 1e3:8.2f} ms per frame (batch 1)")
    print(f"detector per env   : one forward of {n} frames {fwd_n / n * 1e3:.2f} ms per frame  "
          f"ratio = {fwd_n / n / fwd1:.3f} (GPU target <= 0.25)")
    print(f"forward_ms={fwd1 * 1e3:.3f} per_env_detector_batched_over_unbatched={fwd_n / n / fwd1:.3f}")
    return 0


def interleaved(calls: dict, iters: int, device: torch.device) -> dict:
    """Median seconds per call of each function, calling them in turn ``iters`` times (same machine state)."""
    times = {name: [] for name in calls}
    for name, fn in calls.items():  # warm-up (and the inference path's one-time plan)
        for _ in range(3):
            fn()
    _sync(device)
    for _ in range(iters):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def real_frames() -> dict:
    """``{name: (description, (N, H, W, 3) uint8)}``: MAGICAL TestJitter frames and CLEVRER-like clips."""
    from mint_rl.data import clevrer_like_preset, generate_clip
    from mint_rl.envs import make_magical_env

    env = make_magical_env("MoveToCorner", "TestJitter")
    magical = []
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        magical.append(obs)
        for _ in range(23):
            obs, _, term, trunc, _ = env.step(env.action_space.sample())
            magical.append(obs)
            if term or trunc:
                break
    env.close()
    clevrer = np.concatenate([generate_clip(clevrer_like_preset("small"), seed=s).frames for s in range(2)])
    return {"magical": ("MAGICAL MoveToCorner-TestJitter", np.stack(magical)),
            "clevrer-like": ("CLEVRER-like small preset", clevrer)}


def path_differences(device: torch.device) -> dict:
    """Largest |inference path - forward| of keypoints and status, and differing active decisions, per shipped detector."""
    out = {}
    for name, (what, frames) in real_frames().items():
        det = MintDetector.from_pretrained(name).to(device).requires_grad_(False)
        fast = det.for_inference()
        kp = st = 0.0
        mismatch = total = 0
        with torch.inference_mode():
            for i in range(0, len(frames), 16):
                x = torch.from_numpy(frames[i : i + 16]).to(device).permute(0, 3, 1, 2)
                ref, got = det(x), fast(x)
                kp = max(kp, float((ref.keypoints - got.keypoints).abs().max()))
                st = max(st, float((ref.status - got.status).abs().max()))
                mismatch += int((ref.active != got.active).sum())
                total += ref.active.numel()
        out[name] = dict(what=what, frames=len(frames), keypoints=kp, status=st, mismatch=mismatch, decisions=total)
    return out


def cv2_resize(frames: np.ndarray, size: tuple) -> np.ndarray:
    """What the wrappers did before :func:`mint_rl.inference.area_downsample`: cv2, frame by frame."""
    import cv2

    h, w = size
    return np.stack([cv2.resize(np.ascontiguousarray(f), (w, h), interpolation=cv2.INTER_AREA) for f in frames])


def wrapped_over_raw(detector: MintDetector, device: torch.device, args) -> dict:
    """Seconds per step, one thread, interleaved: raw env; wrapped with the inference path; the same
    with frames shrunk by cv2 instead of :func:`mint_rl.inference.area_downsample`; wrapped with forward.

    When the wrapper switched a two-view MAGICAL env to render only the view it reads
    (``render_only_observed``), also: the same wrapper letting the env render both views, and the
    raw env rendering only that view (the like-for-like baseline)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    envs = {"raw": gym.make(args.env),
            "inference": MintKeypointWrapper(gym.make(args.env), detector=detector, device=device),
            "cv2 resize": MintKeypointWrapper(gym.make(args.env), detector=detector, device=device),
            "forward": MintKeypointWrapper(gym.make(args.env), detector=detector, device=device)}
    if envs["inference"].renders_only_observed:
        view = envs["inference"].unwrapped.view
        envs["both views"] = MintKeypointWrapper(gym.make(args.env), detector=detector, device=device,
                                                 render_only_observed=False)
        envs["raw, one view"] = gym.make(args.env, view=view)
    envs["forward"].encoder.inference = None  # KeypointEncoder: None runs detector.forward
    envs["cv2 resize"].encoder.resize = functools.partial(cv2_resize, size=tuple(detector.config.image_size))
    times = {name: [] for name in envs}
    for e in envs.values():
        e.reset(seed=0)
    rng = np.random.default_rng(0)
    try:
        for _ in range(args.steps * args.repeats):
            a = int(rng.integers(envs["raw"].action_space.n))
            for name, e in envs.items():
                t0 = time.perf_counter()
                _, _, term, trunc, _ = e.step(a)
                times[name].append(time.perf_counter() - t0)
                if term or trunc:
                    e.reset()
    finally:
        for e in envs.values():
            e.close()
        torch.set_num_threads(threads)
    return {name: statistics.median(t) for name, t in times.items()}


def compare_paths(detector: MintDetector, device: torch.device, args, n_params: int) -> dict:
    """forward vs the inference path: ms per frame at 1 and 2 threads, batch 1 and 8; wrapped/raw; differences."""
    fast = detector_call(detector, "inference")
    threads = torch.get_num_threads()
    timings = {}
    try:
        for t in (1, 2):
            torch.set_num_threads(t)
            for batch in (1, 8):
                x = random_frames(detector, batch, device)
                iters = max(10, (100 if batch == 1 else 15) * args.repeats)
                with torch.inference_mode():
                    timings[t, batch] = interleaved({"forward": lambda: detector(x).keypoints.cpu(),
                                                     "inference": lambda: fast(x).keypoints.cpu()}, iters, device)
    finally:
        torch.set_num_threads(threads)
    steps = wrapped_over_raw(detector, device, args)
    diffs = path_differences(device)
    cpu = _cpu_name()
    print(f"detector: {args.detector} ({n_params:,} parameters, input {detector.config.image_size}) on {device}"
          + (f" ({cpu})" if cpu and device.type == "cpu" else ""))
    kernels = compiled_kernels() is not None and device.type == "cpu"
    print(f"inference path: {'fused C++ kernels (mint_rl._C)' if kernels else 'torch steps (no compiled kernels)'}")
    line = {"compiled_kernels": str(int(kernels))}
    print("per frame, interleaved medians  forward   inference   speed-up (target >= 3 at 1 thread, batch 1)")
    for (t, batch), m in timings.items():
        f, i = m["forward"] / batch, m["inference"] / batch
        print(f"  {t} thread{'s' if t > 1 else ' '}, batch {batch}    {f * 1e3:8.2f} ms {i * 1e3:8.2f} ms   {f / i:6.2f} x")
        line[f"forward_ms_t{t}_b{batch}"] = f"{f * 1e3:.3f}"
        line[f"inference_ms_t{t}_b{batch}"] = f"{i * 1e3:.3f}"
        line[f"speedup_t{t}_b{batch}"] = f"{f / i:.3f}"
    raw = steps["raw"]
    print(f"wrapped/raw steps/s, 1 thread: raw {1 / raw:.1f} steps/s; inference path {1 / steps['inference']:.1f} steps/s "
          f"= {raw / steps['inference']:.3f} x raw (target >= 0.6); forward {1 / steps['forward']:.1f} steps/s "
          f"= {raw / steps['forward']:.3f} x raw  [{args.env}]")
    print(f"  the inference path with frames shrunk by cv2 (the wrappers before area_downsample): "
          f"{1 / steps['cv2 resize']:.1f} steps/s = {raw / steps['cv2 resize']:.3f} x raw")
    if "both views" in steps:
        one = steps["raw, one view"]
        print(f"  (the wrapped envs render only the view the wrapper reads; raw renders both, as gym.make gives it)")
        print(f"  the inference path, env left rendering both views (render_only_observed=False): "
              f"{1 / steps['both views']:.1f} steps/s = {raw / steps['both views']:.3f} x raw")
        print(f"  like for like, raw env rendering one view too: raw {1 / one:.1f} steps/s; inference path "
              f"= {one / steps['inference']:.3f} x that raw")
        line["wrapped_over_raw_both_views"] = f"{raw / steps['both views']:.3f}"
        line["wrapped_over_raw_one_view"] = f"{one / steps['inference']:.3f}"
    line["wrapped_over_raw"] = f"{raw / steps['inference']:.3f}"
    line["wrapped_over_raw_cv2_resize"] = f"{raw / steps['cv2 resize']:.3f}"
    line["wrapped_over_raw_forward"] = f"{raw / steps['forward']:.3f}"
    print("largest |inference path - forward| on real frames (shipped detectors; keypoints in normalised units):")
    for name, d in diffs.items():
        key = name.replace("-", "_")
        print(f"  {d['what']}, {d['frames']} frames ({name}): keypoints {d['keypoints']:.2e}, status {d['status']:.2e}, "
              f"active decisions differing {d['mismatch']} of {d['decisions']}")
        line[f"max_keypoint_diff_{key}"] = f"{d['keypoints']:.3e}"
        line[f"max_status_diff_{key}"] = f"{d['status']:.3e}"
        line[f"active_mismatch_{key}"] = str(d["mismatch"])
    return line


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for row in f:
                if row.startswith("model name"):
                    return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


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
    comparison = compare_paths(detector, device, args, n_params)
    if args.compare:
        print(" ".join(f"{k}={v}" for k, v in comparison.items()))
        return 0
    print()

    def wrapper(env):
        w = MintKeypointWrapper(env, detector=detector, device=device)
        if args.path == "forward":
            w.encoder.inference = None  # KeypointEncoder: None runs detector.forward
        return w

    # Interleave raw steps, wrapped steps and bare detector calls in one loop, so that all
    # three see the same machine state (CPU frequency, other load); report medians.
    call = detector_call(detector, args.path)
    raw_env = gym.make(args.env)
    wrapped_env = wrapper(gym.make(args.env))
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
            frame = torch.from_numpy(wrapped_env.encoder.resize(wrapped_env._last_frame[None]).copy()).to(device)
            frame = frame.permute(0, 3, 1, 2)  # as the encoder passes it
            _sync(device)
            t3 = time.perf_counter()
            keypoints = call(frame).keypoints
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
    print(f"wrappers with the {args.path} path, {torch.get_num_threads()} threads")
    print(f"raw env            : {1 / raw:8.1f} steps/s ({raw * 1e3:.2f} ms/step)  [{args.env}]")
    print(f"detector ({args.path:>9}): {fwd1 * 1e3:8.2f} ms per frame (batch 1)")
    print(f"wrapped env        : {1 / wrapped:8.1f} steps/s ({wrapped * 1e3:.2f} ms/step)")
    print(f"wrapper cost       : wrapped - raw = {(wrapped - raw) * 1e3:.2f} ms = {overhead:.2f} x forward (target <= 1.15)")
    print(f"orientation        : {orient * 1e3:8.2f} ms per frame ({detector.num_keypoints} keypoints) = "
          f"{orient / fwd1:.3f} x forward (what orientation=True adds)")

    n = args.num_envs
    singles = [wrapper(gym.make(args.env)) for _ in range(n)]
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
    if args.path == "forward":
        venv._kp.encoder.inference = None
    venv.reset(seed=list(range(n)))
    venv.action_space.seed(0)
    # interleaved, one vector step of each at a time, medians
    unbatched_times, batched_times = [], []
    for _ in range(max(args.steps // n, 20) * args.repeats):
        unbatched_times.append(time_vector_steps(step_unbatched, 1))
        batched_times.append(time_vector_steps(lambda: venv.step(venv.action_space.sample()), 1))
    unbatched, batched = statistics.median(unbatched_times), statistics.median(batched_times)
    fwd_n = med(lambda: time_forward(call, n, device, config_from=detector))
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
        f"per_env_detector_batched_over_unbatched={fwd_n / n / fwd1:.3f} orientation_x_forward={orient / fwd1:.3f} "
        + " ".join(f"{k}={v}" for k, v in comparison.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
