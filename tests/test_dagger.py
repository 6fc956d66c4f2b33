"""DAgger with the scripted experts (mint_rl.experiments.dagger, bc_magical.py --algo dagger)."""

import json

import numpy as np
import torch
import pytest
from imitation.algorithms.dagger import InteractiveTrajectoryCollector
from imitation.data import serialize
from stable_baselines3.common.vec_env import DummyVecEnv

from mint_rl.envs.demos import rollout_expert
from mint_rl.envs.experts import expert_for
from mint_rl.envs.state import read_state, unwrap_magical
from mint_rl.experiments.dagger import DaggerConfig, ExpertLabeller, collect_round
from mint_rl.experiments.magical_bc import BCExperimentConfig, make_env

TASK = "MoveToCorner"


def _venv(n: int) -> DummyVecEnv:
    return DummyVecEnv([lambda: make_env(TASK, "TestJitter", "state", history=2)] * n)


def _collected(tmp_path, beta: float, learner_action: int, first_seed: int, n: int = 2):
    venv = _venv(n)
    collector = InteractiveTrajectoryCollector(
        venv, get_robot_acts=lambda obs: np.full(len(obs), learner_action), beta=beta, save_dir=tmp_path,
        rng=np.random.default_rng(0))
    steps = collect_round(collector, ExpertLabeller(venv, TASK), first_seed)
    venv.close()
    trajs = [serialize.load(p)[0] for p in sorted(tmp_path.glob("*.npz"))]
    return steps, trajs


def test_every_state_the_learner_visits_is_labelled_with_the_experts_action(tmp_path):
    """beta = 0: the learner (always action 5) drives; each label is what a fresh expert says in
    the state the learner reached, replayed independently step by step."""
    steps, trajs = _collected(tmp_path, beta=0.0, learner_action=5, first_seed=300)
    assert len(trajs) == 2 and steps == sum(len(t.acts) for t in trajs) == 2 * 80
    for i in range(2):
        env = make_env(TASK, "TestJitter", "state", history=2)
        obs, _ = env.reset(seed=300 + i)
        traj = next(t for t in trajs if np.array_equal(t.obs[0], obs))  # the trajectory of sub-env i
        base = unwrap_magical(env)
        expert = expert_for(TASK)
        expert.reset(read_state(base))
        labels = []
        for _ in range(len(traj.acts)):
            labels.append(expert.act(read_state(base)))
            env.step(5)
        env.close()
        assert traj.acts.tolist() == labels
        assert len(set(labels)) > 1  # the expert disagrees with the constant learner: a real check


def test_with_beta_one_the_round_is_the_experts_own_episodes(tmp_path):
    steps, trajs = _collected(tmp_path, beta=1.0, learner_action=0, first_seed=400, n=1)
    env = make_env(TASK, "TestJitter", "state", history=2)
    reference = rollout_expert(env, 1, seed=400, progress=False)[0]
    env.close()
    assert steps == 80
    np.testing.assert_array_equal(trajs[0].acts, reference.acts)
    np.testing.assert_allclose(trajs[0].obs, reference.obs)


def test_dagger_config_schedule_and_errors():
    cfg = DaggerConfig(rounds=3, episodes=2, epochs=5)
    assert [cfg.beta(r) for r in range(4)] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])
    assert cfg.labels(4, 80) == 800
    for bad in ({"rounds": 0}, {"episodes": 100}, {"epochs": 1.5}, {"rounds": True}):
        with pytest.raises(ValueError, match="DaggerConfig"):
            DaggerConfig(**bad)
    assert BCExperimentConfig(task=TASK, dagger={"rounds": 2}).dagger == DaggerConfig(rounds=2)
    with pytest.raises(TypeError, match="dagger: expected a DaggerConfig"):
        BCExperimentConfig(task=TASK, dagger=3)
    with pytest.raises(ValueError, match="FindDupe has none"):
        BCExperimentConfig(task="FindDupe", dagger=DaggerConfig())


def _script(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _small_run(*, epochs: int = 2, eval_episodes: int = 2, dagger: tuple[int, int, int] | None = None) -> list[str]:
    """bc_magical.py arguments of a small state-agent run (one demo, one seed, Demo and TestJitter,
    argmax); ``dagger = (rounds, episodes, epochs)`` adds ``--algo dagger`` with those settings."""
    args = [TASK, "--agent", "state", "--n-demos", "1", "--seeds", "1", "--epochs", str(epochs),
            "--eval-episodes", str(eval_episodes), "--variants", "Demo", "TestJitter", "--modes", "argmax",
            "--no-progress", "--no-gif", "--jobs", "1"]
    if dagger is not None:
        rounds, episodes, round_epochs = dagger
        args += ["--algo", "dagger", "--dagger-rounds", str(rounds), "--dagger-episodes", str(episodes),
                 "--dagger-epochs", str(round_epochs)]
    return args


def test_bc_magical_algo_dagger_end_to_end(tmp_path, capsys):
    out = tmp_path / "dagger"
    assert _script("bc_magical").main([*_small_run(dagger=(2, 1, 1)), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "DAgger round 2/2: beta 0.00, 240 expert labels" in captured.err
    assert "240 expert labels per seed (BC with 3 demos has as many)" in captured.out
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["dagger"] == {"rounds": 2, "episodes": 1, "epochs": 1}
    rounds = sorted(p.name for p in (out / "dagger" / f"{TASK}-state-seed0" / "demos").iterdir())
    assert rounds == ["round-000", "round-001", "round-002"]
    assert len(list((out / "dagger" / f"{TASK}-state-seed0" / "demos" / "round-002").glob("*.npz"))) == 1
    assert _script("bc_table").main([str(out)]) == 0
    assert "| state, epochs=2, DAgger 2x1 episodes, 1 epochs/round |" in capsys.readouterr().out
    # the DAgger options need --algo dagger
    assert _script("bc_magical").main([*_small_run(), "--dagger-rounds", "5", "--out", str(tmp_path / "x")]) == 2
    assert "--dagger-rounds set without --algo dagger" in capsys.readouterr().err


def test_an_interrupted_dagger_seed_resumes_after_its_last_round_and_ends_as_an_uninterrupted_one(
        tmp_path, capsys, monkeypatch):
    import mint_rl.experiments.dagger as dagger_module
    from safetensors.torch import load_file

    common = _small_run(dagger=(2, 1, 2))
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert _script("bc_magical").main([*common, "--out", str(whole)]) == 0
    capsys.readouterr()

    collect = dagger_module.collect_round

    def interrupted(collector, labeller, first_seed):
        if (first_seed // 100) % 10 == 2:  # round 2: leave a partial round behind, then stop
            collector.save_dir.mkdir(parents=True, exist_ok=True)
            (collector.save_dir / "partial.npz").write_bytes(b"not a trajectory")
            raise KeyboardInterrupt("session ended")
        return collect(collector, labeller, first_seed)

    monkeypatch.setattr(dagger_module, "collect_round", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _script("bc_magical").main([*common, "--out", str(split)])
    scratch = split / "dagger" / f"{TASK}-state-seed0"
    assert (scratch / "checkpoint.pt").is_file() and (scratch / "demos" / "round-002" / "partial.npz").exists()
    monkeypatch.setattr(dagger_module, "collect_round", collect)
    assert _script("bc_magical").main([*common, "--out", str(split), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "DAgger resuming after round 1/2" in err and "DAgger round 0/2" not in err.split("resuming")[1]
    assert "DAgger round 2/2: beta 0.00, 240 expert labels" in err
    assert not (scratch / "demos" / "round-002" / "partial.npz").exists()
    a = load_file(str(whole / "policies" / f"{TASK}-state-seed0.safetensors"))
    b = load_file(str(split / "policies" / f"{TASK}-state-seed0.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    scores = [json.loads((d / "results.json").read_text())["scores"] for d in (whole, split)]
    assert scores[0] == scores[1]


def test_every_dagger_round_trains_the_policy_in_training_mode(tmp_path, monkeypatch):
    """The collector's predict() puts the policy in evaluation mode; imitation's BC.train does not
    undo it. A round trained in evaluation mode freezes BatchNorm's running statistics (the CNN
    agent): every round must train in training mode."""
    from imitation.algorithms import bc as imitation_bc

    modes: list[bool] = []
    train = imitation_bc.BC.train

    def recording(self, *args, **kwargs):
        modes.append(self.policy.training)
        return train(self, *args, **kwargs)

    monkeypatch.setattr(imitation_bc.BC, "train", recording)
    out = tmp_path / "dagger"
    assert _script("bc_magical").main([*_small_run(epochs=1, eval_episodes=1, dagger=(2, 1, 1)), "--out", str(out)]) == 0
    assert modes == [True, True, True]
