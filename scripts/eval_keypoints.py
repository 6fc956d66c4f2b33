#!/usr/bin/env python
"""Score keypoint detectors (MINT or a baseline) on held-out clips with DOP / TOP / UAK / RAK (paper Appendix D).

Examples:
    python scripts/eval_keypoints.py --detector clevrer-like --generate 20 --seed 100000 --out out/eval
    python scripts/eval_keypoints.py --detector runs/s0/detector.safetensors --detector runs/s1/detector.safetensors \\
        --data data/clevrer_like_test --out out/eval
    python scripts/eval_keypoints.py --detector transporter-clevrer-like --generate 20 --out out/eval-transporter

Any method's checkpoint or shipped name works (:func:`mint_rl.detectors.load_detector` reads the
method from the file).

With several ``--detector`` (e.g. one per training seed) the table gives the mean and standard
deviation over detectors of the per-detector means over clips; with one detector, over clips.
Also prints the keypoint economy (:mod:`mint_rl.metrics`): active keypoints per present object
and the come-and-go response (keypoints gained per object entering / lost per object leaving,
and the fraction of clips whose active count follows every entry and exit); the preset
``come-and-go`` (``--preset come-and-go``) gives clips with two controlled entries and two exits.
``--status information`` replaces a MINT detector's learned status by the information status of
:mod:`mint_rl.status` (a keypoint stays active only if it covers entropy no stronger keypoint covers);
``--status information-temporal`` carries it from frame to frame (the keypoints kept in the previous
frame go first and stay while ``--keep-unique`` of their entropy is their own).

Writes ``OUT/metrics.json``, an overlay video of the clip whose number of visible objects
changes most (come-and-go) and ``OUT/come_and_go.png`` (active keypoints vs visible objects).
The last line printed is exactly ``DOP=<float> TOP=<float> UAK=<float> RAK=<float>``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from mint_rl.detectors import detector_method, load_detector
from mint_rl.metrics import aggregate_metrics, economy_summary
from mint_rl.training.evaluation import detect_clip, evaluate_detector
from mint_rl.training.sources import clips_from_source, generated_clips

NAMES = ("dop", "top", "uak", "rak")
ECONOMY = ("active_per_object", "come_and_go", "follows_clips", "follows_events")


def economy_line(econ: dict[str, float]) -> str:
    """One line of the economy numbers (see :func:`mint_rl.metrics.economy_summary`)."""
    return (f"active/object={econ['active_per_object']:.2f}  come-and-go={econ['come_and_go']:+.2f} keypoints/object "
            f"(follows {econ['follows_clips']:.0%} of {econ['n_event_clips']} clips with entries/exits, "
            f"{econ['follows_events']:.0%} of {econ['n_events']} events)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detector", action="append", help="pretrained name or checkpoint path (repeatable)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="clip directory (make_clevrer_like.py) or clevrer:VIDEO_DIR:PROPOSALS_DIR")
    src.add_argument("--generate", type=int, default=None, help="generate N CLEVRER-like clips")
    p.add_argument("--preset", default="small", help="generator preset for --generate")
    p.add_argument("--seed", type=int, default=100_000, help="first generator seed (keep away from training seeds)")
    p.add_argument("--keypoint-area", type=float, default=None, help="A_k in pixels (default: 1796.8 scaled by image area)")
    p.add_argument("--out", type=Path, default=Path("out/eval_keypoints"))
    p.add_argument("--no-video", action="store_true")
    p.add_argument("--status", choices=("learned", "information", "information-temporal"), default="learned",
                   help="the detector's learned status, or the information status of mint_rl.status (MINT detectors), "
                        "frame by frame or carried over time")
    p.add_argument("--keep-unique", type=float, default=0.25,
                   help="--status information-temporal: share of its entropy a kept keypoint must still own (0.25)")
    p.add_argument("--loss-preset", default="clevrer", help="loss preset the detector was trained with (--status information)")
    args = p.parse_args(argv)
    check_args(args, p)
    return args


def check_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Usage errors (``parser.error``, exit status 2) for values argparse's types let through."""
    if args.generate is not None and args.generate < 1:
        parser.error(f"--generate: expected a number of clips >= 1, got {args.generate}")
    if args.keypoint_area is not None and not (math.isfinite(args.keypoint_area) and args.keypoint_area > 0):
        parser.error(f"--keypoint-area: expected a finite area > 0 in pixels, got {args.keypoint_area}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    detectors = args.detector or ["clevrer-like"]
    if args.data:
        clips = clips_from_source(args.data)
    else:
        clips = generated_clips(20 if args.generate is None else args.generate, args.preset, args.seed)
    clips = [c for c in clips if c.masks is not None]
    if not clips:
        raise SystemExit("no clips with instance masks to evaluate on")
    args.out.mkdir(parents=True, exist_ok=True)

    per_detector = []
    table = {}
    economy = {}
    first_results = None
    all_results = {}
    status_rule = None
    if args.status.startswith("information"):
        from mint_rl.losses import loss_preset
        from mint_rl.status import InformationStatus, InformationStatusConfig

        try:
            rule = InformationStatusConfig(temporal=args.status == "information-temporal", keep_unique=args.keep_unique)
        except ValueError as e:
            raise SystemExit(f"--keep-unique: {e}") from None
        status_rule = InformationStatus(loss_preset(args.loss_preset), rule)
    for name in detectors:
        det = load_detector(name)
        if status_rule is not None and detector_method(det) != "mint":
            raise SystemExit(f"--status {args.status} needs a MINT detector, got {type(det).__name__} ({name})")
        results = evaluate_detector(det, clips, keypoint_area=args.keypoint_area, status_rule=status_rule)
        agg = aggregate_metrics(results)
        econ = economy_summary(results)
        per_detector.append({k: agg[k]["mean"] for k in NAMES} | {k: econ[k] for k in ECONOMY})
        table[name] = agg
        economy[name] = econ
        print(f"{name}: " + "  ".join(f"{k.upper()}={agg[k]['mean']:.4f}±{agg[k]['std']:.4f}" for k in NAMES)
              + f"  (over {len(clips)} clips)")
        print(f"{name}: {economy_line(econ)}")
        all_results[name] = results
        if first_results is None:
            first_results = (det, results)

    if len(detectors) > 1:
        final = {k: float(np.nanmean([d[k] for d in per_detector])) for k in NAMES + ECONOMY}
        stds = {k: float(np.nanstd([d[k] for d in per_detector])) for k in NAMES + ECONOMY}
        print("over detectors: " + "  ".join(f"{k.upper()}={final[k]:.4f}±{stds[k]:.4f}" for k in NAMES))
        print("over detectors: " + "  ".join(f"{k}={final[k]:.3f}±{stds[k]:.3f}" for k in ECONOMY))
    else:
        final = per_detector[0]
        econ = economy[detectors[0]]
        stds = {k: table[detectors[0]][k]["std"] for k in NAMES} | {
            "active_per_object": econ["active_per_object_std"], "come_and_go": econ["come_and_go_std"]}

    det, results = first_results
    swing = [int(r.n_visible.max() - r.n_visible.min()) for r in results]
    ci = int(np.argmax(swing))
    from mint_rl.viz import plot_counts

    counts = results[ci].n_active if len(detectors) == 1 else {n: r[ci].n_active for n, r in all_results.items()}
    label = detectors[0] if len(detectors) == 1 else f"{len(detectors)} detectors"
    status_note = {"learned": "", "information": ", information status",
                   "information-temporal": ", temporal information status"}[args.status]
    plot = plot_counts(counts, results[ci].n_visible, args.out / "come_and_go.png",
                       title=f"{label} on {clips[ci].name}{status_note}")
    artefacts = {"plot": str(plot)}
    if not args.no_video:
        from mint_rl.viz import draw_keypoints, draw_mask_outlines, write_video

        kp, st = detect_clip(det, clips[ci].frames, status_rule=status_rule)
        frames = [draw_keypoints(draw_mask_outlines(f, m), k, s)
                  for f, m, k, s in zip(clips[ci].frames, clips[ci].masks, kp, st)]
        artefacts["video"] = str(write_video(frames, args.out / "overlay.mp4", fps=clips[ci].fps))
    (args.out / "metrics.json").write_text(json.dumps(
        {"detectors": detectors, "clips": [c.name for c in clips], "per_detector": table,
         "economy": economy, "status": args.status, "mean": final, "std": stds, "come_and_go_clip": clips[ci].name, "artefacts": artefacts}, indent=2))
    print(f"wrote {', '.join(artefacts.values())}, {args.out / 'metrics.json'}", file=sys.stderr)
    print(f"DOP={final['dop']:.4f} TOP={final['top']:.4f} UAK={final['uak']:.4f} RAK={final['rak']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
