#!/usr/bin/env python
"""Benchmark of the local-entropy layer against a faithful port of the published formula.

    python scripts/benchmark_entropy.py [--cuda] [--out DIR]

For a batch of 8x3x96x96 and a batch of 2x3x320x480 synthetic natural-looking frames (see
``scripts/entropy_demo.py``), all preprocessed as the layer does, it times

  (a) ``published``: a vectorised torch port of the published 256-bin sigmoid-KDE formula
      (256 bins x 27 samples x 2 sigmoids per pixel, chunked over pixels), float32;
  (b) ``cpp``: ``mint_rl.entropy.local_entropy`` on CPU tensors (the C++/OpenMP kernel);
  (c) ``torch``: ``mint_rl.entropy.local_entropy_torch`` (the pure-torch fallback);

and with ``--cuda`` on a GPU also

  (d) ``cuda``: ``local_entropy`` on CUDA tensors (one thread per pixel, hard histogram);
  (e) ``cuda_published``: the published design as a CUDA kernel (one block per pixel, one
      thread per bin; ``mint_rl._C.published_entropy_cuda``, a benchmark-only kernel in
      csrc/entropy_cuda.cu).

Each CPU method runs in its own subprocess, so its peak resident memory (ru_maxrss) is its
own; the table gives that peak and its growth over the process's RSS after imports. Every
method includes the preprocessing in its time. Wall times are medians (best in brackets, and
the speed-up of best against best);
``cpu ms`` is the process CPU time per call. On a shared, oversubscribed machine OpenMP's
default spin-waiting makes every parallel region (torch's ops and the C++ kernel alike) cost
tens of milliseconds; ``OMP_WAIT_POLICY=passive`` (inherited by the workers) avoids that. Prints a table and a last line
``BENCH_JSON {...}``; writes ``benchmark_entropy.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCHES = {"96x96": (8, 96, 96), "320x480": (2, 320, 480)}
CPU_METHODS = ("published", "cpp", "torch")


def _frames(batch: str, seed: int):
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entropy_demo import synthetic_scenes

    n, h, w = BATCHES[batch]
    return torch.from_numpy(synthetic_scenes(n, h, w, seed=seed))


def _method(name: str):
    from mint_rl.entropy import local_entropy, local_entropy_torch, preprocess, published_local_entropy

    if name == "published":
        return lambda x: published_local_entropy(preprocess(x))
    if name == "cpp":
        return local_entropy
    if name == "torch":
        return local_entropy_torch
    raise ValueError(f"method: expected one of {CPU_METHODS}, got {name!r}")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def worker(method: str, batch: str, repeats: int, seed: int, result_path: str, threads: int) -> None:
    """Run one CPU method in this (fresh) process; save its output and print a JSON line."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    frames = _frames(batch, seed)
    fn = _method(method)
    fn(frames[:1, :, :16, :16])  # load the extension, start the thread pool
    rss0 = _rss_mb()
    times = []
    out = None
    cpu0 = time.process_time()
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(frames)
        times.append(time.perf_counter() - t0)
    cpu_ms = 1e3 * (time.process_time() - cpu0) / repeats
    torch.save(out, result_path)
    print(json.dumps({"ms": 1e3 * statistics.median(times), "best_ms": 1e3 * min(times), "cpu_ms": cpu_ms, "rss_mb": _rss_mb(), "rss_delta_mb": _rss_mb() - rss0}))


def run_worker(method: str, batch: str, repeats: int, seed: int, tmp: Path, threads: int) -> dict:
    res = tmp / f"{method}_{batch}.pt"
    cmd = [sys.executable, __file__, "--worker", method, "--batch", batch, "--repeats", str(repeats),
           "--seed", str(seed), "--result", str(res), "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {method} {batch} failed:\n{proc.stderr[-3000:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["result"] = str(res)
    return info


def cuda_rows(batch: str, seed: int, repeats: int) -> dict:
    import torch

    from mint_rl._ext import has_cuda_kernels, load_extension
    from mint_rl.entropy import local_entropy, preprocess

    if not torch.cuda.is_available():
        raise SystemExit("--cuda: no CUDA GPU available")
    if not has_cuda_kernels():
        raise SystemExit("--cuda: mint_rl._C was built without CUDA kernels")
    ext = load_extension()
    frames = _frames(batch, seed).cuda()
    fns = {
        "cuda": lambda x: local_entropy(x),
        "cuda_published": lambda x: ext.published_entropy_cuda(preprocess(x), 3, 1e-3),
    }
    rows = {}
    for name, fn in fns.items():
        fn(frames)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        times = []
        out = None
        reps = repeats if name == "cuda" else max(1, repeats // 5)
        for _ in range(reps):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = fn(frames)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        rows[name] = {
            "ms": 1e3 * statistics.median(times),
            "best_ms": 1e3 * min(times),
            "gpu_peak_mb": (torch.cuda.max_memory_allocated() - base) / 2**20,
            "out": out.cpu(),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/benchmark_entropy"))
    parser.add_argument("--repeats", type=int, default=20, help="repeats of the fast methods (median)")
    parser.add_argument("--torch-repeats", type=int, default=2, help="repeats of the pure-torch fallback")
    parser.add_argument("--published-repeats", type=int, default=1, help="repeats of the published port")
    parser.add_argument("--cuda", action="store_true", help="also time the CUDA kernels (needs a GPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batches", nargs="+", choices=sorted(BATCHES), default=list(BATCHES),
                        help="which batches to run (default: both)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--worker", choices=CPU_METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--batch", choices=sorted(BATCHES), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.batch, args.repeats, args.seed, args.result, args.threads)
        return

    import torch

    from mint_rl._ext import has_extension

    threads = args.threads if args.threads > 0 else torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, {os.cpu_count()} cpus, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
          f"extension built: {has_extension()}; times are medians (best in brackets)")
    repeats = {"published": args.published_repeats, "cpp": args.repeats, "torch": args.torch_repeats}
    summary = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for batch in args.batches:
            rows = {m: run_worker(m, batch, repeats[m], args.seed, tmp, args.threads) for m in CPU_METHODS}
            ref = torch.load(rows["published"]["result"])
            print(f"{'batch':8s} {'method':15s} {'ms':>11s} {'(best)':>11s} {'x vs (a)':>9s} {'(best)':>8s} "
                  f"{'cpu ms':>10s} {'x cpu':>7s} {'max|diff|':>10s} {'peak RSS MB':>11s} {'+MB':>7s}")
            for m, row in rows.items():
                diff = float((torch.load(row["result"]) - ref).abs().max())
                row.update(speedup=rows["published"]["ms"] / row["ms"], max_abs_diff=diff,
                           best_speedup=rows["published"]["best_ms"] / row["best_ms"],
                           cpu_speedup=rows["published"]["cpu_ms"] / row["cpu_ms"])
                row.pop("result")
                print(f"{batch:8s} {m:15s} {row['ms']:11.2f} {'(%.2f)' % row['best_ms']:>11s} {row['speedup']:9.1f} "
                      f"{'(%.1f)' % row['best_speedup']:>8s} {row['cpu_ms']:10.1f} {row['cpu_speedup']:7.1f} {diff:10.2e} "
                      f"{row['rss_mb']:11.0f} {row['rss_delta_mb']:7.0f}")
            if args.cuda:
                gpu = cuda_rows(batch, args.seed, args.repeats)
                pub = gpu["cuda_published"]
                for m, row in gpu.items():
                    out = row.pop("out")
                    row.update(speedup_vs_cuda_published=pub["ms"] / row["ms"],
                               max_abs_diff=float((out - ref).abs().max()))
                    print(f"{batch:8s} {m:15s} {row['ms']:11.3f} {'(%.3f)' % row['best_ms']:>11s} "
                          f"{row['speedup_vs_cuda_published']:9.1f}* {'':8s} {'':10s} {'':7s} {row['max_abs_diff']:10.2e} "
                          f"{'GPU MB':>11s} {row['gpu_peak_mb']:7.0f}")
                rows.update(gpu)
            summary[batch] = rows
    if args.cuda:
        print("* CUDA rows: speed-up against the published thread-per-bin CUDA kernel; diffs against (a)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark_entropy.json").write_text(json.dumps(summary, indent=2))
    line = {"threads": threads}
    for batch, rows in summary.items():
        line[f"published_ms_{batch}"] = round(rows["published"]["ms"], 1)
        line[f"cpp_ms_{batch}"] = round(rows["cpp"]["ms"], 2)
        line[f"cpp_speedup_{batch}"] = round(rows["cpp"]["speedup"], 1)
        line[f"cpp_best_speedup_{batch}"] = round(rows["cpp"]["best_speedup"], 1)
        line[f"cpp_cpu_speedup_{batch}"] = round(rows["cpp"]["cpu_speedup"], 1)
        line[f"torch_speedup_{batch}"] = round(rows["torch"]["speedup"], 2)
        if args.cuda:
            line[f"cuda_ms_{batch}"] = round(rows["cuda"]["ms"], 3)
            line[f"cuda_published_ms_{batch}"] = round(rows["cuda_published"]["ms"], 3)
            line[f"cuda_speedup_vs_published_cuda_{batch}"] = round(rows["cuda"]["speedup_vs_cuda_published"], 1)
    line["max_abs_diff"] = max(r["max_abs_diff"] for b in summary.values() for r in b.values())
    line["peak_rss_mb"] = round(max(r.get("rss_mb", 0.0) for b in summary.values() for r in b.values()))
    print("BENCH_JSON " + json.dumps(line))


if __name__ == "__main__":
    main()
