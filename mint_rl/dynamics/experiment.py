"""The pieces the dynamics scripts share: seeds with resume, baselines, summaries, overlays.

``scripts/dynamics_clevrer.py`` and ``scripts/dynamics_magical.py`` are thin command lines over
these functions: :func:`train_and_score_seeds` trains one forward model per seed (or reloads it
and its scores from a previous, interrupted run), :func:`baseline_scores` scores the
constant-position and constant-velocity baselines on the same keypoints, :func:`summarise`
turns per-seed scores into mean and standard deviation over seeds, and :func:`forecast_overlay`
draws forecasts over video frames.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from mint_rl.dynamics.data import ForecastWindows, KeypointSequence
from mint_rl.dynamics.model import ForwardModelConfig, KeypointForwardModel
from mint_rl.dynamics.scoring import constant_position, constant_velocity, score_sequences
from mint_rl.dynamics.training import DynamicsTrainConfig, train_forward_model

__all__ = ["train_and_score_seeds", "baseline_scores", "summarise", "markdown_table", "model_predictor", "forecast_overlay"]

Scores = dict[str, dict[int, dict[str, float]]]


def model_predictor(model: KeypointForwardModel):
    """``windows -> (N, H, K, 2)`` forecasts of ``model`` (with the windows' actions if it takes them)."""
    def predict(windows: ForecastWindows) -> torch.Tensor:
        return model.predict(windows.inputs, windows.actions if model.action_conditioned else None).positions
    return predict


def _json_scores(scores: Scores) -> dict:
    return {g: {str(h): v for h, v in by_h.items()} for g, by_h in scores.items()}


def _scores_from_json(data: dict) -> Scores:
    return {g: {int(h): v for h, v in by_h.items()} for g, by_h in data.items()}


def _run_key(train_windows: ForecastWindows, test_sequences: Sequence[KeypointSequence],
             model_config: ForwardModelConfig, train_config: DynamicsTrainConfig) -> str:
    """A digest of what a seed's result depends on (besides the seed)."""
    h = hashlib.sha256(json.dumps([model_config.to_dict(), {**train_config.to_dict(), "seed": None}],
                                  sort_keys=True).encode())
    for t in (train_windows.inputs, train_windows.targets, train_windows.actions):
        if t is not None:
            h.update(t.numpy().tobytes())
    for seq in test_sequences:
        h.update(seq.name.encode())
        h.update(seq.keypoints.tobytes())
    return h.hexdigest()[:16]


def train_and_score_seeds(
    name: str,
    train_windows: ForecastWindows,
    test_sequences: Sequence[KeypointSequence],
    model_config: ForwardModelConfig,
    train_config: DynamicsTrainConfig,
    seeds: Sequence[int],
    out_dir: str | Path,
    *,
    writer: Any = None,
    progress: bool = True,
    extra: dict | None = None,
) -> list[dict]:
    """Train and score one model per seed; resumable.

    Seed ``s`` writes ``out_dir/models/<name>-seed<s>.safetensors`` and then
    ``out_dir/runs/<name>-seed<s>.json`` (its scores, training time and losses, and a key of the
    configs, the training windows and the held-out sequences). A seed whose JSON exists with the
    same key is not trained again (its file is read back), so an interrupted run continues where
    it stopped; a different key (other data or settings) trains it again.

    Returns:
        One dict per seed: ``{"seed", "scores", "train_seconds", "final_loss", "model"}``.
    """
    out = Path(out_dir)
    key = _run_key(train_windows, test_sequences, model_config, train_config)
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    results = []
    for seed in seeds:
        run_file = out / "runs" / f"{name}-seed{seed}.json"
        model_file = out / "models" / f"{name}-seed{seed}.safetensors"
        if run_file.is_file() and model_file.is_file():
            data = json.loads(run_file.read_text())
            if data.get("key") == key:
                data["scores"] = _scores_from_json(data["scores"])
                results.append(data)
                continue
        torch.manual_seed(seed)
        model = KeypointForwardModel(model_config)
        start = time.perf_counter()
        history = train_forward_model(model, train_windows, replace(train_config, seed=seed), writer=writer,
                                      tag=f"{name}/seed{seed}", progress=progress)
        seconds = time.perf_counter() - start
        model.save(model_file, extra={"name": name, "seed": seed, "train": train_config.to_dict(), **(extra or {})})
        scores = score_sequences(model_predictor(model), test_sequences, model_config.history, model_config.horizon)
        data = {"seed": seed, "key": key, "scores": scores, "train_seconds": seconds, "final_loss": history["loss"][-1],
                "losses": history["loss"], "model": str(model_file)}
        run_file.write_text(json.dumps({**data, "scores": _json_scores(scores)}, indent=1))
        if writer is not None:
            for group, by_h in scores.items():
                for h, metrics in by_h.items():
                    writer.add_scalar(f"{name}/{group}/success_h{h}", metrics["success"], seed)
                    writer.add_scalar(f"{name}/{group}/error_px_h{h}", metrics["error_px"], seed)
        results.append(data)
    return results


def baseline_scores(test_sequences: Sequence[KeypointSequence], history: int = 4, horizon: int = 3) -> dict[str, Scores]:
    """``{"constant_position": scores, "constant_velocity": scores}`` on the same windows."""
    return {
        "constant_position": score_sequences(lambda w: constant_position(w.inputs, horizon), test_sequences,
                                             history, horizon),
        "constant_velocity": score_sequences(lambda w: constant_velocity(w.inputs, horizon), test_sequences,
                                             history, horizon),
    }


def summarise(per_seed: Sequence[Scores]) -> dict[str, dict[int, dict[str, dict[str, float]]]]:
    """Mean and population std over seeds: ``{group: {h: {metric: {"mean", "std", "n"}}}}``.

    Example:
        >>> a = {"robot": {1: {"success": 0.5, "ceiling": 1.0, "error_px": 2.0, "windows": 9, "sequences": 1}}}
        >>> b = {"robot": {1: {"success": 0.7, "ceiling": 1.0, "error_px": 4.0, "windows": 9, "sequences": 1}}}
        >>> s = summarise([a, b])["robot"][1]["success"]
        >>> round(s["mean"], 6), round(s["std"], 6), s["n"]
        (0.6, 0.1, 2)
    """
    if len(per_seed) == 0:
        raise ValueError("summarise: expected scores of at least one seed, got none")
    out: dict[str, dict[int, dict[str, dict[str, float]]]] = {}
    for group, by_h in per_seed[0].items():
        for h, metrics in by_h.items():
            for metric in ("success", "ceiling", "keypoint_success", "error_px"):
                if metric not in metrics:
                    continue
                vals = np.array([s[group][h][metric] for s in per_seed], np.float64)
                vals = vals[~np.isnan(vals)]
                out.setdefault(group, {}).setdefault(h, {})[metric] = {
                    "mean": float(vals.mean()) if vals.size else float("nan"),
                    "std": float(vals.std()) if vals.size else float("nan"),
                    "n": int(vals.size),
                }
    return out


def markdown_table(rows: dict[str, dict], group: str, horizons: Sequence[int] = (1, 2, 3)) -> str:
    """A markdown table of ``{method: summarise(...)}`` for one group (mean ± std over seeds).

    Columns: success, keypoint success and forecast error (px) per horizon, then the detector
    ceiling (the same for every method on the same keypoints).

    Example:
        >>> one = {"objects": {1: {"success": 0.5, "ceiling": 0.9, "keypoint_success": 0.4, "error_px": 1.25}}}
        >>> print(markdown_table({"cv": summarise([one])}, "objects", [1]))
        | method | success h=1 | keypoint success h=1 | error px h=1 | ceiling h=1 |
        |---|---|---|---|---|
        | cv | 0.500 ± 0.000 | 0.400 ± 0.000 | 1.25 ± 0.00 | 0.900 |
    """
    head = (["method"] + [f"success h={h}" for h in horizons] + [f"keypoint success h={h}" for h in horizons]
            + [f"error px h={h}" for h in horizons] + [f"ceiling h={h}" for h in horizons])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, summary in rows.items():
        g = summary[group]
        cells = ([f"{g[h]['success']['mean']:.3f} ± {g[h]['success']['std']:.3f}" for h in horizons]
                 + [f"{g[h]['keypoint_success']['mean']:.3f} ± {g[h]['keypoint_success']['std']:.3f}" for h in horizons]
                 + [f"{g[h]['error_px']['mean']:.2f} ± {g[h]['error_px']['std']:.2f}" for h in horizons]
                 + [f"{g[h]['ceiling']['mean']:.3f}" for h in horizons])
        lines.append("| " + " | ".join([name] + cells) + " |")
    return "\n".join(lines)


def forecast_overlay(
    frames: np.ndarray,
    sequence: KeypointSequence,
    forecasts: np.ndarray,
    horizon_shown: int = 1,
    masks: np.ndarray | None = None,
) -> np.ndarray:
    """Frames with the detected keypoints (discs) and the forecasts made ``h`` frames earlier (rings).

    Args:
        frames: ``(T, H, W, 3)`` uint8 video of ``sequence``.
        forecasts: ``(T, H_max, K, 2)``: ``forecasts[t, h - 1]`` is the position for frame
            ``t + h`` forecast from the window ending at ``t`` (NaN where there is none).
        horizon_shown: which ``h`` to draw on frame ``s`` (the forecast made at ``s - h``).
        masks: optional ``(T, H, W)`` instance ids whose outlines are drawn.

    Returns:
        ``(T, H, W, 3)`` uint8: on frame ``s``, ring ``k`` (keypoint ``k``'s colour) is where the
        model said at ``s - h`` keypoint ``k`` would be; disc ``k`` is where it was detected.
        Only keypoints active at ``s - h`` get a ring.
    """
    from mint_rl.coords import normalized_to_pixel
    from mint_rl.viz import draw_disc, draw_keypoints, draw_mask_outlines, palette

    t_len, h_img, w_img = frames.shape[:3]
    colours = palette(sequence.num_keypoints)
    out = []
    for s in range(t_len):
        img = frames[s] if masks is None else draw_mask_outlines(frames[s], masks[s])
        img = draw_keypoints(img, sequence.keypoints[s], sequence.status[s], radius=1.5)
        src = s - horizon_shown
        if src >= 0 and not np.isnan(forecasts[src, horizon_shown - 1]).any():
            px = normalized_to_pixel(torch.from_numpy(forecasts[src, horizon_shown - 1]).double(), h_img, w_img).numpy()
            for k, (u, v) in enumerate(px):
                if sequence.status[src, k] > 0.5:
                    draw_disc(img, u, v, 3.0, colours[k], 1.0, ring=True)
        out.append(img)
    return np.stack(out)
