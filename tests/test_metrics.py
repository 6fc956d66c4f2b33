"""DOP / TOP / UAK / RAK on hand-built cases with known answers (paper Appendix D)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mint_rl.coords import pixel_to_normalized
from mint_rl.metrics import (
    ClipMetrics,
    aggregate_metrics,
    clip_metrics,
    count_events,
    default_keypoint_area,
    economy_summary,
    present_counts,
    stable_runs,
)

H, W = 20, 30


def two_objects(t: int = 3) -> torch.Tensor:
    """Object 1: rows 2-5, cols 2-5 (16 px); object 2: rows 10-14, cols 20-24 (25 px)."""
    m = torch.zeros(t, H, W, dtype=torch.long)
    m[:, 2:6, 2:6] = 1
    m[:, 10:15, 20:25] = 2
    return m


def px(points: list[list[list[float]]]) -> torch.Tensor:
    return torch.tensor(points, dtype=torch.float32)


def test_all_objects_hit_gives_dop_and_top_one():
    masks = two_objects()
    kp = px([[[3, 3], [22, 12]]] * 3)
    m = clip_metrics(kp, torch.ones(3, 2), masks, pixel=True)
    assert m.dop == 1.0 and m.top == 1.0 and m.uak == 0.0


def test_normalised_and_pixel_inputs_agree():
    masks = two_objects()
    kp = px([[[3, 3], [22, 12], [15, 1]]] * 3)
    a = clip_metrics(kp, torch.ones(3, 3), masks, pixel=True)
    b = clip_metrics(pixel_to_normalized(kp, H, W), torch.ones(3, 3), masks)
    assert a.as_dict() == b.as_dict()


def test_keypoint_off_all_masks_counts_in_uak():
    masks = two_objects()
    kp = px([[[3, 3], [15, 1], [0, 19]]] * 3)  # one on object 1, two on the floor
    m = clip_metrics(kp, torch.ones(3, 3), masks, pixel=True)
    assert m.uak == 2.0
    assert m.dop == 0.5
    np.testing.assert_array_equal(m.uak_per_frame, [2, 2, 2])


def test_keypoint_switching_object_is_not_tracked():
    masks = two_objects(2)
    kp = px([[[3, 3]], [[22, 12]]])  # the only keypoint jumps from object 1 to object 2
    m = clip_metrics(kp, torch.ones(2, 1), masks, pixel=True)
    assert m.dop == 0.5  # one of two objects detected in each frame
    assert m.top == 0.0  # frame 1: neither object has the same keypoint at t-1 and t


def test_tracking_needs_the_same_keypoint():
    masks = two_objects(2)
    # keypoint 0 on object 1 at t=0, keypoint 1 on object 1 at t=1: detected, not tracked
    kp = px([[[3, 3], [15, 1]], [[15, 1], [4, 4]]])
    m = clip_metrics(kp, torch.ones(2, 2), masks, pixel=True)
    assert m.top == 0.0
    kp2 = px([[[3, 3], [15, 1]], [[4, 4], [15, 1]]])
    assert clip_metrics(kp2, torch.ones(2, 2), masks, pixel=True).top == 0.5


def test_top_skips_frame_zero_and_is_bounded_by_dop():
    masks = two_objects(4)
    kp = px([[[3, 3], [22, 12]], [[3, 3], [0, 0]], [[3, 3], [22, 12]], [[3, 3], [22, 12]]])
    m = clip_metrics(kp, torch.ones(4, 2), masks, pixel=True)
    assert math.isnan(m.top_per_frame[0])
    np.testing.assert_allclose(m.top_per_frame[1:], [0.5, 0.5, 1.0])
    assert m.top == pytest.approx(2.0 / 3.0)
    assert m.dop == pytest.approx((1 + 0.5 + 1 + 1) / 4)
    assert m.top <= m.dop


def test_inactive_keypoints_are_ignored():
    masks = two_objects()
    kp = px([[[3, 3], [22, 12], [0, 0]]] * 3)
    status = torch.tensor([[0.9, 0.1, 0.2]] * 3)
    m = clip_metrics(kp, status, masks, pixel=True)
    assert m.dop == 0.5  # the keypoint on object 2 is inactive
    assert m.uak == 0.0  # the inactive floor keypoint is not "unsuccessful"
    np.testing.assert_array_equal(m.n_active, [1, 1, 1])
    same = clip_metrics(kp, status > 0.5, masks, pixel=True)
    assert same.as_dict() == m.as_dict()


def test_rak_zero_when_keypoints_cover_area():
    masks = two_objects(1)
    # object 1 has 16 px, object 2 has 25 px; with A_k = 8 and 2 keypoints on object 1 -> 0,
    kp = px([[[3, 3], [4, 4]]])
    m = clip_metrics(kp, torch.ones(1, 2), masks, pixel=True, keypoint_area=8.0)
    # object 2 undetected -> |25 - 0| / 25 = 1; mean over the two visible objects = 0.5
    assert m.rak == pytest.approx(0.5)
    masks1 = torch.zeros(1, H, W, dtype=torch.long)
    masks1[0, 2:6, 2:6] = 1
    assert clip_metrics(kp, torch.ones(1, 2), masks1, pixel=True, keypoint_area=8.0).rak == 0.0
    # redundant keypoints: 4 keypoints on 16 px with A_k = 8 -> |16 - 32| / 16 = 1
    kp4 = px([[[2, 2], [3, 3], [4, 4], [5, 5]]])
    assert clip_metrics(kp4, torch.ones(1, 4), masks1, pixel=True, keypoint_area=8.0).rak == 1.0


def test_rak_ignores_absent_objects_and_default_area_scales():
    masks = two_objects(2)
    masks[1][masks[1] == 2] = 0  # object 2 leaves in frame 1
    kp = px([[[3, 3], [22, 12]], [[3, 3], [22, 12]]])
    m = clip_metrics(kp, torch.ones(2, 2), masks, pixel=True, keypoint_area=16.0)
    np.testing.assert_allclose(m.rak_per_frame, [(0 + 9 / 25) / 2, 0.0])
    np.testing.assert_array_equal(m.n_visible, [2, 1])
    assert m.uak_per_frame.tolist() == [0, 1]  # the keypoint left on the empty floor
    assert default_keypoint_area(320, 480) == pytest.approx(1796.8)
    assert clip_metrics(kp, torch.ones(2, 2), masks, pixel=True).keypoint_area == pytest.approx(
        1796.8 * H * W / (480 * 320))


def test_frames_without_objects_do_not_count_for_dop():
    masks = two_objects(2)
    masks[1] = 0
    kp = px([[[3, 3], [22, 12]], [[3, 3], [22, 12]]])
    m = clip_metrics(kp, torch.ones(2, 2), masks, pixel=True)
    assert m.dop == 1.0 and math.isnan(m.dop_per_frame[1])


def test_vectorised_against_loop_reference():
    rng = np.random.default_rng(0)
    t, k = 5, 7
    masks = rng.integers(0, 4, size=(t, 8, 9))
    kp = rng.uniform(0, 7.4, size=(t, k, 2)).astype(np.float32)
    status = rng.random((t, k))
    m = clip_metrics(kp, status, masks, pixel=True, keypoint_area=6.0)
    uv = np.round(kp).astype(int)
    dop, rak, uak = [], [], []
    for ti in range(t):
        ids = [i for i in np.unique(masks[ti]) if i > 0]
        lab = [masks[ti, uv[ti, j, 1], uv[ti, j, 0]] if status[ti, j] > 0.5 else -1 for j in range(k)]
        dop.append(np.mean([any(l == i for l in lab) for i in ids]))
        rak.append(np.mean([abs((masks[ti] == i).sum() - 6.0 * lab.count(i)) / (masks[ti] == i).sum()
                            for i in ids]))
        uak.append(lab.count(0))
    assert m.dop == pytest.approx(np.mean(dop))
    assert m.rak == pytest.approx(np.mean(rak))
    assert m.uak == pytest.approx(np.mean(uak))


def test_aggregate_mean_and_std():
    masks = two_objects()
    good = clip_metrics(px([[[3, 3], [22, 12]]] * 3), torch.ones(3, 2), masks, pixel=True)
    half = clip_metrics(px([[[3, 3], [0, 0]]] * 3), torch.ones(3, 2), masks, pixel=True)
    agg = aggregate_metrics([good, half])
    assert agg["dop"]["mean"] == 0.75 and agg["dop"]["std"] == 0.25
    assert agg["uak"]["mean"] == 0.5
    with pytest.raises(ValueError):
        aggregate_metrics([])
    assert isinstance(good, ClipMetrics)


@pytest.mark.parametrize(
    "kp_shape, status_shape, mask_shape, match",
    [
        ((3, 2, 2), (4, 2), (3, H, W), "status"),
        ((3, 2, 2), (3, 2), (4, H, W), "masks"),
        ((3, 2, 3), (3, 2), (3, H, W), "keypoints"),
        ((3, 2, 2), (3, 2), (3, H), "masks"),
    ],
)
def test_bad_shapes_raise(kp_shape, status_shape, mask_shape, match):
    with pytest.raises(ValueError, match=match):
        clip_metrics(torch.zeros(kp_shape), torch.ones(status_shape),
                     torch.zeros(mask_shape, dtype=torch.long))


def test_keypoints_outside_image_raise():
    masks = two_objects(1)
    with pytest.raises(ValueError, match="inside"):
        clip_metrics(px([[[30.0, 3.0]]]), torch.ones(1, 1), masks, pixel=True)
    with pytest.raises(ValueError, match="inside"):
        clip_metrics(px([[[0.0, 1.2]]]), torch.ones(1, 1), masks)
    with pytest.raises(ValueError, match="inside"):
        clip_metrics(px([[[float("nan"), 0.0]]]), torch.ones(1, 1), masks)
    # an inactive keypoint may lie anywhere: no metric counts it
    m = clip_metrics(px([[[3.0, 3.0], [99.0, float("nan")]]]), torch.tensor([[1.0, 0.0]]), masks, pixel=True)
    assert m.dop == 0.5 and m.uak == 0.0


def test_oracle_keypoints_on_generated_clip():
    from mint_rl.data.synthetic import clevrer_like_preset, generate_clip

    clip = generate_clip(clevrer_like_preset("small", num_frames=24), 0)
    h, w = clip.height, clip.width
    # one keypoint per object at a pixel of its own mask (active iff the object is visible)
    kp = np.zeros((len(clip), len(clip.objects), 2), np.float32)
    for t in range(len(clip)):
        for i in range(len(clip.objects)):
            ys, xs = np.nonzero(clip.masks[t] == i + 1)
            if len(xs):
                kp[t, i] = (xs[len(xs) // 2], ys[len(ys) // 2])
    status = clip.tracks["visible"]
    m = clip_metrics(kp, status, clip.masks, pixel=True)
    assert m.dop == 1.0 and m.uak == 0.0
    # tracked = visible now and one frame before (same keypoint); objects that just appeared are not
    both = status[1:] & status[:-1]
    assert m.top == pytest.approx(np.mean(both.sum(1) / status[1:].sum(1)))
    assert m.top < 1.0  # objects enter during this clip
    np.testing.assert_array_equal(m.n_active, status.sum(1))
    np.testing.assert_array_equal(m.n_visible, status.sum(1))
    assert 0.0 <= m.rak
    # the same keypoints, all switched off: nothing detected, nothing unsuccessful
    off = clip_metrics(kp, np.zeros_like(status), clip.masks, pixel=True)
    assert off.dop == 0.0 and off.uak == 0.0 and off.rak == 1.0
    assert h == 96 and w == 160


def test_bad_types_raise():
    with pytest.raises(TypeError, match="masks"):
        clip_metrics(torch.zeros(1, 1, 2), torch.ones(1, 1), torch.zeros(1, H, W))
    with pytest.raises(TypeError, match="keypoints"):
        clip_metrics([[[0.0, 0.0]]], torch.ones(1, 1), torch.zeros(1, H, W, dtype=torch.long))


# ----------------------------------------------------------------------------- keypoint economy


def entering_object_clip(t: int = 16, enter: int = 8) -> torch.Tensor:
    """Object 1 present throughout; object 2 (25 px) appears at frame ``enter``."""
    m = torch.zeros(t, H, W, dtype=torch.long)
    m[:, 2:6, 2:6] = 1
    m[enter:, 10:15, 20:25] = 2
    return m


def test_keypoints_that_follow_an_entry_give_a_positive_response():
    masks = entering_object_clip()
    kp = px([[[3, 3], [4, 4], [22, 12], [23, 13]]] * 16)
    status = torch.zeros(16, 4)
    status[:, :2] = 1  # two on object 1 all along
    status[8:, 2:] = 1  # two more switch on when object 2 enters
    m = clip_metrics(kp, status, masks, pixel=True, keypoint_area=16.0, presence_area=4.0)
    assert m.n_present.tolist() == [1] * 8 + [2] * 8
    assert len(m.events) == 1
    e = m.events[0]
    assert (e.frame, e.delta_objects, e.active_before, e.active_after) == (8, 1, 2.0, 4.0)
    assert e.response == 2.0 and e.follows
    assert m.come_and_go == 2.0
    assert m.active_per_object == pytest.approx(np.mean([2.0] * 8 + [2.0] * 8))


def test_keypoints_that_stay_on_give_no_response_and_do_not_follow():
    masks = entering_object_clip()
    kp = px([[[3, 3], [4, 4], [22, 12], [23, 13]]] * 16)
    m = clip_metrics(kp, torch.ones(16, 4), masks, pixel=True, keypoint_area=16.0, presence_area=4.0)
    assert m.events[0].response == 0.0 and not m.events[0].follows
    # 4 active for 1 object, then for 2
    assert m.active_per_object == pytest.approx((8 * 4.0 + 8 * 2.0) / 16)
    s = economy_summary([m])
    assert s["follows_clips"] == 0.0 and s["follows_events"] == 0.0 and s["n_events"] == 1


def test_leaving_object_counts_when_keypoints_switch_off():
    masks = entering_object_clip().flip(0)  # object 2 present first, gone from frame 8
    kp = px([[[3, 3], [22, 12], [23, 13]]] * 16)
    status = torch.ones(16, 3)
    status[8:, 1:] = 0
    m = clip_metrics(kp, status, masks, pixel=True, keypoint_area=16.0, presence_area=4.0)
    (e,) = m.events
    assert e.delta_objects == -1 and e.response == 2.0 and e.follows


def test_short_occlusions_and_slivers_are_not_events():
    masks = entering_object_clip(t=20, enter=0)
    masks[9:11, 10:15, 20:25] = 0  # object 2 hidden for two frames
    masks[:, 0, 29] = 3  # a one-pixel sliver of object 3 all along: below the presence area
    status = torch.ones(20, 2)
    status[9:11, 1] = 0
    m = clip_metrics(px([[[3, 3], [22, 12]]] * 20), status, masks, pixel=True, keypoint_area=16.0, presence_area=4.0)
    assert m.n_present.tolist() == [2] * 9 + [1] * 2 + [2] * 9
    assert m.events == []  # 2 -> (2 frames of 1) -> 2: the runs on both sides have the same count
    assert economy_summary([m])["n_event_clips"] == 0 and math.isnan(economy_summary([m])["come_and_go"])


def test_stable_runs_and_windows():
    counts = np.array([1] * 10 + [2] * 3 + [3] * 10)
    assert stable_runs(counts, min_run=4) == [(0, 10, 1), (13, 23, 3)]
    active = np.arange(23, dtype=float)
    (e,) = count_events(active, counts, min_run=4, window=2)
    # last two frames of the old run (8, 9) against the first two of the new one (13, 14)
    assert (e.frame, e.delta_objects) == (13, 2) and e.active_before == 8.5 and e.active_after == 13.5
    assert e.response == pytest.approx(2.5)


def test_economy_inputs_are_checked():
    with pytest.raises(ValueError, match=r"expected n_active and n_present of the same shape"):
        count_events(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="presence_area > 0"):
        present_counts(np.zeros((2, 2)), 0.0)
    with pytest.raises(ValueError, match="min_run >= 1"):
        stable_runs(np.zeros(3), 0)
    with pytest.raises(ValueError, match="at least one ClipMetrics"):
        economy_summary([])
