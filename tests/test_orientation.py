"""Per-keypoint orientation (intensity centroid): values, wrappers, the policy and MAGICAL's robot heading."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from mint_rl.policies import InteractionNetwork, KeypointGraphExtractor
from mint_rl.wrappers import (
    IntensityCentroid,
    MintKeypointVecEnv,
    MintKeypointVectorWrapper,
    MintKeypointWrapper,
    intensity_centroid,
    keypoint_box,
)
from toy_square_env import SquareEnv, red_square_detector


def _reference(frame: np.ndarray, u: int, v: int, radius: float) -> np.ndarray:
    """Brute-force intensity centroid at an integer pixel (bilinear sampling is exact there)."""
    img = frame.astype(np.float64) / 255.0
    background = np.median(img.reshape(-1, img.shape[-1]), axis=0)
    mass = np.abs(img - background).mean(-1)
    total, moment = 0.0, np.zeros(2)
    r = int(radius)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy > radius * radius:
                continue
            y, x = v + dy, u + dx
            m = mass[y, x] if 0 <= y < img.shape[0] and 0 <= x < img.shape[1] else 0.0
            total += m
            moment += m * np.array([dx, dy])
    return moment / total / radius if total > 1e-6 else np.zeros(2)


def _to_norm(u, v, w, h):
    return [2 * u / (w - 1) - 1, 2 * v / (h - 1) - 1]


def test_matches_a_brute_force_reference_at_pixel_centres():
    rng = np.random.default_rng(0)
    frames = np.full((2, 20, 24, 3), 230, np.uint8)
    for f in frames:  # a few coloured blobs on a light background
        for _ in range(5):
            y, x = rng.integers(0, 18), rng.integers(0, 22)
            f[y : y + 3, x : x + 2] = rng.integers(0, 200, 3)
    pix = [[(3, 4), (12, 10), (23, 19)], [(0, 0), (7, 15), (20, 2)]]  # incl. corners (disc leaves the frame)
    kp = torch.tensor([[_to_norm(u, v, 24, 20) for u, v in row] for row in pix], dtype=torch.float32)
    got = intensity_centroid(torch.from_numpy(frames).permute(0, 3, 1, 2), kp, radius=4.5)
    want = np.array([[_reference(frames[n], u, v, 4.5) for u, v in row] for n, row in enumerate(pix)])
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    assert float(got.norm(dim=-1).max()) <= 1.0 + 1e-6


def test_direction_follows_a_rotating_spot_and_symmetric_discs_read_zero():
    size, c = 41, 20
    yy, xx = np.mgrid[:size, :size]
    for angle in np.linspace(0, 2 * math.pi, 8, endpoint=False):
        frame = np.full((size, size, 3), 255, np.uint8)
        frame[(xx - c) ** 2 + (yy - c) ** 2 <= 64] = 150  # grey body, radius 8
        ex, ey = c + 5 * math.cos(angle), c + 5 * math.sin(angle)
        frame[(xx - ex) ** 2 + (yy - ey) ** 2 <= 4] = 0  # dark "eye" toward the heading
        o = intensity_centroid(torch.from_numpy(frame).permute(2, 0, 1)[None], torch.zeros(1, 1, 2), radius=9)[0, 0]
        assert float(o.norm()) > 0.02
        assert math.cos(math.atan2(float(o[1]), float(o[0])) - angle) > 0.99
    body = np.full((size, size, 3), 255, np.uint8)
    body[(xx - c) ** 2 + (yy - c) ** 2 <= 64] = 150
    sym = intensity_centroid(torch.from_numpy(body).permute(2, 0, 1)[None], torch.zeros(1, 1, 2), radius=9)
    assert float(sym.abs().max()) < 1e-5
    blank = intensity_centroid(torch.full((1, 3, 9, 9), 0.5), torch.zeros(1, 3, 2), radius=3)
    assert torch.equal(blank, torch.zeros(1, 3, 2))


def test_uint8_and_float_frames_agree_and_errors_are_clear():
    frames = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    kp = torch.rand(2, 4, 2) * 2 - 1
    torch.testing.assert_close(intensity_centroid(frames, kp, 3), intensity_centroid(frames.float() / 255, kp, 3))
    torch.testing.assert_close(IntensityCentroid(3)(frames, kp), intensity_centroid(frames, kp, 3))
    with pytest.raises(ValueError, match=r"frames: expected a \(N, C, H, W\)"):
        intensity_centroid(frames[0], kp, 3)
    with pytest.raises(ValueError, match=r"keypoints: expected a \(N, K, 2\)"):
        intensity_centroid(frames, kp[..., :1], 3)
    with pytest.raises(ValueError, match="expected N=2"):
        intensity_centroid(frames, kp[:1], 3)
    with pytest.raises(ValueError, match="radius"):
        intensity_centroid(frames, kp, 0.5)


def test_wrappers_append_the_orientation_to_unchanged_rows():
    det = red_square_detector(48, 2)
    plain = MintKeypointWrapper(SquareEnv(), detector=det, history=3)
    env = MintKeypointWrapper(SquareEnv(), detector=det, history=3, orientation=True)
    assert env.observation_space == keypoint_box(3, 2, 5)
    a, _ = plain.reset(seed=4)
    b, _ = env.reset(seed=4)
    assert b.shape == (3, 2, 5) and b in env.observation_space
    np.testing.assert_allclose(b[..., :3], a, atol=1e-6)
    for action in (1, 3, 3):
        a, *_ = plain.step(action)
        b, *_ = env.step(action)
        np.testing.assert_allclose(b[..., :3], a, atol=1e-6)
        assert b in env.observation_space
    graph = MintKeypointWrapper(SquareEnv(), detector=det, history=3, output="graph", orientation=True)
    g, _ = graph.reset(seed=4)
    assert g.nodes.shape == (2, 15) and g in graph.observation_space
    assert graph._saved_kwargs["orientation"] is True
    venv = MintKeypointVectorWrapper(gym.vector.SyncVectorEnv([lambda: SquareEnv()] * 2), detector=det, history=3,
                                     orientation=True)
    v, _ = venv.reset(seed=[4, 5])
    single, _ = MintKeypointWrapper(SquareEnv(), detector=det, history=3, orientation=True).reset(seed=4)
    assert venv.single_observation_space.shape == (3, 2, 5)
    np.testing.assert_allclose(v[0], single, atol=1e-5)
    from stable_baselines3.common.vec_env import DummyVecEnv

    sb3 = MintKeypointVecEnv(DummyVecEnv([lambda: SquareEnv()]), detector=det, history=3, orientation=True)
    assert sb3.observation_space.shape == (3, 2, 5)


def test_magical_robot_keypoints_point_along_the_heading():
    """On MAGICAL frames the orientation of the keypoints on the robot recovers its heading."""
    from mint_rl.envs.state import read_state

    env = MintKeypointWrapper(gym.make("magical/MoveToCorner-TestJitter-v0", view="allo", resolution=96),
                              history=1, orientation=True)
    cosines = []
    env.action_space.seed(0)
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        for step in range(4):
            if step:
                obs, *_ = env.step(int(env.action_space.sample()))
            robot = read_state(env).robot
            # MAGICAL's angle 0 faces up (-y in the image); the heading in image axes (x right, y down)
            heading = np.array([-math.sin(robot.angle), -math.cos(robot.angle)])
            frame = env._last_frame.astype(int)
            rows = obs[-1]
            px = np.rint((rows[:, :2] + 1) * 95 / 2).astype(int)
            colour = frame[px[:, 1], px[:, 0]]
            on_robot = (rows[:, 2] > 0.5) & (np.ptp(colour, axis=1) < 25) & (colour.mean(1) > 100) & (colour.mean(1) < 200)
            if on_robot.sum() < 2:
                continue
            o = rows[on_robot, 3:].mean(0)
            cosines.append(float(o @ heading / (np.linalg.norm(o) + 1e-9)))
    env.close()
    assert len(cosines) >= 12
    # a random direction would give mean 0 and half positive
    assert np.mean(cosines) > 0.4 and np.mean(np.array(cosines) > 0) > 0.7, cosines


def test_interaction_network_reads_five_features_per_keypoint():
    space = gym.spaces.Box(-1.0, 1.0, shape=(4, 6, 5))
    net = InteractionNetwork.from_observation_space(space, num_actions=18)
    assert net.num_features == 5 and net.node_encoder[0].in_features == 4 * 5 + net.positional_dim
    obs = torch.rand(3, 4, 6, 5) * 2 - 1
    logits = net.action_logits(obs)
    assert logits.shape == (3, 18)
    changed = obs.clone()
    changed[..., 3:] = -changed[..., 3:]
    assert not torch.allclose(net.action_logits(changed), logits)  # the orientation reaches the output
    with pytest.raises(ValueError, match=r"expected F=5 features per keypoint"):
        net.action_logits(obs[..., :3])
    extractor = KeypointGraphExtractor(space, features_dim=16)
    assert extractor(obs).shape == (3, 16)
    with pytest.raises(ValueError, match="F >= 3"):
        InteractionNetwork.from_observation_space(gym.spaces.Box(-1.0, 1.0, shape=(4, 6, 2)))


def test_demo_conversion_gives_the_wrapper_observations():
    """Frames converted offline (human demos) read exactly as the live wrapper with orientation."""
    from imitation.data.types import Trajectory

    from mint_rl.experiments.magical_bc import frames_to_keypoint_trajectories

    env = MintKeypointWrapper(gym.make("magical/MoveToRegion-Demo-v0", view="allo", resolution=96),
                              history=4, orientation=True)
    obs, _ = env.reset(seed=1)
    frames, live = [env._last_frame.copy()], [obs]
    for action in (1, 1, 5, 5, 9):
        obs, *_ = env.step(action)
        frames.append(env._last_frame.copy())
        live.append(obs)
    env.close()
    traj = Trajectory(obs=np.stack(frames), acts=np.array([1, 1, 5, 5, 9]), infos=None, terminal=True)
    converted = frames_to_keypoint_trajectories([traj], "magical", history=4, orientation=True)[0]
    assert converted.obs.shape == (6, 4, 25, 5)
    np.testing.assert_allclose(converted.obs, np.stack(live), atol=1e-5)
