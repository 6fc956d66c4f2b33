"""InteractionNetwork and the keypoint graph helpers."""

from __future__ import annotations

import pytest
import torch

from mint_rl.policies import (
    InteractionNetwork,
    InteractionNetworkConfig,
    fully_connected_edge_index,
    keypoint_graph_batch,
    keypoint_node_features,
)
from mint_rl.policies.graph import batched_edge_index
from mint_rl.policies.interaction_network import AttentionReadout, attention_readout


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _obs(b: int = 3, t: int = 4, k: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(b, t, k, 2, generator=g) * 2 - 1
    status = (torch.rand(b, t, k, 1, generator=g) > 0.3).float()
    return torch.cat([xy, status], dim=-1)


def _net(k: int = 6, t: int = 4, **cfg) -> InteractionNetwork:
    torch.manual_seed(0)
    return InteractionNetwork(history=t, num_keypoints=k, num_actions=18, config=InteractionNetworkConfig(**cfg))


# ----------------------------------------------------------------------------- graphs
def test_fully_connected_edge_index_is_complete_without_self_loops():
    k = 7
    ei = fully_connected_edge_index(k)
    assert ei.shape == (2, k * (k - 1))
    assert bool((ei[0] != ei[1]).all())
    pairs = {(int(s), int(d)) for s, d in ei.t()}
    assert pairs == {(s, d) for s in range(k) for d in range(k) if s != d}


def test_keypoint_graph_batch_counts_and_no_cross_graph_edges():
    b, k = 5, 4
    g = keypoint_graph_batch(_obs(b=b, k=k))
    assert g.num_graphs == b and g.num_nodes == b * k
    assert g.edge_index.shape == (2, b * k * (k - 1))
    assert torch.equal(g.batch[g.edge_index[0]], g.batch[g.edge_index[1]])
    assert torch.equal(torch.bincount(g.batch[g.edge_index[0]]), torch.full((b,), k * (k - 1)))
    assert torch.equal(g.ptr, torch.arange(b + 1) * k)
    assert torch.equal(g.keypoint_id, torch.arange(k).repeat(b))


def test_batched_edge_index_matches_per_graph_offsets():
    k, b = 3, 4
    template = fully_connected_edge_index(k)
    expected = torch.cat([template + i * k for i in range(b)], dim=1)
    assert torch.equal(batched_edge_index(template, b, k), expected)


@pytest.mark.parametrize("mask", [False, True])
def test_node_features_are_frame_ordered_and_optionally_status_masked(mask):
    obs = _obs(b=2, t=3, k=4)
    x = keypoint_node_features(obs, mask_inactive=mask)
    assert x.shape == (2 * 4, 3 * 3)
    for b, k, t in [(1, 2, 2), (0, 3, 1), (1, 0, 0)]:  # node b*K + k, frame t
        node = x[b * 4 + k].view(3, 3)
        s = obs[b, t, k, 2]
        m = s if mask else 1.0
        assert torch.allclose(node[t], torch.stack([obs[b, t, k, 0] * m, obs[b, t, k, 1] * m, s]))
    assert bool((obs[..., 2] == 0).any())  # the sample holds inactive keypoints


@pytest.mark.parametrize("mask", [False, True])
def test_network_reads_inactive_positions_unless_masked(mask):
    net = _net(mask_inactive=mask)
    obs = _obs(b=1)
    moved = obs.clone()
    moved[..., :2] += (1 - obs[..., 2:3]) * 0.5  # move only keypoints while inactive
    same = torch.allclose(net.action_logits(moved), net.action_logits(obs), atol=1e-6)
    assert same == mask


@pytest.mark.parametrize("shape", [(2, 4, 6), (2, 4, 6, 2), (2, 3, 6, 3)])
def test_bad_observation_shapes_are_clear(shape):
    net = _net()
    with pytest.raises(ValueError, match="expected"):
        net.action_logits(torch.zeros(shape))


# ----------------------------------------------------------------------------- the layer
@pytest.mark.parametrize("layers", [1, 0, 2])
def test_forward_implements_the_update_equations(layers):
    net = _net(k=4, mlp_hidden_layers=layers)
    h = torch.randn(4, net.hidden_dim)
    ei = fully_connected_edge_index(4)
    out = net(h, ei)
    expected = []
    for i in range(4):
        effects = sum(net.relational_model(torch.cat([h[i], h[j]])) for j in range(4) if j != i)
        assert torch.allclose(effects, sum(net.relational(h[i], h[j]) for j in range(4) if j != i))
        expected.append(net.object_model(torch.cat([h[i], effects])))
    assert torch.allclose(out, torch.stack(expected), atol=1e-5)


@pytest.mark.parametrize("layers", [1, 0, 2])
def test_forward_on_an_irregular_graph_sums_the_literal_effects(layers):
    # in-degrees 0 to 3: the effect layer moved after the sum must add its bias once per edge
    torch.manual_seed(1)
    net = _net(k=5, mlp_hidden_layers=layers)
    with torch.no_grad():
        net.relational_model[-1].bias.normal_()  # a zero bias would hide a wrong degree
    h = torch.randn(5, net.hidden_dim)
    ei = torch.tensor([[1, 2, 3, 0, 0, 4, 2], [0, 0, 0, 1, 2, 2, 3]])  # j -> i; node 4 receives nothing
    out = net(h, ei)
    expected = []
    for i in range(5):
        senders = ei[0][ei[1] == i].tolist()
        effects = sum((net.relational(h[i], h[j]) for j in senders), torch.zeros(net.config.effect_dim))
        expected.append(net.object_model(torch.cat([h[i], effects])))
    assert torch.allclose(out, torch.stack(expected), atol=1e-5)


def test_messages_carry_information_between_keypoints():
    net = _net()
    obs = _obs(b=1)
    base = net.node_embeddings(obs)
    moved = obs.clone()
    moved[0, :, 3, :2] += 0.5  # move keypoint 3 only
    out = net.node_embeddings(moved)
    assert not torch.allclose(out[0, 0], base[0, 0])  # keypoint 0 sees keypoint 3


@pytest.mark.parametrize("pe", ["learned", "sinusoidal"])
def test_permutation_equivariance_with_positional_encoding_permuted_along(pe):
    net = _net(positional_encoding=pe, num_passes=2, pooling="mean")
    obs = _obs()
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    nodes = net.node_embeddings(obs)
    nodes_p = net.node_embeddings(obs[:, :, perm], keypoint_ids=perm)
    assert torch.allclose(nodes_p, nodes[:, perm], atol=1e-5)
    logits, nxt = net.heads(obs)
    logits_p, nxt_p = net.heads(obs[:, :, perm], keypoint_ids=perm)
    assert torch.allclose(logits_p, logits, atol=1e-5)
    assert torch.allclose(nxt_p, nxt[:, perm], atol=1e-5)


def test_permutation_equivariance_without_positional_encoding():
    net = _net(positional_encoding="none", pooling="sum")
    obs = _obs()
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(net.node_embeddings(obs[:, :, perm]), net.node_embeddings(obs)[:, perm], atol=1e-5)
    assert torch.allclose(net.action_logits(obs[:, :, perm]), net.action_logits(obs), atol=1e-5)


def test_positional_encoding_breaks_symmetry_when_not_permuted():
    net = _net(positional_encoding="learned")
    obs = _obs()
    perm = torch.tensor([1, 0, 2, 3, 4, 5])
    assert not torch.allclose(net.action_logits(obs[:, :, perm]), net.action_logits(obs), atol=1e-4)


def test_batch_elements_are_independent():
    net = _net()
    obs = _obs(b=4)
    full = net.action_logits(obs)
    assert torch.allclose(net.action_logits(obs[2:3]), full[2:3], atol=1e-5)


def test_next_keypoints_start_at_the_last_frame_and_are_offsets_from_it():
    net = _net()
    obs = _obs()
    assert torch.allclose(net.next_keypoints(obs), obs[:, -1, :, :2])  # zero-initialised output layer
    torch.nn.init.constant_(net.next_keypoint_head[-1].bias, 0.25)
    assert torch.allclose(net.next_keypoints(obs), obs[:, -1, :, :2] + 0.25)


def test_heads_train_every_parameter():
    net = _net()
    torch.nn.init.normal_(net.next_keypoint_head[-1].weight)  # zero at init: no gradient flows behind it
    logits, nxt = net.heads(_obs())
    (logits.square().mean() + nxt.square().mean()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_reset_parameters_reinitialises():
    net = _net()
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.5)
    net.reset_parameters()
    head_out = {"next_keypoint_head.2.weight", "next_keypoint_head.2.bias"}
    for name, p in net.named_parameters():
        if name in head_out:
            assert bool((p == 0).all()), name
        else:
            assert not bool((p == 0.5).all()), name


def test_sinusoidal_encoding_accepts_another_k_learned_rejects_out_of_range():
    net = _net(k=6, positional_encoding="sinusoidal", pooling="mean")
    assert net.action_logits(_obs(k=9)).shape == (3, 18)
    learned = _net(k=6, pooling="mean")
    with pytest.raises(ValueError, match="out of range"):
        learned.action_logits(_obs(k=9))


def test_no_action_head_is_a_clear_error():
    net = InteractionNetwork(history=4, num_keypoints=6, num_actions=None)
    assert net.next_keypoints(_obs()).shape == (3, 6, 2)
    with pytest.raises(RuntimeError, match="no action head"):
        net.action_logits(_obs())


def test_config_validation():
    with pytest.raises(ValueError, match="positional_encoding"):
        InteractionNetworkConfig(positional_encoding="rope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pooling"):
        InteractionNetworkConfig(pooling="max")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- attention readout
def test_attention_readout_matches_a_per_query_loop():
    g = torch.Generator().manual_seed(3)
    keys, values = torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 4, generator=g)
    queries = torch.randn(3, 4, generator=g)
    got = attention_readout(queries, keys, values)
    for b in range(2):
        for m in range(3):
            scores = torch.tensor([float(queries[m] @ keys[b, i]) / 2.0 for i in range(5)])  # sqrt(H) = 2
            weights = torch.exp(scores) / torch.exp(scores).sum()
            expected = sum(weights[i] * values[b, i] for i in range(5))
            assert torch.allclose(got[b, 4 * m: 4 * (m + 1)], expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"queries of shape \(M, 4\)"):
        attention_readout(torch.zeros(3, 5), keys, values)


def test_attention_readout_graph_form_equals_the_dense_one_for_any_node_counts():
    torch.manual_seed(0)
    readout = AttentionReadout(hidden_dim=8, num_queries=2)
    nodes = [torch.randn(k, 8) for k in (3, 6, 1)]
    batch = torch.cat([torch.full((n.shape[0],), i) for i, n in enumerate(nodes)])
    flat = readout.forward_graph(torch.cat(nodes), batch, num_graphs=3)
    for i, n in enumerate(nodes):
        assert torch.allclose(flat[i], readout(n.unsqueeze(0))[0], atol=1e-5)
    with pytest.raises(ValueError, match=r"\(B, K, 8\)"):
        readout(torch.zeros(2, 3, 7))


def test_attention_pooling_reads_nodes_by_content_not_index():
    net = _net(positional_encoding="none", pooling="attention", attention_queries=3)
    assert net.pooled_dim == 3 * net.hidden_dim
    obs = _obs()
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(net.action_logits(obs[:, :, perm]), net.action_logits(obs), atol=1e-5)
    indexed = _net(positional_encoding="learned", pooling="attention")
    assert not torch.allclose(indexed.action_logits(obs[:, :, perm]), indexed.action_logits(obs), atol=1e-4)
    logits, nxt = indexed.heads(obs)
    (logits.square().mean() + nxt.square().mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in indexed.readout.parameters())


def test_the_other_readouts_have_no_attention_parameters():
    for pooling in ("flatten", "mean", "sum"):
        assert not any(name.startswith("readout.") for name in _net(pooling=pooling).state_dict())
    with pytest.raises(ValueError, match="attention_queries"):
        InteractionNetworkConfig(pooling="attention", attention_queries=0)
