#!/usr/bin/env python
"""Merge ``bc_magical.py`` results into one Markdown table (the README's BC table).

Runs of one experiment whose seeds were split over processes (``--first-seed``) are merged
into one row (mean ± std over all their seeds); different experiments give different rows.

    python scripts/bc_table.py out/bc/MoveToCorner-cnn-a out/bc/MoveToCorner-cnn-b out/bc/MoveToCorner-mint
    python scripts/bc_table.py out/bc/*/results.json --json merged.json

Each argument is a ``results.json``, or a run folder: its per-seed files ``seeds/*.json`` when it
has any (so a run in progress, or seeds computed by several ``--first-seed`` processes into one
folder, read as one row), else its ``results.json``.

    python scripts/bc_table.py results/bc/MakeLine-cnn-expert      # the seed files kept in the repo
    python scripts/bc_table.py out/bc/MoveToCorner-mint out/bc/MoveToCorner-cnn --variants   # every test variant
    python scripts/bc_table.py results/bc/MoveToCorner-* --plot variants.png    # score per variant per run

The first table has the headline columns, Demo and TestJitter in each run's headline mode (argmax
unless the run used --sample). ``--variants`` adds one row per run and evaluation mode with every
variant the runs evaluated (``-`` where a run did not evaluate one, e.g. runs written before every
variant was evaluated). ``--grid`` prints the compact form used for the full variant table: one
row per run, one column per variant (in MAGICAL's order), each cell the argmax mean ± std over
seeds followed by the sampled mean in parentheses.

    python scripts/bc_table.py results/bc/*-variants* results/bc/*-dagger* --grid
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mint_rl.envs.registry import ALL_VARIANTS
from mint_rl.experiments.magical_bc import (
    EVAL_MODES,
    VARIANTS,
    BCResult,
    merge_results,
    result_from_seed_records,
    score_key,
    shared_settings,
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="results.json files or folders holding one")
    p.add_argument("--json", type=Path, default=None, help="also write the merged rows as JSON")
    p.add_argument("--variants", action="store_true",
                   help="also print every evaluated variant, one row per run and evaluation mode")
    p.add_argument("--grid", action="store_true",
                   help="also print one row per run with every variant in MAGICAL's order, "
                        "cells 'argmax mean ± std (sampled mean)'")
    p.add_argument("--plot", type=Path, default=None,
                   help="also plot the score per variant of every run (bars: mean over seeds, whiskers: std) to this PNG")
    p.add_argument("--plot-mode", choices=EVAL_MODES, default="argmax", help="evaluation mode of the plot")
    return p.parse_args(argv)


def load(path: Path) -> BCResult:
    """A ``results.json``, or a run folder: its seed files (``seeds/*.json``) when it has any, else its
    ``results.json`` (which holds only the seeds of the process that wrote it last)."""
    if path.is_dir():
        records = sorted((path / "seeds").glob("*.json"))
        if records:
            return result_from_seed_records([json.loads(r.read_text()) for r in records])
        path = path / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"no results.json or seeds/*.json at {path}")
    return BCResult.from_json(json.loads(path.read_text()))


def row_key(result: BCResult) -> str:
    return json.dumps(shared_settings(result.config), sort_keys=True)


def agent_label(cfg: dict) -> str:
    """``"cnn, bf16"``, ``"mint"``, or ``"mint, pooling=mean, ..."`` (the detector when it is not the shipped
    ``magical``, network fields off today's defaults, keypoint noise, keypoint orientation, a keypoint history other
    than 4, and ``epochs=N``
    when the run did not use the agent's default)."""
    parts = [cfg["agent"]]
    if cfg["agent"] == "mint" and cfg.get("detector", "magical") != "magical":
        parts.append(f"detector={detector_label(cfg['detector'])}")
    if cfg.get("epochs") is not None:
        parts.append(f"epochs={cfg['epochs']}")
    if cfg.get("precision", "fp32") != "fp32":
        parts.append(cfg["precision"])
    if cfg.get("network"):
        from dataclasses import asdict

        from mint_rl.policies.interaction_network import InteractionNetworkConfig

        defaults = asdict(InteractionNetworkConfig())
        parts += [f"{k}={v}" for k, v in sorted(cfg["network"].items()) if defaults.get(k) != v]
    if cfg.get("keypoint_noise"):
        parts.append(f"keypoint_noise={cfg['keypoint_noise']}")
    if cfg.get("orientation"):
        parts.append("orientation")
    if cfg.get("history", 4) != 4:
        parts.append(f"history={cfg['history']}")
    if cfg.get("demo_augment"):
        parts.append(f"{cfg['demo_augment']} appearance copies per demo")
    if cfg.get("dagger"):
        d = cfg["dagger"]
        parts.append(f"DAgger {d['rounds']}x{d['episodes']} episodes, {d['epochs']} epochs/round")
    return ", ".join(parts)


def detector_label(detector: str) -> str:
    """A shipped name as it is; a checkpoint path as its run folder (``runs/NAME/detector.safetensors`` -> ``NAME``)."""
    path = Path(str(detector))
    if path.suffix != ".safetensors":
        return str(detector)
    return path.parent.name if path.stem == "detector" and path.parent.name else path.stem


def variant_scores(results: list[BCResult], mode: str) -> dict[str, dict[str, tuple[float, float]]]:
    """``{row label: {variant: (mean, std)}}`` of every run that evaluated in ``mode``, for the plot."""
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    for r in results:
        if mode not in r.modes:
            continue
        summary, cfg = r.summary(), r.config
        label = f"{cfg['task']}: {agent_label(cfg)}, {cfg['demos']} demos (n={cfg['n_demos']}, {len(r.seed_ids)} seeds)"
        base, n = label, 1
        while label in rows:  # runs of other settings (e.g. code versions) that read the same
            n += 1
            label = f"{base} #{n}"
        rows[label] = {v: (summary[score_key(v, mode)]["mean"], summary[score_key(v, mode)]["std"])
                       for v in r.variants if score_key(v, mode) in summary}
    return rows


def ordered_variants(results: list[BCResult]) -> list[str]:
    """Every variant any of ``results`` evaluated, in MAGICAL's order (Demo, TestJitter, TestColour, ...).

    >>> from mint_rl.experiments.magical_bc import BCResult
    >>> def run(*variants):
    ...     return BCResult(config={}, scores={f"{v}/argmax": [[1.0]] for v in variants}, seed_ids=[0])
    >>> runs = [run("Demo", "TestJitter", "TestLayout", "TestAll"), run("Demo", "TestShape", "TestCountPlus")]
    >>> ordered_variants(runs)
    ['Demo', 'TestJitter', 'TestShape', 'TestLayout', 'TestCountPlus', 'TestAll']
    """
    order = list(ALL_VARIANTS)
    seen = list(dict.fromkeys(v for r in results for v in r.variants))
    return sorted(seen, key=lambda v: (order.index(v) if v in order else len(order), seen.index(v)))


def run_label(r: BCResult) -> str:
    cfg = r.config
    return f"{cfg['task']} | {agent_label(cfg)} | {cfg['demos']} (n={cfg['n_demos']}) | {len(r.seed_ids)}"


def variants_table(results: list[BCResult]) -> str:
    """Markdown: one row per run and evaluation mode, one column per variant any run evaluated."""
    variants = ordered_variants(results)
    lines = ["| task | agent | demos | seeds | mode | " + " | ".join(variants) + " |",
             "|---|---|---|---|---|" + "---|" * len(variants)]
    for r in results:
        summary = r.summary()
        for mode in [m for m in EVAL_MODES if m in r.modes]:
            cells = []
            for v in variants:
                item = summary.get(score_key(v, mode))
                cells.append("-" if item is None else f"{item['mean']:.3f} ± {item['std']:.3f}")
            lines.append(f"| {run_label(r)} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def grid_table(results: list[BCResult]) -> str:
    """Markdown: one row per run, one column per variant (MAGICAL's order), cells
    ``argmax mean ± std (sampled mean)``; ``-`` where the run did not evaluate the variant, and the
    mode in brackets where a run evaluated only one mode (``0.400 ± 0.200 [argmax only]``)."""
    variants = ordered_variants(results)
    lines = ["| task | agent | demos | seeds | " + " | ".join(variants) + " |",
             "|---|---|---|---|" + "---|" * len(variants)]
    for r in results:
        summary = r.summary()
        cells = []
        for v in variants:
            arg, smp = summary.get(score_key(v, "argmax")), summary.get(score_key(v, "sampled"))
            if arg is not None and smp is not None:
                cells.append(f"{arg['mean']:.3f} ± {arg['std']:.3f} ({smp['mean']:.3f})")
            elif arg is not None or smp is not None:
                item, mode = (arg, "argmax") if arg is not None else (smp, "sampled")
                cells.append(f"{item['mean']:.3f} ± {item['std']:.3f} [{mode} only]")
            else:
                cells.append("-")
        lines.append(f"| {run_label(r)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        results = [load(p) for p in args.results]
    except (FileNotFoundError, json.JSONDecodeError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    groups: dict[str, list[BCResult]] = {}
    for r in results:
        groups.setdefault(row_key(r), []).append(r)
    merged_runs = []
    for group in groups.values():
        try:
            merged_runs.append(merge_results(group))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print("| task | agent | demos | seeds | " + " | ".join(VARIANTS) + " | wall time (sum) |")
    print("|---|---|---|---|" + "---|" * len(VARIANTS) + "---|")
    for merged in merged_runs:
        cfg, headline = merged.config, merged.headline()
        cells = [f"{headline[v]['mean']:.3f} ± {headline[v]['std']:.3f}" for v in VARIANTS]
        mode = "" if merged.headline_mode == "argmax" else ", sampled"
        print(f"| {cfg['task']} | {agent_label(cfg)}{mode} | {cfg['demos']} (n={cfg['n_demos']}) | "
              f"{len(merged.seed_ids)} | " + " | ".join(cells) + f" | {merged.seconds / 60:.1f} min |")
    if args.variants:
        print()
        print(variants_table(merged_runs))
    if args.grid:
        print()
        print(grid_table(merged_runs))
    if args.plot is not None:
        from mint_rl.viz import plot_variant_scores

        scores = variant_scores(merged_runs, args.plot_mode)
        if not scores:
            print(f"error: no run evaluated in {args.plot_mode} mode: nothing to plot", file=sys.stderr)
            return 2
        plot_variant_scores(scores, args.plot, title=f"MAGICAL test variants, {args.plot_mode} actions")
        print(f"plot: {args.plot}")
    rows = [merged.to_json() for merged in merged_runs]
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
