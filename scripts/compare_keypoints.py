#!/usr/bin/env python
"""Compare keypoint methods on CLEVRER-like clips: MINT (and two ablations) against the baselines.

Trains (or loads) every method on the same training clips with the same seeds, scores each on
the same held-out clips with DOP / TOP / UAK / RAK, and prints one table (mean ± std over
seeds of each seed's mean over clips). Rows: MINT, MINT w/o Reg., MINT w/o Temp., Transporter,
Transporter-modified, Video Structure.

Examples:
    # the documented comparison (docs/baselines.md): long; resumable, rerun the same command to continue
    python scripts/compare_keypoints.py --seeds 3 --threads 1

    # load detectors instead of training (one path or shipped name per seed)
    python scripts/compare_keypoints.py --seeds 1 --load mint=clevrer-like --load transporter=transporter-clevrer-like

    # seeds 1 and 2 in a later call, their table joined with the seed-0 table of an earlier one
    python scripts/compare_keypoints.py --first-seed 1 --seeds 2 --merge results/keypoint_comparison.json

    # only join tables of earlier calls (which may hold different rows and seeds), training nothing
    python scripts/compare_keypoints.py --seeds 0 --merge a.json --merge b.json --json results/keypoint_comparison.json

    # a quick check of the whole pipeline with tiny networks (seconds)
    python scripts/compare_keypoints.py --smoke --steps 1 --clips 1 --eval-clips 1 --seeds 1 --out /tmp/cmp --json /tmp/cmp.json

Each (method, seed) trains in ``OUT/runs/METHOD-seedS`` with ``scripts/train_keypoints.py``'s
trainer (checkpoints, tensorboard, exact resume): a finished run with the requested steps is
reused, an unfinished one resumed; held-out scores are cached beside it. The budget per method
is a step count (``--steps`` for all, ``--budget METHOD=STEPS`` for one), chosen so that each
baseline trains in at most 30 minutes on one thread of this project's 2-core CPU
(:data:`DEFAULT_STEPS`); MINT's runs are the shipped detector's settings.

Writes the table as JSON (``--json``, default ``results/keypoint_comparison.json``), the
come-and-go plot (active keypoints of each method per frame against the visible objects, on the
held-out clip whose object count changes most) as ``OUT/come_and_go.png`` and a side-by-side
overlay video of that clip as ``OUT/overlay.mp4``. The last line printed is the table's JSON path.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROWS = ("mint", "mint-wo-reg", "mint-wo-temp", "transporter", "transporter-modified", "video-structure")
LABELS = {
    "mint": "MINT",
    "mint-wo-reg": "MINT w/o Reg.",
    "mint-wo-temp": "MINT w/o Temp.",
    "transporter": "Transporter",
    "transporter-modified": "Transporter-modified",
    "video-structure": "Video Structure",
}
#: optimiser steps per method: MINT's are the shipped detector's (10.7 min here); each baseline's
#: fits in 30 min on one thread of the project's 2-core CPU (docs/baselines.md)
DEFAULT_STEPS = {"mint": 4000, "mint-wo-reg": 4000, "mint-wo-temp": 4000,
                 "transporter": 600, "transporter-modified": 300, "video-structure": 250}
#: command-line options of each row beyond the common ones: the shipped MINT settings, the baselines' methods
ROW_ARGS = {
    "mint": ["--status-surrogate", "0.2", "--loss", "it_keypoint_reduction=mean"],
    "mint-wo-reg": ["--status-surrogate", "0.2", "--loss", "it_keypoint_reduction=mean", "--ablation", "wo-reg"],
    "mint-wo-temp": ["--status-surrogate", "0.2", "--ablation", "wo-temp"],
    "transporter": ["--method", "transporter"],
    "transporter-modified": ["--method", "transporter-modified"],
    "video-structure": ["--method", "video-structure"],
}
#: batch options per row: MINT's shipped batch of 16; Video Structure 8 windows of 8 frames instead of
#: the authors' 16 of 16, which take 23 s per step here (80 steps in 30 minutes)
BATCH_ARGS = {
    "mint": ["--batch-size", "16"], "mint-wo-reg": ["--batch-size", "16"], "mint-wo-temp": ["--batch-size", "16"],
    "transporter": [], "transporter-modified": [], "video-structure": ["--batch-size", "8", "--window", "8"],
}
#: tiny networks for --smoke
SMOKE_ARGS = {
    "mint": ["--num-keypoints", "4", "--batch-size", "2"],
    "transporter": ["--num-keypoints", "4", "--batch-size", "2", "--config", "num_features=4"],
    "video-structure": ["--num-keypoints", "4", "--batch-size", "2", "--window", "3", "--config", "initial_filters=4"],
}
METRICS = ("dop", "top", "uak", "rak")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default=",".join(ROWS), help=f"comma-separated rows (default all: {','.join(ROWS)})")
    p.add_argument("--seeds", type=int, default=3,
                   help="training seeds per method (default 3; 0 with --merge: only join earlier calls' tables)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--clips", type=int, default=40, help="training clips (generator seeds 0..N-1; default 40)")
    p.add_argument("--preset", default="small", help="CLEVRER-like generator preset (default small, 160x96)")
    p.add_argument("--eval-clips", type=int, default=100, help="held-out clips (default 100)")
    p.add_argument("--eval-seed", type=int, default=100_000, help="first held-out generator seed")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps for every method (default: DEFAULT_STEPS)")
    p.add_argument("--budget", action="append", default=[], metavar="METHOD=STEPS", help="steps of one method")
    p.add_argument("--load", action="append", default=[], metavar="METHOD=P1[,P2...]",
                   help="use these detectors (paths or shipped names, one per seed) instead of training")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", type=Path, default=Path("runs/compare"), help="runs, cached scores, plot and video")
    p.add_argument("--json", type=Path, default=Path("results/keypoint_comparison.json"))
    p.add_argument("--merge", action="append", type=Path, default=[], metavar="JSON",
                   help="an earlier call's table JSON (other seeds, the same training data, held-out clips and steps): "
                        "its per-seed values join this call's, row by row, in the table and the JSON written")
    p.add_argument("--smoke", action="store_true", help="tiny networks: checks the pipeline, compares nothing")
    p.add_argument("--no-video", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    args.rows = [r.strip() for r in args.methods.split(",") if r.strip()]
    bad = [r for r in args.rows if r not in ROWS]
    if bad or not args.rows:
        p.error(f"--methods: expected a comma-separated subset of {','.join(ROWS)}, got {args.methods!r}")
    for name in ("clips", "eval_clips"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected >= 1, got {getattr(args, name)}")
    if args.seeds < (0 if args.merge else 1):
        p.error(f"--seeds: expected >= 1 (0 only with --merge: a table of earlier calls' seeds), got {args.seeds}")
    if args.steps is not None and args.steps < 1:
        p.error(f"--steps: expected >= 1, got {args.steps}")
    args.step_budget = {r: args.steps or DEFAULT_STEPS[r] for r in ROWS}
    for item in args.budget:
        row, _, text = item.partition("=")
        if row not in ROWS or not text.isdigit() or int(text) < 1:
            p.error(f"--budget: expected METHOD=STEPS with METHOD one of {','.join(ROWS)}, got {item!r}")
        args.step_budget[row] = int(text)
    args.loaded = {}
    for item in args.load:
        row, _, text = item.partition("=")
        paths = [t for t in text.split(",") if t]
        if row not in ROWS or len(paths) != args.seeds:
            p.error(f"--load: expected METHOD=P1,...,P{args.seeds} (one detector per seed) with METHOD one of "
                    f"{','.join(ROWS)}, got {item!r}")
        args.loaded[row] = paths
    return args


def train_argv(row: str, seed: int, steps: int, args: argparse.Namespace, out: Path) -> list[str]:
    """The ``scripts/train_keypoints.py`` arguments of one (row, seed) run."""
    common = ["--preset", "clevrer", "--data", f"generate:{args.clips}:{args.preset}:0", "--steps", str(steps),
              "--seed", str(seed), "--threads", str(args.threads), "--checkpoint-every", "50", "--no-eval",
              "--out", str(out), "--resume"]
    if args.no_progress:
        common.append("--no-progress")
    if args.smoke:
        kind = "mint" if row.startswith("mint") else ("video-structure" if row == "video-structure" else "transporter")
        return common + ROW_ARGS[row] + SMOKE_ARGS[kind]
    return common + ROW_ARGS[row] + BATCH_ARGS[row]


def run_finished(out: Path, steps: int) -> bool:
    """Whether ``out`` holds a finished run of ``steps`` steps."""
    summary = out / "train_summary.json"
    if not (out / "detector.safetensors").is_file() or not summary.is_file():
        return False
    try:
        return int(json.loads(summary.read_text())["steps"]) == steps
    except (ValueError, KeyError, TypeError):
        return False


def train_run(row: str, seed: int, args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """Train (or reuse) one (row, seed) run; its detector path and a record of the run."""
    from mint_rl.training.cli import main as train_main

    out = args.out / "runs" / f"{row}-seed{seed}"
    steps = args.step_budget[row]
    if not run_finished(out, steps):
        print(f"[compare] training {row} seed {seed}: {steps} steps -> {out}", file=sys.stderr)
        start = time.perf_counter()
        train_main(train_argv(row, seed, steps, args, out))
        print(f"[compare] {row} seed {seed} done in {(time.perf_counter() - start) / 60:.1f} min", file=sys.stderr)
    summary = json.loads((out / "train_summary.json").read_text())
    record = {"steps": summary["steps"], "train_seconds_last_call": summary["seconds"],
              "train_args": train_argv(row, seed, steps, args, out)}
    return out / "detector.safetensors", record


def score(detector_ref: str | Path, cache: Path | None, clips: list, spec: str) -> dict[str, Any]:
    """Per-clip DOP/TOP/UAK/RAK and counts of a detector on the held-out clips (cached in ``cache``)."""
    from mint_rl.detectors import load_detector
    from mint_rl.training.evaluation import evaluate_detector

    if cache is not None and cache.is_file():
        data = json.loads(cache.read_text())
        if data.get("spec") == spec:
            return data
    det = load_detector(detector_ref)
    results = evaluate_detector(det, clips)
    data = {"spec": spec, "detector": str(detector_ref),
            "clips": [{"name": c.name, **{m: float(getattr(r, m)) for m in METRICS},
                       "n_active": r.n_active.tolist(), "n_visible": r.n_visible.tolist()}
                      for c, r in zip(clips, results)]}
    if cache is not None:
        cache.write_text(json.dumps(data))
    return data


def count_following(per_clip: list[dict[str, Any]]) -> float:
    """Mean over clips whose object count changes of the correlation between active keypoints and
    visible objects per frame (0 where the active count never changes)."""
    values = []
    for c in per_clip:
        a, v = np.asarray(c["n_active"], float), np.asarray(c["n_visible"], float)
        if v.std() == 0:
            continue
        values.append(0.0 if a.std() == 0 else float(np.corrcoef(a, v)[0, 1]))
    return float(np.mean(values)) if values else float("nan")


SEED_STATS = (*METRICS, "count_following", "active_keypoints")


def seed_stats(values: list[float]) -> dict[str, Any]:
    """Mean ± std (population) over seeds of per-seed values, NaN seeds skipped (NaN when all are)."""
    finite = [v for v in values if not math.isnan(v)]
    mean = float(np.mean(finite)) if finite else float("nan")
    std = float(np.std(finite)) if finite else float("nan")
    return {"mean": mean, "std": std, "per_seed": [float(v) for v in values]}


def per_seed_values(per_seed: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each :data:`SEED_STATS` key's value per seed: the seed's mean over clips (NaN clips skipped),
    its count-following and its mean number of active keypoints."""
    out = {m: [float(np.nanmean([c[m] for c in s["clips"]])) for s in per_seed] for m in METRICS}
    out["count_following"] = [count_following(s["clips"]) for s in per_seed]
    out["active_keypoints"] = [float(np.mean([np.mean(c["n_active"]) for c in s["clips"]])) for s in per_seed]
    return out


def seed_records(values: dict[str, list[float]], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per seed of a row: its run record and its value of every :data:`SEED_STATS` key."""
    if any(len(values[key]) != len(runs) for key in SEED_STATS):
        raise ValueError(f"{len(runs)} runs but {[len(values[k]) for k in SEED_STATS]} per-seed values")
    return [{"seed": int(run["seed"]), "run": run, **{key: values[key][i] for key in SEED_STATS}}
            for i, run in enumerate(runs)]


def merged_records(path: Path, rows: list[str], steps: dict[str, Any], heldout: str, train_data: str,
                   smoke: bool) -> dict[str, list[dict[str, Any]]]:
    """The per-seed records of ``rows`` in an earlier call's JSON (``path``; a row it lacks has none).
    Refuses a file scored on other held-out clips, trained on other data or with another step budget
    for a row, or a ``--smoke`` file merged into a real comparison (and the reverse)."""
    try:
        data = json.loads(path.read_text())
        if data["heldout"] != heldout or data["train_data"] != train_data:
            raise ValueError(f"scored on {data['heldout']} after training on {data['train_data']}; this call: "
                             f"{heldout} after {train_data}")
        if bool(data.get("smoke")) != smoke:
            raise ValueError("one of the two comparisons is a --smoke run (tiny networks), the other is not")
        out = {}
        for row in rows:
            if row not in data["rows"]:
                continue
            if data["rows"][row]["steps"] != steps[row]:
                raise ValueError(f"{row}: {data['rows'][row]['steps']} steps there, {steps[row]} here")
            out[row] = seed_records({k: data["rows"][row][k]["per_seed"] for k in SEED_STATS}, data["runs"][row])
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise SystemExit(f"error: --merge {path}: {exc}") from exc
    return out


def assemble(rows: list[str], records: dict[str, list[dict[str, Any]]], steps: dict[str, Any],
             sources: dict[str, list[str]]) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Per row, the table's summary (mean ± std over its seeds, in seed order) and its run records,
    from the records of this call and of the merged files (``sources[row]`` names where each came
    from). Refuses a seed that two sources both hold and a row no source has a seed of."""
    summary, runs = {}, {}
    for row in rows:
        recs = sorted(records[row], key=lambda r: r["seed"])
        seeds = [r["seed"] for r in recs]
        twice = sorted({s for s in seeds if seeds.count(s) > 1})
        if twice:
            raise SystemExit(f"error: {LABELS[row]}: seed(s) {twice} in more than one of {sources[row]}")
        if not recs:
            raise SystemExit(f"error: {LABELS[row]}: no seed trained in this call (--seeds 0) nor in a --merge file")
        summary[row] = {key: seed_stats([r[key] for r in recs]) for key in SEED_STATS}
        summary[row].update(seeds=len(recs), steps=steps[row])
        runs[row] = [r["run"] for r in recs]
    return summary, runs


def table(rows: dict[str, dict[str, Any]]) -> str:
    """The comparison as a markdown table (bold: best mean per column)."""
    cols = [("dop", "DOP ↑", max), ("top", "TOP ↑", max), ("uak", "UAK ↓", min), ("rak", "RAK ↓", min),
            ("count_following", "count follows objects ↑", max), ("active_keypoints", "active keypoints", None)]
    best = {}
    for key, _, pick in cols:
        vals = [r[key]["mean"] for r in rows.values() if not math.isnan(r[key]["mean"])]
        best[key] = pick(vals) if pick and vals else None
    lines = ["| method | " + " | ".join(c[1] for c in cols) + " | seeds | steps |",
             "|---|" + "---|" * (len(cols) + 2)]
    for row, r in rows.items():
        cells = []
        for key, _, _ in cols:
            mean, std = r[key]["mean"], r[key]["std"]
            text = "nan" if math.isnan(mean) else f"{mean:.3f} ± {std:.3f}"
            cells.append(f"**{text}**" if best[key] is not None and mean == best[key] else text)
        lines.append(f"| {LABELS[row]} | " + " | ".join(cells) + f" | {r['seeds']} | {r['steps']} |")
    return "\n".join(lines)


def come_and_go_plot(per_row: dict[str, dict[str, Any]], clip_index: int, path: Path, title: str) -> Path:
    """Active keypoints per frame of every method (first seed) against the visible objects."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3), dpi=110)
    visible = None
    styles = ("-", "--", "-.", ":")
    for i, (row, data) in enumerate(per_row.items()):
        clip = data["clips"][clip_index]
        visible = clip["n_visible"]
        ax.step(np.arange(len(clip["n_active"])), clip["n_active"], where="mid", label=LABELS[row], linewidth=1.4,
                linestyle=styles[i % len(styles)])
    ax.step(np.arange(len(visible)), visible, where="mid", label="visible objects", color="black", linewidth=2.4)
    ax.set_xlabel("frame")
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def overlay_video(detectors: dict[str, str | Path], clip: Any, path: Path) -> Path:
    """One held-out clip with every method's keypoints (mask outlines too), side by side, labelled."""
    import cv2

    from mint_rl.detectors import load_detector
    from mint_rl.training.evaluation import detect_clip
    from mint_rl.viz import draw_keypoints, draw_mask_outlines, write_video

    scale = 2
    panels = []
    for row, ref in detectors.items():
        kp, st = detect_clip(load_detector(ref), clip.frames)
        frames = []
        for f, m, k, s in zip(clip.frames, clip.masks, kp, st):
            big = cv2.resize(draw_mask_outlines(f, m), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            img = draw_keypoints(big, k, s, radius=3)
            cv2.putText(img, LABELS[row], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            frames.append(img)
        panels.append(np.stack(frames))
    cols = min(3, len(panels))
    while len(panels) % cols:
        panels.append(np.zeros_like(panels[0]))
    grid_rows = [np.concatenate(panels[i:i + cols], axis=2) for i in range(0, len(panels), cols)]
    return write_video(np.concatenate(grid_rows, axis=1), path, fps=clip.fps)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from mint_rl.training.sources import generated_clips

    torch.set_num_threads(args.threads)
    spec = f"generate:{args.eval_clips}:{args.preset}:{args.eval_seed}"
    clips = generated_clips(args.eval_clips, args.preset, args.eval_seed, progress=not args.no_progress) if args.seeds else []
    start = time.perf_counter()
    per_row: dict[str, list[dict[str, Any]]] = {r: [] for r in args.rows}
    runs: dict[str, list[dict[str, Any]]] = {r: [] for r in args.rows}
    first_detector: dict[str, str | Path] = {}
    for i in range(args.seeds):  # seed-major: a partial run has whole comparisons for its first seeds
        seed = args.first_seed + i
        for row in args.rows:
            if row in args.loaded:
                ref: str | Path = args.loaded[row][i]
                cache = None
                record: dict[str, Any] = {"loaded": ref}
            else:
                ref, record = train_run(row, seed, args)
                cache = Path(ref).parent / "heldout_scores.json"
            data = score(ref, cache, clips, spec)
            per_row[row].append(data)
            runs[row].append({"seed": seed, "detector": str(ref), **record})
            first_detector.setdefault(row, ref)
            means = "  ".join(f"{m.upper()}={np.nanmean([c[m] for c in data['clips']]):.3f}" for m in METRICS)
            print(f"[compare] {LABELS[row]} seed {seed}: {means}", file=sys.stderr)

    steps = {row: "loaded" if row in args.loaded else args.step_budget[row] for row in args.rows}
    train_data = f"generate:{args.clips}:{args.preset}:0"
    records = {row: seed_records(per_seed_values(per_row[row]), runs[row]) for row in args.rows}
    sources = {row: ["this call"] if per_row[row] else [] for row in args.rows}
    for path in args.merge:
        for row, recs in merged_records(path, args.rows, steps, spec, train_data, args.smoke).items():
            records[row] += recs
            sources[row].append(str(path))
    summary, runs = assemble(args.rows, records, steps, sources)
    seeds = sorted({run["seed"] for row in args.rows for run in runs[row]})
    print(table(summary))

    artefacts: dict[str, str] = {}
    here = [r for r in args.rows if per_row[r]]  # the plot and the video show this call's detectors
    clip_name = None
    if here:
        swing = [max(c["n_visible"]) - min(c["n_visible"]) for c in per_row[here[0]][0]["clips"]]
        ci = int(np.argmax(swing))
        clip_name = clips[ci].name
        args.out.mkdir(parents=True, exist_ok=True)
        artefacts["plot"] = str(come_and_go_plot({r: per_row[r][0] for r in here}, ci, args.out / "come_and_go.png",
                                                 f"held-out clip {clip_name} (first seed of each method)"))
        if not args.no_video:
            artefacts["video"] = str(overlay_video({r: first_detector[r] for r in here}, clips[ci],
                                                   args.out / "overlay.mp4"))
    result = {
        "rows": {r: {"label": LABELS[r], **summary[r]} for r in args.rows},
        "table_markdown": table(summary),
        "train_data": train_data,
        "heldout": spec,
        "seeds": seeds,
        "merged": [str(p) for p in args.merge],
        "runs": runs,
        "come_and_go_clip": clip_name,
        "artefacts": artefacts,
        "smoke": args.smoke,
        "wall_seconds_this_call": time.perf_counter() - start,
        "threads": args.threads,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {', '.join([*artefacts.values(), str(args.json)])}", file=sys.stderr)
    print(args.json)
    return 0


if __name__ == "__main__":
    from mint_rl.experiments.allocator import keep_freed_memory

    keep_freed_memory()
    sys.exit(main())
