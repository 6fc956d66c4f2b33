#!/usr/bin/env python
"""Action-conditioned keypoint dynamics on MAGICAL: the interaction network as a forward model.

Rolls out the task's scripted expert with action noise (a uniformly random action with
probability ``--action-noise``; the executed actions are recorded), detects keypoints with the
frozen ``magical`` detector, and trains per seed (a) the forward model conditioned on the next
``H = 3`` executed actions and (b) the same model without actions. Held-out episodes (seeds
``--test-seed ..``, disjoint from the training seeds) are scored with the simulator's robot and
block positions: a keypoint is "on" an entity within its radius (robot 0.2, blocks 0.12 world
units, as the coverage evaluation), for the robot and the blocks separately, against constant
velocity and constant position on the same keypoints. The same two networks are also trained on
the simulator's true positions (one keypoint per entity: an oracle that separates the detector
from the dynamics; ``--no-oracle`` skips them). Besides the paper's per-entity success the tables
give the per-keypoint success (of the keypoints on an entity at ``t``, the fraction forecast onto
it at ``t + h``), which does not saturate when many keypoints ring the robot.

Example:
    python scripts/dynamics_magical.py MoveToCorner --out out/dynamics_magical

Writes ``OUT/results.json``, ``OUT/trajectories.png``, tensorboard scalars in ``OUT/tb`` and the
models and per-seed results (a rerun with the same ``--out`` skips finished seeds). The last line
printed is exactly ``success_1=<f> success_3=<f> no_action_success_1=<f> cv_success_1=<f>``: the
robot's success rates (the action-conditioned model at 1 and 3 steps, the action-free model and
constant velocity at 1 step; means over seeds).
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
    constant_velocity,
    demo_sequences,
    entity_keypoints,
    magical_rollouts,
    make_windows,
)
from mint_rl.dynamics.experiment import baseline_scores, markdown_table, summarise, train_and_score_seeds
from mint_rl.envs.registry import TASKS
from mint_rl.detectors import load_detector

HORIZONS = (1, 2, 3)
NUM_ACTIONS = 18


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=list(TASKS), help="MAGICAL task, e.g. MoveToCorner")
    p.add_argument("--variant", default="TestJitter", help="MAGICAL variant of the rollouts")
    p.add_argument("--detector", default="magical", help="pretrained name or checkpoint path")
    p.add_argument("--train-episodes", type=int, default=20)
    p.add_argument("--test-episodes", type=int, default=10)
    p.add_argument("--train-seed", type=int, default=0)
    p.add_argument("--test-seed", type=int, default=10_000)
    p.add_argument("--policy", choices=["expert", "random"], default="expert",
                   help="rollout policy: the scripted expert with --action-noise, or uniformly random actions")
    p.add_argument("--action-noise", type=float, default=0.3, help="probability of a random action (expert policy)")
    p.add_argument("--demos", type=Path, action="append", default=[],
                   help="extra training episodes from a demo file (scripts/make_demos.py; repeatable)")
    p.add_argument("--no-oracle", action="store_true",
                   help="skip the networks trained on the simulator's true positions (oracle keypoints)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input-frame", choices=["relative", "absolute"], default="relative",
                   help="ForwardModelConfig.input_frame (absolute: the authors' raw coordinates)")
    p.add_argument("--max-step", type=lambda v: None if v == "none" else float(v), default=0.15,
                   help="DynamicsTrainConfig.max_step: targets beyond it per step are detector jumps, left out "
                        "of the loss ('none' keeps all)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out", type=Path, default=None, help="default out/dynamics_magical/TASK")
    p.add_argument("--cache", type=Path, default=None, help="rollout/keypoint cache (default OUT/cache)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    for name in ("train_episodes", "test_episodes", "seeds", "epochs", "batch_size", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected >= 1, got {getattr(args, name)}")
    if not 0.0 <= args.action_noise < 1.0:
        p.error(f"--action-noise: expected a probability in [0, 1), got {args.action_noise}")
    if args.train_seed + args.train_episodes > args.test_seed:
        p.error("--train-seed/--train-episodes overlap the held-out seeds from --test-seed")
    args.out = args.out or Path("out/dynamics_magical") / args.task
    return args


def print_tables(rows: dict[str, dict], groups: list[str]) -> str:
    text = "\n\n".join(f"**{group}**\n\n" + markdown_table(rows, group, HORIZONS) for group in groups)
    print(text)
    return text


def plot_episode(path: Path, task: str, variant: str, seed: int, seq, models: dict, resolution: int) -> Path:
    """Frame t of a held-out episode with the robot's keypoints' actual and forecast futures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mint_rl.coords import normalized_to_pixel
    from mint_rl.envs import expert_episode, make_magical_env
    from mint_rl.envs.experts import expert_for
    from mint_rl.dynamics import RecordingPolicy

    env = make_magical_env(task, variant, view="allo", resolution=resolution)
    try:  # the same episode again (deterministic in its seed), for its frames
        runner = RecordingPolicy(expert_for(task), NUM_ACTIONS, models["noise"], seed)
        frames = np.stack(expert_episode(env, seed, expert=runner).observations)
    finally:
        env.close()
    robot = seq.entities[:, 0]
    ts = np.arange(3, len(seq) - 3)
    t = int(ts[np.argmax(np.linalg.norm(robot[ts + 3] - robot[ts], axis=-1))])  # most robot motion t -> t+3
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.imshow(frames[t])

    def px(xy):
        return normalized_to_pixel(torch.as_tensor(np.asarray(xy), dtype=torch.float64), resolution, resolution).numpy()

    window = torch.from_numpy(seq.frames[t - 3 : t + 1])[None]
    actions = torch.from_numpy(seq.actions[t : t + 3])[None]
    preds = {
        "with actions": (models["action"].predict(window, actions).positions[0].numpy(), "s--", "red"),
        "without actions": (models["free"].predict(window).positions[0].numpy(), "^--", "orange"),
        "constant velocity": (constant_velocity(window, 3)[0].numpy(), "x:", "cyan"),
    }
    radius = seq.entity_radii[0]
    near = np.linalg.norm(px(seq.keypoints[t]) - robot[t], axis=-1) <= radius
    shown = set()
    for k in np.flatnonzero(near & (seq.status[t] > 0.5)):
        actual = px(seq.keypoints[t : t + 4, k])
        ax.plot(actual[:, 0], actual[:, 1], "o-", color="lime", ms=2.5, lw=1.2,
                label=None if "actual" in shown else "actual t..t+3")
        shown.add("actual")
        for name, (pred, style, colour) in preds.items():
            p = px(np.concatenate([seq.keypoints[t : t + 1, k], pred[:, k]]))
            ax.plot(p[:, 0], p[:, 1], style, color=colour, ms=2.5, lw=1.0, label=None if name in shown else name)
            shown.add(name)
    circle = plt.Circle(robot[t + 3], radius, fill=False, color="black", lw=0.8, ls="--")
    ax.add_patch(circle)
    ax.set_title(f"{task}-{variant} seed {seed}, t={t}: robot keypoints\n(dashed circle: robot at t+3)", fontsize=8)
    ax.legend(loc="lower left", fontsize=6, framealpha=0.6)
    ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    progress = not args.no_progress
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.cache or args.out / "cache"
    detector = load_detector(args.detector)
    common = dict(variant=args.variant, policy=args.policy, action_noise=args.action_noise, cache_dir=cache,
                  progress=progress)
    train = magical_rollouts(args.task, args.train_episodes, args.train_seed, detector, **common)
    test = magical_rollouts(args.task, args.test_episodes, args.test_seed, detector, **common)
    for demo in args.demos:
        train += demo_sequences(demo, detector, cache_dir=cache, progress=progress)
    windows = make_windows(train)
    groups = list(test[0].entity_groups)

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(args.out / "tb"))
    train_cfg = DynamicsTrainConfig(epochs=args.epochs, batch_size=args.batch_size, max_step=args.max_step)
    seeds = list(range(args.seeds))
    k = detector.num_keypoints
    extra = {"detector": args.detector, "task": args.task, "variant": args.variant}
    runs = {
        "IN with actions": train_and_score_seeds("in-actions", windows, test,
                                                 ForwardModelConfig(num_keypoints=k, num_actions=NUM_ACTIONS, input_frame=args.input_frame),
                                                 train_cfg, seeds, args.out, writer=writer, progress=progress,
                                                 extra=extra),
        "IN without actions": train_and_score_seeds("in-no-actions", windows, test, ForwardModelConfig(num_keypoints=k, input_frame=args.input_frame),
                                                    train_cfg, seeds, args.out, writer=writer, progress=progress,
                                                    extra=extra),
    }
    rows = {name: summarise([r["scores"] for r in rs]) for name, rs in runs.items()}
    for bname, scores in baseline_scores(test).items():
        rows[bname.replace("_", " ")] = summarise([scores])
    if not args.no_oracle:  # the same networks on the simulator's true positions: dynamics without the detector
        sim_train, sim_test = entity_keypoints(train[: args.train_episodes]), entity_keypoints(test)
        sim_windows = make_windows(sim_train)
        n_ent = sim_train[0].num_keypoints
        for name, file, actions in (("IN with actions on simulator positions (oracle)", "oracle-actions", NUM_ACTIONS),
                                    ("IN without actions on simulator positions (oracle)", "oracle-no-actions", None)):
            runs[name] = train_and_score_seeds(file, sim_windows, sim_test,
                                               ForwardModelConfig(num_keypoints=n_ent, num_actions=actions,
                                                                  input_frame=args.input_frame),
                                               train_cfg, seeds, args.out, writer=writer, progress=progress,
                                               extra={**extra, "detector": "oracle (simulator positions)"})
            rows[name] = summarise([r["scores"] for r in runs[name]])
        rows["constant velocity on simulator positions"] = summarise([baseline_scores(sim_test)["constant_velocity"]])
    writer.flush()
    print(f"\n{args.task}-{args.variant}: {len(train)} training / {len(test)} held-out episodes "
          f"({args.policy} policy, action noise {args.action_noise}); {args.seeds} seeds; success = entities "
          f"predicted / entities (mean ± std over seeds); ceiling = entities with an active keypoint on them at t")
    table = print_tables(rows, groups)

    artefacts = {}
    if args.policy == "expert":
        models = {"action": KeypointForwardModel.load(runs["IN with actions"][0]["model"]),
                  "free": KeypointForwardModel.load(runs["IN without actions"][0]["model"]), "noise": args.action_noise}
        artefacts["figure"] = str(plot_episode(args.out / "trajectories.png", args.task, args.variant, args.test_seed,
                                               test[0], models, test[0].image_size[0]))
    robot = {name: rows[name]["robot"] for name in rows}
    result = {
        "task": args.task, "variant": args.variant, "detector": args.detector, "policy": args.policy,
        "action_noise": args.action_noise, "train_episodes": args.train_episodes, "test_episodes": args.test_episodes,
        "demos": [str(d) for d in args.demos], "windows": len(windows), "seeds": seeds,
        "train_config": train_cfg.to_dict(),
        "table": {name: {grp: {str(h): v for h, v in by_h.items()} for grp, by_h in s.items()} for name, s in rows.items()},
        "per_seed": {name: [{"seed": r["seed"], "train_seconds": r["train_seconds"], "final_loss": r["final_loss"],
                             "scores": {grp: {str(h): v for h, v in by_h.items()} for grp, by_h in r["scores"].items()}}
                            for r in rs] for name, rs in runs.items()},
        "markdown": table, "artefacts": artefacts, "wall_seconds": time.perf_counter() - started,
        "torch_threads": args.threads,
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    writer.close()
    print(f"wrote {args.out / 'results.json'} {' '.join(artefacts.values())} ({result['wall_seconds']:.0f} s)",
          file=sys.stderr)
    a, free, cv = robot["IN with actions"], robot["IN without actions"], robot["constant velocity"]
    print(f"success_1={a[1]['success']['mean']:.4f} success_3={a[3]['success']['mean']:.4f} "
          f"no_action_success_1={free[1]['success']['mean']:.4f} cv_success_1={cv[1]['success']['mean']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
