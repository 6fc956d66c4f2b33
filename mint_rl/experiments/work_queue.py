"""Evaluation shared out between the worker processes of one BC run (``bc_magical.py --jobs``).

Seeds split into contiguous ranges leave workers unevenly loaded: five seeds on two workers are
three and two, and the worker with two sits idle for a third of the run. Evaluation dominates a
seed (MAGICAL rendering and the detector, once per variant and mode), and it splits by variant.
So each worker of :func:`run_bc_worker`

1. trains its own seeds first, saving each policy and a *trained* marker
   ``OUT/parts/STEM/trained.json`` (settings, run token, policy file and its SHA-256, training
   seconds, device, threads);
2. then evaluates variants, its own seeds' first, then any other trained seed's of the run, each
   ``(seed, variant)`` claimed first: a claim is a file ``OUT/parts/STEM/VARIANT.TOKEN.claim``
   created with ``O_EXCL``, so exactly one worker of the run gets it. Each evaluated variant
   leaves a *part* ``OUT/parts/STEM/VARIANT.json`` (scores of every mode, seconds);
3. whoever writes a seed's last part assembles its seed file ``OUT/seeds/STEM.json``, the same
   file ``run_bc_experiment`` writes, so the caller reads the run back as before.

A worker stops when nothing is left to claim. The scores do not depend on which process
evaluated a variant: the policy file is the trained policy bit for bit, and the sampled mode
seeds torch's generator per ``(seed, variant, mode)`` (:func:`~mint_rl.experiments.magical_bc.sampling_seed`).

Markers and parts name the run (a random token, :meth:`WorkQueue.new`): a fresh run ignores
those of earlier runs; ``resume=True`` reuses any whose settings and policy hash match (an
interrupted run loses at most the variants in flight). :meth:`WorkQueue.release` removes the
run's claims at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from mint_rl.experiments.magical_bc import (
    BCExperimentConfig,
    TrainedSeed,
    _prepare_seeds,
    _SeedSetup,
    evaluate_variant,
    file_sha256,
    resolve_device,
    seed_settings,
    seed_stem,
    train_seed,
    variant_log_line,
    write_json_atomic,
    write_seed_record,
)

__all__ = ["WorkQueue", "WorkerReport", "run_bc_worker"]


@dataclass(frozen=True)
class WorkQueue:
    """The shared state of one run's workers: its output folder, its token and its seeds.

    Example:
        >>> q = WorkQueue.parse("a1b2c3:0:5", Path("out"))
        >>> q.spec, q.seed_ids
        ('a1b2c3:0:5', [0, 1, 2, 3, 4])
        >>> q.claim_path("MoveToCorner-mint-seed2", "TestJitter").as_posix()
        'out/parts/MoveToCorner-mint-seed2/TestJitter.a1b2c3.claim'
    """

    out_dir: Path
    token: str
    first_seed: int
    seeds: int

    @classmethod
    def new(cls, out_dir: Path, first_seed: int, seeds: int) -> "WorkQueue":
        """A queue with a fresh random token."""
        return cls(Path(out_dir), secrets.token_hex(6), first_seed, seeds)

    @classmethod
    def parse(cls, spec: str, out_dir: Path) -> "WorkQueue":
        """Inverse of :attr:`spec` (``TOKEN:FIRST:COUNT``).

        Raises:
            ValueError: not three ``:``-separated fields, a token that is not alphanumeric, or
                seeds that are not integers (first >= 0, count >= 1).
        """
        parts = spec.split(":")
        try:
            token, first, count = parts[0], int(parts[1]), int(parts[2])
            if len(parts) != 3 or not token.isalnum() or first < 0 or count < 1:
                raise ValueError
        except (ValueError, IndexError):
            raise ValueError(f"work queue: expected TOKEN:FIRST:COUNT (alphanumeric token, first seed >= 0, "
                             f"count >= 1), got {spec!r}") from None
        return cls(Path(out_dir), token, first, count)

    @property
    def spec(self) -> str:
        """``TOKEN:FIRST:COUNT``, what a worker's command line carries."""
        return f"{self.token}:{self.first_seed}:{self.seeds}"

    @property
    def seed_ids(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def part_dir(self, stem: str) -> Path:
        return self.out_dir / "parts" / stem

    def trained_path(self, stem: str) -> Path:
        return self.part_dir(stem) / "trained.json"

    def part_path(self, stem: str, variant: str) -> Path:
        return self.part_dir(stem) / f"{variant}.json"

    def claim_path(self, stem: str, variant: str) -> Path:
        return self.part_dir(stem) / f"{variant}.{self.token}.claim"

    def claim(self, stem: str, variant: str) -> bool:
        """Claim ``(stem, variant)`` for this process: ``True`` for exactly one caller of the run."""
        path = self.claim_path(stem, variant)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        return True

    def release(self) -> int:
        """Remove this run's claim files; returns how many there were."""
        claims = list((self.out_dir / "parts").glob(f"*/*.{self.token}.claim"))
        for path in claims:
            path.unlink(missing_ok=True)
        return len(claims)


@dataclass
class WorkerReport:
    """What one worker did: seeds trained, ``(seed, variant)`` pairs evaluated (its own and
    others'), seed files assembled."""

    trained: list[int] = field(default_factory=list)
    evaluated: list[tuple[int, str]] = field(default_factory=list)
    assembled: list[int] = field(default_factory=list)


def _read_json(path: Path) -> Optional[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


class _RunState:
    """One worker's view of the run's files, with the checks that decide what counts."""

    def __init__(self, cfg: BCExperimentConfig, queue: WorkQueue, resume: bool) -> None:
        self.cfg, self.queue, self.resume = cfg, queue, resume
        self.settings = seed_settings(cfg)
        self._valid: dict[int, dict[str, Any]] = {}  # trained markers already checked

    def _ours(self, data: Optional[dict[str, Any]], seed: int) -> bool:
        return (data is not None and data.get("settings") == self.settings and data.get("seed") == seed
                and (self.resume or data.get("run") == self.queue.token))

    def trained(self, seed: int) -> Optional[dict[str, Any]]:
        """The seed's trained marker if it counts: this run's (or, resuming, any) with these
        settings, and a policy file that still has its hash."""
        if seed in self._valid:
            return self._valid[seed]
        data = _read_json(self.queue.trained_path(seed_stem(self.cfg, seed)))
        if not self._ours(data, seed) or not data.get("policy") or not Path(data["policy"]).is_file():
            return None
        if data.get("run") != self.queue.token and file_sha256(data["policy"]) != data.get("policy_sha256"):
            return None
        self._valid[seed] = data
        return data

    def part(self, seed: int, variant: str, trained: dict[str, Any]) -> Optional[dict[str, Any]]:
        """The evaluated part if it counts: settings and policy hash of the trained marker."""
        data = _read_json(self.queue.part_path(seed_stem(self.cfg, seed), variant))
        if not self._ours(data, seed) or data.get("variant") != variant:
            return None
        return data if data.get("policy_sha256") == trained.get("policy_sha256") else None


def _trained_marker(state: _RunState, trained: TrainedSeed) -> dict[str, Any]:
    return {"settings": state.settings, "seed": trained.seed, "run": state.queue.token, "policy": trained.path,
            "policy_sha256": trained.sha256, "seconds": trained.seconds, "device": trained.device,
            "threads": trained.threads}


def _assemble(state: _RunState, seed: int, trained: dict[str, Any]) -> bool:
    """Write the seed file if every variant's part is there; ``True`` if written."""
    parts = [state.part(seed, v, trained) for v in state.cfg.eval_variants]
    if any(p is None for p in parts):
        return False
    scores = {k: v for p in parts for k, v in p["scores"].items()}
    seconds = float(trained["seconds"]) + sum(float(p["seconds"]) for p in parts)
    done = TrainedSeed(seed, None, trained["policy"], trained["policy_sha256"], float(trained["seconds"]),
                       trained["device"], int(trained["threads"]))
    ordered = {k: scores[k] for k in state.cfg.score_keys}
    write_seed_record(state.queue.out_dir / "seeds" / f"{seed_stem(state.cfg, seed)}.json", state.settings, seed,
                      ordered, seconds, done)
    return True


def run_bc_worker(
    cfg: BCExperimentConfig,
    queue: WorkQueue,
    resume: bool = False,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
    train_only: bool = False,
) -> WorkerReport:
    """One worker of ``queue``'s run: train the seeds of ``cfg`` (its range), then evaluate what
    it can claim, own seeds first (see the module docstring).

    ``resume`` reuses seed files, trained markers and parts of earlier runs with the same
    settings (and training goes on from a seed's checkpoint); without it, only this run's
    markers and parts count. ``train_only`` stops after training (another worker evaluates).

    Raises:
        ValueError: ``cfg``'s seeds are not among the queue's, or a CUDA ``device`` torch cannot see.
    """
    from mint_rl.policies.serialization import load_policy

    own = list(range(cfg.first_seed, cfg.first_seed + cfg.seeds))
    if not set(own) <= set(queue.seed_ids):
        raise ValueError(f"worker seeds {own} are not all among the run's seeds {queue.seed_ids}")
    torch_device = resolve_device(device)
    state = _RunState(cfg, queue, resume)
    report = WorkerReport()
    setup: Optional[_SeedSetup] = None
    policies: dict[int, Any] = {}
    out = queue.out_dir

    def seed_done(seed: int) -> bool:
        return resume and (out / "seeds" / f"{seed_stem(cfg, seed)}.json").is_file()

    for seed in own:
        if seed_done(seed) or state.trained(seed) is not None:
            continue
        if setup is None:
            setup = _prepare_seeds(cfg, progress, log)
        trained = train_seed(cfg, setup, seed, out, resume, torch_device, progress, log)
        write_json_atomic(queue.trained_path(seed_stem(cfg, seed)), _trained_marker(state, trained))
        policies[seed] = trained.policy
        report.trained.append(seed)
        log(f"seed {seed}: trained in {trained.seconds:.0f} s")
    if train_only:
        return report

    detector = setup.detector if setup is not None else None
    order = own + [s for s in queue.seed_ids if s not in own]
    while True:
        job = None
        for seed in order:
            if seed_done(seed):
                continue
            marker = state.trained(seed)
            if marker is None:
                continue
            for variant in cfg.eval_variants:
                if state.part(seed, variant, marker) is None and queue.claim(seed_stem(cfg, seed), variant):
                    job = (seed, variant, marker)
                    break
            if job is not None:
                break
        if job is None:
            return report
        seed, variant, marker = job
        if seed not in policies:
            policies[seed] = load_policy(marker["policy"], device=torch_device)
        if detector is None and cfg.agent == "mint":
            from mint_rl.wrappers.encoder import load_detector

            detector = load_detector(cfg.detector)
        start = time.perf_counter()
        scores = evaluate_variant(policies[seed], cfg, seed, variant, detector)
        seconds = time.perf_counter() - start
        write_json_atomic(queue.part_path(seed_stem(cfg, seed), variant),
                          {"settings": state.settings, "seed": seed, "variant": variant, "run": queue.token,
                           "policy_sha256": marker["policy_sha256"], "scores": scores, "seconds": seconds})
        report.evaluated.append((seed, variant))
        log(variant_log_line(seed, variant, scores, seconds) + ("" if seed in own else "  (another worker's seed)"))
        if _assemble(state, seed, marker):
            report.assembled.append(seed)
            log(f"seed {seed}: all {len(cfg.eval_variants)} variants evaluated; wrote its seed file")
