"""Keypoint observations as batched, fully connected torch-geometric graphs.

The keypoint wrapper emits observations of shape ``(history, K, F)`` holding ``(x, y, status)``
per keypoint and frame (oldest frame first), ``F = 3``, optionally followed by more per-keypoint
features (the orientation ``(ox, oy)``: ``F = 5``). A batch of them, ``(B, history, K, F)``, becomes
``B`` graphs of ``K`` nodes each, every node connected to every other node by a directed edge
(no self loops, no edge features). Node ``k`` of graph ``b`` is node ``b * K + k`` of the batch.

Everything here is vectorised over the batch: the edge index of one graph is built once and
shifted by per-graph offsets, with no Python loop over ``B``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Batch

__all__ = [
    "check_keypoint_observation",
    "fully_connected_edge_index",
    "batched_edge_index",
    "keypoint_node_features",
    "keypoint_graph_batch",
]


def check_keypoint_observation(
    obs: Tensor, history: int | None = None, num_keypoints: int | None = None, num_features: int | None = None
) -> None:
    """Raise ``ValueError`` unless ``obs`` is a ``(B, history, K, F)`` keypoint batch, ``F >= 3``.

    Args:
        obs: the tensor to check.
        history: the expected number of frames, or ``None`` to accept any.
        num_keypoints: the expected ``K``, or ``None`` to accept any.
        num_features: the expected ``F``, or ``None`` to accept any ``F >= 3``.
    """
    if obs.dim() != 4 or obs.shape[-1] < 3:
        raise ValueError(
            f"expected keypoint observations of shape (B, history, K, F) with F >= 3 (x, y, status, ...), "
            f"got {tuple(obs.shape)}"
        )
    if num_features is not None and obs.shape[-1] != num_features:
        raise ValueError(f"expected F={num_features} features per keypoint (dim 3), got {obs.shape[-1]} in {tuple(obs.shape)}")
    if history is not None and obs.shape[1] != history:
        raise ValueError(f"expected history={history} frames (dim 1), got {obs.shape[1]} in {tuple(obs.shape)}")
    if num_keypoints is not None and obs.shape[2] != num_keypoints:
        raise ValueError(f"expected K={num_keypoints} keypoints (dim 2), got {obs.shape[2]} in {tuple(obs.shape)}")


def fully_connected_edge_index(num_nodes: int, device: torch.device | str | None = None) -> Tensor:
    """Edge index ``(2, K * (K - 1))`` of the complete directed graph on ``K`` nodes, no self loops.

    Row 0 holds sources ``j``, row 1 targets ``i`` (torch-geometric's ``source_to_target`` flow);
    edges are sorted by source, then target.

    >>> fully_connected_edge_index(3).tolist()
    [[0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 0, 1]]
    """
    if num_nodes < 1:
        raise ValueError(f"expected at least one node, got num_nodes={num_nodes}")
    idx = torch.arange(num_nodes, device=device)
    src = idx.repeat_interleave(num_nodes)
    dst = idx.repeat(num_nodes)
    keep = src != dst
    return torch.stack([src[keep], dst[keep]])


def batched_edge_index(template: Tensor, batch_size: int, num_nodes: int) -> Tensor:
    """Stack ``batch_size`` copies of one graph's edge index, shifting copy ``b`` by ``b * K``.

    Args:
        template: ``(2, E)`` edge index of one graph with ``num_nodes`` nodes.
        batch_size: number of graphs ``B``.
        num_nodes: nodes per graph ``K``.

    Returns:
        ``(2, B * E)`` edge index, graph 0's edges first.

    >>> batched_edge_index(fully_connected_edge_index(2), 3, 2).tolist()
    [[0, 1, 2, 3, 4, 5], [1, 0, 3, 2, 5, 4]]
    """
    if template.dim() != 2 or template.shape[0] != 2:
        raise ValueError(f"expected an edge index of shape (2, E), got {tuple(template.shape)}")
    offsets = torch.arange(batch_size, device=template.device) * num_nodes
    return (template.unsqueeze(1) + offsets.view(1, -1, 1)).reshape(2, -1)


def keypoint_node_features(obs: Tensor, mask_inactive: bool = False) -> Tensor:
    """Per-node input features ``(B * K, history * F)`` from ``(B, history, K, F)`` observations.

    Per frame a keypoint contributes its row ``(x, y, s, ...)``, or ``(x * s, y * s, s, ... * s)``
    with ``mask_inactive=True`` (an inactive keypoint, ``s = 0``, then reads as all zeros), and
    the frames are concatenated oldest first.

    >>> obs = torch.tensor([[[[0.5, -0.5, 1.0], [0.3, 0.3, 0.0]]]])  # B=1, history=1, K=2
    >>> keypoint_node_features(obs).tolist()
    [[0.5, -0.5, 1.0], [0.30000001192092896, 0.30000001192092896, 0.0]]
    >>> keypoint_node_features(obs, mask_inactive=True).tolist()
    [[0.5, -0.5, 1.0], [0.0, 0.0, 0.0]]
    """
    check_keypoint_observation(obs)
    b, t, k, f = obs.shape
    feats = obs
    if mask_inactive:
        status = obs[..., 2:3]
        feats = torch.cat([obs[..., :2] * status, status, obs[..., 3:] * status], dim=-1)  # (B, T, K, F)
    return feats.permute(0, 2, 1, 3).reshape(b * k, t * f)


def keypoint_graph_batch(obs: Tensor, edge_template: Tensor | None = None, mask_inactive: bool = False) -> Batch:
    """Turn ``(B, history, K, F)`` keypoint observations into one torch-geometric ``Batch``.

    Args:
        obs: keypoint observations, ``(x, y, status, ...)`` per keypoint and frame.
        edge_template: optional precomputed ``fully_connected_edge_index(K)`` on ``obs.device``
            (modules keep it as a buffer so it is not rebuilt every call).
        mask_inactive: zero the ``(x, y)`` of inactive keypoints (see :func:`keypoint_node_features`).

    Returns:
        A ``Batch`` with ``x`` ``(B * K, history * F)`` (see :func:`keypoint_node_features`),
        ``edge_index`` ``(2, B * K * (K - 1))``, ``batch`` ``(B * K,)``, ``ptr`` ``(B + 1,)`` and
        ``keypoint_id`` ``(B * K,)`` (the keypoint index ``k`` of every node).

    >>> g = keypoint_graph_batch(torch.zeros(2, 4, 5, 3))
    >>> g.num_graphs, g.num_nodes, g.edge_index.shape[1]
    (2, 10, 40)
    """
    check_keypoint_observation(obs)
    b, _, k, _ = obs.shape
    if edge_template is None:
        edge_template = fully_connected_edge_index(k, device=obs.device)
    elif edge_template.shape != (2, k * (k - 1)):
        raise ValueError(
            f"edge_template must be the complete graph on K={k} nodes, shape (2, {k * (k - 1)}), "
            f"got {tuple(edge_template.shape)}"
        )
    graph_ids = torch.arange(b, device=obs.device)
    return Batch(
        x=keypoint_node_features(obs, mask_inactive),
        edge_index=batched_edge_index(edge_template, b, k),
        batch=graph_ids.repeat_interleave(k),
        ptr=torch.arange(b + 1, device=obs.device) * k,
        keypoint_id=torch.arange(k, device=obs.device).repeat(b),
    )
