#!/usr/bin/env python
"""Keypoint dynamics on CLEVRER-like video: the interaction network as a forward model (Task II).

Trains the forward model (:mod:`mint_rl.dynamics`) on a frozen detector's keypoints of the
training clips, one model per seed, and scores true forecasts 1..3 frames ahead on held-out
clips against the constant-position and constant-velocity baselines on the same keypoints, and
against the same network trained on ground-truth object centres (the oracle keypoints). A
reference row moves each detected keypoint with its object's true displacement (it reads the
future masks): what forecasting the objects perfectly would score with the detector's keypoints.

Defaults follow the paper's low-data setting: 20 training clips of the ``small`` preset (seeds
0-19), 100 held-out clips from a disjoint seed range (100000-100099), 5 seeds, 50 epochs.

Examples:
    python scripts/dynamics_clevrer.py --out out/dynamics_clevrer
    python scripts/dynamics_clevrer.py --data data/my_clips --train-clips 30 --detector runs/s0/detector.safetensors
    python scripts/dynamics_clevrer.py --detector clevrer-like --detector runs/other.safetensors   # a row each

Writes under ``--out``: ``results.json`` (per-seed and mean ± std tables), ``trajectories.png``
(predicted vs actual trajectories on one frame), ``overlay.gif`` (forecasts over a held-out clip),
tensorboard scalars in ``tb/``, the trained models in ``models/`` and per-seed results in ``runs/``
(a rerun with the same ``--out`` skips finished seeds). The last line printed is exactly
``success_1=<f> success_3=<f> cv_success_1=<f> cv_success_3=<f>`` (the network on the first
detector's keypoints, then constant velocity; means over seeds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mint_rl.dynamics import (
    DynamicsTrainConfig,
    ForwardModelConfig,
    KeypointForwardModel,
    extract_keypoints,
    make_windows,
    oracle_keypoints,
)
from mint_rl.dynamics.scoring import keypoint_following, object_motion_forecast, score_sequences
from mint_rl.dynamics.experiment import (
    baseline_scores,
    forecast_overlay,
    markdown_table,
    summarise,
    train_and_score_seeds,
)
from mint_rl.detectors import load_detector
from mint_rl.training.sources import clips_from_source, generated_clips

HORIZONS = (1, 2, 3)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="clips to use instead of generated ones (any train_mint.py source: a clip folder, "
                                    "clevrer:VIDEO_DIR:PROPOSALS_DIR, a folder of videos); the first --train-clips "
                                    "train, the rest are held out")
    src.add_argument("--generate", type=int, default=100, help="held-out CLEVRER-like clips to generate")
    p.add_argument("--train-clips", type=int, default=20, help="training clips (generated: seeds --train-seed ..)")
    p.add_argument("--preset", default="small", help="generator preset")
    p.add_argument("--train-seed", type=int, default=0, help="first generator seed of the training clips")
    p.add_argument("--test-seed", type=int, default=100_000, help="first generator seed of the held-out clips")
    p.add_argument("--detector", action="append", help="pretrained name or checkpoint path (repeatable: a row each; "
                                                       "default clevrer-like)")
    p.add_argument("--seeds", type=int, default=5, help="models per method (seeds 0 ..)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input-frame", choices=["relative", "absolute"], default="relative",
                   help="ForwardModelConfig.input_frame (absolute: the authors' raw coordinates)")
    p.add_argument("--max-step", type=lambda v: None if v == "none" else float(v), default=0.15,
                   help="DynamicsTrainConfig.max_step: targets beyond it per step are detector jumps, left out "
                        "of the loss ('none' keeps all)")
    p.add_argument("--oracle-k", type=int, default=10, help="keypoint slots of the oracle (max objects per clip)")
    p.add_argument("--no-oracle", action="store_true", help="skip the network on ground-truth object centres")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out", type=Path, default=Path("out/dynamics_clevrer"))
    p.add_argument("--cache", type=Path, default=None, help="keypoint cache (default OUT/cache)")
    p.add_argument("--no-video", action="store_true")
    p.add_argument("--video-frames", type=int, default=24, help="frames of the overlay GIF (from the clip's start)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    for name in ("generate", "train_clips", "seeds", "epochs", "batch_size", "oracle_k", "threads", "video_frames"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected >= 1, got {getattr(args, name)}")
    return args


def load_clips(args: argparse.Namespace) -> tuple[list, list]:
    """(training clips, held-out clips)."""
    progress = not args.no_progress
    if args.data:
        clips = clips_from_source(args.data, progress=progress)
        if len(clips) <= args.train_clips:
            raise SystemExit(f"--data {args.data}: {len(clips)} clips, expected more than --train-clips "
                             f"{args.train_clips} (the rest are held out)")
        return clips[: args.train_clips], clips[args.train_clips :]
    if args.train_seed + args.train_clips > args.test_seed:
        raise SystemExit("--train-seed/--train-clips overlap the held-out seeds from --test-seed")
    return (generated_clips(args.train_clips, args.preset, args.train_seed, progress),
            generated_clips(args.generate, args.preset, args.test_seed, progress))


def forecasts_of(model: KeypointForwardModel, seq) -> np.ndarray:
    """``(T, H, K, 2)`` forecasts from every window end ``t`` of one sequence (NaN elsewhere)."""
    windows = make_windows([seq], model.config.history, model.config.horizon)
    out = np.full((len(seq), model.config.horizon, seq.num_keypoints, 2), np.nan, np.float32)
    out[windows.t.numpy()] = model.predict(windows.inputs).positions.numpy()
    return out


def staying_keypoints(seq, t: int, horizon: int, history: int = 4) -> dict[int, int]:
    """``{keypoint: object id}`` of the keypoints active and on one and the same object (mask
    lookup) from frame ``t - history + 1`` to ``t + horizon``."""
    from mint_rl.metrics import keypoint_labels

    span = slice(t - history + 1, t + horizon + 1)
    labels = keypoint_labels(torch.from_numpy(seq.keypoints[span]), torch.from_numpy(seq.status[span]),
                             torch.from_numpy(np.asarray(seq.masks[span])).long())
    same = ((labels > 0) & (labels == labels[0:1])).all(dim=0)
    return {int(k): int(labels[0, k]) for k in torch.nonzero(same).flatten()}


def pick_frame(clips, seqs, history: int, horizon: int) -> tuple[int, int]:
    """(clip index, window end ``t``) where the objects under keypoints that stay on them move
    most from ``t`` to ``t + horizon`` (generator tracks), so the trajectory figure shows motion."""
    best = (0, history - 1, -1.0)
    for ci, (clip, seq) in enumerate(zip(clips, seqs)):
        xy = (clip.tracks or {}).get("pixel_xy")
        if xy is None or seq.masks is None:
            continue
        for t in range(history - 1, len(seq) - horizon, 2):
            objects = set(staying_keypoints(seq, t, horizon, history).values())
            motion = sum(float(np.nan_to_num(np.linalg.norm(xy[t + horizon, o - 1] - xy[t, o - 1]))) for o in objects)
            if motion > best[2]:
                best = (ci, t, motion)
    return best[0], best[1]


def plot_trajectories(path: Path, panels: list[dict], title: str) -> Path:
    """One panel per keypoint source: frame t, history, actual and predicted future per keypoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mint_rl.coords import normalized_to_pixel
    from mint_rl.viz import draw_mask_outlines

    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.0), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        seq, t, clip = panel["seq"], panel["t"], panel["clip"]
        h_img, w_img = seq.image_size
        img = draw_mask_outlines(clip.frames[t], clip.masks[t]) if clip.masks is not None else clip.frames[t]
        ax.imshow(img)

        def px(xy):
            return normalized_to_pixel(torch.as_tensor(np.asarray(xy), dtype=torch.float64), h_img, w_img).numpy()

        hist = px(seq.keypoints[t - 3 : t + 1])  # (4, K, 2)
        actual = px(seq.keypoints[t : t + 4])  # t .. t+3
        labelled = set()
        for k in staying_keypoints(seq, t, 3):
            def lab(name):
                if name in labelled:
                    return None
                labelled.add(name)
                return name
            ax.plot(hist[:, k, 0], hist[:, k, 1], "-", color="white", lw=1.0, alpha=0.8, label=lab("past 4 frames"))
            ax.plot(actual[:, k, 0], actual[:, k, 1], "o-", color="lime", ms=2.5, lw=1.2, label=lab("actual t+1..t+3"))
            for name, pred, style in panel["predictions"]:
                p = px(np.concatenate([seq.keypoints[t : t + 1, k], pred[:, k]]))
                ax.plot(p[:, 0], p[:, 1], style, ms=2.5, lw=1.2, label=lab(name))
        ax.set_title(f"{panel['name']}: {clip.name}, t={t}", fontsize=9)
        ax.set_xlim(0, w_img - 1)
        ax.set_ylim(h_img - 1, 0)
        ax.axis("off")
    axes[0][0].legend(loc="lower left", fontsize=6, framealpha=0.6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    progress = not args.no_progress
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.cache or args.out / "cache"
    detectors = args.detector or ["clevrer-like"]
    train_clips, test_clips = load_clips(args)
    test_scored = [c for c in test_clips if c.masks is not None]
    if not test_scored:
        raise SystemExit("no held-out clip has instance masks: nothing to score the forecasts against")

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(args.out / "tb"))
    train_cfg = DynamicsTrainConfig(epochs=args.epochs, batch_size=args.batch_size, max_step=args.max_step)
    seeds = list(range(args.seeds))
    rows: dict[str, dict] = {}
    per_seed: dict[str, list] = {}
    following: dict[str, dict] = {}
    first: dict = {}
    for det_name in detectors:
        detector = load_detector(det_name)
        train_seqs = extract_keypoints(detector, train_clips, cache_dir=cache, progress=progress)
        test_seqs = extract_keypoints(detector, test_scored, cache_dir=cache, progress=progress)
        model_cfg = ForwardModelConfig(num_keypoints=detector.num_keypoints, input_frame=args.input_frame)
        tag = Path(det_name).stem if ("/" in det_name or det_name.endswith(".safetensors")) else det_name
        name = f"IN on {tag} keypoints"
        runs = train_and_score_seeds(f"in-{tag}", make_windows(train_seqs), test_seqs, model_cfg, train_cfg, seeds,
                                     args.out, writer=writer, progress=progress, extra={"detector": det_name})
        per_seed[name] = runs
        rows[name] = summarise([r["scores"] for r in runs])
        for bname, scores in baseline_scores(test_seqs).items():
            rows[f"{bname.replace('_', ' ')} on {tag} keypoints"] = summarise([scores])
        following[f"{tag} keypoints"] = keypoint_following(test_seqs)
        rows[f"reference: {tag} keypoints moved with their object's true motion"] = summarise(
            [score_sequences(object_motion_forecast, test_seqs, with_sequence=True)])
        if not first:
            first = {"name": name, "tag": tag, "cv": rows[f"constant velocity on {tag} keypoints"],
                     "model": KeypointForwardModel.load(runs[0]["model"]), "test": test_seqs}
    if not args.no_oracle:
        train_or = oracle_keypoints(train_clips, args.oracle_k)
        test_or = oracle_keypoints(test_scored, args.oracle_k)
        runs = train_and_score_seeds("in-oracle", make_windows(train_or), test_or,
                                     ForwardModelConfig(num_keypoints=args.oracle_k, input_frame=args.input_frame), train_cfg, seeds, args.out,
                                     writer=writer, progress=progress, extra={"detector": "oracle (mask centroids)"})
        per_seed["IN on oracle keypoints (mask centres)"] = runs
        rows["IN on oracle keypoints (mask centres)"] = summarise([r["scores"] for r in runs])
        for bname, scores in baseline_scores(test_or).items():
            rows[f"{bname.replace('_', ' ')} on oracle keypoints"] = summarise([scores])
        following["oracle keypoints"] = keypoint_following(test_or)
        first["oracle_model"] = KeypointForwardModel.load(runs[0]["model"])
        first["oracle_test"] = test_or
    writer.flush()

    print(f"\nheld-out clips: {len(test_scored)}; seeds: {args.seeds}; success = predicted objects / objects visible "
          f"at t+h (mean ± std over seeds); ceiling = objects with an active keypoint on them at t")
    table = markdown_table(rows, "objects", HORIZONS)
    print(table)
    print("\nhow keypoints follow their objects from frame to frame (held-out clips; steps of keypoints that stay on "
          "an object moving > 0.5 px):")
    for name, f in following.items():
        print(f"  {name}: stay on their object {f['stay']:.3f}; step {f['kp_step_px']:.2f} px vs object "
              f"{f['object_step_px']:.2f} px; median step {f['kp_step_median_px']:.2f} px")

    # ------------------------------------------------------------------ figure and video
    artefacts = {}
    model = first["model"]
    ci, t = pick_frame(test_scored[:10], first["test"][:10], model.config.history, model.config.horizon)
    clip, seq = test_scored[ci], first["test"][ci]
    window = torch.from_numpy(seq.frames[t - model.config.history + 1 : t + 1])[None]
    from mint_rl.dynamics import constant_velocity

    panels = [{"name": first["name"], "seq": seq, "t": t, "clip": clip, "predictions": [
        ("IN forecast", model.predict(window).positions[0].numpy(), "s--"),
        ("constant velocity", constant_velocity(window, 3)[0].numpy(), "x:"),
    ]}]
    if "oracle_model" in first:
        oseq = first["oracle_test"][ci]
        owin = torch.from_numpy(oseq.frames[t - 3 : t + 1])[None]
        panels.append({"name": "IN on oracle keypoints", "seq": oseq, "t": t, "clip": clip, "predictions": [
            ("IN forecast", first["oracle_model"].predict(owin).positions[0].numpy(), "s--"),
            ("constant velocity", constant_velocity(owin, 3)[0].numpy(), "x:"),
        ]})
    artefacts["figure"] = str(plot_trajectories(args.out / "trajectories.png", panels,
                                                "keypoints on one object from t-3 to t+3: past 4 frames (white), actual "
                                                "(green) and forecast t+1..t+3"))
    if not args.no_video:
        from mint_rl.viz import write_video

        frames = forecast_overlay(clip.frames, seq, forecasts_of(model, seq), horizon_shown=3,
                                  masks=clip.masks)[: args.video_frames]
        frames = np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2)  # 2x, readable in a README
        artefacts["video"] = str(write_video(frames, args.out / "overlay.gif", fps=min(clip.fps, 8.0)))

    g = rows[first["name"]]["objects"]
    cv = first["cv"]["objects"]
    result = {
        "detectors": detectors, "train_clips": [c.name for c in train_clips], "test_clips": [c.name for c in test_scored],
        "seeds": seeds, "train_config": train_cfg.to_dict(),
        "model_config": first["model"].config.to_dict(),
        "table": {name: {grp: {str(h): v for h, v in by_h.items()} for grp, by_h in s.items()} for name, s in rows.items()},
        "per_seed": {name: [{"seed": r["seed"], "train_seconds": r["train_seconds"], "final_loss": r["final_loss"],
                             "scores": {grp: {str(h): v for h, v in by_h.items()} for grp, by_h in r["scores"].items()}}
                            for r in runs] for name, runs in per_seed.items()},
        "keypoint_following": following, "markdown": table, "artefacts": artefacts, "wall_seconds": time.perf_counter() - started,
        "torch_threads": args.threads,
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    writer.close()
    print(f"wrote {args.out / 'results.json'}, {', '.join(artefacts.values())} "
          f"({result['wall_seconds']:.0f} s)", file=sys.stderr)
    print(f"success_1={g[1]['success']['mean']:.4f} success_3={g[3]['success']['mean']:.4f} "
          f"cv_success_1={cv[1]['success']['mean']:.4f} cv_success_3={cv[3]['success']['mean']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
