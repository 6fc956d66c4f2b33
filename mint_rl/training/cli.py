"""Train a keypoint detector (MINT, Transporter, Transporter-modified or Video Structure) on any video data.

The command line of ``scripts/train_keypoints.py`` and ``scripts/train_mint.py`` (the same
program; ``train_mint.py`` is the old name).

Examples:
    # MINT on CLEVRER-like clips generated on the fly (small 160x96 preset), held-out metrics at the end
    python scripts/train_keypoints.py --preset clevrer --data generate:60 --eval-data generate:10:small:100000 --out runs/clevrer-like

    # a baseline on the same clips: --method transporter | transporter-modified | video-structure
    python scripts/train_keypoints.py --method transporter --preset clevrer --data generate:40 --out runs/transporter

    # MAGICAL allocentric 96x96 frames from the scripted experts of all three tasks
    python scripts/train_keypoints.py --preset magical --data magical-experts:8 --out runs/magical

    # your own videos, 2 processes (gloo on CPU, nccl on GPU)
    torchrun --nproc_per_node 2 scripts/train_keypoints.py --preset clevrer --data ~/videos --out runs/mine

    # continue an interrupted run from its last checkpoint
    python scripts/train_keypoints.py --preset magical --data magical-experts:8 --out runs/magical --resume

``--preset`` names the dataset (clevrer or magical): for MINT it picks the detector, loss and
optimiser settings of the authors' run on it; for a baseline the number of keypoints (25) and
nothing else: a baseline's network, loss weights and optimiser are the MINT authors' settings
for that method (``mint_rl.baselines``, ``mint_rl.training.config.METHOD_TRAIN_PRESETS``) and
its frames are resized to its own input size (Transporter 128x128, Video Structure 64x64).
``--config FIELD=VALUE`` changes a baseline's config field, ``--loss FIELD=VALUE`` a MINT loss field.

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
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import torch

from mint_rl.data import VideoWindowDataset, split_by_video
from mint_rl.detectors import KEYPOINT_METHODS
from mint_rl.losses import ABLATIONS, LossConfig, loss_preset
from mint_rl.models import DETECTOR_PRESETS, DetectorConfig, MintDetector
from mint_rl.training.config import method_train_preset
from mint_rl.training.evaluation import evaluate_detector, metrics_summary
from mint_rl.training.sources import SOURCE_KINDS, clips_from_sources
from mint_rl.training.trainer import Trainer

__all__ = ["parse_args", "main", "typed_overrides", "build_detector"]

DEFAULT_DATA = {"clevrer": ["generate:60:small"], "magical": ["magical-experts:8"]}
DEFAULT_EVAL = {"clevrer": ["generate:10:small:100000"], "magical": []}
#: options that only MINT has (their argparse dests and defaults)
MINT_ONLY = {"ablation": "mint", "sigma": None, "beta": None, "loss": [], "status_surrogate": None, "gamma": None}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=KEYPOINT_METHODS, default="mint", help="keypoint method (default mint)")
    p.add_argument("--preset", choices=sorted(DETECTOR_PRESETS), required=True, help="dataset preset")
    p.add_argument("--data", action="append", help=f"training data source, repeatable: {', '.join(SOURCE_KINDS)}")
    p.add_argument("--eval-data", action="append", help="held-out clips with masks for DOP/TOP/UAK/RAK")
    p.add_argument("--held-out", type=float, default=0.0, help="fraction of --data videos held out for evaluation")
    p.add_argument("--no-eval", action="store_true", help="no held-out evaluation (not even the preset's default clips)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default runs/<preset> or runs/<method>-<preset>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/latest")
    p.add_argument("--ablation", choices=sorted(ABLATIONS), default="mint", help="MINT or an Appendix E.1 ablation (MINT only)")
    p.add_argument("--num-keypoints", type=int, default=None, help="K (default: preset, 25)")
    p.add_argument("--image-size", type=str, default=None,
                   help="HxW the detector sees (default: MINT the data's size, Transporter 128x128, Video Structure 64x64)")
    p.add_argument("--sigma", type=float, default=None, help="heatmap sigma at the preset's reference map size (MINT only)")
    p.add_argument("--beta", type=float, default=None, help="overlap allowance (paper: 4; MINT only)")
    p.add_argument("--loss", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a LossConfig field, repeatable (MINT only; e.g. --loss it_keypoint_reduction=mean "
                        "--loss lambda_it=5)")
    p.add_argument("--config", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a baseline config field, repeatable (e.g. --config num_features=16)")
    p.add_argument("--status-surrogate", type=float, default=None,
                   help="straight-through slope for the status gradient (MINT only; default: none, the paper's steep sigmoid)")
    p.add_argument("--gamma", type=float, default=None,
                   help="status threshold on a feature map's peak (MINT only; default: the preset's, 15)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (default: preset epochs)")
    p.add_argument("--economy-ramp", type=str, default=None, metavar="START:END",
                   help="detection first: the redundancy loss weight ramps from 0 at step START to its value at END (MINT only)")
    p.add_argument("--augment-appearance", action="store_true",
                   help="train on windows with permuted colour channels and varied brightness/contrast (one draw "
                        "per window; mint_rl.data.augment), for keypoints that do not depend on object colours")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--window", type=int, default=None, help="frames per sample (default: MINT 3, Transporter 8, Video Structure 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--checkpoint-every", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--export", default=None, metavar="NAME",
                   help="also copy the final detector into the package as pretrained NAME (mint_rl/pretrained/; "
                        "for a baseline only its keypoint path, the file that detection needs)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.method != "mint":
        given = [f"--{k.replace('_', '-')}" for k, default in MINT_ONLY.items() if getattr(args, k) != default]
        if given:
            p.error(f"{', '.join(given)}: MINT options, not for --method {args.method} (use --config FIELD=VALUE)")
    elif args.config:
        p.error("--config: baseline config fields; for MINT use --loss FIELD=VALUE and the MINT options")
    return args


def typed_overrides(cls: type, items: list[str], flag: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``["lambda_it=5", "it_keypoint_reduction=mean"]`` -> overrides typed like ``cls()``'s defaults.

    Raises:
        SystemExit: an item that is not ``FIELD=VALUE`` with a known field, or a value of the wrong type.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    defaults = cls()
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in fields or key in skip:
            names = sorted(n for n in fields if n not in skip)
            raise SystemExit(f"{flag}: expected FIELD=VALUE with FIELD one of {names}, got {item!r}")
        default = getattr(defaults, key)
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                out[key] = text.lower() in ("true", "1")
            elif isinstance(default, str):
                out[key] = text
            elif isinstance(default, tuple):
                out[key] = tuple(int(v) for v in text.lower().replace("x", ",").split(","))
            else:
                out[key] = type(default)(text)
        except ValueError:
            raise SystemExit(f"{flag} {key}: expected a {type(default).__name__}, got {text!r}") from None
    return out


def _loss_overrides(items: list[str]) -> dict[str, object]:
    """``["lambda_it=5", "it_keypoint_reduction=mean"]`` -> typed LossConfig overrides."""
    return typed_overrides(LossConfig, items, "--loss", skip=("reference_map_size",))


def _economy_ramp(text: str) -> tuple[int, int]:
    parts = text.split(":")
    try:
        start, end = (int(v) for v in parts)
    except ValueError:
        raise SystemExit(f"--economy-ramp: expected START:END steps, e.g. 3000:4000, got {text!r}") from None
    if not 0 <= start <= end:
        raise SystemExit(f"--economy-ramp: expected 0 <= START <= END, got {text!r}")
    return start, end


def _image_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--image-size: expected HxW like 96x160, got {text!r}")
    return h, w


def build_detector(args: argparse.Namespace, data_size: tuple[int, int]) -> tuple[torch.nn.Module, Any, tuple[int, int]]:
    """The untrained detector of ``args.method``, its MINT loss config (``None`` for a baseline) and its input size."""
    preset = DETECTOR_PRESETS[args.preset]
    k = args.num_keypoints or preset.num_keypoints
    if args.method == "mint":
        h, w = _image_size(args.image_size) if args.image_size else data_size
        gamma = preset.gamma if args.gamma is None else args.gamma
        det_cfg = DetectorConfig.for_image(h, w, in_channels=3, num_keypoints=k, gamma=gamma,
                                           status_surrogate=args.status_surrogate)
        overrides = {k_: v for k_, v in {"sigma": args.sigma, "beta": args.beta}.items() if v is not None}
        overrides.update(_loss_overrides(args.loss))
        loss_cfg = loss_preset(args.preset, args.ablation, **overrides).scaled_to(det_cfg.feature_map_size)
        return MintDetector(det_cfg), loss_cfg, (h, w)
    from mint_rl.baselines import Transporter, TransporterConfig, VideoStructure, VideoStructureConfig

    cls, cfg_cls = (VideoStructure, VideoStructureConfig) if args.method == "video-structure" else (Transporter, TransporterConfig)
    fields = typed_overrides(cfg_cls, args.config, "--config", skip=("variant",))
    fields.setdefault("num_keypoints", k)
    if args.image_size:
        fields["image_size"] = _image_size(args.image_size)
    if cls is Transporter:
        fields["variant"] = "modified" if args.method == "transporter-modified" else "original"
    try:
        det = cls(cfg_cls(**fields))
    except ValueError as e:
        raise SystemExit(f"--method {args.method}: {e}") from None
    return det, None, tuple(det.config.image_size)


def _check_export(args: argparse.Namespace) -> None:
    from mint_rl.pretrained import BASELINE_PRETRAINED, PRETRAINED

    registry = PRETRAINED if args.method == "mint" else BASELINE_PRETRAINED
    names = sorted(n for n, e in registry.items() if e.method == args.method)
    if args.export not in names:
        raise SystemExit(f"--export: expected one of {names} for --method {args.method}, got {args.export!r}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.export is not None:
        _check_export(args)
    default_out = args.preset if args.method == "mint" else f"{args.method}-{args.preset}"
    out = args.out or Path("runs") / default_out
    progress = not args.no_progress
    clips = clips_from_sources(args.data or DEFAULT_DATA[args.preset], progress=progress)
    eval_specs = args.eval_data if args.eval_data is not None else DEFAULT_EVAL[args.preset]
    if args.no_eval:
        eval_specs = []
    eval_clips = clips_from_sources(eval_specs, progress=progress) if eval_specs else []
    if args.held_out > 0 and not args.no_eval:
        clips, held = split_by_video(clips, args.held_out, seed=args.seed)
        eval_clips += held
    eval_clips = [c for c in eval_clips if c.masks is not None]

    torch.manual_seed(args.seed)
    detector, loss_cfg, (h, w) = build_detector(args, (clips[0].height, clips[0].width))
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
    if args.economy_ramp is not None:
        train_overrides["economy_ramp"] = _economy_ramp(args.economy_ramp)
    if args.augment_appearance:
        from mint_rl.data.augment import AppearanceAugment

        train_overrides["augment"] = AppearanceAugment()
    train_cfg = method_train_preset(args.method, args.preset, seed=args.seed, device=args.device,
                                    num_threads=args.threads, eval_every=args.eval_every, **train_overrides)
    dataset = VideoWindowDataset(clips, window=train_cfg.window, resize=(h, w), with_masks=False)

    eval_fn = None
    if eval_clips:
        eval_fn = lambda det: metrics_summary(evaluate_detector(det, eval_clips))  # noqa: E731
    trainer = Trainer(detector, loss_cfg, train_cfg, dataset, out, eval_fn=eval_fn, progress=progress)
    if trainer.rank == 0:
        print(
            f"training {args.method} on {len(clips)} clips ({len(dataset)} windows of {train_cfg.window} frames at {h}x{w}), "
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
        "method": args.method,
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

        from mint_rl.pretrained import PRETRAINED_DIR, entry

        target = PRETRAINED_DIR / entry(args.export).filename
        if args.method == "mint":
            shutil.copyfile(out / "detector.safetensors", target)
        else:
            # shipped baseline files hold the keypoint path only (forward reads nothing else): the
            # decoder / refiner would only be needed to train on, and would double the file or more
            from mint_rl.checkpoint import load_checkpoint
            from mint_rl.detectors import load_detector

            full = load_checkpoint(out / "detector.safetensors")
            load_detector(out / "detector.safetensors").save_pretrained(
                target, extra={k: v for k, v in full.extra.items() if k != "method"}, keypoints_only=True)
        print(f"exported {out / 'detector.safetensors'} as pretrained {args.export!r} ({target})", file=sys.stderr)
    if not eval_clips:
        print("no held-out clips (no --eval-data or --held-out clips with instance masks): no DOP/TOP/UAK/RAK",
              file=sys.stderr)
    print(f"steps={result.steps} frames_per_s={result.frames_per_second:.1f} final_loss={result.last_terms.get('total', float('nan')):.4f}")
    if eval_clips and result.evaluations:
        m = result.evaluations[-1][1]
        print(f"DOP={m['dop']:.4f} TOP={m['top']:.4f} UAK={m['uak']:.4f} RAK={m['rak']:.4f}")
    return 0
