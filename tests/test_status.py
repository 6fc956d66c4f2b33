"""The information status (mint_rl.status): an entropy non-maximum suppression over keypoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mint_rl.coords import pixel_to_normalized
from mint_rl.losses import loss_preset
from mint_rl.models import DetectorConfig, MintDetector
from mint_rl.ops import gaussian_maps, heatmap_area, threshold_gaussians
from mint_rl.status import InformationStatus, InformationStatusConfig, information_status

H, W = 24, 32


def blobs(*centres: tuple[int, int], r: int = 2) -> torch.Tensor:
    e = torch.zeros(H, W)
    for u, v in centres:
        e[v - r:v + r + 1, u - r:u + r + 1] = 2.0
    return e


def px(points: list[list[float]]) -> torch.Tensor:
    return pixel_to_normalized(torch.tensor(points, dtype=torch.float32), H, W)


def reference(kp, e, cand, sigma, eta=3.5, tau=0.1, min_unique=0.5, min_density=0.03):
    """The rule written out for one frame with plain loops."""
    heat = threshold_gaussians(gaussian_maps(kp[None], H, W, sigma), eta, tau)[0]
    cov = [(e * heat[k]).sum().item() for k in range(len(kp))]
    mask = torch.zeros(H, W)
    out = [0.0] * len(kp)
    for k in sorted((k for k in range(len(kp)) if cand[k]), key=lambda k: -cov[k]):
        unique = (e * heat[k] * (1 - mask)).sum().item()
        if unique >= min_unique * cov[k] and unique >= min_density * heatmap_area(sigma, eta, tau):
            out[k] = 1.0
            mask = torch.clamp(mask + heat[k], max=1.0)
    return out


def test_one_keypoint_per_object_none_on_the_floor_and_only_candidates():
    e = blobs((8, 8), (24, 16))
    kp = px([[8, 8], [9, 8], [24, 16], [3, 20], [24, 17]])
    status = information_status(kp[None], e[None], torch.tensor([[True, True, True, True, False]]), sigma=2.0)
    assert status.tolist() == [[1.0, 0.0, 1.0, 0.0, 0.0]]


def test_matches_the_loop_reference_on_random_frames():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        e = torch.rand(H, W, generator=g) * (torch.rand(H, W, generator=g) > 0.7)
        kp = torch.rand(6, 2, generator=g) * 1.8 - 0.9
        cand = torch.rand(6, generator=g) > 0.3
        got = information_status(kp[None], e[None], cand[None], sigma=2.5)[0].tolist()
        assert got == reference(kp, e, cand, 2.5)


def test_a_keypoint_that_adds_enough_new_information_stays_on():
    e = blobs((10, 12), r=6)  # a large object: one heatmap does not cover it
    kp = px([[8.5, 12], [11.5, 12]])  # 3 px apart: the second adds 73% of its coverage
    both = information_status(kp[None], e[None], torch.ones(1, 2, dtype=torch.bool), sigma=2.0)
    assert both.tolist() == [[1.0, 1.0]]
    strict = information_status(kp[None], e[None], torch.ones(1, 2, dtype=torch.bool), sigma=2.0, min_unique=0.95)
    assert strict.sum().item() == 1.0


def test_the_active_count_follows_objects_entering_and_leaving():
    frames = torch.stack([blobs((8, 8)), blobs((8, 8), (24, 16)), blobs((8, 8), (24, 16), (16, 4)), blobs((24, 16))])
    kp = px([[8, 8], [9, 9], [24, 16], [25, 16], [16, 4], [3, 20]]).expand(4, 6, 2)
    status = information_status(kp, frames, torch.ones(4, 6, dtype=torch.bool), sigma=2.0)
    assert status.sum(dim=1).tolist() == [1.0, 2.0, 3.0, 1.0]


def test_inputs_are_checked():
    kp, e = torch.zeros(2, 3, 2), torch.zeros(2, H, W)
    with pytest.raises(ValueError, match=r"expected bool candidates of shape \(2, 3\)"):
        information_status(kp, e, torch.ones(2, 3), sigma=2.0)
    with pytest.raises(ValueError, match="expected entropy of shape"):
        information_status(kp, torch.zeros(3, H, W), torch.ones(2, 3, dtype=torch.bool), sigma=2.0)
    with pytest.raises(ValueError, match="min_unique"):
        InformationStatusConfig(min_unique=1.5)


def test_module_and_detect_clip_keep_a_subset_of_the_learned_status():
    from mint_rl.data import clevrer_like_preset, generate_clip
    from mint_rl.training.evaluation import detect_clip

    torch.manual_seed(0)
    det = MintDetector(DetectorConfig.for_image(96, 160, num_keypoints=8)).eval()
    clip = generate_clip(clevrer_like_preset("small", num_frames=4), 3)
    rule = InformationStatus(loss_preset("clevrer"))
    kp, learned = detect_clip(det, clip.frames)
    kp2, info = detect_clip(det, clip.frames, status_rule=rule)
    torch.testing.assert_close(kp, kp2)
    assert set(np.unique(info.numpy())) <= {0.0, 1.0}
    assert bool((info <= (learned > 0.5).float()).all())  # only learned-active keypoints can stay on


def reference_temporal(kps, es, cands, sigma, keep_unique=0.25, min_unique=0.5, min_density=0.03, eta=3.5, tau=0.1):
    """The temporal rule written out with plain loops: last frame's kept keypoints first."""
    area = heatmap_area(sigma, eta, tau)
    prev = [False] * kps.shape[1]
    out = []
    for kp, e, cand in zip(kps, es, cands):
        heat = threshold_gaussians(gaussian_maps(kp[None], H, W, sigma), eta, tau)[0]
        cov = [(e * heat[k]).sum().item() for k in range(len(kp))]
        order = sorted((k for k in range(len(kp)) if cand[k]), key=lambda k: (not (prev[k] and cand[k]), -cov[k], k))
        mask = torch.zeros(H, W)
        row = [0.0] * len(kp)
        for k in order:
            unique = (e * heat[k] * (1 - mask)).sum().item()
            if unique >= (keep_unique if prev[k] else min_unique) * cov[k] and unique >= min_density * area:
                row[k] = 1.0
                mask = torch.clamp(mask + heat[k], max=1.0)
        out.append(row)
        prev = [v > 0.5 for v in row]
    return out


def test_temporal_status_keeps_the_keypoint_that_already_represents_the_object():
    from mint_rl.status import information_status_sequence

    # object at (12, 12); keypoint 1 sits on it, keypoint 0 arrives on it in frame 1 and is a
    # little better centred; frame by frame the object changes hands, with hysteresis it does not
    e = blobs((12, 12), r=2).expand(3, H, W)
    kp = px([[[3, 20], [12.8, 12]], [[12, 12], [12.8, 12]], [[12.2, 12], [12.6, 12]]])
    cand = torch.ones(3, 2, dtype=torch.bool)
    frame_by_frame = information_status(kp, e, cand, sigma=2.0)
    assert frame_by_frame.tolist() == [[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]
    temporal = information_status_sequence(kp, e, cand, sigma=2.0)
    assert temporal.tolist() == [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]
    # the first frame has no previous one: the single-frame rule
    assert information_status_sequence(kp[:1], e[:1], cand[:1], sigma=2.0).tolist() == frame_by_frame[:1].tolist()
    # it still follows the objects: one leaves, its keypoint goes off; one enters, a keypoint comes on
    frames = torch.stack([blobs((8, 8)), blobs((8, 8), (24, 16)), blobs((24, 16)), blobs((24, 16), (16, 4))])
    kp = px([[8, 8], [9, 9], [24, 16], [25, 16], [16, 4], [3, 20]]).expand(4, 6, 2)
    status = information_status_sequence(kp, frames, torch.ones(4, 6, dtype=torch.bool), sigma=2.0)
    assert status.sum(dim=1).tolist() == [1.0, 2.0, 1.0, 2.0]


def test_temporal_status_matches_the_loop_reference_on_random_sequences():
    from mint_rl.status import information_status_sequence

    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        t = 6
        e = torch.rand(t, H, W, generator=g) * (torch.rand(t, H, W, generator=g) > 0.6)
        kp = (torch.rand(1, 7, 2, generator=g) * 1.6 - 0.8) + 0.1 * torch.randn(t, 7, 2, generator=g)
        cand = torch.rand(t, 7, generator=g) > 0.2
        for keep in (0.25, 0.5):
            got = information_status_sequence(kp, e, cand, sigma=2.5, keep_unique=keep).tolist()
            assert got == reference_temporal(kp, e, cand, 2.5, keep_unique=keep)


def test_temporal_module_carries_state_across_calls_and_detect_clip_resets_it():
    from mint_rl.data import clevrer_like_preset, generate_clip
    from mint_rl.training.evaluation import detect_clip

    torch.manual_seed(0)
    det = MintDetector(DetectorConfig.for_image(96, 160, num_keypoints=8)).eval()
    clip = generate_clip(clevrer_like_preset("small", num_frames=6), 3)
    rule = InformationStatus(loss_preset("clevrer"), InformationStatusConfig(temporal=True))
    _, whole = detect_clip(det, clip.frames, status_rule=rule)
    _, split = detect_clip(det, clip.frames, batch_size=4, status_rule=rule)  # state carried from batch to batch
    _, again = detect_clip(det, clip.frames, status_rule=rule)  # reset: the same as the first call
    torch.testing.assert_close(whole, split)
    torch.testing.assert_close(whole, again)
    with pytest.raises(ValueError, match="keep_unique"):
        InformationStatusConfig(keep_unique=-0.1)
    with pytest.raises(ValueError, match=r"expected bool previous of shape \(3,\)"):
        from mint_rl.status import information_status_sequence

        information_status_sequence(torch.zeros(2, 3, 2), torch.zeros(2, H, W), torch.ones(2, 3, dtype=torch.bool),
                                    sigma=2.0, previous=torch.ones(4, dtype=torch.bool))
