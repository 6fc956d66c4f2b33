"""Demonstration I/O: expert rollouts, our npz format, MAGICAL human demos, replay, make_demos.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mint_rl.envs.demos import (
    FORMAT_VERSION,
    DemoFormatError,
    load_demo_set,
    load_demos,
    load_human_demos,
    replay_human_demo,
    rollout_expert,
    save_demos,
    trajectory_scores,
)
from mint_rl.envs.magical import make_magical_env

HUMAN_DEMOS = Path(__file__).resolve().parents[2] / "shared" / "magical-demos"
needs_human_demos = pytest.mark.skipif(not HUMAN_DEMOS.is_dir(), reason=f"no human demos at {HUMAN_DEMOS}")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def expert_trajs():
    env = make_magical_env("MoveToRegion", "TestJitter", view="allo", resolution=32)
    try:
        return rollout_expert(env, 2, seed=5, progress=False)
    finally:
        env.close()


def test_rollout_expert_trajectories(expert_trajs):
    from imitation.data import rollout, types

    assert len(expert_trajs) == 2
    for traj in expert_trajs:
        assert isinstance(traj, types.Trajectory)
        assert traj.obs.shape == (41, 32, 32, 3) and traj.obs.dtype == np.uint8
        assert traj.acts.shape == (40,) and traj.acts.dtype == np.int64
        assert traj.acts.min() >= 0 and traj.acts.max() < 18
        assert [i["eval_score"] for i in traj.infos[:-1]] == [0.0] * 39
    np.testing.assert_array_equal(trajectory_scores(expert_trajs), [1.0, 1.0])
    # BC-ready: imitation flattens them into fixed-size transitions
    transitions = rollout.flatten_trajectories(expert_trajs)
    assert transitions.obs.shape == (80, 32, 32, 3)


def test_rollout_is_seeded(expert_trajs):
    again = rollout_expert("MoveToRegion-TestJitter-v0", 1, seed=6,
                           env_kwargs={"view": "allo", "resolution": 32}, progress=False)
    np.testing.assert_array_equal(again[0].obs, expert_trajs[1].obs)
    np.testing.assert_array_equal(again[0].acts, expert_trajs[1].acts)


def test_action_noise_records_expert_labels_and_executes_random_actions():
    """DART-style demos: the trajectory holds the expert's actions, the env got noisy ones."""
    import gymnasium

    from mint_rl.envs.experts import expert_for

    executed, labels = [], []

    class Recorder(gymnasium.Wrapper):
        def step(self, action):
            executed.append(int(action))
            return self.env.step(action)

    class LabelExpert:
        def __init__(self):
            self.inner = expert_for("MoveToCorner")

        def reset(self, state):
            self.inner.reset(state)

        def act(self, state):
            labels.append(int(self.inner.act(state)))
            return labels[-1]

    env = Recorder(make_magical_env("MoveToCorner", "TestJitter", view="state"))
    try:
        noisy = rollout_expert(env, 2, seed=3, expert_factory=LabelExpert, progress=False, action_noise=0.3)
        n_noisy = len(executed)
        clean = rollout_expert(env, 2, seed=3, progress=False)
    finally:
        env.close()
    acts = np.concatenate([t.acts for t in noisy])
    np.testing.assert_array_equal(acts, labels)  # labels are the expert's choices
    differs = np.mean(np.array(executed[:n_noisy]) != acts)
    assert 0.15 < differs < 0.35  # ~0.3 * 17/18 of the executed actions were replaced
    assert not all(np.array_equal(a.obs, b.obs) for a, b in zip(noisy, clean))
    again = rollout_expert("MoveToCorner-TestJitter-v0", 2, seed=3, env_kwargs={"view": "state"}, progress=False,
                           action_noise=0.3)
    for a, b in zip(noisy, again):  # reproducible per seed
        np.testing.assert_array_equal(a.acts, b.acts)
    with pytest.raises(ValueError, match="action_noise"):
        rollout_expert(env, 1, action_noise=1.5)


def test_roundtrip_array_obs(expert_trajs, tmp_path):
    path = save_demos(tmp_path / "demos", expert_trajs, "MoveToRegion-TestJitter-v0", seeds=[5, 6])
    assert path.name == "demos.npz"
    loaded = load_demo_set(path)
    assert loaded.metadata["version"] == FORMAT_VERSION
    assert loaded.metadata["env_id"] == "MoveToRegion-TestJitter-v0"
    assert loaded.metadata["seeds"] == [5, 6]
    assert loaded.metadata["observation"]["spec"][""] == {"shape": [32, 32, 3], "dtype": "uint8"}
    for a, b in zip(expert_trajs, loaded.trajectories):
        np.testing.assert_array_equal(a.obs, b.obs)
        np.testing.assert_array_equal(a.acts, b.acts)
    np.testing.assert_array_equal(loaded.scores, trajectory_scores(expert_trajs))


def test_roundtrip_dict_obs(tmp_path):
    from imitation.data import types

    trajs = rollout_expert("MoveToRegion-Demo-v0", 1, seed=0,
                           env_kwargs={"view": "both", "resolution": 16}, progress=False)
    assert isinstance(trajs[0].obs, types.DictObs)
    loaded = load_demos(save_demos(tmp_path / "d.npz", trajs, "MoveToRegion-Demo-v0"))
    assert isinstance(loaded[0].obs, types.DictObs)
    for key in ("allo", "ego"):
        np.testing.assert_array_equal(loaded[0].obs.get(key), trajs[0].obs.get(key))


def test_corrupted_truncated_and_foreign_files_raise(expert_trajs, tmp_path):
    path = save_demos(tmp_path / "good.npz", expert_trajs, "MoveToRegion-TestJitter-v0")
    raw = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DemoFormatError, match="corrupted or truncated"):
        load_demos(truncated)
    corrupted = tmp_path / "corrupted.npz"
    data = bytearray(raw)
    mid = len(data) // 3
    data[mid : mid + 64] = bytes(64)
    corrupted.write_bytes(bytes(data))
    with pytest.raises(DemoFormatError):
        load_demos(corrupted)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, obs=np.zeros((2, 2)))
    with pytest.raises(DemoFormatError, match="metadata"):
        load_demos(foreign)
    # a future version is refused, not misread
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["metadata"]).decode())
    meta["version"] = FORMAT_VERSION + 1
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    future = tmp_path / "future.npz"
    np.savez(future, **arrays)
    with pytest.raises(DemoFormatError, match="version"):
        load_demos(future)
    with pytest.raises(FileNotFoundError):
        load_demos(tmp_path / "missing.npz")


def test_save_rejects_bad_input(expert_trajs, tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        save_demos(tmp_path / "x.npz", [], "MoveToRegion-Demo-v0")
    with pytest.raises(ValueError, match="MoveToRegion"):
        save_demos(tmp_path / "x.npz", expert_trajs, "MoveToRegoin-Demo-v0")
    with pytest.raises(ValueError, match="seeds"):
        save_demos(tmp_path / "x.npz", expert_trajs, "MoveToRegion-Demo-v0", seeds=[1])
    assert not list(tmp_path.iterdir())


@needs_human_demos
def test_load_human_demos():
    from imitation.data import types

    trajs = load_human_demos(HUMAN_DEMOS, "MoveToRegion", view="allo", resolution=48, limit=2)
    assert len(trajs) == 2
    for t in trajs:
        assert t.obs.shape == (41, 48, 48, 3) and t.obs.dtype == np.uint8
        assert t.acts.shape == (40,) and t.infos[0]["env_id"] == "MoveToRegion-Demo-v0"
    np.testing.assert_array_equal(trajectory_scores(trajs), [1.0, 1.0])
    both = load_human_demos(HUMAN_DEMOS / "move-to-region", view="both", resolution=24, limit=1)
    assert isinstance(both[0].obs, types.DictObs) and both[0].obs.get("ego").shape == (41, 24, 24, 3)


@needs_human_demos
def test_human_demos_as_lores4a_match_the_env():
    import gymnasium

    trajs = load_human_demos(HUMAN_DEMOS / "move-to-corner", view="allo", resolution=96, frame_stack=4, limit=1)
    obs = trajs[0].obs
    assert obs.shape == (81, 96, 96, 12)
    # frame t holds frames t-3..t, oldest first
    np.testing.assert_array_equal(obs[5, ..., 9:], obs[6, ..., 6:9])
    env = gymnasium.make("magical/MoveToCorner-Demo-LoRes4A-v0")
    try:
        first, _ = env.reset(seed=0)
    finally:
        env.close()
    np.testing.assert_array_equal(obs[0], first)  # the recorded start state, as LoRes4A sees it


def test_rollout_expert_accepts_a_gymnasium_made_env():
    import gymnasium

    env = gymnasium.make("magical/MoveToCorner-TestJitter-LoRes4A-v0")
    try:
        trajs = rollout_expert(env, 1, seed=2, progress=False)
    finally:
        env.close()
    assert trajs[0].obs.shape == (81, 96, 96, 12)
    assert trajectory_scores(trajs)[0] >= 0.9


@needs_human_demos
@pytest.mark.parametrize("folder", ["move-to-region", "move-to-corner"])
def test_replay_reproduces_recorded_score(folder):
    path = sorted((HUMAN_DEMOS / folder).glob("*.pkl.gz"))[0]
    result = replay_human_demo(path)
    assert result.score_reproduced, result
    # start state matched: same first frame up to the goal outline's rendering (MoveToRegion)
    assert result.first_frame_diff_pixels < 500, result


@needs_human_demos
def test_replay_make_line_start_state_matches():
    # MakeLine replays drift (see README), but the start state is the recorded one exactly
    path = sorted((HUMAN_DEMOS / "make-line").glob("*.pkl.gz"))[0]
    result = replay_human_demo(path)
    assert result.first_frame_max_diff == 0


def _load_script():
    spec = importlib.util.spec_from_file_location("make_demos", REPO / "scripts" / "make_demos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_demos_script(tmp_path, capsys):
    script = _load_script()
    mean = script.main(["MoveToRegion", "--variant", "TestJitter", "--episodes", "2", "--seed", "3",
                        "--view", "state", "--out", str(tmp_path), "--no-progress"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"mean_score={mean}" and mean == 1.0
    assert sum(line.startswith("episode") for line in lines) == 2
    loaded = load_demo_set(tmp_path / "MoveToRegion-TestJitter-v0.npz")
    assert loaded.metadata["seeds"] == [3, 4] and len(loaded.trajectories) == 2


# ---------------------------------------------------------------------------------- human demo files that must fail loudly
# Small fake MAGICAL demo files (same pickle structure as the real ones: a dict holding a
# milbench MILBenchTrajectory of int64 actions and a list of OrderedDict allo/ego frames), so
# these tests need no ../shared/magical-demos.


@pytest.fixture
def write_fake_demo(monkeypatch):
    """``write(path, n_acts=3, n_frames=None, size=16, ...)`` writes a fake MAGICAL demo ``.pkl.gz``."""
    import collections
    import gzip
    import pickle
    import sys
    import types
    from typing import Any, NamedTuple

    module_name = "milbench.baselines.saved_trajectories"
    for name in ("milbench", "milbench.baselines", module_name):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))

    class MILBenchTrajectory(NamedTuple):
        acts: Any
        obs: Any
        rews: Any
        infos: Any

    MILBenchTrajectory.__module__, MILBenchTrajectory.__qualname__ = module_name, "MILBenchTrajectory"
    sys.modules[module_name].MILBenchTrajectory = MILBenchTrajectory

    def write(path, n_acts=3, n_frames=None, size=16, env_name="MoveToRegion-Demo-v0", score=1.0, views=("allo", "ego")):
        rng = np.random.default_rng(0)
        n_frames = n_acts + 1 if n_frames is None else n_frames
        obs = [collections.OrderedDict((v, rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for v in views)
               for _ in range(n_frames)]
        traj = MILBenchTrajectory(acts=rng.integers(0, 18, n_acts).astype(np.int64), obs=obs, rews=[0.0] * n_acts,
                                  infos=[{"eval_score": 0.0}] * n_acts)
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wb") as fh:
            pickle.dump({"trajectory": traj, "score": score, "env_name": env_name}, fh, protocol=4)
        return path

    return write


def test_fake_human_demo_loads_like_a_real_one(tmp_path, write_fake_demo):
    import gzip
    import pickletools

    path = write_fake_demo(tmp_path / "demo-MoveToRegion-Demo-v0-000.pkl.gz", n_acts=3)
    with gzip.open(path) as fh:  # the fake references the globals the real files do
        opcodes = {op.name for op, _, _ in pickletools.genops(fh.read())}
    assert "STACK_GLOBAL" in opcodes
    [traj] = load_human_demos(tmp_path, "MoveToRegion", view="allo", resolution=8)
    assert traj.obs.shape == (4, 8, 8, 3) and traj.acts.shape == (3,) and traj.infos[-1]["eval_score"] == 1.0
    assert traj.infos[0]["env_id"] == "MoveToRegion-Demo-v0" and traj.infos[0]["demo_path"] == str(path)


def test_human_demo_arguments_are_checked_without_the_demo_files(tmp_path, write_fake_demo):
    write_fake_demo(tmp_path / "demo-MoveToRegion-Demo-v0-000.pkl.gz")
    with pytest.raises(ValueError, match="MoveToCorner"):
        load_human_demos(tmp_path, "MoveToKorner")
    with pytest.raises(ValueError, match=r"view: expected one of \['allo', 'ego', 'both'\], got 'top'"):
        load_human_demos(tmp_path, "MoveToRegion", view="top")
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=f"limit: expected None or an integer >= 1, got {bad!r}"):
            load_human_demos(tmp_path, "MoveToRegion", limit=bad)
    with pytest.raises(FileNotFoundError, match="for task='MakeLine'"):
        load_human_demos(tmp_path, "MakeLine")


def test_truncated_and_corrupt_human_demos_raise_naming_the_file(tmp_path, write_fake_demo):
    import gzip

    good = write_fake_demo(tmp_path / "good" / "demo-MoveToRegion-Demo-v0-000.pkl.gz").read_bytes()
    truncated = tmp_path / "truncated" / "demo-MoveToRegion-Demo-v0-000.pkl.gz"
    truncated.parent.mkdir()
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(DemoFormatError, match=rf"{truncated}: not a readable MAGICAL demo, truncated or corrupt \(EOFError"):
        load_human_demos(truncated)
    not_gzip = tmp_path / "not-gzip.pkl.gz"
    not_gzip.write_bytes(b"this is no gzip stream")
    with pytest.raises(DemoFormatError, match=rf"{not_gzip}: not a readable MAGICAL demo, truncated or corrupt"):
        load_human_demos(not_gzip)
    bad_pickle = tmp_path / "bad-pickle.pkl.gz"
    with gzip.open(bad_pickle, "wb") as fh:
        fh.write(b"\x80\x04\x95garbage that is no pickle")
    with pytest.raises(DemoFormatError, match=rf"{bad_pickle}: not a readable MAGICAL demo"):
        load_human_demos(bad_pickle)
    not_a_demo = tmp_path / "list.pkl.gz"
    with gzip.open(not_a_demo, "wb") as fh:
        fh.write(__import__("pickle").dumps([1, 2, 3]))
    with pytest.raises(DemoFormatError, match=rf"{not_a_demo}: expected a dict with trajectory/score/env_name, got list"):
        load_human_demos(not_a_demo)


def test_human_demo_frames_and_actions_must_agree(tmp_path, write_fake_demo):
    short = write_fake_demo(tmp_path / "short.pkl.gz", n_acts=3, n_frames=3)
    with pytest.raises(DemoFormatError, match=rf"{short}: expected len\(actions\) \+ 1 = 4 frames, got 3 frames for 3 actions"):
        load_human_demos(short)
    ego_only = write_fake_demo(tmp_path / "ego.pkl.gz", views=("ego",))
    with pytest.raises(DemoFormatError, match=rf"{ego_only}: frame 0: expected a dict with the views \['allo'\], got \['ego'\]"):
        load_human_demos(ego_only, view="allo")


def test_human_demo_pickles_may_only_reference_magical_demo_classes(tmp_path):
    import gzip
    import os
    import pickle

    from mint_rl.envs.demos import DemoUnpickler

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    evil = tmp_path / "evil.pkl.gz"
    with gzip.open(evil, "wb") as fh:
        pickle.dump({"trajectory": Exploit(), "score": 1.0, "env_name": "MoveToRegion-Demo-v0"}, fh)
    with pytest.raises(DemoFormatError, match=rf"{evil}: refusing to unpickle the global (os|posix|nt)\.system; "
                                              r"a MAGICAL demo file only references \["):
        load_human_demos(evil)
    assert not marker.exists()  # nothing of the file ran
    with gzip.open(evil, "wb") as fh:
        pickle.dump({"score": eval}, fh)
    with pytest.raises(DemoFormatError, match=r"refusing to unpickle the global builtins\.eval"):
        load_human_demos(evil)
    assert issubclass(DemoUnpickler, pickle.Unpickler)
