"""Behaviour cloning (imitation's bc.BC + auxiliary next-keypoint loss) and score evaluation."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest
import torch
from imitation.data import rollout, types
from imitation.util import logger as imit_logger
from toy_keypoint_env import ToyKeypointEnv, expert_trajectories

from mint_rl.policies import (
    AuxiliaryBCLossCalculator,
    CnnAgentPolicy,
    MintBC,
    MintGraphPolicy,
    evaluate_policy_scores,
    jitter_keypoints,
    next_keypoint_loss,
    train_bc,
)


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def demos():
    return expert_trajectories(30, seed=0)


def _dataset_losses(policy, demos, aux_weight=1.0):
    """(neglogp, aux_loss) of ``policy`` on all transitions of ``demos``."""
    tr = rollout.flatten_trajectories(demos)
    next_obs = torch.as_tensor(np.array(tr.next_obs))
    calc = AuxiliaryBCLossCalculator(ent_weight=0.0, l2_weight=0.0, aux_weight=aux_weight, next_obs_source=lambda: next_obs)
    policy.set_training_mode(False)
    with torch.no_grad():
        m = calc(policy, tr.obs, tr.acts)
    return float(m.neglogp), float(m.aux_loss)


def test_next_keypoint_loss_ignores_inactive_keypoints():
    next_obs = torch.zeros(2, 3, 4, 3)
    next_obs[:, -1, :2, 2] = 1.0  # keypoints 0, 1 active in the last frame
    next_obs[:, -1, :, :2] = torch.randn(2, 4, 2)
    exact = next_obs[:, -1, :, :2].clone()
    assert float(next_keypoint_loss(exact, next_obs)) == 0.0
    wrong_inactive = exact.clone()
    wrong_inactive[:, 2:] += 3.0
    assert float(next_keypoint_loss(wrong_inactive, next_obs)) == 0.0
    wrong_active = exact.clone()
    wrong_active[:, 0] += torch.tensor([0.3, 0.4])  # squared distance 0.25 on 2 of 4 active entries
    assert float(next_keypoint_loss(wrong_active, next_obs)) == pytest.approx(0.125)
    with pytest.raises(ValueError, match="expected predicted keypoints"):
        next_keypoint_loss(exact[:, :3], next_obs)


def test_bc_reduces_both_losses_and_beats_random(demos):
    env = ToyKeypointEnv()
    torch.manual_seed(0)
    untrained = MintGraphPolicy(env.observation_space, env.action_space, lambda _: 1e-3)
    nll0, aux0 = _dataset_losses(untrained, demos)
    policy = train_bc(demos, env.observation_space, env.action_space, epochs=30, seed=0, device="cpu", progress_bar=False)
    assert isinstance(policy, MintGraphPolicy) and not policy.training
    nll1, aux1 = _dataset_losses(policy, demos)
    assert nll1 < 0.6 * nll0
    # the untrained head already predicts "no motion"; only the agent's own motion is learnable
    assert aux1 < 0.95 * aux0  # the action loss takes most of the shared capacity (flatten readout)

    bc_scores = evaluate_policy_scores(policy, ToyKeypointEnv, n_episodes=20, seed=10_000)

    class RandomPolicy:
        def __init__(self):
            self.rng = np.random.default_rng(0)

        def predict(self, obs, deterministic=True):
            return self.rng.integers(5), None

    random_scores = evaluate_policy_scores(RandomPolicy(), ToyKeypointEnv, n_episodes=20, seed=10_000)
    assert len(bc_scores) == 20 and set(bc_scores) <= {0.0, 1.0}
    assert np.mean(bc_scores) >= np.mean(random_scores) + 0.4


def test_aux_loss_sees_the_successor_of_every_batch_observation(demos, tmp_path):
    """The recorded next_obs must be the true next observation of each obs in the batch."""
    successor = {}
    for traj in demos:
        for t in range(len(traj.acts)):
            successor[traj.obs[t].tobytes()] = traj.obs[t + 1]
    env = ToyKeypointEnv()
    policy = MintGraphPolicy(env.observation_space, env.action_space, lambda _: 1e-3)
    trainer = MintBC(
        observation_space=env.observation_space,
        action_space=env.action_space,
        rng=np.random.default_rng(0),
        policy=policy,
        demonstrations=demos,
        batch_size=16,
        aux_weight=0.5,
        shuffle_seed=0,
        device="cpu",
        custom_logger=imit_logger.configure(str(tmp_path), format_strs=[]),
    )
    inner = trainer.loss_calculator
    checked = []

    def spy(policy, obs, acts):
        next_obs = np.asarray(inner.next_obs_source())
        for o, n in zip(np.asarray(obs.cpu()), next_obs):
            assert np.array_equal(successor[o.tobytes()], n)
        metrics = inner(policy, obs, acts)
        checked.append(float(metrics.aux_loss))
        return metrics

    trainer.loss_calculator = spy
    trainer.train(n_batches=3, progress_bar=False)
    assert len(checked) == 3 and all(v > 0 for v in checked)


def test_train_bc_is_seeded_and_logs_aux_loss(demos, tmp_path):
    env = ToyKeypointEnv()
    kwargs = dict(epochs=1, batch_size=32, seed=3, device="cpu", progress_bar=False)
    a = train_bc(demos, env.observation_space, env.action_space, log_dir=str(tmp_path), **kwargs)
    b = train_bc(demos, env.observation_space, env.action_space, **kwargs)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    with open(tmp_path / "progress.csv") as f:
        header = next(csv.reader(f))
    assert "bc/aux_loss" in header and "bc/neglogp" in header


def test_jitter_keypoints_moves_positions_only_with_the_given_spread():
    g = torch.Generator().manual_seed(0)
    obs = torch.rand(64, 4, 25, 3, generator=g) * 1.6 - 0.8  # stays clear of the [-1, 1] clamp
    obs[..., 2] = (obs[..., 2] > 0).float()
    out = jitter_keypoints(obs, 0.02, torch.Generator().manual_seed(1))
    delta = out[..., :2] - obs[..., :2]
    assert torch.equal(out[..., 2], obs[..., 2])
    assert abs(float(delta.std()) - 0.02) < 0.001 and abs(float(delta.mean())) < 0.001
    assert float((delta[..., 0] * delta[..., 1]).mean()) < 1e-5  # x and y drawn independently
    same = jitter_keypoints(obs, 0.02, torch.Generator().manual_seed(1))
    assert torch.equal(same, out)
    edge = jitter_keypoints(torch.ones(2, 1, 3, 3), 0.5, torch.Generator().manual_seed(2))
    assert float(edge[..., :2].max()) <= 1.0
    with pytest.raises(ValueError, match=r"\(B, history, K, F\), F >= 3"):
        jitter_keypoints(torch.zeros(2, 3, 3), 0.1)
    # extra features (the orientation) pass through untouched
    rows5 = torch.cat([obs, torch.rand(64, 4, 25, 2, generator=g)], dim=-1)
    out5 = jitter_keypoints(rows5, 0.02, torch.Generator().manual_seed(1))
    assert torch.equal(out5[..., 2:], rows5[..., 2:]) and torch.equal(out5[..., :3], out)
    with pytest.raises(ValueError, match="sigma"):
        jitter_keypoints(obs, -0.1)


def test_keypoint_noise_changes_training_only_and_is_seeded(demos):
    env = ToyKeypointEnv()
    kwargs = dict(epochs=2, batch_size=32, seed=3, device="cpu", progress_bar=False)
    plain = train_bc(demos, env.observation_space, env.action_space, **kwargs)
    noisy = train_bc(demos, env.observation_space, env.action_space, keypoint_noise=0.05, **kwargs)
    again = train_bc(demos, env.observation_space, env.action_space, keypoint_noise=0.05, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(noisy.parameters(), again.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(noisy.parameters(), plain.parameters()))
    # the calculator leaves observations alone when the policy is not training
    calc = AuxiliaryBCLossCalculator(ent_weight=0.0, l2_weight=0.0, aux_weight=0.0, keypoint_noise=0.5)
    obs = torch.as_tensor(np.array(rollout.flatten_trajectories(demos).obs[:8]))
    acts = torch.as_tensor(np.array(rollout.flatten_trajectories(demos).acts[:8]))
    noisy.set_training_mode(False)
    assert torch.equal(calc(noisy, obs, acts).neglogp, calc(noisy, obs, acts).neglogp)
    noisy.set_training_mode(True)
    assert not torch.equal(calc(noisy, obs, acts).neglogp, calc(noisy, obs, acts).neglogp)


def test_train_bc_cnn_agent_reduces_loss():
    demos = expert_trajectories(6, seed=0, image=True)
    env = ToyKeypointEnv(image=True)
    torch.manual_seed(0)
    nll0, _ = _dataset_losses(CnnAgentPolicy(env.observation_space, env.action_space, lambda _: 1e-3), demos, 0.0)
    policy = train_bc(
        demos, env.observation_space, env.action_space, agent="cnn", epochs=6, batch_size=16, device="cpu", progress_bar=False
    )
    assert isinstance(policy, CnnAgentPolicy) and not policy.training
    nll1, _ = _dataset_losses(policy, demos, 0.0)
    assert nll1 < nll0


def test_train_bc_state_agent_learns_a_state_rule_and_saves(tmp_path):
    from mint_rl.policies import StateAgentPolicy
    from mint_rl.policies.serialization import load_policy

    # demos whose action is a function of the state: act = 0 if x > 0 else 1
    rng = np.random.default_rng(0)
    trajs = []
    for _ in range(8):
        obs = rng.uniform(-1, 1, (21, 6)).astype(np.float32)
        trajs.append(types.Trajectory(obs=obs, acts=(obs[:-1, 0] <= 0).astype(np.int64), infos=None, terminal=True))
    space = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)
    policy = train_bc(trajs, space, gym.spaces.Discrete(2), agent="state", epochs=30, batch_size=16, device="cpu",
                      progress_bar=False)
    assert isinstance(policy, StateAgentPolicy) and not policy.training
    test = rng.uniform(-1, 1, (200, 6)).astype(np.float32)
    acc = float((policy.predict(test, deterministic=True)[0] == (test[:, 0] <= 0)).mean())
    assert acc > 0.9  # random: 0.5
    loaded = load_policy(policy.save(tmp_path / "state.safetensors"))
    assert isinstance(loaded, StateAgentPolicy)
    np.testing.assert_array_equal(loaded.predict(test, deterministic=True)[0], policy.predict(test, deterministic=True)[0])


def test_train_bc_argument_errors(demos):
    env = ToyKeypointEnv()
    spaces = (env.observation_space, env.action_space)
    with pytest.raises(ValueError, match="agent must be"):
        train_bc(demos, *spaces, agent="mlp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aux_weight must be 0"):
        train_bc(demos, *spaces, agent="cnn", aux_weight=1.0)
    with pytest.raises(ValueError, match="state agent has no next-keypoint head"):
        train_bc(demos, *spaces, agent="state", aux_weight=0.5)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        train_bc(demos[:1], *spaces, batch_size=1000)
    with pytest.raises(ValueError, match="no demonstrations"):
        train_bc([], *spaces)
    with pytest.raises(ValueError, match="MINT agent only"):
        train_bc(demos, *spaces, agent="cnn", aux_weight=0.0, keypoint_noise=0.02)


def test_evaluate_policy_scores_prefers_eval_score_and_falls_back_to_return():
    class NoScore(gym.Wrapper):
        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, 2.0 * reward + 0.5, terminated, truncated, {}

    class Expert:
        def __init__(self, env):
            self.env = env

        def predict(self, obs, deterministic=True):
            return np.array(self.env.unwrapped.expert_action()), None

    env = ToyKeypointEnv()
    assert evaluate_policy_scores(Expert(env), lambda: env, n_episodes=3) == [1.0, 1.0, 1.0]
    wrapped = NoScore(ToyKeypointEnv())
    scores = evaluate_policy_scores(Expert(wrapped), lambda: wrapped, n_episodes=2)
    # expert reaches the goal: reward 1 on the last step, +0.5 every step
    assert all(s > 2.0 and (s - 2.0) / 0.5 == int((s - 2.0) / 0.5) for s in scores)


def test_benchmark_bc_script_prints_its_machine_readable_line(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_bc.py"
    spec = importlib.util.spec_from_file_location("benchmark_bc", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--batch-size", "2", "--steps", "1", "--repeats", "1"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    values = dict(kv.split("=") for kv in last.split())
    assert list(values) == ["cnn_fp32_s", "cnn_bf16_s", "bf16_speedup", "mint_s"]
    assert all(float(v) > 0 for v in values.values())
    assert abs(float(values["bf16_speedup"]) - float(values["cnn_fp32_s"]) / float(values["cnn_bf16_s"])) < 0.02
