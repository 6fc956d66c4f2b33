"""Seeds of one BC experiment trained by several worker processes at once (``bc_magical.py --jobs``).

Seeds are independent (each trains from the same demonstrations and evaluates on its own
episode seeds), so one experiment's seeds can be split into contiguous ranges, one per worker
process. Each worker writes its seeds to the same output folder (``OUT/seeds/STEM.json``,
``OUT/policies``, ``OUT/checkpoints``, ``OUT/logs/STEM``: one file per seed, no two workers share
one); the caller then reads all of them back with ``run_bc_experiment(..., resume=True)``,
which gives the same ``results.json`` as one process would with the same number of torch
threads per seed. :func:`resolve_parallelism` picks the script's defaults (the MINT agent: one
thread per seed, one worker per core).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional, Sequence

__all__ = ["split_seeds", "worker_threads", "resolve_parallelism", "torch_threads", "SeedWorker",
           "run_seed_workers", "SERIAL_AGENTS"]

#: Agents whose behaviour-cloning seed runs about as fast on one torch thread as on two: their
#: steps are many small tensor ops and Python (the interaction network on 25-node graphs, the
#: state MLP; MAGICAL's rendering in evaluation is single-threaded anyway). On the 2-core machine
#: one MoveToCorner seed of the MINT agent took 4.4 min on two threads and 4.5 min on one thread
#: with a second seed on the other core.
SERIAL_AGENTS = ("mint", "state")


def split_seeds(first_seed: int, seeds: int, jobs: int) -> list[tuple[int, int]]:
    """Contiguous ranges ``(first, count)`` covering seeds ``first_seed .. first_seed + seeds - 1``.

    The ranges are as even as possible, the longer ones first; never more ranges than seeds.

    Example:
        >>> split_seeds(0, 5, 2)
        [(0, 3), (3, 2)]
        >>> split_seeds(3, 2, 4)
        [(3, 1), (4, 1)]

    Raises:
        ValueError: ``seeds`` or ``jobs`` below 1, or ``first_seed`` below 0.
    """
    if seeds < 1 or jobs < 1 or first_seed < 0:
        raise ValueError(f"split_seeds: expected seeds >= 1, jobs >= 1, first_seed >= 0; "
                         f"got seeds={seeds}, jobs={jobs}, first_seed={first_seed}")
    jobs = min(jobs, seeds)
    base, extra = divmod(seeds, jobs)
    ranges, start = [], first_seed
    for j in range(jobs):
        count = base + (1 if j < extra else 0)
        ranges.append((start, count))
        start += count
    return ranges


def worker_threads(jobs: int, cpus: Optional[int] = None) -> int:
    """torch threads per worker when ``jobs`` workers share ``cpus`` cores (default: this machine's).

    Example:
        >>> worker_threads(2, cpus=16), worker_threads(4, cpus=2)
        (8, 1)
    """
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // max(1, jobs))


def resolve_parallelism(
    agent: str,
    seeds: int,
    device: str = "cpu",
    jobs: Optional[int] = None,
    threads: Optional[int] = None,
    cpus: Optional[int] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> tuple[int, Optional[int]]:
    """``(jobs, threads)`` of a BC run: worker processes, and torch threads per seed.

    ``None`` arguments take their defaults:

    * ``threads``: ``OMP_NUM_THREADS`` when the environment sets it; else one thread for the
      :data:`SERIAL_AGENTS` on a CPU; else ``None``, torch's default (all cores; the CNN agent,
      whose convolutions do use them, and any agent on a GPU).
    * ``jobs``: on a CPU with a known thread count, as many workers as fit on the cores
      without oversubscribing them, ``min(seeds, cpus // threads)``; else 1.

    So by default the MINT agent trains its seeds side by side, one core each, and its results
    do not depend on how many cores the machine has (the thread count changes floating-point
    sums, hence the trained policy).

    Example:
        >>> resolve_parallelism("mint", 5, cpus=2, environ={})
        (2, 1)
        >>> resolve_parallelism("mint", 5, cpus=16, environ={})
        (5, 1)
        >>> resolve_parallelism("mint", 5, cpus=2, environ={"OMP_NUM_THREADS": "2"})
        (1, 2)
        >>> resolve_parallelism("cnn", 5, cpus=2, environ={}), resolve_parallelism("mint", 5, "cuda", environ={})
        ((1, None), (1, None))

    Raises:
        ValueError: ``seeds``, ``jobs`` or ``threads`` below 1, or an ``OMP_NUM_THREADS`` that is
            not a positive integer.
    """
    environ = os.environ if environ is None else environ
    if seeds < 1:
        raise ValueError(f"seeds: expected >= 1, got {seeds}")
    for name, value in (("jobs", jobs), ("threads", threads)):
        if value is not None and value < 1:
            raise ValueError(f"--{name}: expected >= 1, got {value}")
    if threads is None and environ.get("OMP_NUM_THREADS"):
        text = environ["OMP_NUM_THREADS"]
        if not text.strip().isdigit() or int(text) < 1:
            raise ValueError(f"OMP_NUM_THREADS: expected a positive integer, got {text!r}")
        threads = int(text)
    on_cpu = str(device).split(":")[0] == "cpu"
    if threads is None and on_cpu and agent in SERIAL_AGENTS:
        threads = 1
    if jobs is None:
        if on_cpu and threads is not None:
            jobs = min(seeds, max(1, (cpus or os.cpu_count() or 1) // threads))
        else:
            jobs = 1
    return jobs, threads


@contextlib.contextmanager
def torch_threads(threads: Optional[int]) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads (``None``: leave them), then restore.

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with torch_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class SeedWorker:
    """One worker process: its seed range, command, log file and (once started) process."""

    first_seed: int
    seeds: int
    command: list[str]
    log_path: Path
    process: Optional[subprocess.Popen] = None

    @property
    def label(self) -> str:
        last = self.first_seed + self.seeds - 1
        return f"seed {self.first_seed}" if self.seeds == 1 else f"seeds {self.first_seed}-{last}"

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def run_seed_workers(
    worker_command: Callable[[int, int], Sequence[str]],
    first_seed: int,
    seeds: int,
    jobs: int,
    log_dir: Path,
    done: Callable[[int], bool],
    threads: Optional[int] = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    poll_seconds: float = 2.0,
) -> None:
    """Run ``worker_command(first, count)`` for each seed range of :func:`split_seeds`, all at once.

    Each worker's stdout and stderr go to ``log_dir/worker-seedsA-B.log``. Each worker gets
    ``threads`` torch threads (``OMP_NUM_THREADS``); without ``threads``, the environment's
    ``OMP_NUM_THREADS`` if set, else :func:`worker_threads`, so that the workers together use the
    machine's cores once.
    ``done(seed)`` tells whether a seed has finished (its seed file exists); a progress bar
    counts finished seeds.

    Raises:
        RuntimeError: a worker exited with a non-zero status (the others are left to finish;
            the message holds the end of the failed workers' logs).
    """
    ranges = split_seeds(first_seed, seeds, jobs)
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    elif "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(worker_threads(len(ranges)))
    workers = []
    for first, count in ranges:
        name = f"worker-seeds{first}-{first + count - 1}.log"
        workers.append(SeedWorker(first, count, [str(c) for c in worker_command(first, count)], log_dir / name))
    all_seeds = list(range(first_seed, first_seed + seeds))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(all_seeds), desc=f"seeds ({len(workers)} workers)", unit="seed")
    try:
        for w in workers:
            with open(w.log_path, "w") as handle:
                w.process = subprocess.Popen(w.command, stdout=handle, stderr=subprocess.STDOUT, env=env)
            log(f"worker {w.label}: pid {w.process.pid}, {env['OMP_NUM_THREADS']} threads, log {w.log_path}")
        finished = 0
        while any(w.process.poll() is None for w in workers):
            time.sleep(poll_seconds)
            now = sum(1 for s in all_seeds if done(s))
            if bar is not None and now > finished:
                bar.update(now - finished)
            finished = max(finished, now)
        if bar is not None:
            bar.update(sum(1 for s in all_seeds if done(s)) - finished)
    except BaseException:
        for w in workers:
            if w.process is not None and w.process.poll() is None:
                w.process.terminate()
        for w in workers:
            if w.process is not None:
                w.process.wait()
        raise
    finally:
        if bar is not None:
            bar.close()
    failed = [w for w in workers if w.process.returncode != 0]
    if failed:
        report = "\n".join(f"worker {w.label} exited with status {w.process.returncode} (log {w.log_path}):\n"
                           f"{w.log_tail()}" for w in failed)
        raise RuntimeError(f"{len(failed)} of {len(workers)} workers failed\n{report}")


def script_command(script: Path, argv: Sequence[str], first: int, count: int, out: Path, resume: bool,
                   threads: Optional[int] = None) -> list[str]:
    """The command of one worker: this script with ``argv`` and the worker's own seed range.

    argparse keeps the last value of a repeated option, so the worker's ``--seeds``,
    ``--first-seed``, ``--out``, ``--jobs 1`` (and ``--threads``) appended after the user's
    arguments win.
    """
    cmd = [sys.executable, str(script), *argv, "--seeds", str(count), "--first-seed", str(first),
           "--out", str(out), "--jobs", "1", "--no-gif", "--no-progress"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    return cmd + (["--resume"] if resume else [])
