"""The forecasting score of the paper's Task II, done as true forecasting, and simple baselines.

For a window whose last input frame is ``t`` and a horizon ``h``:

* an object ``o`` visible at ``t + h`` is **predicted** iff some keypoint that is active at
  ``t`` and lies on ``o`` at ``t`` has its predicted position for ``t + h`` on ``o`` at
  ``t + h`` (:func:`forecast_success`);
* the **success rate** is predicted objects / objects visible at ``t + h`` (the paper's
  denominator), per window, then averaged over a sequence's windows, then over sequences;
* the **detector ceiling** is the same ratio for "some active keypoint lies on ``o`` at ``t``":
  no predictor can exceed it, since only such keypoints can predict ``o``;
* the **keypoint success** is the finer, per-keypoint rate: of the (keypoint, object) pairs with
  the keypoint active on the object at ``t`` and the object visible at ``t + h``, the fraction
  whose forecast lies on that object at ``t + h`` (it does not saturate when many keypoints sit
  on one object, as on MAGICAL's robot);
* the **forecast error** is the mean distance in pixels between predicted and detected positions
  at ``t + h`` of the keypoints that lie on the same object at ``t`` and at ``t + h``.

"Lies on" is the mask lookup of :mod:`mint_rl.metrics` (the keypoint's nearest pixel holds the
object's id; :func:`mask_membership`) for clips with masks, and "within the entity's radius"
(:func:`radius_membership`, as :func:`mint_rl.training.evaluation.object_coverage`) for MAGICAL.
Inactive keypoints never count: a keypoint inactive at ``t`` predicts nothing, whatever its
stale coordinates; a predicted position outside the image lies on no object.

Unlike the authors' evaluator (which compares the output at frame ``s`` with the keypoints of
frame ``s - h - 1``, inside the input window), every target frame here lies after the window.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from mint_rl.coords import normalized_to_pixel
from mint_rl.dynamics.data import ForecastWindows, KeypointSequence, make_windows
from mint_rl.metrics import keypoint_labels, object_areas, object_hits

__all__ = [
    "constant_position",
    "constant_velocity",
    "inside_image",
    "mask_membership",
    "radius_membership",
    "forecast_success",
    "window_ratio",
    "score_sequences",
    "keypoint_following",
    "object_motion_forecast",
]

Predictor = Callable[[ForecastWindows], Tensor]
"""Windows -> predicted ``(N, H, K, 2)`` normalised positions for frames ``t + 1 .. t + H``."""


# ----------------------------------------------------------------------------- baselines


def constant_position(history: Tensor, horizon: int) -> Tensor:
    """Every keypoint stays where it was last seen: ``(N, T, K, 3)`` -> ``(N, H, K, 2)``.

    Example:
        >>> constant_position(torch.tensor([[[[0.1, 0.2, 1.0]], [[0.3, 0.4, 1.0]]]]), 2)[0, :, 0].tolist()
        [[0.30000001192092896, 0.4000000059604645], [0.30000001192092896, 0.4000000059604645]]
    """
    return history[:, -1:, :, :2].expand(-1, horizon, -1, -1).clone()


def constant_velocity(history: Tensor, horizon: int) -> Tensor:
    """Constant velocity from the last two frames: ``x_{t+h} = x_t + h (x_t - x_{t-1})``.

    The velocity is used only where the keypoint is active in both frames (an inactive
    keypoint's coordinates are stale); elsewhere the keypoint stays put (constant position).

    Example:
        >>> hist = torch.tensor([[[[0.0, 0.0, 1.0]], [[0.1, -0.2, 1.0]]]])  # (N=1, T=2, K=1, 3)
        >>> [[round(v, 3) for v in p] for p in constant_velocity(hist, 3)[0, :, 0].tolist()]
        [[0.2, -0.4], [0.3, -0.6], [0.4, -0.8]]
    """
    if history.shape[1] < 2:
        return constant_position(history, horizon)
    last, prev = history[:, -1], history[:, -2]
    both = ((last[..., 2] > 0.5) & (prev[..., 2] > 0.5)).unsqueeze(-1)
    velocity = torch.where(both, last[..., :2] - prev[..., :2], torch.zeros_like(last[..., :2]))
    steps = torch.arange(1, horizon + 1, dtype=history.dtype, device=history.device).view(1, -1, 1, 1)
    return last[:, None, :, :2] + steps * velocity[:, None]


# ----------------------------------------------------------------------------- "lies on"


def inside_image(xy: Tensor, height: int, width: int) -> Tensor:
    """``(..., K)`` bool: the nearest pixel of normalised ``(..., K, 2)`` positions is in the image.

    Example:
        >>> inside_image(torch.tensor([[0.0, 0.0], [1.01, 0.0], [1.3, 0.0], [float("nan"), 0.0]]), 5, 5).tolist()
        [True, True, False, False]
    """
    uv = torch.round(normalized_to_pixel(xy.double(), height, width))
    finite = torch.isfinite(uv).all(dim=-1)
    uv = torch.nan_to_num(uv, nan=-1.0)
    return finite & (uv[..., 0] >= 0) & (uv[..., 0] < width) & (uv[..., 1] >= 0) & (uv[..., 1] < height)


def mask_membership(xy: Tensor, active: Tensor, masks: Tensor, ids: Tensor) -> Tensor:
    """``(N, K, O)`` bool: active keypoint ``k`` of window ``n`` lies on object ``ids[o]`` of ``masks[n]``.

    Args:
        xy: ``(N, K, 2)`` normalised positions; active: ``(N, K)`` bool.
        masks: ``(N, H, W)`` instance ids (one frame per window); ids: ``(O,)`` object ids.

    Positions outside the image lie on nothing (see :func:`mint_rl.metrics.keypoint_labels`
    for the nearest-pixel lookup).

    Example:
        >>> masks = torch.tensor([[[0, 5], [0, 0]]])
        >>> mask_membership(torch.tensor([[[1.0, -1.0], [3.0, 0.0]]]), torch.tensor([[True, True]]),
        ...                 masks, torch.tensor([5]))[0, :, 0].tolist()
        [True, False]
    """
    _, h, w = masks.shape
    counted = active & inside_image(xy, h, w)
    labels = keypoint_labels(xy, counted, masks.long())
    return object_hits(labels, ids.long())


def radius_membership(xy: Tensor, active: Tensor, centres: Tensor, radii: Tensor, height: int, width: int) -> Tensor:
    """``(N, K, O)`` bool: active keypoint ``k`` lies within ``radii[o]`` pixels of ``centres[n, o]``.

    Args:
        xy: ``(N, K, 2)`` normalised; active: ``(N, K)`` bool; centres: ``(N, O, 2)`` pixels;
        radii: ``(O,)`` pixels; height, width: the image size the keypoints are normalised to.

    Example:
        >>> radius_membership(torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]), torch.tensor([[True, True]]),
        ...                   torch.tensor([[[4.0, 4.0]]]), torch.tensor([1.0]), 9, 9)[0, :, 0].tolist()
        [True, False]
    """
    px = normalized_to_pixel(xy.double(), height, width)
    d = torch.linalg.norm(px[:, :, None, :] - centres.double()[:, None, :, :], dim=-1)  # (N, K, O)
    return (d <= radii.double().view(1, 1, -1)) & active[:, :, None]


# ----------------------------------------------------------------------------- the score


def forecast_success(on_now: Tensor, on_predicted: Tensor, visible: Tensor) -> tuple[Tensor, Tensor]:
    """Which objects are predicted, and which could be, in each window (paper's Task II score).

    ``predicted[n, o] = visible[n, o] and exists k: on_now[n, k, o] and on_predicted[n, k, o]``
    (a keypoint that lay on ``o`` at ``t`` is forecast onto ``o`` at ``t + h``);
    ``ceiling[n, o] = visible[n, o] and exists k: on_now[n, k, o]`` (the detector ceiling).

    Args:
        on_now: ``(N, K, O)`` keypoint ``k`` is active and lies on ``o`` at ``t``.
        on_predicted: ``(N, K, O)`` the forecast of keypoint ``k`` for ``t + h`` lies on ``o`` at ``t + h``.
        visible: ``(N, O)`` object ``o`` is visible at ``t + h``.

    Returns:
        ``(predicted, ceiling)``, both ``(N, O)`` bool; ``predicted`` implies ``ceiling``.

    Example:
        >>> on_now = torch.tensor([[[True, False], [False, True]]])        # k0 on o0, k1 on o1 at t
        >>> on_pred = torch.tensor([[[True, False], [True, False]]])       # both forecast onto o0
        >>> p, c = forecast_success(on_now, on_pred, torch.tensor([[True, True]]))
        >>> p.tolist(), c.tolist()
        ([[True, False]], [[True, True]])
    """
    if on_now.shape != on_predicted.shape or on_now.dim() != 3 or visible.shape != (on_now.shape[0], on_now.shape[2]):
        raise ValueError(f"forecast_success: expected on_now and on_predicted (N, K, O) and visible (N, O), got "
                         f"{tuple(on_now.shape)}, {tuple(on_predicted.shape)}, {tuple(visible.shape)}")
    predicted = (on_now & on_predicted).any(dim=1) & visible
    ceiling = on_now.any(dim=1) & visible
    return predicted, ceiling


def window_ratio(hits: Tensor, visible: Tensor) -> Tensor:
    """Per window ``hits / visible`` counts, ``(N,)``; NaN for a window with no visible object.

    Example:
        >>> window_ratio(torch.tensor([[True, False], [False, False]]), torch.tensor([[True, True], [False, False]])).tolist()
        [0.5, nan]
    """
    n_vis = visible.sum(dim=1).double()
    ratio = hits.sum(dim=1).double() / n_vis.clamp(min=1)
    return torch.where(n_vis > 0, ratio, torch.full_like(ratio, float("nan")))


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else float("nan")


def _membership_fn(seq: KeypointSequence):
    """``(xy (N, K, 2), active (N, K), frame index (N,)) -> (N, K, O)`` for the sequence's ground truth."""
    h, w = seq.image_size
    if seq.masks is not None:
        masks = torch.from_numpy(np.asarray(seq.masks))
        ids = torch.unique(masks)
        ids = ids[ids > 0].long()

        def on(xy: Tensor, active: Tensor, frame: Tensor) -> Tensor:
            return mask_membership(xy, active, masks[frame], ids)

        def visible(frame: Tensor) -> Tensor:
            return object_areas(masks[frame], ids) > 0

        return on, visible, {"objects": list(range(len(ids)))}
    if seq.entities is not None:
        centres = torch.from_numpy(seq.entities)
        radii = torch.from_numpy(np.asarray(seq.entity_radii))
        groups = seq.entity_groups or {"objects": list(range(centres.shape[1]))}

        def on(xy: Tensor, active: Tensor, frame: Tensor) -> Tensor:
            return radius_membership(xy, active, centres[frame], radii, h, w)

        def visible(frame: Tensor) -> Tensor:
            return torch.ones(len(frame), centres.shape[1], dtype=torch.bool)

        return on, visible, groups
    raise ValueError(f"sequence {seq.name!r} has neither masks nor entity positions: it cannot be scored")


def score_sequences(
    predictor: Predictor,
    sequences: Sequence[KeypointSequence],
    history: int = 4,
    horizon: int = 3,
    with_sequence: bool = False,
) -> dict[str, dict[int, dict[str, float]]]:
    """Success rate, detector ceiling and forecast error of ``predictor`` on held-out sequences.

    Args:
        predictor: windows -> ``(N, H, K, 2)`` predicted positions (a trained model's
            ``lambda w: model.predict(w.inputs, w.actions).positions``, or a baseline).
        sequences: keypoint sequences with masks or entity positions.
        history, horizon: the window shape (the model's).
        with_sequence: call ``predictor(windows, sequence)`` (for references that read the
            sequence's ground truth, such as :func:`object_motion_forecast`).

    Returns:
        ``{group: {h: {"success", "ceiling", "keypoint_success", "error_px", "windows", "sequences"}}}`` for
        ``h = 1 .. horizon``; the groups are ``"objects"`` for masks, or the sequences'
        entity groups (``"robot"``, ``"blocks"``). Rates are means over sequences of the
        means over windows of per-window ratios; the keypoint success and the error are means
        over sequences of the rate / mean over the sequence's pairs / staying keypoints.
    """
    if len(sequences) == 0:
        raise ValueError("score_sequences: expected at least one sequence, got none")
    per: dict[str, dict[int, dict[str, list[float]]]] = {}
    n_windows = 0
    for seq in sequences:
        on, visible, groups = _membership_fn(seq)
        windows = make_windows([seq], history, horizon)
        pred = (predictor(windows, seq) if with_sequence else predictor(windows)).detach().cpu().double()
        if pred.shape != (len(windows), horizon, seq.num_keypoints, 2):
            raise ValueError(f"predictor: expected ({len(windows)}, {horizon}, {seq.num_keypoints}, 2) positions, "
                             f"got {tuple(pred.shape)}")
        n_windows += len(windows)
        kp = torch.from_numpy(seq.keypoints).double()
        active = torch.from_numpy(seq.status) > 0.5
        t = windows.t
        on_now = on(kp[t], active[t], t)
        h_img, w_img = seq.image_size
        for h in range(1, horizon + 1):
            th = t + h
            on_pred = on(pred[:, h - 1], torch.ones_like(active[th]), th)
            on_true = on(kp[th], active[th], th)
            vis = visible(th)
            predicted, ceiling = forecast_success(on_now, on_pred, vis)
            err = torch.linalg.norm(normalized_to_pixel(pred[:, h - 1], h_img, w_img)
                                    - normalized_to_pixel(kp[th], h_img, w_img), dim=-1)  # (N, K)
            for group, cols in groups.items():
                c = torch.as_tensor(cols, dtype=torch.long)
                stay = (on_now[:, :, c] & on_true[:, :, c]).any(dim=-1)
                acc = per.setdefault(group, {}).setdefault(
                    h, {"success": [], "ceiling": [], "keypoint_success": [], "error_px": []})
                acc["success"].append(_nanmean(window_ratio(predicted[:, c], vis[:, c]).tolist()))
                pairs = on_now[:, :, c] & vis[:, None, c]
                acc["keypoint_success"].append(float((pairs & on_pred[:, :, c]).sum() / pairs.sum())
                                               if bool(pairs.any()) else float("nan"))
                acc["ceiling"].append(_nanmean(window_ratio(ceiling[:, c], vis[:, c]).tolist()))
                acc["error_px"].append(float(err[stay].mean()) if bool(stay.any()) else float("nan"))
    return {
        group: {
            h: {**{k: _nanmean(v) for k, v in acc.items()}, "windows": n_windows, "sequences": len(sequences)}
            for h, acc in by_h.items()
        }
        for group, by_h in per.items()
    }



def _mask_centroids(masks: Tensor) -> tuple[Tensor, Tensor]:
    """Object ids ``(O,)`` and their mask centroids ``(T, O, 2)`` in pixels (NaN where absent)."""
    t, h, w = masks.shape
    ids = torch.unique(masks)
    ids = ids[ids > 0]
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")
    centroid = torch.full((t, len(ids), 2), float("nan"), dtype=torch.float64)
    for j, o in enumerate(ids.tolist()):
        m = (masks == o).double()
        n = m.sum(dim=(1, 2))
        centroid[:, j, 0] = torch.where(n > 0, (m * cols).sum(dim=(1, 2)) / n.clamp(min=1), torch.nan)
        centroid[:, j, 1] = torch.where(n > 0, (m * rows).sum(dim=(1, 2)) / n.clamp(min=1), torch.nan)
    return ids, centroid


def object_motion_forecast(windows: ForecastWindows, sequence: KeypointSequence) -> Tensor:
    """A reference, not a predictor: each keypoint on an object at ``t`` moved by that object's
    true displacement (mask centroid, ``t -> t + h``); other keypoints stay. ``(N, H, K, 2)``.

    It reads the future masks, so it shows what forecasting the *objects* perfectly would score
    with the detector's keypoints: the room left between a keypoint forecaster and the ceiling.
    Use with ``score_sequences(..., with_sequence=True)``.

    Example:
        >>> masks = np.zeros((6, 4, 8), np.int32)
        >>> for t in range(6): masks[t, 1:3, t:t + 2] = 1       # a 2x2 object moving right 1 px/frame
        >>> from mint_rl.coords import pixel_to_normalized
        >>> kp = pixel_to_normalized(torch.tensor([[[float(t), 1.0]] for t in range(6)]), 4, 8)
        >>> seq = KeypointSequence(kp.numpy(), np.ones((6, 1)), (4, 8), masks=masks)
        >>> w = make_windows([seq], history=2, horizon=2)
        >>> px = normalized_to_pixel(object_motion_forecast(w, seq)[0, :, 0].double(), 4, 8)
        >>> [[round(v, 3) for v in p] for p in px.tolist()]
        [[2.0, 1.0], [3.0, 1.0]]
    """
    if sequence.masks is None:
        raise ValueError(f"object_motion_forecast: sequence {sequence.name!r} has no masks")
    h_img, w_img = sequence.image_size
    masks = torch.from_numpy(np.asarray(sequence.masks)).long()
    ids, centroid = _mask_centroids(masks)
    t = windows.t
    kp = torch.from_numpy(sequence.keypoints).double()[t]  # (N, K, 2)
    labels = keypoint_labels(kp, torch.from_numpy(sequence.status)[t] > 0.5, masks[t])  # (N, K)
    slot = torch.searchsorted(ids, labels.clamp(min=0))
    on = (labels > 0) & (slot < len(ids))
    slot = slot.clamp(max=max(len(ids) - 1, 0))
    horizon = windows.targets.shape[1]
    out = kp[:, None].repeat(1, horizon, 1, 1)
    if len(ids) == 0:
        return out.float()
    scale = torch.tensor([2.0 / max(w_img - 1, 1), 2.0 / max(h_img - 1, 1)], dtype=torch.float64)
    for h in range(1, horizon + 1):
        c0 = centroid[t].gather(1, slot[..., None].expand(-1, -1, 2))
        c1 = centroid[t + h].gather(1, slot[..., None].expand(-1, -1, 2))
        shift = torch.nan_to_num((c1 - c0) * scale, nan=0.0)
        out[:, h - 1] = kp + torch.where(on[..., None], shift, torch.zeros_like(shift))
    return out.float()


def keypoint_following(sequences: Sequence[KeypointSequence], moving_px: float = 0.5) -> dict[str, float]:
    """How a detector's keypoints follow objects from frame to frame (clips with masks).

    Over all pairs of consecutive frames ``(t, t + 1)`` and keypoints active on an object at
    ``t`` (mask lookup):

    * ``stay``: the fraction still active on the same object at ``t + 1``;
    * ``kp_step_px`` / ``object_step_px``: for those that stay on an object whose mask centroid
      moves more than ``moving_px``, the mean step of the keypoint and of the centroid (pixels);
      a keypoint that followed its object would move as far as the object;
    * ``kp_step_median_px``: median step of all staying keypoints (0 for keypoints that snap to
      a grid of feature-map cells and stay put).

    These say what limits forecasting a detector's keypoints: dynamics can only forecast motion
    that the keypoints show.

    Example:
        >>> masks = np.zeros((2, 4, 8), np.int32); masks[0, :, 0:3] = 1; masks[1, :, 2:5] = 1
        >>> kp = torch.tensor([[[1.0, 1.0]], [[2.0, 1.0]]])  # pixels (1, 1) -> (2, 1)
        >>> from mint_rl.coords import pixel_to_normalized
        >>> seq = KeypointSequence(pixel_to_normalized(kp, 4, 8).numpy(), np.ones((2, 1)), (4, 8), masks=masks)
        >>> {k: round(v, 3) for k, v in keypoint_following([seq]).items()}
        {'stay': 1.0, 'kp_step_px': 1.0, 'object_step_px': 2.0, 'kp_step_median_px': 1.0, 'pairs': 1.0}
    """
    stays, kp_steps, obj_steps, all_steps = [], [], [], []
    for seq in sequences:
        if seq.masks is None:
            continue
        h, w = seq.image_size
        masks = torch.from_numpy(np.asarray(seq.masks)).long()
        ids, centroid = _mask_centroids(masks)
        kp = torch.from_numpy(seq.keypoints).double()
        labels = keypoint_labels(kp, torch.from_numpy(seq.status) > 0.5, masks)  # (T, K)
        px = normalized_to_pixel(kp, h, w)
        on, nxt = labels[:-1], labels[1:]
        valid = on > 0
        stay = valid & (nxt == on)
        stays.append(stay[valid].double())
        step = torch.linalg.norm(px[1:] - px[:-1], dim=-1)
        obj = torch.searchsorted(ids, on.clamp(min=0)).clamp(max=max(len(ids) - 1, 0))
        if len(ids) == 0:
            continue
        c0 = centroid[:-1].gather(1, obj[..., None].expand(-1, -1, 2))
        c1 = centroid[1:].gather(1, obj[..., None].expand(-1, -1, 2))
        obj_step = torch.linalg.norm(c1 - c0, dim=-1)
        all_steps.append(step[stay])
        moving = stay & (obj_step > moving_px)
        kp_steps.append(step[moving])
        obj_steps.append(obj_step[moving])
    if not stays:
        raise ValueError("keypoint_following: expected sequences with masks, got none")
    cat = torch.cat
    stay_all, steps = cat(stays), cat(all_steps)
    return {
        "stay": float(stay_all.mean()) if stay_all.numel() else float("nan"),
        "kp_step_px": float(cat(kp_steps).mean()) if cat(kp_steps).numel() else float("nan"),
        "object_step_px": float(cat(obj_steps).mean()) if cat(obj_steps).numel() else float("nan"),
        "kp_step_median_px": float(steps.median()) if steps.numel() else float("nan"),
        "pairs": float(stay_all.numel()),
    }
