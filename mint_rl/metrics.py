"""Keypoint detection and tracking metrics of the MINT paper (Appendix D): DOP, TOP, UAK, RAK.

Inputs for one clip:

- ``keypoints``: ``(T, K, 2)`` ``(x, y)``, **normalised** to ``[-1, 1]`` (the project convention,
  :mod:`mint_rl.coords`) unless ``pixel=True`` (then column, row in pixels);
- ``status``: ``(T, K)`` bool, or floats where a keypoint is active iff ``status > 0.5``;
- ``masks``: ``(T, H, W)`` integer instance ids, 0 = background; the same id is the same object
  in every frame.

A keypoint lies on an object iff it is **active** and the mask holds that object's id at its
nearest pixel (coordinates rounded). Inactive keypoints count nowhere (not detected, not
unsuccessful, not redundant). An object is *visible* in a frame iff its mask has at least one
pixel there; the ground-truth object set of a frame (``N_GT``, ``O``) is its visible objects.

Conventions where Appendix D leaves a choice (per clip; the dataset value is the mean over
clips, :func:`aggregate_metrics`):

- DOP: mean over frames with at least one visible object.
- TOP: frame 0 has no previous frame, so the mean runs over frames ``t >= 1`` with at least one
  visible object; an object counts as tracked iff one and the same keypoint lies on it at
  ``t - 1`` and at ``t``.
- UAK: mean over all frames of the number of active keypoints on no object.
- RAK: per frame the mean of ``|A_obj - A_k n_obj| / A_obj`` over the visible objects, then the
  mean over frames with at least one visible object. Objects absent from a frame are left out
  of that frame.

Keypoint economy (the paper's third contribution: active keypoints that follow the entities;
not in Appendix D, defined here). An object is *present* in a frame iff its mask covers at least
``presence_area`` pixels (default ``0.1 A_k``, so that a sliver at the border does not count yet):

- active per object: per frame ``n_active / n_present``, mean over frames with an object present.
- come-and-go response: the present count is cut into *stable runs* (at least ``min_run``
  frames with the same count; shorter runs, e.g. an occlusion of two frames, are ignored). Each
  pair of consecutive stable runs with different counts is an *event*; its response is
  ``(mean active over the first window frames of the new run - mean active over the last window
  frames of the old run) / (change in present objects)``: keypoints gained per object entering
  (or lost per object leaving). An event *follows* the objects iff its response is at least 0.5
  keypoints per object; a clip follows them iff all of its events do.

Example:
    >>> import torch
    >>> masks = torch.zeros(2, 5, 5, dtype=torch.long); masks[:, 1:3, 1:3] = 1
    >>> kp = torch.tensor([[[1.0, 1.0], [4.0, 4.0]]] * 2)  # pixels: one on the object, one off
    >>> m = clip_metrics(kp, torch.ones(2, 2, dtype=torch.bool), masks, pixel=True, keypoint_area=4.0)
    >>> m.dop, m.top, m.uak, m.rak
    (1.0, 1.0, 1.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from mint_rl.coords import normalized_to_pixel

#: Keypoint area the authors used on CLEVRER (pixels, at 480x320).
CLEVRER_KEYPOINT_AREA: float = 1796.8
CLEVRER_IMAGE_AREA: int = 480 * 320


def default_keypoint_area(height: int, width: int) -> float:
    """Keypoint area ``A_k`` for an ``height x width`` image: 1796.8 px scaled by the image area.

    The authors used ``A_k = 1796.8`` pixels at CLEVRER's 480x320; other sizes scale it by
    ``(H * W) / (480 * 320)`` so that ``A_k`` stays the same fraction of the image.

    Example:
        >>> default_keypoint_area(320, 480)
        1796.8
        >>> round(default_keypoint_area(96, 160), 3)
        179.68
    """
    return CLEVRER_KEYPOINT_AREA * (height * width) / CLEVRER_IMAGE_AREA


@dataclass
class ClipMetrics:
    """Metrics of one clip, with their per-frame values (NaN where a frame does not count)."""

    dop: float
    top: float
    uak: float
    rak: float
    dop_per_frame: np.ndarray
    top_per_frame: np.ndarray
    uak_per_frame: np.ndarray
    rak_per_frame: np.ndarray
    n_active: np.ndarray
    n_visible: np.ndarray
    keypoint_area: float = field(default=0.0)
    n_present: np.ndarray | None = None
    events: list["CountEvent"] = field(default_factory=list)

    def as_dict(self) -> dict[str, float]:
        """The four clip values by name."""
        return {"dop": self.dop, "top": self.top, "uak": self.uak, "rak": self.rak}

    @property
    def active_per_object(self) -> float:
        """:func:`active_per_object` of the clip (NaN without present-object counts)."""
        return float("nan") if self.n_present is None else active_per_object(self.n_active, self.n_present)

    @property
    def come_and_go(self) -> float:
        """Mean response of the clip's events (NaN without events)."""
        return float(np.mean([e.response for e in self.events])) if self.events else float("nan")


@dataclass(frozen=True)
class CountEvent:
    """A change in the number of present objects between two stable runs of frames.

    Attributes:
        frame: first frame of the new run.
        delta_objects: present objects after minus before (non-zero).
        active_before, active_after: mean active keypoints over the window before / after.
    """

    frame: int
    delta_objects: int
    active_before: float
    active_after: float

    @property
    def response(self) -> float:
        """Active keypoints gained per object gained (lost per object lost)."""
        return (self.active_after - self.active_before) / self.delta_objects

    @property
    def follows(self) -> bool:
        """The active count moved at least half a keypoint per object, in the objects' direction."""
        return self.response >= FOLLOW_THRESHOLD


#: Keypoints per object an event's response must reach for the active count to follow it.
FOLLOW_THRESHOLD: float = 0.5


# ----------------------------------------------------------------------------- input checks


def _as_tensor(x: object, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    raise TypeError(f"{name}: expected a torch.Tensor or numpy array, got {type(x).__name__}")


def check_metric_inputs(
    keypoints: torch.Tensor, status: torch.Tensor, masks: torch.Tensor
) -> None:
    """Raise a ValueError/TypeError naming the expected and the received shapes/dtypes.

    Example:
        >>> check_metric_inputs(torch.zeros(3, 4, 2), torch.ones(2, 4), torch.zeros(3, 8, 8, dtype=torch.long))
        Traceback (most recent call last):
        ...
        ValueError: status: expected shape (T, K) = (3, 4), got (2, 4)
    """
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints: expected shape (T, K, 2), got {tuple(keypoints.shape)}")
    if not keypoints.is_floating_point():
        raise TypeError(f"keypoints: expected a floating dtype, got {keypoints.dtype}")
    t, k = keypoints.shape[:2]
    if tuple(status.shape) != (t, k):
        raise ValueError(f"status: expected shape (T, K) = {(t, k)}, got {tuple(status.shape)}")
    if masks.ndim != 3 or masks.shape[0] != t:
        raise ValueError(f"masks: expected shape (T, H, W) with T = {t}, got {tuple(masks.shape)}")
    if masks.is_floating_point() or masks.dtype == torch.bool:
        raise TypeError(f"masks: expected integer instance ids, got {masks.dtype}")
    if bool((masks < 0).any()):
        raise ValueError("masks: expected ids >= 0 (0 = background), got negative values")


def active_mask(status: torch.Tensor) -> torch.Tensor:
    """``(T, K)`` bool: a keypoint is active iff its status is true (bool) or ``> 0.5``.

    Example:
        >>> active_mask(torch.tensor([[0.2, 0.7]]))
        tensor([[False,  True]])
    """
    if status.dtype == torch.bool:
        return status
    return status.float() > 0.5


def keypoint_pixels(
    keypoints: torch.Tensor, height: int, width: int, pixel: bool, active: torch.Tensor | None = None
) -> torch.Tensor:
    """``(T, K, 2)`` integer (column, row) of each keypoint's nearest pixel.

    Args:
        active: optional ``(T, K)`` bool; only active keypoints must lie inside the image, the
            others (which no metric counts) are clamped into it.

    Raises:
        ValueError: an (active) keypoint lies outside the image (its nearest pixel is not in it)
            or is not finite.

    Example:
        >>> keypoint_pixels(torch.tensor([[[-1.0, 1.0]]]), 3, 5, pixel=False)
        tensor([[[0, 2]]])
    """
    uv = keypoints.double() if pixel else normalized_to_pixel(keypoints.double(), height, width)
    uv = torch.round(uv)
    bad = ~torch.isfinite(uv).all(dim=-1)
    uv = torch.nan_to_num(uv, nan=-1.0, posinf=-1.0, neginf=-1.0)
    bad |= (uv[..., 0] < 0) | (uv[..., 0] >= width) | (uv[..., 1] < 0) | (uv[..., 1] >= height)
    if active is not None:
        bad &= active
    uv = torch.stack([uv[..., 0].clamp(0, width - 1), uv[..., 1].clamp(0, height - 1)], dim=-1).long()
    if bool(bad.any()):
        t, k = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"keypoints: expected inside the {height}x{width} image "
            f"({'pixels' if pixel else 'normalised [-1, 1]'}), got {keypoints[t, k].tolist()} "
            f"at frame {t}, keypoint {k}"
        )
    return uv


def keypoint_labels(
    keypoints: torch.Tensor, status: torch.Tensor, masks: torch.Tensor, pixel: bool = False
) -> torch.Tensor:
    """``(T, K)`` instance id under each keypoint; 0 on the background, -1 if inactive.

    Example:
        >>> masks = torch.tensor([[[0, 7], [0, 0]]])
        >>> keypoint_labels(torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]), torch.tensor([[True, False]]),
        ...                 masks, pixel=True)
        tensor([[ 7, -1]])
    """
    t, h, w = masks.shape
    active = active_mask(status)
    uv = keypoint_pixels(keypoints, h, w, pixel, active)
    frame = torch.arange(t)[:, None].expand(uv.shape[:2])
    labels = masks[frame, uv[..., 1], uv[..., 0]].long()
    return torch.where(active, labels, torch.full_like(labels, -1))


def object_hits(labels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``(T, K, O)`` bool: keypoint ``k`` lies on object ``ids[o]`` at frame ``t``.

    Example:
        >>> object_hits(torch.tensor([[3, 0, 3]]), torch.tensor([3, 5]))[0].long().T
        tensor([[1, 0, 1],
                [0, 0, 0]])
    """
    return labels[..., None] == ids[None, None, :]


def object_areas(masks: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``(T, O)`` pixel count of each object per frame (0 = absent).

    Example:
        >>> object_areas(torch.tensor([[[1, 1], [2, 0]]]), torch.tensor([1, 2, 9]))
        tensor([[2, 1, 0]])
    """
    t = masks.shape[0]
    top = int(max(int(masks.max()) if masks.numel() else 0, int(ids.max()) if ids.numel() else 0)) + 1
    offset = (torch.arange(t) * top)[:, None]
    counts = torch.bincount((masks.reshape(t, -1).long() + offset).reshape(-1), minlength=t * top)
    return counts.reshape(t, top)[:, ids.long()]


# ----------------------------------------------------------------------------- the equations


def _masked_frame_mean(values: torch.Tensor, valid: torch.Tensor) -> tuple[float, np.ndarray]:
    per_frame = torch.where(valid, values, torch.full_like(values, float("nan")))
    n = int(valid.sum())
    mean = float(values[valid].sum() / n) if n else float("nan")
    return mean, per_frame.numpy()


def detected_object_percentage(hits: torch.Tensor, visible: torch.Tensor) -> tuple[float, np.ndarray]:
    """DOP, Appendix D.1 (eq. for ``M_DOP``) for one clip.

    ``N_detected(t) = #{obj visible: sum_k I(p_k in M_obj) > 0}``; value ``mean_t N_detected / N_GT``
    over frames with ``N_GT > 0``.

    Args:
        hits: ``(T, K, O)`` keypoint-on-object indicators (active keypoints only).
        visible: ``(T, O)`` bool, object has mask pixels in the frame.

    Returns:
        The clip value and the ``(T,)`` per-frame ratios (NaN where ``N_GT = 0``).

    Example:
        >>> hits = torch.tensor([[[True, False]], [[False, False]]])
        >>> detected_object_percentage(hits, torch.ones(2, 2, dtype=torch.bool))[0]
        0.25
    """
    detected = hits.any(dim=1) & visible
    n_gt = visible.sum(dim=1)
    ratio = detected.sum(dim=1).double() / n_gt.clamp(min=1).double()
    return _masked_frame_mean(ratio, n_gt > 0)


def tracked_object_percentage(hits: torch.Tensor, visible: torch.Tensor) -> tuple[float, np.ndarray]:
    """TOP, Appendix D.2 (eqs. 38-39) for one clip.

    ``N_tracked(t) = #{obj: sum_k I(p_k^t in M_obj^t) I(p_k^{t-1} in M_obj^{t-1}) > 0}``: one and the
    same keypoint on the object in both frames. Averaged over frames ``t >= 1`` with ``N_GT(t) > 0``
    (frame 0 has no previous frame; its per-frame value is NaN).

    Example:
        >>> hits = torch.tensor([[[True]], [[True]], [[False]]])
        >>> tracked_object_percentage(hits, torch.ones(3, 1, dtype=torch.bool))[0]
        0.5
    """
    t = hits.shape[0]
    both = torch.zeros(visible.shape, dtype=torch.bool)
    if t > 1:
        both[1:] = (hits[1:] & hits[:-1]).any(dim=1) & visible[1:]
    n_gt = visible.sum(dim=1)
    valid = n_gt > 0
    valid[0] = False
    ratio = both.sum(dim=1).double() / n_gt.clamp(min=1).double()
    return _masked_frame_mean(ratio, valid)


def unsuccessful_keypoint_assignment(labels: torch.Tensor) -> tuple[float, np.ndarray]:
    """UAK, Appendix D.3 (``M_UKA``) for one clip: mean over frames of the number of active
    keypoints lying on no object mask.

    Args:
        labels: ``(T, K)`` from :func:`keypoint_labels` (0 background, -1 inactive).

    Example:
        >>> unsuccessful_keypoint_assignment(torch.tensor([[0, 0, 3], [-1, 2, 0]]))[0]
        1.5
    """
    n_uk = (labels == 0).sum(dim=1).double()
    return _masked_frame_mean(n_uk, torch.ones_like(n_uk, dtype=torch.bool))


def redundant_keypoint_assignment(
    hits: torch.Tensor, areas: torch.Tensor, keypoint_area: float
) -> tuple[float, np.ndarray]:
    """RAK, Appendix D.4 (``M_RAK``) for one clip: ``|A_obj - A_k n_obj| / A_obj``.

    ``n_obj`` counts the active keypoints on the object's mask. Per frame the mean over the visible
    objects (``A_obj > 0``; absent objects are left out), then the mean over frames with a visible
    object. 0 when ``A_k n_obj = A_obj``; 1 for an undetected object.

    Args:
        hits: ``(T, K, O)`` keypoint-on-object indicators.
        areas: ``(T, O)`` mask areas in pixels.
        keypoint_area: ``A_k`` in pixels (see :func:`default_keypoint_area`).

    Example:
        >>> hits = torch.tensor([[[True, False], [True, False]]])  # 2 keypoints on object 0
        >>> redundant_keypoint_assignment(hits, torch.tensor([[8, 5]]), 4.0)[0]  # (0 + 1) / 2
        0.5
    """
    n_obj = hits.sum(dim=1).double()
    a_obj = areas.double()
    visible = areas > 0
    per_obj = (a_obj - keypoint_area * n_obj).abs() / a_obj.clamp(min=1.0)
    per_obj = torch.where(visible, per_obj, torch.zeros_like(per_obj))
    n_vis = visible.sum(dim=1)
    per_frame = per_obj.sum(dim=1) / n_vis.clamp(min=1).double()
    return _masked_frame_mean(per_frame, n_vis > 0)


# ----------------------------------------------------------------------------- entry points


def clip_metrics(
    keypoints: torch.Tensor | np.ndarray,
    status: torch.Tensor | np.ndarray,
    masks: torch.Tensor | np.ndarray,
    pixel: bool = False,
    keypoint_area: float | None = None,
    presence_area: float | None = None,
    min_run: int = 4,
    window: int = 6,
) -> ClipMetrics:
    """DOP, TOP, UAK, RAK of one clip, its keypoint economy and per-frame counts.

    Args:
        keypoints: ``(T, K, 2)`` (x, y); normalised ``[-1, 1]`` unless ``pixel=True``.
        status: ``(T, K)`` bool or float (active iff ``> 0.5``).
        masks: ``(T, H, W)`` integer instance ids, 0 = background.
        pixel: keypoints are pixel (column, row) coordinates.
        keypoint_area: ``A_k`` in pixels; default :func:`default_keypoint_area` of ``(H, W)``.
        presence_area: pixels an object must cover to be present for the economy metrics
            (default ``0.1 A_k``); ``min_run``, ``window``: see :func:`count_events`.

    Raises:
        ValueError/TypeError: mismatched ``T``/``K``, wrong ranks or dtypes, active keypoints
            outside the image or not finite (inactive ones may lie anywhere).

    Example:
        >>> masks = torch.zeros(1, 3, 3, dtype=torch.long); masks[0, 0, 0] = 4
        >>> m = clip_metrics(torch.tensor([[[-1.0, -1.0], [1.0, 1.0]]]), torch.ones(1, 2), masks)
        >>> m.dop, m.uak, m.n_active.tolist(), m.n_visible.tolist()
        (1.0, 1.0, [2], [1])
    """
    keypoints = _as_tensor(keypoints, "keypoints")
    status = _as_tensor(status, "status")
    masks = _as_tensor(masks, "masks")
    check_metric_inputs(keypoints, status, masks)
    _, h, w = masks.shape
    if keypoint_area is None:
        keypoint_area = default_keypoint_area(h, w)
    if keypoint_area <= 0:
        raise ValueError(f"keypoint_area: expected > 0 pixels, got {keypoint_area}")
    labels = keypoint_labels(keypoints, status, masks, pixel)
    ids = torch.unique(masks)
    ids = ids[ids > 0].long()
    hits = object_hits(labels, ids)
    areas = object_areas(masks, ids)
    visible = areas > 0
    dop, dop_t = detected_object_percentage(hits, visible)
    top, top_t = tracked_object_percentage(hits, visible)
    uak, uak_t = unsuccessful_keypoint_assignment(labels)
    rak, rak_t = redundant_keypoint_assignment(hits, areas, float(keypoint_area))
    presence_area = 0.1 * float(keypoint_area) if presence_area is None else float(presence_area)
    n_active = active_mask(status).sum(dim=1).numpy()
    n_present = present_counts(areas, presence_area)
    return ClipMetrics(
        dop=dop, top=top, uak=uak, rak=rak,
        dop_per_frame=dop_t, top_per_frame=top_t, uak_per_frame=uak_t, rak_per_frame=rak_t,
        n_active=n_active, n_visible=visible.sum(dim=1).numpy(),
        keypoint_area=float(keypoint_area), n_present=n_present,
        events=count_events(n_active, n_present, min_run, window),
    )


def aggregate_metrics(results: Sequence[ClipMetrics]) -> dict[str, dict[str, float]]:
    """Mean and (population) standard deviation over clips of each metric (NaN clips skipped).

    Example:
        >>> a = ClipMetrics(1.0, 1.0, 0.0, 0.0, *[np.zeros(1)] * 6)
        >>> b = ClipMetrics(0.5, 0.0, 2.0, 1.0, *[np.zeros(1)] * 6)
        >>> aggregate_metrics([a, b])["dop"]
        {'mean': 0.75, 'std': 0.25, 'n': 2}
    """
    if len(results) == 0:
        raise ValueError("results: expected at least one ClipMetrics, got none")
    out: dict[str, dict[str, float]] = {}
    for name in ("dop", "top", "uak", "rak"):
        vals = np.array([getattr(r, name) for r in results], np.float64)
        vals = vals[~np.isnan(vals)]
        out[name] = {
            "mean": float(vals.mean()) if len(vals) else float("nan"),
            "std": float(vals.std()) if len(vals) else float("nan"),
            "n": int(len(vals)),
        }
    return out


# ----------------------------------------------------------------------------- keypoint economy


def present_counts(areas: torch.Tensor | np.ndarray, presence_area: float) -> np.ndarray:
    """``(T,)`` number of objects covering at least ``presence_area`` pixels, from ``(T, O)`` areas.

    Example:
        >>> present_counts(np.array([[0, 5, 30], [40, 0, 2]]), 10.0).tolist()
        [1, 1]
    """
    a = np.asarray(areas.numpy() if isinstance(areas, torch.Tensor) else areas)
    if a.ndim != 2:
        raise ValueError(f"present_counts: expected areas of shape (T, O), got {a.shape}")
    if not presence_area > 0:
        raise ValueError(f"present_counts: expected presence_area > 0 pixels, got {presence_area}")
    return (a >= presence_area).sum(axis=1).astype(np.int64)


def stable_runs(counts: np.ndarray, min_run: int = 4) -> list[tuple[int, int, int]]:
    """Maximal runs ``(start, stop, count)`` of equal counts lasting at least ``min_run`` frames.

    Example:
        >>> stable_runs(np.array([2, 2, 2, 2, 3, 2, 2, 3, 3, 3, 3]), min_run=3)
        [(0, 4, 2), (7, 11, 3)]
    """
    counts = np.asarray(counts)
    if counts.ndim != 1:
        raise ValueError(f"stable_runs: expected counts of shape (T,), got {counts.shape}")
    if int(min_run) < 1:
        raise ValueError(f"stable_runs: expected min_run >= 1, got {min_run}")
    runs, start = [], 0
    for t in range(1, len(counts) + 1):
        if t == len(counts) or counts[t] != counts[start]:
            if t - start >= min_run:
                runs.append((start, t, int(counts[start])))
            start = t
    return runs


def count_events(
    n_active: np.ndarray, n_present: np.ndarray, min_run: int = 4, window: int = 6
) -> list[CountEvent]:
    """The come-and-go events of one clip (see the module docstring).

    Consecutive stable runs (:func:`stable_runs`) with the same count (an occlusion in between)
    are not an event. The windows are the last ``window`` frames of the old run and the first
    ``window`` frames of the new one (shorter runs: all their frames).

    Args:
        n_active: ``(T,)`` active keypoints per frame.
        n_present: ``(T,)`` present objects per frame (:func:`present_counts`).

    Example:
        >>> present = np.array([2] * 6 + [3] * 6)
        >>> [round(e.response, 2) for e in count_events(np.array([4] * 6 + [6] * 6), present)]
        [2.0]
        >>> count_events(np.array([4] * 12), present)[0].follows
        False
    """
    n_active, n_present = np.asarray(n_active, np.float64), np.asarray(n_present)
    if n_active.shape != n_present.shape or n_active.ndim != 1:
        raise ValueError(
            f"count_events: expected n_active and n_present of the same shape (T,), got {n_active.shape} and {n_present.shape}"
        )
    if int(window) < 1:
        raise ValueError(f"count_events: expected window >= 1, got {window}")
    runs = stable_runs(n_present, min_run)
    events = []
    for (s0, e0, c0), (s1, e1, c1) in zip(runs[:-1], runs[1:]):
        if c0 == c1:
            continue
        before = n_active[max(s0, e0 - window):e0].mean()
        after = n_active[s1:min(e1, s1 + window)].mean()
        events.append(CountEvent(frame=s1, delta_objects=c1 - c0, active_before=float(before), active_after=float(after)))
    return events


def active_per_object(n_active: np.ndarray, n_present: np.ndarray) -> float:
    """Mean over frames with an object present of ``n_active / n_present`` (NaN if none).

    Example:
        >>> active_per_object(np.array([4, 6, 9]), np.array([2, 3, 0]))
        2.0
    """
    n_active, n_present = np.asarray(n_active, np.float64), np.asarray(n_present, np.float64)
    if n_active.shape != n_present.shape:
        raise ValueError(f"active_per_object: expected equal shapes, got {n_active.shape} and {n_present.shape}")
    valid = n_present > 0
    return float((n_active[valid] / n_present[valid]).mean()) if valid.any() else float("nan")


def economy_summary(results: Sequence[ClipMetrics]) -> dict[str, float]:
    """Keypoint economy over clips: active per object, and the come-and-go response.

    Returns:
        ``active_per_object`` (mean over clips, and ``active_per_object_std``),
        ``come_and_go`` (mean over clips with events of the clip's mean response, and its std),
        ``follows_clips`` (fraction of clips with events whose every event follows the
        objects), ``follows_events`` (fraction of all events), ``n_event_clips``, ``n_events``.

    Example:
        >>> present = np.array([2] * 6 + [3] * 6)
        >>> active = np.array([4] * 6 + [6] * 6)
        >>> m = ClipMetrics(1.0, 1.0, 0.0, 0.0, *[np.zeros(12)] * 4, active, present, n_present=present,
        ...                 events=count_events(active, present))
        >>> s = economy_summary([m]); s["active_per_object"], s["come_and_go"], s["follows_clips"]
        (2.0, 2.0, 1.0)
    """
    if len(results) == 0:
        raise ValueError("economy_summary: expected at least one ClipMetrics, got none")
    apo = np.array([r.active_per_object for r in results], np.float64)
    apo = apo[~np.isnan(apo)]
    with_events = [r for r in results if r.events]
    responses = np.array([r.come_and_go for r in with_events], np.float64)
    all_events = [e for r in with_events for e in r.events]
    nan = float("nan")
    return {
        "active_per_object": float(apo.mean()) if len(apo) else nan,
        "active_per_object_std": float(apo.std()) if len(apo) else nan,
        "come_and_go": float(responses.mean()) if len(responses) else nan,
        "come_and_go_std": float(responses.std()) if len(responses) else nan,
        "follows_clips": float(np.mean([all(e.follows for e in r.events) for r in with_events])) if with_events else nan,
        "follows_events": float(np.mean([e.follows for e in all_events])) if all_events else nan,
        "n_event_clips": len(with_events),
        "n_events": len(all_events),
    }
