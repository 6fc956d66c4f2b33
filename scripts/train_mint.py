#!/usr/bin/env python
"""Train a MINT keypoint detector on any video data.

Examples:
    # CLEVRER-like clips generated on the fly (small 160x96 preset), held-out metrics at the end
    python scripts/train_mint.py --preset clevrer --data generate:60 --eval-data generate:10:small:100000 --out runs/clevrer-like

    # MAGICAL allocentric 96x96 frames from the scripted experts of all three tasks
    python scripts/train_mint.py --preset magical --data magical-experts:8 --out runs/magical

    # your own videos, 2 processes (gloo on CPU, nccl on GPU)
    torchrun --nproc_per_node 2 scripts/train_mint.py --preset clevrer --data ~/videos --out runs/mine

    # continue an interrupted run from its last checkpoint
    python scripts/train_mint.py --preset magical --data magical-experts:8 --out runs/magical --resume

Data sources (``--data``, repeatable): see :mod:`mint_rl.training.sources`.
The last line printed is ``steps=<int> frames_per_s=<float> final_loss=<float>`` followed, when
``--eval-data``/``--held-out`` gives clips with masks, by ``DOP=... TOP=... UAK=... RAK=...``;
without such clips there is no metrics line, and stderr says there were no held-out clips.
``--resume`` continues from ``OUT/checkpoints/latest``, or from the newest intact ``step_*``
checkpoint when ``latest`` is corrupt or names a missing one (a warning says so); with no
checkpoint at all it trains from scratch, and when checkpoints exist but none is readable it
stops with an error listing them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from mint_rl.data import VideoWindowDataset, split_by_video
from mint_rl.experiments.allocator import keep_freed_memory
from mint_rl.losses import ABLATIONS, loss_preset
from mint_rl.models import DETECTOR_PRESETS, DetectorConfig, MintDetector
from mint_rl.training import TRAIN_PRESETS, Trainer, train_preset
from mint_rl.training.evaluation import evaluate_detector, metrics_summary
from mint_rl.training.sources import SOURCE_KINDS, clips_from_sources

DEFAULT_DATA = {"clevrer": ["generate:60:small"], "magical": ["magical-experts:8"]}
DEFAULT_EVAL = {"clevrer": ["generate:10:small:100000"], "magical": []}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(DETECTOR_PRESETS), required=True, help="hyperparameter preset")
    p.add_argument("--data", action="append", help=f"training data source, repeatable: {', '.join(SOURCE_KINDS)}")
    p.add_argument("--eval-data", action="append", help="held-out clips with masks for DOP/TOP/UAK/RAK")
    p.add_argument("--held-out", type=float, default=0.0, help="fraction of --data videos held out for evaluation")
    p.add_argument("--out", type=Path, default=None, help="output directory (default runs/<preset>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/latest")
    p.add_argument("--ablation", choices=sorted(ABLATIONS), default="mint", help="MINT or an Appendix E.1 ablation")
    p.add_argument("--num-keypoints", type=int, default=None, help="K (default: preset, 25)")
    p.add_argument("--image-size", type=str, default=None, help="HxW the detector sees (default: the data's size)")
    p.add_argument("--sigma", type=float, default=None, help="heatmap sigma at the preset's reference map size")
    p.add_argument("--beta", type=float, default=None, help="overlap allowance (paper: 4)")
    p.add_argument("--loss", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a LossConfig field, repeatable (e.g. --loss it_keypoint_reduction=mean "
                        "--loss lambda_it=5)")
    p.add_argument("--status-surrogate", type=float, default=None,
                   help="straight-through slope for the status gradient (default: none, the paper's steep sigmoid)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (default: preset epochs)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--window", type=int, default=None, help="frames per sample (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--checkpoint-every", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--export", default=None, metavar="NAME",
                   help="also copy the final detector into the package as pretrained NAME (mint_rl/pretrained/)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def _loss_overrides(items: list[str]) -> dict[str, object]:
    """``["lambda_it=5", "it_keypoint_reduction=mean"]`` -> typed LossConfig overrides."""
    import dataclasses

    from mint_rl.losses import LossConfig

    fields = {f.name: f for f in dataclasses.fields(LossConfig)}
    out: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in fields or key == "reference_map_size":
            names = sorted(n for n in fields if n != "reference_map_size")
            raise SystemExit(f"--loss: expected FIELD=VALUE with FIELD one of {names}, got {item!r}")
        default = getattr(LossConfig(), key)
        try:
            out[key] = type(default)(text) if not isinstance(default, str) else text
        except ValueError:
            raise SystemExit(f"--loss {key}: expected a {type(default).__name__}, got {text!r}") from None
    return out


def _image_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--image-size: expected HxW like 96x160, got {text!r}")
    return h, w


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    keep_freed_memory()  # reuse freed activations instead of faulting them in again (mint_rl.experiments.allocator)
    if args.export is not None:
        from mint_rl.pretrained import PRETRAINED

        if args.export not in PRETRAINED:
            raise SystemExit(f"--export: expected one of {sorted(PRETRAINED)}, got {args.export!r}")
    out = args.out or Path("runs") / args.preset
    progress = not args.no_progress
    clips = clips_from_sources(args.data or DEFAULT_DATA[args.preset], progress=progress)
    eval_specs = args.eval_data if args.eval_data is not None else DEFAULT_EVAL[args.preset]
    eval_clips = clips_from_sources(eval_specs, progress=progress) if eval_specs else []
    if args.held_out > 0:
        clips, held = split_by_video(clips, args.held_out, seed=args.seed)
        eval_clips += held
    eval_clips = [c for c in eval_clips if c.masks is not None]

    h, w = _image_size(args.image_size) if args.image_size else (clips[0].height, clips[0].width)
    preset = DETECTOR_PRESETS[args.preset]
    det_cfg = DetectorConfig.for_image(
        h, w, in_channels=3, num_keypoints=args.num_keypoints or preset.num_keypoints, gamma=preset.gamma,
        status_surrogate=args.status_surrogate,
    )
    overrides = {k: v for k, v in {"sigma": args.sigma, "beta": args.beta}.items() if v is not None}
    overrides.update(_loss_overrides(args.loss))
    loss_cfg = loss_preset(args.preset, args.ablation, **overrides).scaled_to(det_cfg.feature_map_size)
    train_overrides = {
        k: v
        for k, v in {
            "steps": args.steps,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "window": args.window,
            "checkpoint_every": args.checkpoint_every,
        }.items()
        if v is not None
    }
    train_cfg = train_preset(args.preset, seed=args.seed, device=args.device, num_threads=args.threads,
                             eval_every=args.eval_every, **train_overrides)
    dataset = VideoWindowDataset(clips, window=train_cfg.window, resize=(h, w), with_masks=False)

    torch.manual_seed(args.seed)
    detector = MintDetector(det_cfg)
    eval_fn = None
    if eval_clips:
        eval_fn = lambda det: metrics_summary(evaluate_detector(det, eval_clips))  # noqa: E731
    trainer = Trainer(detector, loss_cfg, train_cfg, dataset, out, eval_fn=eval_fn, progress=progress)
    if trainer.rank == 0:
        print(
            f"training on {len(clips)} clips ({len(dataset)} windows of {train_cfg.window} frames at {h}x{w}), "
            f"{trainer.world} process(es), {trainer.total_steps} steps; held-out clips: {len(eval_clips)}",
            file=sys.stderr,
        )
    result = trainer.fit(resume=args.resume)
    if trainer.rank != 0:
        return 0
    if args.resume:
        print(f"resumed from {result.resumed_from}" if result.resumed_from is not None
              else f"--resume: no checkpoint in {out / 'checkpoints'}, trained from scratch", file=sys.stderr)
    summary = {
        "steps": result.steps,
        "seconds": result.seconds,
        "frames_per_second": result.frames_per_second,
        "final_terms": result.last_terms,
        "evaluations": result.evaluations,
        "detector": str(out / "detector.safetensors"),
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    if args.export:
        import shutil

        from mint_rl.pretrained import PRETRAINED, PRETRAINED_DIR

        target = PRETRAINED_DIR / PRETRAINED[args.export].filename
        shutil.copyfile(out / "detector.safetensors", target)
        print(f"exported {out / 'detector.safetensors'} as pretrained {args.export!r} ({target})", file=sys.stderr)
    if not eval_clips:
        print("no held-out clips (no --eval-data or --held-out clips with instance masks): no DOP/TOP/UAK/RAK",
              file=sys.stderr)
    print(f"steps={result.steps} frames_per_s={result.frames_per_second:.1f} final_loss={result.last_terms.get('total', float('nan')):.4f}")
    if eval_clips and result.evaluations:
        m = result.evaluations[-1][1]
        print(f"DOP={m['dop']:.4f} TOP={m['top']:.4f} UAK={m['uak']:.4f} RAK={m['rak']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
