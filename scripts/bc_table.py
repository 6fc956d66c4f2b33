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
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mint_rl.experiments.magical_bc import (
    VARIANTS,
    BCResult,
    merge_results,
    result_from_seed_records,
    shared_settings,
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="results.json files or folders holding one")
    p.add_argument("--json", type=Path, default=None, help="also write the merged rows as JSON")
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
    """``"cnn, bf16"``, ``"mint"``, or ``"mint, pooling=mean, ..."`` (network fields off today's defaults, keypoint
    noise, keypoint orientation, and ``epochs=N`` when the run did not use the agent's default)."""
    parts = [cfg["agent"]]
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
    return ", ".join(parts)


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
    rows = []
    print("| task | agent | demos | seeds | " + " | ".join(VARIANTS) + " | wall time (sum) |")
    print("|---|---|---|---|" + "---|" * len(VARIANTS) + "---|")
    for group in groups.values():
        try:
            merged = merge_results(group)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        cfg, summary = merged.config, merged.summary()
        cells = [f"{summary[v]['mean']:.3f} ± {summary[v]['std']:.3f}" for v in VARIANTS]
        print(f"| {cfg['task']} | {agent_label(cfg)} | {cfg['demos']} (n={cfg['n_demos']}) | "
              f"{len(merged.seed_ids)} | " + " | ".join(cells) + f" | {merged.seconds / 60:.1f} min |")
        rows.append(merged.to_json())
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
