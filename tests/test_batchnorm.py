"""recalibrate_batchnorm: running statistics recomputed against a hand-computed reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mint_rl.policies import CnnAgentPolicy, recalibrate_batchnorm, recalibrate_policy_batchnorm
from mint_rl.policies.batchnorm import batchnorm_layers
from toy_keypoint_env import ToyKeypointEnv


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.BatchNorm2d(2))


def test_statistics_are_the_average_of_the_batch_statistics_and_nothing_else_changes():
    net = _net().eval()
    for bn in batchnorm_layers(net):  # stale statistics, as after a late jump of the weights
        bn.running_mean.fill_(50.0)
        bn.running_var.fill_(1e-3)
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    x = torch.randn(2, 16, 3, 9, 9) * 3 + 1
    assert recalibrate_batchnorm(net, [x[0], x[1]]) == 2
    # reference: each batch's per-channel mean and unbiased variance of the layer inputs, averaged
    with torch.no_grad():
        h1 = [net[0](b) for b in x]
        # the second layer sees the first one normalised with each batch's own (biased) statistics
        h2 = [net[3](torch.relu(net[1].weight.view(1, -1, 1, 1) * (h - h.mean((0, 2, 3), keepdim=True))
                                / torch.sqrt(h.var((0, 2, 3), unbiased=False, keepdim=True) + net[1].eps)
                                + net[1].bias.view(1, -1, 1, 1))) for h in h1]
    for bn, hs in ((net[1], h1), (net[4], h2)):
        mean = torch.stack([h.mean((0, 2, 3)) for h in hs]).mean(0)
        var = torch.stack([h.var((0, 2, 3), unbiased=True) for h in hs]).mean(0)
        torch.testing.assert_close(bn.running_mean, mean, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(bn.running_var, var, rtol=1e-5, atol=1e-5)
        assert bn.momentum == 0.1 and int(bn.num_batches_tracked) == 2
    assert not any(m.training for m in net.modules())  # eval mode restored
    after = net.state_dict()
    assert all(torch.equal(after[k], v) for k, v in weights.items())


def test_mixed_train_eval_modes_momentum_and_statistics_are_restored_on_error():
    net = _net().train()
    net[1].eval()
    net[4].momentum = 0.3
    net(torch.randn(4, 3, 9, 9))  # some statistics to keep
    before = {k: v.clone() for k, v in net.state_dict().items()}

    def failing(batch):
        net[0:2](batch)  # the first layer's statistics have moved when the error comes
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        recalibrate_batchnorm(net, [torch.randn(4, 3, 9, 9)], forward=failing)
    # a forward that never reaches the second BatchNorm layer
    with pytest.raises(ValueError, match=r"expected forward to run every BatchNorm layer, \['4'\] saw no batch"):
        recalibrate_batchnorm(net, [torch.randn(4, 3, 9, 9)], forward=lambda b: net[0:2](b))
    assert net.training and not net[1].training and net[4].training
    assert net[1].momentum == 0.1 and net[4].momentum == 0.3
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_errors_say_what_was_expected():
    with pytest.raises(ValueError, match="expected a module with BatchNorm layers.*got Linear with none"):
        recalibrate_batchnorm(nn.Linear(2, 2), [torch.randn(4, 2)])
    with pytest.raises(ValueError, match="expected at least one batch, got none"):
        recalibrate_batchnorm(_net(), [])
    env = ToyKeypointEnv(image=True)
    policy = CnnAgentPolicy(env.observation_space, env.action_space, lambda _: 1e-3)
    shape = env.observation_space.shape
    with pytest.raises(ValueError, match=r"expected observations of shape \(N, "):
        recalibrate_policy_batchnorm(policy, np.zeros(shape, dtype=np.uint8))
    with pytest.raises(ValueError, match="expected at least 32 observations, got 3"):
        recalibrate_policy_batchnorm(policy, np.zeros((3, *shape), dtype=np.uint8))
    with pytest.raises(ValueError, match="batch_size: expected >= 2, got 1"):
        recalibrate_policy_batchnorm(policy, np.zeros((3, *shape), dtype=np.uint8), batch_size=1)


def test_cnn_policy_in_eval_mode_agrees_with_training_mode_after_recalibration():
    """A policy with stale statistics acts differently in eval mode; recalibrated on one batch it
    reproduces the training-mode action distribution of that batch (up to the n/(n-1) of the variance)."""
    env = ToyKeypointEnv(image=True)
    torch.manual_seed(0)
    policy = CnnAgentPolicy(env.observation_space, env.action_space, lambda _: 1e-3)
    obs = np.stack([env.reset(seed=i)[0] for i in range(64)])
    tensor = policy.obs_to_tensor(obs)[0]
    for bn in batchnorm_layers(policy):
        bn.running_mean.normal_(0, 5)
        bn.running_var.uniform_(0.01, 0.1)
    with torch.no_grad():
        policy.set_training_mode(True)
        trained = policy.get_distribution(tensor).distribution.probs
        policy.set_training_mode(False)
        stale = policy.get_distribution(tensor).distribution.probs
    assert (stale - trained).abs().max() > 0.05
    # one batch with all 64 observations (the last partial batch rule keeps it whole)
    assert recalibrate_policy_batchnorm(policy, obs, batch_size=64) == 1
    assert not policy.training
    with torch.no_grad():
        fresh = policy.get_distribution(tensor).distribution.probs
    torch.testing.assert_close(fresh, trained, atol=2e-3, rtol=0)
    # batches of 40: the 24 left over (>= 40 // 2) make a second batch, 10 left over are dropped
    assert recalibrate_policy_batchnorm(policy, obs, batch_size=40) == 2
    assert recalibrate_policy_batchnorm(policy, obs[:50], batch_size=40) == 1


def test_policy_with_separate_actor_and_critic_extractors_recalibrates_both():
    env = ToyKeypointEnv(image=True)
    torch.manual_seed(0)
    policy = CnnAgentPolicy(env.observation_space, env.action_space, lambda _: 1e-3, share_features_extractor=False)
    layers = batchnorm_layers(policy)
    assert len(layers) == 10  # five in the actor's extractor, five in the critic's
    obs = np.stack([env.reset(seed=i)[0] for i in range(40)])
    rng = torch.get_rng_state()
    assert recalibrate_policy_batchnorm(policy, obs, batch_size=20) == 2
    assert torch.equal(torch.get_rng_state(), rng)  # deterministic forward: no random draw
    assert all(int(bn.num_batches_tracked) == 2 for bn in layers)
    pi, vf = policy.pi_features_extractor.cnn[2], policy.vf_features_extractor.cnn[2]
    # the critic's layers were reached too (reset statistics would be all zeros)
    assert not torch.equal(pi.running_mean, torch.zeros_like(pi.running_mean))
    assert not torch.equal(vf.running_mean, torch.zeros_like(vf.running_mean))
