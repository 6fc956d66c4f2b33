"""MintKeypointWrapper and its vector / SB3 twins, on a toy env and on MAGICAL."""

import re

import gymnasium as gym
import warnings

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper

from mint_rl.models import DetectorConfig, MintDetector
from mint_rl.wrappers import (
    MintKeypointVecEnv,
    MintKeypointVectorWrapper,
    MintKeypointWrapper,
    fully_connected_edges,
)
from toy_square_env import SquareEnv, red_square_detector


@pytest.fixture(scope="module")
def detector():
    return red_square_detector(48, 2)


def _random_detector(size=48, k=3, seed=0):
    torch.manual_seed(seed)
    det = MintDetector(DetectorConfig.for_image(size, size, num_keypoints=k))
    # make BatchNorm running stats non-trivial so eval mode differs from identity
    with torch.no_grad():
        det.train()
        det(torch.randint(0, 255, (4, 3, size, size), dtype=torch.uint8))
    return det.eval()


def test_spaces_and_every_observation_in_space(detector):
    env = MintKeypointWrapper(SquareEnv(), detector=detector, history=3)
    assert env.observation_space.shape == (3, 2, 3) and env.observation_space.dtype == np.float32
    assert env.detector is detector
    obs, _ = env.reset(seed=1)
    assert obs in env.observation_space
    done = False
    while not done:
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        assert obs.dtype == np.float32 and obs in env.observation_space
        done = term or trunc


def test_history_order_and_reset(detector):
    env = MintKeypointWrapper(SquareEnv(), detector=detector, history=4)
    obs0, _ = env.reset(seed=0)
    assert np.allclose(obs0, obs0[:1])  # history filled with the first frame
    obs1, *_ = env.step(1)  # move right
    obs2, *_ = env.step(1)
    np.testing.assert_allclose(obs1[:3], obs0[1:])  # shifted: oldest first
    np.testing.assert_allclose(obs2[:-1], obs1[1:])
    assert obs2[-1, 0, 0] > obs1[-1, 0, 0] > obs0[-1, 0, 0]  # newest last
    again, _ = env.reset(seed=0)
    np.testing.assert_allclose(again, obs0)  # nothing leaks from the previous episode


def test_keypoints_follow_the_moving_square(detector):
    base = SquareEnv()
    env = MintKeypointWrapper(base, detector=detector, history=1)
    obs, _ = env.reset(seed=3)
    half_side = 5 / (base.size - 1) * 2  # the keypoint must lie on the 10x10 square
    kps, centers = [obs[-1, 0, :2]], [base.center_normalized()]
    for action in [1, 1, 1, 3, 3, 3, 2, 2, 2, 4, 4, 4]:
        obs, *_ = env.step(action)
        assert np.all(obs[-1, :, 2] > 0.99)
        kps.append(obs[-1, 0, :2])
        centers.append(base.center_normalized())
        assert np.abs(obs[-1, :, :2] - centers[-1]).max() < half_side, (obs[-1], centers[-1])
    kps, centers = np.array(kps), np.array(centers)
    moved = (kps[3::3] - kps[:-3:3]) * (base.size - 1) / 2  # pixels over each 3-step (12 px) leg
    truth = (centers[3::3] - centers[:-3:3]) * (base.size - 1) / 2
    assert np.abs(moved - truth).max() <= 4.0, (moved, truth)


def test_dict_observation_uses_key(detector):
    env = MintKeypointWrapper(SquareEnv(dict_obs=True), detector=detector, key="allo", history=2)
    env_ego = MintKeypointWrapper(SquareEnv(dict_obs=True), detector=detector, key="ego", history=2)
    a, _ = env.reset(seed=0)
    b, _ = env_ego.reset(seed=0)
    np.testing.assert_allclose(a[..., 0], b[..., 0], atol=0.1)  # ego is flipped vertically
    np.testing.assert_allclose(a[..., 1], -b[..., 1], atol=0.15)


def test_render_draws_keypoints(detector):
    env = MintKeypointWrapper(SquareEnv(), detector=detector)
    env.reset(seed=0)
    raw = env.env.render()
    img = env.render()
    assert img.shape == raw.shape and img.dtype == np.uint8 and not np.array_equal(img, raw)


def test_graph_output(detector):
    env = MintKeypointWrapper(SquareEnv(), detector=detector, history=3, output="graph")
    obs, _ = env.reset(seed=0)
    assert isinstance(env.observation_space, spaces.Graph)
    assert obs.nodes.shape == (2, 9) and obs.edge_links.tolist() == [[0, 1], [1, 0]] and obs.edges.tolist() == [0, 0]
    assert obs in env.observation_space
    box = MintKeypointWrapper(SquareEnv(), detector=detector, history=3)
    b, _ = box.reset(seed=0)
    np.testing.assert_allclose(obs.nodes, b.transpose(1, 0, 2).reshape(2, 9))
    assert fully_connected_edges(4).shape == (12, 2)


#: The warnings the env checkers give a correct keypoint wrapper, each for a reason of the checkers'
#: own; any other warning fails the checker tests.
EXPECTED_CHECKER_WARNINGS = (
    # gymnasium's check_env handed a wrapper (which is what we test) suggests env.unwrapped ...
    "is different from the unwrapped version",
    # ... and its check_seed_deprecation probes `env.seed` through every wrapper of the chain
    "env.seed to get variables from other wrappers is deprecated",
    # SB3's checker guesses "image" from any 3-D Box whose last axis is 1, 3 or 4 long: a
    # (history, K, 3) float keypoint array is not one (SB3 itself only treats uint8 as images)
    "is an image but its `dtype` is (float32)",
    "is an image but the upper and lower bounds are not in [0, 255]",
    "The minimal resolution for an image is 36x36",
    "Treating image space as channels-last",
)


def _unexpected_checker_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if not any(e in str(w.message) for e in EXPECTED_CHECKER_WARNINGS)]


def test_env_checkers(detector):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(MintKeypointWrapper(SquareEnv(), detector=detector), skip_render_check=True)
        sb3_check_env(MintKeypointWrapper(SquareEnv(), detector=detector), warn=True)
    assert _unexpected_checker_warnings(caught) == []


def test_vector_wrapper_equals_single_wrappers():
    det = _random_detector()
    n, seeds = 3, [5, 6, 7]
    single = [MintKeypointWrapper(SquareEnv(episode_steps=4), detector=det, history=2) for _ in range(n)]
    venv = MintKeypointVectorWrapper(
        gym.vector.SyncVectorEnv([lambda: SquareEnv(episode_steps=4)] * n), detector=det, history=2
    )
    assert venv.single_observation_space.shape == (2, 3, 3) and venv.observation_space.shape == (n, 2, 3, 3)
    vobs, _ = venv.reset(seed=seeds)
    sobs = [e.reset(seed=s)[0] for e, s in zip(single, seeds)]
    np.testing.assert_allclose(vobs, np.stack(sobs), atol=1e-5)
    rng = np.random.default_rng(0)
    for t in range(6):  # crosses an episode end at t=3 (autoreset)
        acts = rng.integers(0, 5, n)
        vobs, _, _, vtrunc, infos = venv.step(acts)
        expected = []
        for i, e in enumerate(single):
            o, _, _, tr, _ = e.step(acts[i])
            if tr:
                np.testing.assert_allclose(infos["final_observation"][i], o, atol=1e-5)
                o, _ = e.reset()
            expected.append(o)
        np.testing.assert_allclose(vobs, np.stack(expected), atol=1e-5)
    assert venv.detector is det


def test_sb3_vecenv_terminal_observation_transformed():
    det = _random_detector()
    venv = MintKeypointVecEnv(DummyVecEnv([lambda: SquareEnv(episode_steps=3)] * 2), detector=det, history=2)
    single = MintKeypointWrapper(SquareEnv(episode_steps=3), detector=det, history=2)
    venv.seed(11)
    obs = venv.reset()
    o_single, _ = single.reset(seed=11)
    np.testing.assert_allclose(obs[0], o_single, atol=1e-5)
    assert obs.shape == (2, 2, 3, 3) and venv.observation_space.shape == (2, 3, 3)
    for t in range(3):
        obs, _, dones, infos = venv.step(np.array([1, 2]))
        o_single, *_ = single.step(1)
    assert dones.all()
    term = infos[0]["terminal_observation"]
    assert term.shape == (2, 3, 3)
    np.testing.assert_allclose(term, o_single, atol=1e-5)  # the ended episode's history
    assert np.allclose(obs[0], obs[0][:1])  # the new episode's history is refilled


def test_bad_input():
    det = _random_detector()

    class NoImage(gym.Env):
        observation_space = spaces.Discrete(3)
        action_space = spaces.Discrete(2)

    with pytest.raises(TypeError, match="holds no image"):
        MintKeypointWrapper(NoImage(), detector=det)

    class FloatImage(SquareEnv):
        def __init__(self, channels=3, dtype=np.uint8):
            super().__init__()
            self.observation_space = spaces.Box(0, 255, (48, 48, channels), dtype)

    with pytest.raises(ValueError, match="uint8"):
        MintKeypointWrapper(FloatImage(dtype=np.float32), detector=det)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        MintKeypointWrapper(FloatImage(channels=4), detector=det)
    with pytest.raises(ValueError, match="expected 5 keypoints"):
        MintKeypointWrapper(SquareEnv(), detector=det, num_keypoints=5)
    with pytest.raises(ValueError, match="output"):
        MintKeypointWrapper(SquareEnv(), detector=det, output="table")
    with pytest.raises(ValueError, match="magical"):
        MintKeypointWrapper(SquareEnv(), detector="no-such-detector")
    env = MintKeypointWrapper(SquareEnv(), detector=det)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected uint8 \(48, 48, 3\), got float64"):
        env.observation(np.zeros((48, 48, 3)))


def test_stacked_channels_use_the_newest_frame(detector):
    class Stacked(SquareEnv):
        def __init__(self):
            super().__init__()
            self.observation_space = spaces.Box(0, 255, (48, 48, 6), np.uint8)

        def _obs(self):
            f = self.frame()
            return np.concatenate([np.full_like(f, 40), f], axis=-1)  # old frame empty, newest last

    plain = MintKeypointWrapper(SquareEnv(), detector=detector, history=1)
    stacked = MintKeypointWrapper(Stacked(), detector=detector, history=1)
    np.testing.assert_allclose(plain.reset(seed=2)[0], stacked.reset(seed=2)[0], atol=1e-6)


def test_magical_env_passes_checkers():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    det = _random_detector(96, 4)
    env = MintKeypointWrapper(gym.make("magical/MoveToCorner-Demo-v0"), detector=det)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 4, 3) and obs in env.observation_space
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
        sb3_check_env(MintKeypointWrapper(gym.make("magical/MoveToCorner-Demo-v0"), detector=det), warn=True)
    assert _unexpected_checker_warnings(caught) == []
    frame = env.render()
    assert frame.shape == (384, 384, 3)
    env.close()


def test_magical_env_renders_only_the_view_the_wrapper_reads():
    det = _random_detector(96, 4)
    switched = MintKeypointWrapper(gym.make("magical/MoveToCorner-TestJitter-v0", resolution=96), detector=det)
    both = MintKeypointWrapper(gym.make("magical/MoveToCorner-TestJitter-v0", resolution=96), detector=det,
                               render_only_observed=False)
    assert switched.renders_only_observed and switched.unwrapped.view == "allo"
    assert not both.renders_only_observed and both.unwrapped.view == "both"
    assert not switched.unwrapped.magical_env.ego_view and both.unwrapped.magical_env.ego_view
    assert switched.env.observation_space == spaces.Box(0, 255, (96, 96, 3), np.uint8)
    # the same keypoints, step by step, as the wrapper that lets the env render both views
    a, _ = switched.reset(seed=5)
    b, _ = both.reset(seed=5)
    np.testing.assert_array_equal(a, b)
    for t in range(12):
        a = switched.step(t % 18)[0]
        b = both.step(t % 18)[0]
        np.testing.assert_array_equal(a, b)

    class ReadsEgo(gym.ObservationWrapper):  # declares its own space: it may read the other view
        def __init__(self, env):
            super().__init__(env)
            self.observation_space = env.observation_space

        def observation(self, obs):
            return obs

    kept = MintKeypointWrapper(ReadsEgo(gym.make("magical/MoveToCorner-Demo-v0", resolution=96)), detector=det)
    assert not kept.renders_only_observed and kept.unwrapped.view == "both"
    ego = MintKeypointWrapper(gym.make("magical/MoveToCorner-Demo-v0", resolution=96), detector=det, key="ego")
    assert ego.renders_only_observed and ego.unwrapped.view == "ego" and ego.reset(seed=0)[0].shape == (4, 4, 3)
    for env in (switched, both, kept, ego):
        env.close()


def test_shipped_detectors_load_and_default_wrapper_works():
    from mint_rl.pretrained import available_names

    assert set(available_names()) == {"magical", "magical-recolour", "clevrer-like", "clevrer-like-economical"}
    magical = MintDetector.from_pretrained("magical")
    assert magical.config.image_size == (96, 96) and magical.num_keypoints == 25
    assert sum(p.numel() for p in magical.parameters()) == 58_725
    clevrer = MintDetector.from_pretrained("clevrer-like")
    assert clevrer.config.image_size == (96, 160)
    env = MintKeypointWrapper(gym.make("magical/MoveToCorner-Demo-v0"))  # default: detector="magical"
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 25, 3) and obs in env.observation_space
    assert (obs[-1, :, 2] > 0.5).sum() >= 2  # the trained detector keeps keypoints active on a MAGICAL scene
    env.close()


def test_chunked_and_whole_batch_forwards_agree():
    from mint_rl.wrappers.encoder import ImageSpec, KeypointEncoder

    det = _random_detector()
    frames = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 3), dtype=np.uint8)
    spec = ImageSpec(None, 48, 48, 3)
    auto = KeypointEncoder(det, spec)  # CPU default: one frame per forward
    whole = KeypointEncoder(det, spec, chunk_size=5)
    pairs = KeypointEncoder(det, spec, chunk_size=2)
    assert auto.chunk_size == 1
    np.testing.assert_allclose(auto(frames), whole(frames), atol=1e-5)
    np.testing.assert_allclose(pairs(frames), whole(frames), atol=1e-5)
    with pytest.raises(ValueError, match="chunk_size"):
        KeypointEncoder(det, spec, chunk_size=0)


def test_benchmark_wrapper_forward_only_prints_its_machine_readable_line(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_wrapper.py"
    spec = importlib.util.spec_from_file_location("benchmark_wrapper", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    n = torch.get_num_threads()
    try:
        assert module.main(["--forward-only", "--num-envs", "2", "--repeats", "1", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(n)
    out = capsys.readouterr().out.strip().splitlines()
    values = dict(kv.split("=") for kv in out[-1].split())
    assert list(values) == ["forward_ms", "per_env_detector_batched_over_unbatched"]
    assert all(float(v) > 0 for v in values.values())
    assert "58,725 parameters" in out[0]  # the untrained magical-preset detector


# ------------------------------------------------------------------ inputs that must fail loudly


class _CorruptVector(gym.vector.VectorEnvWrapper):
    """A gymnasium VectorEnv whose observations / final observations pass through ``obs`` / ``final``."""

    def __init__(self, env, obs=None, final=None):
        super().__init__(env)
        self.num_envs, self.single_observation_space = env.num_envs, env.single_observation_space
        self._obs, self._final = obs or (lambda o: o), final or (lambda o: o)

    def reset_wait(self, **kwargs):
        obs, infos = self.env.reset_wait(**kwargs)
        return self._obs(obs), infos

    def step_wait(self):
        obs, rewards, terminated, truncated, infos = self.env.step_wait()
        if "final_observation" in infos:
            finals = np.empty(self.num_envs, dtype=object)
            for i, o in enumerate(infos["final_observation"]):
                finals[i] = None if o is None else self._final(o)
            infos["final_observation"] = finals
        return self._obs(obs), rewards, terminated, truncated, infos


class _CorruptVecEnv(VecEnvWrapper):
    """An SB3 VecEnv whose observations / terminal observations pass through ``obs`` / ``final``."""

    def __init__(self, venv, obs=None, final=None):
        super().__init__(venv)
        self._obs, self._final = obs or (lambda o: o), final or (lambda o: o)

    def reset(self):
        return self._obs(self.venv.reset())

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = self._final(info["terminal_observation"])
        return self._obs(obs), rewards, dones, infos


@pytest.fixture(scope="module")
def random_detector():
    return _random_detector()


def _gym_venv(n=2, **kwargs):
    return gym.vector.SyncVectorEnv([lambda: SquareEnv(**kwargs)] * n)


def _sb3_venv(n=2, **kwargs):
    return DummyVecEnv([lambda: SquareEnv(**kwargs)] * n)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", True, None])
def test_history_must_be_an_integer_of_at_least_one(random_detector, bad):
    expected = re.escape(f"history: expected an integer >= 1, got {bad!r} ({type(bad).__name__})")
    with pytest.raises(ValueError, match=expected):
        MintKeypointWrapper(SquareEnv(), detector=random_detector, history=bad)
    with pytest.raises(ValueError, match=expected):
        MintKeypointVectorWrapper(_gym_venv(), detector=random_detector, history=bad)
    with pytest.raises(ValueError, match=expected):
        MintKeypointVecEnv(_sb3_venv(), detector=random_detector, history=bad)
    assert MintKeypointWrapper(SquareEnv(), detector=random_detector, history=np.int64(2)).history == 2


def test_keypoint_count_mismatch_is_refused_by_every_wrapper(random_detector):
    expected = r"detector: expected 5 keypoints \(num_keypoints\), the detector has 3"
    with pytest.raises(ValueError, match=expected):
        MintKeypointVectorWrapper(_gym_venv(), detector=random_detector, num_keypoints=5)
    with pytest.raises(ValueError, match=expected):
        MintKeypointVecEnv(_sb3_venv(), detector=random_detector, num_keypoints=5)
    for bad in ("3", 2.0, 0):
        with pytest.raises(ValueError, match=re.escape(f"num_keypoints: expected None or an integer >= 1, got {bad!r}")):
            MintKeypointVectorWrapper(_gym_venv(), detector=random_detector, num_keypoints=bad)
    assert MintKeypointVecEnv(_sb3_venv(), detector=random_detector, num_keypoints=3).observation_space.shape == (4, 3, 3)


@pytest.mark.parametrize("corrupt,got", [
    (lambda o: o.astype(np.float32), r"got float32 \(2, 48, 48, 3\)"),
    (lambda o: o[:, :40], r"got uint8 \(2, 40, 48, 3\)"),
    (lambda o: o[:1], r"got uint8 \(1, 48, 48, 3\)"),  # one observation for two sub-envs
])
def test_vector_wrappers_refuse_observations_of_another_dtype_or_shape(random_detector, corrupt, got):
    expected = r"observations of the sub-envs at reset: expected uint8 \(2, 48, 48, 3\), " + got
    venv = MintKeypointVectorWrapper(_CorruptVector(_gym_venv(), obs=corrupt), detector=random_detector)
    with pytest.raises(ValueError, match=expected):
        venv.reset(seed=0)
    vec = MintKeypointVecEnv(_CorruptVecEnv(_sb3_venv(), obs=corrupt), detector=random_detector)
    with pytest.raises(ValueError, match=expected):
        vec.reset()


def test_vector_wrappers_refuse_a_dict_without_the_image_key(random_detector):
    drop = lambda o: {"ego": o["ego"]}  # noqa: E731
    expected = r"expected a Dict observation with the image key 'allo', got a Dict with keys \['ego'\]"
    venv = MintKeypointVectorWrapper(_CorruptVector(_gym_venv(dict_obs=True), obs=drop), detector=random_detector)
    with pytest.raises(ValueError, match="observations of the sub-envs at reset: " + expected):
        venv.reset(seed=0)
    vec = MintKeypointVecEnv(_CorruptVecEnv(_sb3_venv(dict_obs=True), obs=drop), detector=random_detector)
    with pytest.raises(ValueError, match=expected):
        vec.reset()
    single = MintKeypointWrapper(SquareEnv(dict_obs=True), detector=random_detector)
    single.reset(seed=0)
    with pytest.raises(ValueError, match="observation: " + expected):
        single.observation({"ego": np.zeros((48, 48, 3), np.uint8)})
    with pytest.raises(ValueError, match=r"observation\['allo'\]: expected uint8 \(48, 48, 3\), got uint8 \(48, 48\)"):
        single.observation({"allo": np.zeros((48, 48), np.uint8)})


def test_final_and_terminal_observations_of_the_wrong_shape_are_refused(random_detector):
    cut = lambda o: o[:10]  # noqa: E731
    venv = MintKeypointVectorWrapper(_CorruptVector(_gym_venv(episode_steps=1), final=cut), detector=random_detector)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"infos\['final_observation'\]\[0\]: expected uint8 \(48, 48, 3\), "
                                         r"got uint8 \(10, 48, 3\)"):
        venv.step(np.zeros(2, np.int64))
    vec = MintKeypointVecEnv(_CorruptVecEnv(_sb3_venv(episode_steps=1), final=lambda o: o.astype(np.float64)),
                             detector=random_detector)
    vec.reset()
    with pytest.raises(ValueError, match=r"infos\[0\]\['terminal_observation'\]: expected uint8 \(48, 48, 3\), "
                                         r"got float64 \(48, 48, 3\)"):
        vec.step(np.zeros(2, np.int64))
