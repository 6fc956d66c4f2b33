"""SB3 plug-ins: KeypointGraphExtractor, MintGraphPolicy, the CNN agent."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy
from toy_keypoint_env import ToyKeypointEnv

import mint_rl.policies.interaction_network as interaction_network_module
from mint_rl.policies import (
    CnnAgentExtractor,
    CnnAgentPolicy,
    InteractionNetworkConfig,
    KeypointGraphExtractor,
    MintGraphPolicy,
)


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _space(history: int = 4, k: int = 6) -> gym.spaces.Box:
    return gym.spaces.Box(-1.0, 1.0, (history, k, 3), np.float32)


def _batch(space: gym.spaces.Box, b: int) -> torch.Tensor:
    return torch.as_tensor(np.stack([space.sample() for _ in range(b)]))


# ----------------------------------------------------------------------------- extractor
@pytest.mark.parametrize("history,k", [(4, 6), (2, 9)])
def test_extractor_builds_one_complete_graph_per_sample(monkeypatch, history, k):
    seen = []
    original = interaction_network_module.keypoint_graph_batch

    def spy(obs, edge_template=None, mask_inactive=False):
        graph = original(obs, edge_template=edge_template, mask_inactive=mask_inactive)
        seen.append(graph)
        return graph

    monkeypatch.setattr(interaction_network_module, "keypoint_graph_batch", spy)
    space = _space(history, k)
    extractor = KeypointGraphExtractor(space, features_dim=24)
    b = 5
    out = extractor(_batch(space, b))
    assert out.shape == (b, 24)
    (graph,) = seen
    assert graph.num_graphs == b
    assert torch.equal(torch.bincount(graph.batch), torch.full((b,), k))
    edges_per_graph = torch.bincount(graph.batch[graph.edge_index[0]], minlength=b)
    assert torch.equal(edges_per_graph, torch.full((b,), k * (k - 1)))
    assert torch.equal(graph.batch[graph.edge_index[0]], graph.batch[graph.edge_index[1]])
    assert graph.x.shape == (b * k, 3 * history)


def test_extractor_rejects_observations_of_another_shape():
    extractor = KeypointGraphExtractor(_space(4, 6))
    with pytest.raises(ValueError, match="expected K=6"):
        extractor(torch.zeros(2, 4, 7, 3))
    with pytest.raises(TypeError, match="Box"):
        KeypointGraphExtractor(gym.spaces.Discrete(3))  # type: ignore[arg-type]


@pytest.mark.parametrize("pooling", ["sum", "attention"])
def test_extractor_features_match_the_network_pooling(pooling):
    space = _space()
    torch.manual_seed(0)
    extractor = KeypointGraphExtractor(space, features_dim=16, config=InteractionNetworkConfig(pooling=pooling))
    obs = _batch(space, 3)
    pooled = extractor.network.pool(extractor.network.node_embeddings(obs))
    assert torch.allclose(extractor(obs), extractor.projection(pooled), atol=1e-5)
    features, nxt = extractor.forward_with_next_keypoints(obs)
    assert torch.allclose(features, extractor(obs)) and nxt.shape == (3, 6, 2)


# ----------------------------------------------------------------------------- MintGraphPolicy
def test_ppo_with_mint_graph_policy_updates_and_predicts():
    env = ToyKeypointEnv()
    model = PPO(MintGraphPolicy, env, n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    assert isinstance(model.policy.features_extractor, KeypointGraphExtractor)
    changed = [not torch.equal(a, p) for a, p in zip(before, model.policy.parameters())]
    assert sum(changed) > len(changed) // 2
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))


class SideBandit(gym.Env):
    """One-step episodes on keypoint observations: reward 1 for action 1 when keypoint 0 lies right
    of the centre (x > 0), for action 0 otherwise. A random policy scores 0.5."""

    def __init__(self, num_keypoints: int = 3, history: int = 2) -> None:
        self.k, self.history = num_keypoints, history
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (history, num_keypoints, 3), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        xy = self.np_random.uniform(-1, 1, (self.k, 2)).astype(np.float32)
        frame = np.concatenate([xy, np.ones((self.k, 1), np.float32)], axis=1)
        self.obs = np.repeat(frame[None], self.history, axis=0)
        return self.obs, {}

    def step(self, action):
        reward = float(int(action) == int(self.obs[-1, 0, 0] > 0))
        return self.obs, reward, True, False, {}


def _bandit_accuracy(model, episodes: int = 200) -> float:
    env = SideBandit()
    hits = 0.0
    for i in range(episodes):
        obs, _ = env.reset(seed=10_000 + i)
        hits += env.step(model.predict(obs, deterministic=True)[0])[1]
    return hits / episodes


def test_ppo_with_mint_graph_policy_learns_a_keypoint_rule():
    """PPO with the interaction-network policy learns which side keypoint 0 is on (held-out observations)."""
    model = PPO(MintGraphPolicy, SideBandit(), n_steps=128, batch_size=64, n_epochs=4, learning_rate=1e-3,
                seed=0, device="cpu")
    before = _bandit_accuracy(model)
    model.learn(total_timesteps=1024)
    after = _bandit_accuracy(model)
    assert before < 0.7 and after >= 0.9, (before, after)


def test_saved_ppo_with_mint_policy_loads_cleanly_and_continues_training(tmp_path, capsys):
    """SB3's own save/load of a PPO(MintGraphPolicy) model: no deserialisation failure (gym 0.17 pins a
    cloudpickle that cannot read Python 3.11 code; install.sh installs one that can), same
    predictions, and training goes on from the loaded step count."""
    import warnings

    model = PPO(MintGraphPolicy, SideBandit(), n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64)
    model.save(tmp_path / "ppo")
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = PPO.load(tmp_path / "ppo", env=SideBandit(), device="cpu")
    out = capsys.readouterr()
    messages = [str(w.message) for w in caught] + out.out.splitlines() + out.err.splitlines()
    assert not [m for m in messages if "xception" in m or "deserializ" in m], messages
    assert callable(loaded.lr_schedule) and callable(loaded.clip_range)  # the pickled schedules came back
    obs, _ = SideBandit().reset(seed=3)
    assert model.predict(obs, deterministic=True)[0] == loaded.predict(obs, deterministic=True)[0]
    loaded.learn(total_timesteps=64, reset_num_timesteps=False)
    assert loaded.num_timesteps == 128


def test_ppo_with_policy_kwargs_extractor_class():
    env = ToyKeypointEnv(num_keypoints=4, history=2)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=32,
        batch_size=16,
        n_epochs=1,
        policy_kwargs=dict(features_extractor_class=KeypointGraphExtractor, features_extractor_kwargs=dict(features_dim=20)),
        device="cpu",
        seed=0,
    )
    model.learn(total_timesteps=64)
    assert isinstance(model.policy.features_extractor, KeypointGraphExtractor)
    assert model.policy.features_extractor.num_keypoints == 4 and model.policy.features_dim == 20


def test_evaluate_actions_with_next_keypoints_agrees_with_sb3():
    env = ToyKeypointEnv()
    policy = MintGraphPolicy(env.observation_space, env.action_space, lambda _: 1e-3)
    obs = _batch(env.observation_space, 7)
    acts = torch.randint(0, 5, (7,))
    _, log_prob, entropy = policy.evaluate_actions(obs, acts)
    log_prob2, entropy2, nxt = policy.evaluate_actions_with_next_keypoints(obs, acts)
    assert torch.allclose(log_prob, log_prob2, atol=1e-6) and torch.allclose(entropy, entropy2, atol=1e-6)
    assert nxt.shape == (7, 6, 2)
    assert torch.allclose(policy.predict_next_keypoints(obs), nxt, atol=1e-6)


def test_mint_policy_keeps_the_extractor_initialisation_under_ortho_init():
    env = ToyKeypointEnv()
    policy = MintGraphPolicy(env.observation_space, env.action_space, lambda _: 1e-3, ortho_init=True)
    obs = _batch(env.observation_space, 3)
    # SB3's orthogonal init would have overwritten the zero output layer of the next-keypoint head
    assert torch.allclose(policy.predict_next_keypoints(obs), obs[:, -1, :, :2])


def test_policy_save_and_load_round_trip_without_pickle(tmp_path):
    from mint_rl.policies import CnnAgentPolicy
    from mint_rl.policies.serialization import load_policy

    env = ToyKeypointEnv()
    policy = MintGraphPolicy(env.observation_space, env.action_space, lambda _: 1e-3, net_arch=[64])
    policy.set_training_mode(False)
    obs = _batch(env.observation_space, 4)
    path = policy.save(tmp_path / "policy.safetensors", extra={"task": "toy"})
    loaded = MintGraphPolicy.load(path, device="cpu")
    assert torch.allclose(loaded.get_distribution(obs).distribution.logits, policy.get_distribution(obs).distribution.logits)
    assert loaded.observation_space == env.observation_space
    with pytest.raises(ValueError, match="not a CnnAgentPolicy"):
        CnnAgentPolicy.load(path)
    # a pickle file is refused without being executed
    evil = tmp_path / "evil.pt"
    torch.save({"data": {}, "state_dict": {}}, evil)
    with pytest.raises(ValueError, match="not a readable safetensors policy file"):
        load_policy(evil)
    with pytest.raises(FileNotFoundError):
        load_policy(tmp_path / "missing.safetensors")
    # a policy built with a non-JSON-able argument refuses to save
    custom = MintGraphPolicy(env.observation_space, env.action_space, lambda _: 1e-3, activation_fn=torch.nn.Tanh)
    with pytest.raises(ValueError, match="activation_fn"):
        custom.save(tmp_path / "custom.safetensors")


@pytest.mark.parametrize("pooling", ["sum", "attention"])
def test_policy_files_carry_the_interaction_network_config(tmp_path, pooling):
    from mint_rl.policies import InteractionNetworkConfig
    from mint_rl.policies.serialization import load_policy

    env = ToyKeypointEnv()
    config = InteractionNetworkConfig(pooling=pooling, mask_inactive=True, hidden_dim=32, effect_dim=16, attention_queries=3)
    policy = MintGraphPolicy(env.observation_space, env.action_space, lambda _: 1e-3, features_extractor_kwargs={"config": config})
    policy.set_training_mode(False)
    loaded = load_policy(policy.save(tmp_path / "custom-config.safetensors"))
    assert loaded.features_extractor.network.config == config
    obs = _batch(env.observation_space, 4)
    assert torch.equal(loaded.get_distribution(obs).distribution.logits, policy.get_distribution(obs).distribution.logits)
    # a default-built policy stores its config too, so later default changes cannot alter it
    default = load_policy(MintGraphPolicy(env.observation_space, env.action_space, lambda _: 1e-3).save(tmp_path / "d.safetensors"))
    assert default.features_extractor.network.config == InteractionNetworkConfig()


def test_format_1_policy_files_load_with_the_legacy_network_config(tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    from mint_rl.policies import InteractionNetworkConfig
    from mint_rl.policies.serialization import load_policy

    env = ToyKeypointEnv()
    legacy = InteractionNetworkConfig(pooling="mean", mask_inactive=True)
    policy = MintGraphPolicy(env.observation_space, env.action_space, lambda _: 1e-3, features_extractor_kwargs={"config": legacy})
    policy.set_training_mode(False)
    path = policy.save(tmp_path / "v2.safetensors")
    # rewrite it as format 1 wrote it: no features_extractor_kwargs for a default-built policy
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        description = json.loads(f.metadata()["mint_rl"])
    description["format_version"] = 1
    del description["kwargs"]["features_extractor_kwargs"]
    old = tmp_path / "v1.safetensors"
    save_file(load_file(str(path)), str(old), metadata={"mint_rl": json.dumps(description)})
    loaded = load_policy(old)
    assert loaded.features_extractor.network.config == legacy
    obs = _batch(env.observation_space, 4)
    assert torch.equal(loaded.get_distribution(obs).distribution.logits, policy.get_distribution(obs).distribution.logits)


# ----------------------------------------------------------------------------- CNN agent
def test_cnn_agent_architecture_on_lores4a_shape():
    space = gym.spaces.Box(0, 255, (96, 96, 12), np.uint8)
    extractor = CnnAgentExtractor(space, features_dim=128)
    convs = [m for m in extractor.cnn if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 128, 128, 128]
    assert [c.kernel_size for c in convs] == [(5, 5)] + [(3, 3)] * 4
    assert [c.stride for c in convs] == [(1, 1)] + [(2, 2)] * 4
    assert convs[0].in_channels == 12
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in extractor.cnn) == 5
    assert extractor.linear[0].in_features == 128 * 6 * 6
    out = extractor(torch.randint(0, 256, (2, 96, 96, 12), dtype=torch.uint8))
    assert out.shape == (2, 128)


def test_cnn_agent_channel_layouts_and_uint8_scaling_agree():
    hwc = gym.spaces.Box(0, 255, (32, 32, 12), np.uint8)
    chw = gym.spaces.Box(0, 255, (12, 32, 32), np.uint8)
    torch.manual_seed(0)
    a = CnnAgentExtractor(hwc, features_dim=8).eval()
    b = CnnAgentExtractor(chw, features_dim=8).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randint(0, 256, (3, 32, 32, 12), dtype=torch.uint8)
    out = a(x)
    assert torch.allclose(out, b(x.permute(0, 3, 1, 2)), atol=1e-5)
    assert torch.allclose(out, a(x.float() / 255.0), atol=1e-5)
    with pytest.raises(ValueError, match="expected observations of shape"):
        a(x.permute(0, 3, 1, 2))


def test_cnn_agent_bf16_mixed_precision_matches_fp32_and_keeps_fp32_state():
    space = gym.spaces.Box(0, 255, (32, 32, 12), np.uint8)
    torch.manual_seed(0)
    fp32 = CnnAgentExtractor(space, features_dim=16).eval()
    bf16 = CnnAgentExtractor(space, features_dim=16, compute_dtype="bf16").eval()
    bf16.load_state_dict(fp32.state_dict())
    x = torch.randint(0, 256, (4, 32, 32, 12), dtype=torch.uint8)
    ref, out = fp32(x), bf16(x)
    # features come back as float32, close to the float32 run (bfloat16 keeps ~3 significant digits)
    assert out.dtype == torch.float32
    assert not torch.equal(out, ref)
    assert torch.allclose(out, ref, rtol=0.05, atol=0.05 * float(ref.abs().max()))
    # gradients reach every weight and are float32 (mixed precision, not a bfloat16 model)
    bf16.train()
    bf16(x).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in bf16.parameters())
    with pytest.raises(ValueError, match="compute_dtype"):
        CnnAgentExtractor(space, compute_dtype="fp8")


def test_cnn_agent_policy_with_bf16_saves_and_loads(tmp_path):
    from mint_rl.policies.serialization import load_policy

    env = ToyKeypointEnv(image=True)
    policy = CnnAgentPolicy(env.observation_space, env.action_space, lambda _: 1e-3,
                            features_extractor_kwargs={"compute_dtype": "bf16"})
    obs = torch.as_tensor(np.stack([env.reset(seed=i)[0] for i in range(3)]))
    policy.set_training_mode(True)
    policy.evaluate_actions(obs, torch.zeros(3))  # moves the BatchNorm running statistics
    policy.set_training_mode(False)
    # BatchNorm buffers are shared by the three extractor names; each is stored once and restored
    loaded = load_policy(policy.save(tmp_path / "cnn.safetensors"))
    assert loaded.features_extractor.compute_dtype == "bf16"
    bn = loaded.features_extractor.cnn[2]
    assert int(bn.num_batches_tracked) == 1 and torch.equal(bn.running_mean, policy.features_extractor.cnn[2].running_mean)
    assert torch.equal(loaded.get_distribution(obs).distribution.logits, policy.get_distribution(obs).distribution.logits)


def test_cnn_agent_policy_net_arch_and_ppo_smoke():
    env = ToyKeypointEnv(image=True)
    model = PPO(CnnAgentPolicy, env, n_steps=32, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64)
    policy = model.policy
    assert isinstance(policy, ActorCriticPolicy) and isinstance(policy.features_extractor, CnnAgentExtractor)
    widths = [m.out_features for m in policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
    assert widths == [128, 64, 32, 32] and policy.action_net.out_features == 5
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))


# ----------------------------------------------------------------------------- MAGICAL smoke
def test_ppo_smoke_on_keypoint_wrapped_magical_env():
    """PPO(MintGraphPolicy) on MoveToCorner through the keypoint wrapper (untrained detector, K=25)."""
    import mint_rl.envs  # noqa: F401  (registers the magical/ ids)
    from mint_rl.models import DetectorConfig, MintDetector
    from mint_rl.wrappers import MintKeypointWrapper

    torch.manual_seed(0)
    detector = MintDetector(DetectorConfig.for_image(96, 96, num_keypoints=25))
    env = MintKeypointWrapper(gym.make("magical/MoveToCorner-Demo-v0"), detector=detector)
    assert env.observation_space.shape == (4, 25, 3)
    model = PPO(MintGraphPolicy, env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    assert model.num_timesteps >= 128
    assert model.policy.features_extractor.num_keypoints == 25
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
    env.close()
