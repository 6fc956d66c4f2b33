"""Keypoint identity across MAGICAL variants: which keypoint index covers which object."""

import numpy as np
import pytest
import torch

from mint_rl.coords import pixel_to_normalized
from mint_rl.training import evaluation
from mint_rl.training.evaluation import (
    KEYPOINT_ROLES,
    covering_keypoints,
    histogram_agreement,
    index_histogram,
    keypoint_roles,
    object_coverage,
    role_histogram,
)


def _random_case(seed: int, t: int = 6, k: int = 7, n: int = 3, size: int = 32):
    rng = np.random.default_rng(seed)
    kp = torch.from_numpy(rng.uniform(-1, 1, (t, k, 2)).astype(np.float32))
    st = torch.from_numpy((rng.random((t, k)) < 0.7).astype(np.float32))
    centres = rng.uniform(0, size - 1, (t, n, 2))
    radii = rng.uniform(2.0, 8.0, n)
    return kp, st, centres, radii, size


@pytest.mark.parametrize("seed", range(5))
def test_covering_keypoint_is_the_nearest_active_one_within_the_radius(seed):
    kp, st, centres, radii, size = _random_case(seed)
    got = covering_keypoints(kp, st, centres, radii, size)
    np.testing.assert_array_equal(got >= 0, object_coverage(kp, st, centres, radii, size))
    px = (kp.numpy() + 1) / 2 * (size - 1)  # the normalised -> pixel convention, written out
    for t in range(got.shape[0]):
        for n in range(got.shape[1]):
            d = [np.linalg.norm(px[t, k] - centres[t, n]) if st[t, k] > 0.5 else np.inf for k in range(kp.shape[1])]
            inside = [k for k in range(kp.shape[1]) if d[k] <= radii[n]]
            assert got[t, n] == (min(inside, key=lambda k: d[k]) if inside else -1)


def test_roles_of_hand_placed_keypoints():
    size = 33
    centres = np.array([[[8.0, 8.0], [24.0, 24.0]]])  # robot, one block
    radii = np.array([6.0, 3.0])
    # on the robot; on the block; between them but relatively nearer the block (2/3 vs 11.3/6);
    # active on nothing; inactive on the robot
    px = np.array([[[9.0, 8.0], [24.0, 25.0], [22.0, 22.5], [16.0, 0.0], [8.0, 8.0]]])
    kp = pixel_to_normalized(torch.from_numpy(px).float(), size, size)
    st = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    roles = keypoint_roles(kp, st, centres, radii, size)
    assert [KEYPOINT_ROLES[r] for r in roles[0]] == ["robot", "block", "block", "spare", "inactive"]
    hist = role_histogram(np.concatenate([roles, roles]))
    assert hist.shape == (5, 4) and np.allclose(hist.sum(axis=1), 1.0)


def test_histograms_and_their_agreement():
    np.testing.assert_allclose(index_histogram(np.array([-1, -1, 3, 3, 1]), 4), [0, 1 / 3, 0, 2 / 3])
    assert index_histogram(np.array([-1, -1]), 3).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="below num_keypoints=3, got 3"):
        index_histogram(np.array([3]), 3)
    p = np.array([[0.2, 0.8], [1.0, 0.0]])
    assert histogram_agreement(p, p) == pytest.approx(1.0)
    assert histogram_agreement(p, p[::-1]) == pytest.approx(0.2)  # rows: min sums 0.2 and 0.2
    assert histogram_agreement([1.0, 0.0], [0.0, 1.0]) == 0.0
    with pytest.raises(ValueError, match="one shape"):
        histogram_agreement([1.0], [0.5, 0.5])


def test_coverage_evaluation_sees_a_keypoint_swap_between_variants(monkeypatch):
    """Same coverage in both variants, but keypoint 1 instead of 0 on the robot in TestColour."""
    size, frames = 96, 5

    def fake_episode(task, variant, seed, resolution=96):
        positions = [{"robot": np.array([[20.0 + i, 30.0]]), "blocks": np.array([[70.0, 60.0]])} for i in range(frames)]
        return np.zeros((frames, size, size, 3), np.uint8), positions, 1.0

    def fake_detect(detector, clip):
        swap = detector == "swapping" and fake_detect.variant == "TestColour"
        px = np.zeros((frames, 3, 2))
        px[:, 1 if swap else 0] = [[20.0 + i, 30.0] for i in range(frames)]  # the robot
        px[:, 0 if swap else 1] = [5.0, 5.0]  # a spare keypoint
        px[:, 2] = [70.0, 60.0]  # the block
        kp = pixel_to_normalized(torch.from_numpy(px).float(), size, size)
        return kp, torch.ones(frames, 3)

    def tracking_episode(task, variant, seed, resolution=96):
        fake_detect.variant = variant
        return fake_episode(task, variant, seed, resolution)

    monkeypatch.setattr(evaluation, "magical_expert_episode", tracking_episode)
    monkeypatch.setattr(evaluation, "detect_clip", fake_detect)
    for detector, agreement in (("steady", 1.0), ("swapping", 0.0)):
        cov = evaluation.magical_keypoint_coverage(detector, tasks=["MoveToCorner"],
                                                   variants=["TestJitter", "TestColour"], episodes=2, progress=False)
        rows = cov["per_variant"]["MoveToCorner"]
        assert rows["TestColour"]["all_objects"] == rows["TestJitter"]["all_objects"] == 1.0
        assert rows["TestJitter"]["robot_agreement"] == rows["TestJitter"]["role_agreement"] == 1.0
        assert rows["TestColour"]["robot_agreement"] == agreement
        assert rows["TestColour"]["block_agreement"] == 1.0  # keypoint 2 on the block in both
        # roles: keypoints 0 and 1 trade robot and spare, keypoint 2 keeps the block: 1/3 or 1
        assert rows["TestColour"]["role_agreement"] == pytest.approx(1.0 if agreement else 1 / 3)
    with pytest.raises(ValueError, match="not variants of MoveToCorner"):
        evaluation.magical_keypoint_coverage("steady", tasks=["MoveToCorner"], variants=["TestLayout"])


@pytest.mark.parametrize("seed", range(3))
def test_region_coverage_matches_a_point_in_box_loop(seed):
    rng = np.random.default_rng(seed)
    t, k, g, size = 5, 6, 2, 40
    kp = torch.from_numpy(rng.uniform(-1, 1, (t, k, 2)).astype(np.float32))
    st = torch.from_numpy((rng.random((t, k)) < 0.7).astype(np.float32))
    lo = rng.uniform(0, 25, (t, g, 2))
    boxes = np.concatenate([lo, lo + rng.uniform(5, 15, (t, g, 2))], axis=-1)
    exclude = rng.random((t, k)) < 0.3
    px = (kp.numpy() + 1) / 2 * (size - 1)
    for ex in (None, exclude):
        got = evaluation.region_coverage(kp, st, boxes, size, exclude=ex)
        for i in range(t):
            for j in range(g):
                u0, v0, u1, v1 = boxes[i, j]
                want = any(st[i, n] > 0.5 and (ex is None or not ex[i, n]) and u0 <= px[i, n, 0] <= u1
                           and v0 <= px[i, n, 1] <= v1 for n in range(k))
                assert got[i, j] == want
    with pytest.raises(ValueError, match="expected \\(T=5, G, 4\\)"):
        evaluation.region_coverage(kp, st, boxes[:, :, :2], size)


def test_goal_coverage_counts_keypoints_off_the_robot_only(monkeypatch):
    """The robot stands in the goal region; only a keypoint of its own there covers the goal."""
    size, frames = 96, 4
    box = np.array([[10.0, 10.0, 40.0, 40.0]])

    def fake_episode(task, variant, seed, resolution=96):
        positions = [{"robot": np.array([[20.0, 20.0]]), "blocks": np.zeros((0, 2)), "goal_boxes": box}
                     for _ in range(frames)]
        return np.zeros((frames, size, size, 3), np.uint8), positions, 1.0

    def fake_detect(detector, clip):
        px = np.zeros((frames, 2, 2))
        px[:, 0] = [20.0, 21.0]  # on the robot, inside the region
        px[:, 1] = [35.0, 35.0] if detector == "goal-keypoint" else [80.0, 80.0]
        return pixel_to_normalized(torch.from_numpy(px).float(), size, size), torch.ones(frames, 2)

    monkeypatch.setattr(evaluation, "magical_expert_episode", fake_episode)
    monkeypatch.setattr(evaluation, "detect_clip", fake_detect)
    for detector, goals in (("goal-keypoint", 1.0), ("robot-only", 0.0)):
        cov = evaluation.magical_keypoint_coverage(detector, tasks=["MoveToRegion"], variants=["TestJitter"],
                                                   episodes=1, progress=False)
        assert cov["goals"] == cov["per_task"]["MoveToRegion"]["goals"] == goals
        # the box mirrored through the centre, (55, 55)-(85, 85), holds the spare keypoint at (80, 80)
        assert cov["goals_mirrored"] == 1.0 - goals
        assert cov["robot"] == 1.0 and cov["all_objects"] == 1.0  # goals are not part of all_objects


def test_goal_boxes_of_a_real_move_to_region_scene():
    import gymnasium

    import mint_rl  # noqa: F401
    from mint_rl.envs import object_positions_px, read_state
    from mint_rl.envs.state import ARENA_HALF_VIEW, goal_boxes_px

    env = gymnasium.make("magical/MoveToRegion-Demo-v0", view="allo", resolution=96)
    try:
        env.reset(seed=0)
        boxes, centres, goal = goal_boxes_px(env, 96), object_positions_px(env, 96)["goals"], read_state(env).goals[0]
    finally:
        env.close()
    assert boxes.shape == (1, 4)
    np.testing.assert_allclose((boxes[0, :2] + boxes[0, 2:]) / 2, centres[0])  # the box is centred on the goal
    scale = 96 / (2 * ARENA_HALF_VIEW)
    np.testing.assert_allclose(boxes[0, 2:] - boxes[0, :2], [goal.w * scale, goal.h * scale])
