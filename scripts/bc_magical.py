#!/usr/bin/env python
"""Behaviour cloning on MAGICAL with MINT keypoints (or pixels), evaluated on every test variant.

    python scripts/bc_magical.py MoveToCorner                         # MINT agent, scripted-expert demos
    python scripts/bc_magical.py MoveToCorner --agent cnn             # the CNN (pixel) baseline
    python scripts/bc_magical.py MoveToCorner --agent cnn --precision bf16 --seeds 2 --first-seed 3
    python scripts/bc_magical.py MakeLine --demos human --human-dir ~/magical-demos
    python scripts/bc_magical.py MoveToRegion --n-demos 10 --seeds 5 --epochs 40 --out out/bc
    python scripts/bc_magical.py MakeLine --agent cnn --out out/ml-cnn --resume   # go on after an interruption
    python scripts/bc_magical.py MakeLine --agent cnn --jobs 2        # two seeds at a time, one core each
    python scripts/bc_magical.py MoveToCorner --jobs 1 --threads 2    # seeds one after another on two threads
    python scripts/bc_magical.py MoveToCorner --variants Demo TestJitter --modes argmax   # the short evaluation
    python scripts/bc_magical.py MoveToCorner --algo dagger --n-demos 4   # DAgger: 4 demos + 3 rounds x 2 episodes

Each seed's policy is evaluated on every variant MAGICAL defines for the task (Demo, TestJitter,
TestColour, TestShape, TestLayout, TestCountPlus, TestDynamics, TestAll, where they exist), once
with the most likely action (argmax, SB3's deterministic=True) and once with sampled actions.
Prints a table (mean ± std over seeds of the mean eval_score of the evaluation episodes, per
variant and mode), saves the policies (safetensors), OUT/results.json (scores keyed
"VARIANT/MODE") and a GIF of one rollout, and ends with exactly
``demo_score=<float> testjitter_score=<float>`` (argmax; sampled with --sample).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mint_rl.envs.registry import EPISODE_STEPS, TASKS
from mint_rl.experiments.allocator import keep_freed_memory
from mint_rl.experiments.magical_bc import (
    AGENTS,
    EVAL_MODES,
    PRECISIONS,
    VARIANTS,
    BCExperimentConfig,
    record_rollout_gif,
    resolve_device,
    run_bc_experiment,
    score_key,
    write_outputs,
)
from mint_rl.experiments.work_queue import WorkQueue, run_bc_worker
from mint_rl.experiments.workers import resolve_parallelism, run_seed_workers, script_command, torch_threads


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", help=f"one of {', '.join(TASKS)}")
    p.add_argument("--demos", default="expert", help="expert | human (with --human-dir) | PATH (folder of *.pkl.gz or our .npz)")
    p.add_argument("--human-dir", default=None, help="folder of MAGICAL human demos (*.pkl.gz)")
    p.add_argument("--n-demos", type=int, default=10)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0,
                   help="train seeds FIRST..FIRST+SEEDS-1 (split one table over processes; merge with bc_table.py)")
    p.add_argument("--epochs", type=int, default=None, help="BC epochs (default 150 for mint, 300 for cnn)")
    p.add_argument("--agent", choices=AGENTS, default="mint")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="cnn agent: bf16 runs its conv stack in bfloat16 mixed precision (2x faster on AVX512-BF16 CPUs)")
    p.add_argument("--network", default=None, metavar="KEY=VALUE[,KEY=VALUE...]",
                   help="MINT agent's InteractionNetworkConfig fields, e.g. pooling=mean,mask_inactive=true")
    p.add_argument("--keypoint-noise", type=float, default=0.0, metavar="SIGMA",
                   help="MINT agent: std of Gaussian jitter added to keypoint x, y in BC batches (coordinates in [-1, 1])")
    p.add_argument("--history", type=int, default=4,
                   help="MINT / state agent: frames of keypoints (states) per observation (paper: 4; the CNN agent's "
                        "-LoRes4A stack is 4)")
    p.add_argument("--orientation", action="store_true",
                   help="MINT agent: add each keypoint's intensity-centroid orientation (ox, oy) to its observation row")
    p.add_argument("--detector", default="magical", help="pretrained name or checkpoint path (mint agent)")
    p.add_argument("--eval-episodes", type=int, default=25)
    p.add_argument("--demo-variant", choices=VARIANTS, default="TestJitter",
                   help="variant the scripted expert demonstrates on (Demo needs --demo-noise > 0)")
    p.add_argument("--demo-noise", type=float, default=0.0,
                   help="expert demos: probability of executing a random action while recording the expert's (DART)")
    p.add_argument("--demo-augment", type=int, default=0, metavar="N",
                   help="add N appearance-augmented copies of each demo (colour channels permuted, brightness and "
                        "contrast varied, one draw per episode; mint and cnn agents)")
    p.add_argument("--sample", action="store_true",
                   help="headline scores (the last line) with sampled actions (default: argmax, SB3's deterministic=True)")
    p.add_argument("--variants", nargs="+", default=None, metavar="VARIANT",
                   help="variants to evaluate (default: all of the task's; Demo and TestJitter always among them)")
    p.add_argument("--modes", nargs="+", default=list(EVAL_MODES), choices=EVAL_MODES,
                   help="evaluation modes (default: both)")
    p.add_argument("--algo", choices=("bc", "dagger"), default="bc",
                   help="bc: behaviour cloning on the demos; dagger: DAgger from them with the task's scripted expert "
                        "labelling the learner's states (mint_rl.experiments.dagger)")
    p.add_argument("--dagger-rounds", type=int, default=3, help="DAgger: collection rounds after the first BC")
    p.add_argument("--dagger-episodes", type=int, default=2, help="DAgger: learner episodes labelled per round")
    p.add_argument("--dagger-epochs", type=int, default=50, help="DAgger: BC epochs over all data after each round")
    p.add_argument("--device", default="cpu",
                   help="where the policy trains and acts: cpu (default), cuda, cuda:N (the environments stay on the CPU)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default out/bc/TASK-AGENT)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in OUT: finished seeds are read back from OUT/seeds (their "
                        "settings and, when present, their policy file's sha256 checked; the summary says how many), "
                        "the seed in training goes on from OUT/checkpoints (written every 10 epochs)")
    p.add_argument("--jobs", type=_auto_or_int, default=None, metavar="N|auto",
                   help="train the seeds in N worker processes at once (logs in OUT/logs/worker-*.log); the result "
                        "equals separate --first-seed runs with the same --threads. auto (default): as many as fit "
                        "on the cores with --threads each (mint and state agents: one worker per core), else 1")
    p.add_argument("--threads", type=_auto_or_int, default=None, metavar="N|auto",
                   help="torch threads per seed. auto (default): OMP_NUM_THREADS if set, else 1 for the mint and "
                        "state agents on a CPU (their steps gain little from a second thread; results then do not "
                        "depend on the machine's core count), else torch's default (all cores)")
    p.add_argument("--no-gif", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    # set by --jobs on its worker processes (mint_rl.experiments.work_queue): TOKEN:FIRST:COUNT of the run
    p.add_argument("--work-queue", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _auto_or_int(text: str) -> int | None:
    """argparse type of ``--jobs``/``--threads``: ``"auto"`` -> ``None``, else an integer."""
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got {text!r}") from None


def _dagger(args: argparse.Namespace):
    """``--algo dagger`` and its ``--dagger-*`` options -> a ``DaggerConfig`` (``None`` for bc)."""
    from mint_rl.experiments.dagger import DaggerConfig

    if args.algo == "bc":
        changed = [f"--dagger-{n}" for n in ("rounds", "episodes", "epochs")
                   if getattr(args, f"dagger_{n}") != {"rounds": 3, "episodes": 2, "epochs": 50}[n]]
        if changed:
            raise ValueError(f"{', '.join(changed)} set without --algo dagger")
        return None
    return DaggerConfig(rounds=args.dagger_rounds, episodes=args.dagger_episodes, epochs=args.dagger_epochs)


def parse_network(text: str | None):
    """``"pooling=mean,hidden_dim=200"`` -> ``InteractionNetworkConfig`` (``None`` for ``None``).

    Values are read as JSON where they parse (numbers, ``true``/``false``), else as strings.

    Raises:
        ValueError: a malformed item, an unknown field, or a value the config rejects.
    """
    if text is None:
        return None
    import dataclasses

    from mint_rl.policies.interaction_network import InteractionNetworkConfig

    known = {f.name for f in dataclasses.fields(InteractionNetworkConfig)}
    values = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--network: expected KEY=VALUE items separated by commas, got {item!r}")
        if key not in known:
            raise ValueError(f"--network: unknown field {key!r}; expected one of {sorted(known)}")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return InteractionNetworkConfig(**values)


def format_table(result) -> str:
    """Variants as rows, one ``mean ± std`` column per evaluation mode (over seeds)."""
    summary = result.summary()
    modes = result.modes
    lines = [f"{'variant':<14}" + "".join(f"{m + ' (mean ± std)':>22}" for m in modes)]
    for v in result.variants:
        cells = []
        for m in modes:
            key = score_key(v, m)
            cells.append(f"{summary[key]['mean']:>13.3f} ± {summary[key]['std']:.3f}" if key in summary else f"{'-':>22}")
        lines.append(f"{v:<14}" + "".join(cells))
    return "\n".join(lines)


def earlier_seeds(args: argparse.Namespace, out: Path) -> list[int]:
    """This run's seeds that earlier runs finished: those with a seed file in ``OUT/seeds`` before
    this run starts (``--resume`` reads them back, checked, instead of training them)."""
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    return [s for s in seeds if (out / "seeds" / f"{args.task}-{args.agent}-seed{s}.json").is_file()]


def run_workers(args: argparse.Namespace, argv: list[str], out: Path, jobs: int, threads: int | None) -> int:
    """``jobs`` worker processes of this script (``threads`` torch threads each) train the seeds into
    ``out``, each its own range, and share out the evaluation of every variant
    (:mod:`mint_rl.experiments.work_queue`)."""
    start = time.time()
    queue = WorkQueue.new(out, args.first_seed, args.seeds)
    worker_argv = [*argv, "--work-queue", queue.spec]
    seeds_dir = out / "seeds"

    def done(seed: int) -> bool:
        record = seeds_dir / f"{args.task}-{args.agent}-seed{seed}.json"
        return record.exists() and (args.resume or record.stat().st_mtime >= start)

    try:
        run_seed_workers(lambda first, count: script_command(Path(__file__).resolve(), worker_argv, first, count,
                                                             out, args.resume, threads),
                         args.first_seed, args.seeds, jobs, out / "logs", done, threads=threads,
                         progress=not args.no_progress, log=lambda m: print(m, file=sys.stderr))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        queue.release()
    return 0


def main(argv=None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    if args.task not in TASKS:
        print(f"error: unknown task {args.task!r}; expected one of {', '.join(TASKS)}", file=sys.stderr)
        return 2
    try:
        network = parse_network(args.network)
        cfg = BCExperimentConfig(task=args.task, agent=args.agent, demos=args.demos, human_dir=args.human_dir,
                                 n_demos=args.n_demos, seeds=args.seeds, epochs=args.epochs,
                                 eval_episodes=args.eval_episodes, detector=args.detector,
                                 deterministic=not args.sample, demo_noise=args.demo_noise,
                                 demo_variant=args.demo_variant, first_seed=args.first_seed,
                                 precision=args.precision, network=network,
                                 keypoint_noise=args.keypoint_noise, orientation=args.orientation,
                                 variants=args.variants, eval_modes=tuple(args.modes), dagger=_dagger(args),
                                 demo_augment=args.demo_augment, history=args.history)
        resolve_device(args.device)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        jobs, threads = resolve_parallelism(args.agent, args.seeds, args.device, args.jobs, args.threads)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or Path("out/bc") / f"{args.task}-{args.agent}"
    keep_freed_memory()  # no page faults for the per-step activations (see mint_rl.experiments.allocator)
    if args.work_queue is not None:  # one worker of a --jobs run: its seeds, then evaluation shared out
        try:
            queue = WorkQueue.parse(args.work_queue, out)
            with torch_threads(threads):
                report = run_bc_worker(cfg, queue, resume=args.resume, device=args.device,
                                       progress=not args.no_progress, log=lambda m: print(m, file=sys.stderr))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        others = sorted({s for s, _ in report.evaluated} - set(range(args.first_seed, args.first_seed + args.seeds)))
        print(f"worker done: trained seeds {report.trained}, evaluated {len(report.evaluated)} variants"
              + (f" (also of seeds {others})" if others else "") + f", wrote the seed files of {report.assembled}",
              file=sys.stderr)
        return 0
    resume = args.resume
    earlier = earlier_seeds(args, out) if args.resume else []
    if jobs > 1 and args.seeds > 1:
        rc = run_workers(args, argv if argv is not None else sys.argv[1:], out, jobs, threads)
        if rc:
            return rc
        resume = True  # every seed is in OUT/seeds now: read them back into one table
    try:
        with torch_threads(threads):
            result = run_bc_experiment(cfg, out, progress=not args.no_progress, resume=resume, device=args.device,
                                       log=lambda m: print(m, file=sys.stderr))
    except ValueError as exc:
        if not args.resume:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = write_outputs(result, out)
    headline = result.headline()
    if cfg.dagger is not None:
        labels = cfg.dagger.labels(args.n_demos, EPISODE_STEPS[args.task])
        print(f"\nDAgger: {cfg.dagger.rounds} rounds x {cfg.dagger.episodes} episodes after BC on the demos, "
              f"{labels} expert labels per seed (BC with {labels // EPISODE_STEPS[args.task]} demos has as many)")
    print(f"\n{args.task}, {args.agent} agent, {args.demos} demos (n={args.n_demos}), "
          f"{args.seeds} seeds x {args.eval_episodes} episodes, {result.seconds / 60:.1f} min of seed time "
          f"(summed over seeds; with --resume it includes earlier runs' seeds)")
    if args.resume:
        print(f"{len(earlier)} of {args.seeds} seeds reused from earlier runs in {out}"
              + (f" (seeds {', '.join(map(str, earlier))})" if earlier else ""))
    print(format_table(result))
    # seed files copied from another machine (results/README.md) name policies that are not here
    policies = [p for p in result.policy_paths if Path(p).is_file()]
    artefacts = [str(path)] + policies[:1]
    if not args.no_gif and policies:
        from mint_rl.policies.serialization import load_policy

        gif = record_rollout_gif(load_policy(policies[0]), cfg, out / f"{args.task}-{args.agent}-rollout.gif")
        artefacts.append(str(gif))
    elif not args.no_gif:
        print("no policy file of this run is on this machine: no rollout GIF", file=sys.stderr)
    print("wrote " + ", ".join(artefacts), file=sys.stderr)
    print(f"wall time of this run: {(time.perf_counter() - started) / 60:.1f} min", file=sys.stderr)
    print(f"demo_score={headline['Demo']['mean']:.4f} testjitter_score={headline['TestJitter']['mean']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
