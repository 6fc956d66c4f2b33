"""MAGICAL on gymnasium: registration, env checkers, seeding, truncation, state/pixel mapping."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

import mint_rl  # noqa: F401  (registers magical/<id>)
from mint_rl.envs import registry
from mint_rl.envs.magical import MagicalEnv, make_magical_env
from mint_rl.envs.state import object_positions_px, pixel_to_world, read_state, world_to_pixel


@pytest.fixture
def close_after():
    envs = []
    yield envs.append
    for env in envs:
        env.close()


def test_import_mint_rl_registers_ids_without_importing_magical():
    code = (
        "import sys, gymnasium, mint_rl\n"
        "assert not {'magical', 'pymunk', 'pyglet'} & set(sys.modules), sorted(sys.modules)\n"
        "ids = [i for i in gymnasium.registry if i.startswith('magical/')]\n"
        "print(len(ids))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "366"


def test_static_id_list_matches_magical():
    from mint_rl.envs._compat import import_magical

    magical = import_magical()
    assert sorted(registry.all_magical_ids()) == sorted(magical.ALL_REGISTERED_ENVS)
    for env_id in ["MoveToCorner-Demo-v0", "MakeLine-TestJitter-v0", "MoveToRegion-Demo-v0"]:
        assert gymnasium.spec(f"magical/{env_id}").max_episode_steps == magical.benchmarks.gym.spec(env_id).max_episode_steps


def test_gymnasium_make_native_and_lores(close_after):
    env = gymnasium.make("magical/MoveToCorner-Demo-v0")
    close_after(env)
    obs, info = env.reset(seed=0)
    assert set(obs) == {"allo", "ego"} and obs["allo"].shape == (384, 384, 3) and obs["allo"].dtype == np.uint8
    assert info == {"eval_score": 0.0}
    lores = gymnasium.make("magical/MoveToCorner-TestJitter-LoRes4A-v0")
    close_after(lores)
    obs, _ = lores.reset(seed=0)
    assert obs.shape == (96, 96, 12) and lores.observation_space.contains(obs)
    # the 4 stacked frames are identical copies right after reset
    np.testing.assert_array_equal(obs[..., :3], obs[..., 9:])


@pytest.mark.parametrize(
    "env_id, kwargs",
    [
        ("MoveToCorner-Demo-v0", {}),
        ("MakeLine-TestJitter-v0", {"view": "allo", "resolution": 96}),
        ("MoveToRegion-TestJitter-LoRes4A-v0", {}),
        ("MoveToRegion-Demo-v0", {"view": "state"}),
    ],
)
def test_env_checkers_pass_without_warnings(env_id, kwargs, close_after):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gymnasium.make(f"magical/{env_id}", render_mode="rgb_array", **kwargs).unwrapped
    close_after(env)
    assert isinstance(env, MagicalEnv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
        sb3_check_env(env)
    messages = [str(w.message) for w in caught]
    assert messages == []


def test_truncation_only_at_step_limit_and_score(close_after):
    env = make_magical_env("MoveToRegion", "Demo", view="state")
    close_after(env)
    env.reset(seed=1)
    truncs, scores = [], []
    for _ in range(env.max_episode_steps):
        _, reward, terminated, truncated, info = env.step(0)
        assert reward == 0.0 and terminated is False
        truncs.append(truncated)
        scores.append(info["eval_score"])
    assert truncs == [False] * 39 + [True]
    # standing still: the robot starts outside the goal region
    assert scores == [0.0] * 40


def test_seeding_determinism(close_after):
    env = make_magical_env("MakeLine", "TestJitter", view="allo", resolution=64)
    close_after(env)
    a, _ = env.reset(seed=7)
    b, _ = env.reset(seed=7)
    c, _ = env.reset(seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    actions = [1, 1, 4, 4, 10, 16, 1, 2, 9, 0]

    def run(seed):
        frames = [env.reset(seed=seed)[0]]
        for act in actions:
            frames.append(env.step(act)[0])
        return np.stack(frames), read_state(env)

    f1, s1 = run(3)
    f2, s2 = run(3)
    np.testing.assert_array_equal(f1, f2)
    assert s1 == s2
    assert not np.array_equal(f1[0], f1[-1])  # the robot moved


def test_views_and_resolution(close_after):
    both = make_magical_env("MoveToCorner", "Demo", view="both", resolution=48)
    close_after(both)
    obs, _ = both.reset(seed=0)
    assert obs["allo"].shape == obs["ego"].shape == (48, 48, 3)
    assert not np.array_equal(obs["allo"], obs["ego"])
    allo = make_magical_env("MoveToCorner", "Demo", view="allo", resolution=48)
    close_after(allo)
    np.testing.assert_array_equal(allo.reset(seed=0)[0], obs["allo"])
    state = make_magical_env("MoveToCorner", "Demo", view="state")
    close_after(state)
    vec, _ = state.reset(seed=0)
    st = read_state(state)
    np.testing.assert_allclose(vec[:2], [st.robot.x, st.robot.y], atol=1e-6)
    np.testing.assert_allclose(vec[5:7], st.blocks[0].pose.xy, atol=1e-6)
    assert vec[9] == 1.0


def test_render_rgb_array(close_after):
    env = gymnasium.make("magical/MoveToCorner-Demo-v0", view="allo", resolution=96, render_mode="rgb_array")
    close_after(env)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (384, 384, 3) and frame.dtype == np.uint8


@pytest.mark.parametrize("resolution", [96, 100])
def test_shrunk_observation_is_cv2_inter_area_of_the_native_frame(resolution, close_after):
    """96 divides the 384x384 render (the fused area_downsample), 100 does not (cv2): the same numbers."""
    cv2 = pytest.importorskip("cv2")
    env = gymnasium.make("magical/MoveToCorner-TestJitter-v0", view="allo", resolution=resolution,
                         render_mode="rgb_array")
    close_after(env)
    obs, _ = env.reset(seed=3)
    for _ in range(3):
        ref = cv2.resize(env.render(), (resolution, resolution), interpolation=cv2.INTER_AREA)
        assert obs.shape == (resolution, resolution, 3) and obs.dtype == np.uint8
        np.testing.assert_array_equal(obs, ref)
        obs = env.step(3)[0]


def test_object_positions_px_match_rendered_colours(close_after):
    from magical.style import COLOURS_RGB

    env = make_magical_env("MoveToCorner", "Demo", view="allo", resolution=384)
    close_after(env)
    obs, _ = env.reset(seed=0)
    pos = object_positions_px(env)
    u, v = np.round(pos["blocks"][0]).astype(int)
    red = np.array(COLOURS_RGB["red"]) * 255
    assert np.abs(obs[v, u].astype(float) - red).max() < 3
    u, v = np.round(pos["robot"][0]).astype(int)
    grey = np.array(COLOURS_RGB["grey"]) * 255
    assert np.abs(obs[v, u].astype(float) - grey).max() < 3
    # same mapping at 96x96 (area-downscaled)
    small = object_positions_px(env, resolution=96)
    np.testing.assert_allclose(small["blocks"], (pos["blocks"] + 0.5) / 4 - 0.5)


def test_world_pixel_roundtrip():
    xy = np.array([[0.3, -0.7], [-1.0, 1.0]])
    np.testing.assert_allclose(pixel_to_world(world_to_pixel(xy, 96, 80), 96, 80), xy)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        world_to_pixel(np.zeros(3), 96, 96)


def test_bad_inputs_raise_with_valid_options(close_after):
    with pytest.raises(ValueError, match="MoveToCorner"):
        make_magical_env("MoveToKorner")
    with pytest.raises(ValueError, match="TestJitter"):
        make_magical_env("MakeLine", "TestJiter")
    with pytest.raises(ValueError, match="allo"):
        make_magical_env("MakeLine", view="top")
    with pytest.raises(ValueError, match="LoRes4A"):
        MagicalEnv("MakeLine-Demo-LoRes4A-v0", view="allo")
    with pytest.raises(ValueError, match="not a MAGICAL env id"):
        registry.parse_magical_id("CartPole-v1")
    with pytest.raises(TypeError):
        make_magical_env(3)  # type: ignore[arg-type]
    env = make_magical_env("MoveToRegion", view="state")
    close_after(env)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"\[0, 18\)"):
        env.step(18)


def test_missing_egl_is_named(monkeypatch):
    import ctypes

    from mint_rl.envs import _compat

    def no_lib(name, *args, **kwargs):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_lib)
    with pytest.raises(RuntimeError, match="libEGL"):
        _compat._check_egl()


def test_imp_stand_in_when_python_has_no_imp(monkeypatch):
    """Python 3.12 has no ``imp``; pymunk 5.6 imports it for ``imp.is_frozen`` only."""
    from mint_rl.envs._compat import _apply_imp_shim

    monkeypatch.setitem(sys.modules, "imp", None)  # `import imp` now raises ModuleNotFoundError
    with pytest.raises(ModuleNotFoundError):
        import imp  # noqa: F401
    _apply_imp_shim()
    import imp  # noqa: F811

    assert imp.is_frozen("__main__") is False and imp.is_frozen("_frozen_importlib") is True


def test_float_actions_and_stepping_before_reset_are_refused(close_after):
    from gymnasium.error import ResetNeeded

    env = make_magical_env("MoveToRegion", view="state")
    close_after(env)
    with pytest.raises(ResetNeeded, match=r"MoveToRegion-Demo-v0: expected reset\(\) before the first step\(\), got step\(3\)"):
        env.step(3)
    env.reset(seed=0)
    for bad, kind in [(3.0, "float"), (np.float32(3), "float32"), (True, "bool"), ("3", "str"),
                      (np.array([3]), r"ndarray of int64 \(1,\)"), (np.array(3.0), r"ndarray of float64 \(\)")]:
        with pytest.raises(TypeError, match=rf"action: expected an integer in \[0, 18\), got .* \({kind}\)"):
            env.step(bad)
    with pytest.raises(ValueError, match=r"action: expected an integer in \[0, 18\), got -1"):
        env.step(-1)
    for good in (3, np.int64(3), np.array(3), np.uint8(3)):
        env.step(good)


def test_fast_rendering_defaults_keep_every_pixel():
    """No GL error checks and no llvmpipe threads by default: the same frames as pyglet's and
    Mesa's defaults; values set in the environment are kept."""
    code = (
        "import hashlib, gymnasium as gym, mint_rl, pyglet, os\n"
        "h = hashlib.sha256()\n"
        "for v in ('Demo', 'TestColour'):\n"
        "    e = gym.make(f'magical/MoveToCorner-{v}-v0', view='allo', resolution=96)\n"
        "    o, _ = e.reset(seed=5); h.update(o.tobytes())\n"
        "    for t in range(6):\n"
        "        o, *_ = e.step(t); h.update(o.tobytes())\n"
        "    e.close()\n"
        "print(pyglet.options['debug_gl'], os.environ['LP_NUM_THREADS'], h.hexdigest())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYGLET_DEBUG_GL", "LP_NUM_THREADS")}

    def run(**extra: str) -> list[str]:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**env, **extra})
        return out.stdout.split()

    fast, slow = run(), run(PYGLET_DEBUG_GL="1", LP_NUM_THREADS="2")
    assert fast[:2] == ["False", "0"] and slow[:2] == ["True", "2"]
    assert fast[2] == slow[2]


def test_set_view_switches_what_is_rendered_and_observed():
    env = MagicalEnv("MoveToCorner-Demo-v0", resolution=32)
    reference = MagicalEnv("MoveToCorner-Demo-v0", resolution=32)
    reference.reset(seed=1)
    env.reset(seed=1)
    env.set_view("allo")
    assert env.view == "allo" and env.observation_space == spaces.Box(0, 255, (32, 32, 3), np.uint8)
    assert not env.magical_env.ego_view and env.magical_env.allo_view
    obs, *_ = env.step(3)
    ref, *_ = reference.step(3)
    np.testing.assert_array_equal(obs, ref["allo"])
    env.set_view("ego")
    obs, *_ = env.step(4)
    ref, *_ = reference.step(4)
    np.testing.assert_array_equal(obs, ref["ego"])
    env.set_view("both")
    obs, *_ = env.step(5)
    ref, *_ = reference.step(5)
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs["allo"], ref["allo"])
    np.testing.assert_array_equal(obs["ego"], ref["ego"])
    with pytest.raises(ValueError, match=r"view: expected one of \['both', 'allo', 'ego'\], got 'state'"):
        env.set_view("state")
    env.close()
    reference.close()
    for env, message in ((MagicalEnv("MoveToCorner-Demo-LoRes4A-v0"), "this one has the LoRes4A preprocessor"),
                         (MagicalEnv("MoveToCorner-Demo-v0", view="state"), 'this one has view="state"')):
        try:
            with pytest.raises(ValueError, match=f"set_view needs an image env without a preprocessor, {message}"):
                env.set_view("allo")
        finally:
            env.close()
