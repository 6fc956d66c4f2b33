"""The keypoint forward model: the interaction network forecasting keypoints ``H`` frames ahead.

The paper's downstream task II ("Learning dynamics", Appendix E.4): a frozen detector's
keypoints of the last ``T = 4`` frames are the nodes of a fully connected graph; one
interaction-network pass (relational model on every ordered pair, sum of effects, object model)
updates every node, and a decoder reads the keypoint's next positions. Here the decoder reads
the next ``H`` positions (default 3, as the offset from the last observed position) and the
status of the keypoint in each of those frames; for environments the model can be conditioned
on the actions executed in between.

The message-passing core is the package's :class:`~mint_rl.policies.InteractionNetwork` (the
policies' network, with its fast edge computation), widened here to ``H`` horizons:
:class:`ForwardInteractionNetwork`. :class:`KeypointForwardModel` wraps it with one-step
prediction, autoregressive rollouts and safetensors checkpoints (no pickle).

Example:
    >>> model = KeypointForwardModel(ForwardModelConfig(num_keypoints=5, hidden_dim=16, effect_dim=16))
    >>> history = torch.rand(2, 4, 5, 3) * 2 - 1
    >>> pred = model(history)
    >>> pred.positions.shape, pred.status_logits.shape
    (torch.Size([2, 3, 5, 2]), torch.Size([2, 3, 5]))
    >>> model.rollout(history, steps=7).shape
    torch.Size([2, 7, 5, 3])
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from mint_rl.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mint_rl.policies.interaction_network import InteractionNetwork, InteractionNetworkConfig, mlp

__all__ = [
    "FORWARD_MODEL_FORMAT",
    "UNKNOWN_ACTION",
    "ForwardModelConfig",
    "ForwardPrediction",
    "ForwardInteractionNetwork",
    "KeypointForwardModel",
    "index_code",
]

FORWARD_MODEL_FORMAT = "mint_rl.KeypointForwardModel"
#: Action id meaning "not known" (the model has a learned embedding for it; see :meth:`KeypointForwardModel.rollout`).
UNKNOWN_ACTION = -1


@dataclass
class ForwardModelConfig:
    """Everything that defines a :class:`KeypointForwardModel` (defaults: the paper's Task II).

    Attributes:
        num_keypoints: ``K`` keypoints per frame (the detector's ``K``; the oracle's object slots).
        history: ``T`` input frames (4 in the paper).
        horizon: ``H`` predicted frames (the paper scores 1 to 3 steps ahead).
        num_actions: size of a discrete action space to condition on (18 for MAGICAL), or
            ``None`` for no action conditioning (videos).
        action_embedding_dim: size of the learned embedding of one action; the embeddings of the
            ``H`` actions executed after the last input frame are concatenated and broadcast to
            every node's encoder input.
        hidden_dim, effect_dim: widths of the node states and of the relational model's effects
            (100 in the authors' code).
        mlp_hidden_layers: hidden layers of every MLP (encoder, relational and object models, heads).
        index_code: how the keypoint index ``k`` enters the node features: ``"linspace"`` (the
            authors' scalar ``linspace(-1, 1, K)[k]``), or the policies' ``"learned"``,
            ``"sinusoidal"`` or ``"none"``.
        positional_dim: size of a ``"learned"`` or ``"sinusoidal"`` code.
        num_passes: interaction-network passes (1 in the paper).
        residual: the object model adds to the node state instead of replacing it.
        mask_inactive: feed inactive keypoints as ``(0, 0, 0)``; the paper feeds their ``(x, y)``.
        input_frame: ``"absolute"`` feeds every frame's ``(x, y)`` as it is (the authors' code);
            ``"relative"`` feeds the last frame's ``(x, y)`` as it is and the earlier frames'
            as displacements from it in units of ``motion_scale``, so the motion the network must
            read is of order 1 instead of 0.01 (see docs/dynamics.md for the difference it makes).
        motion_scale: the unit (normalised coordinates) of relative inputs and of the decoded
            offsets ``(x, y)^{t+h} - (x, y)^t``; 0.02 is 1.6 px across a 160-px-wide frame.
    """

    num_keypoints: int = 25
    history: int = 4
    horizon: int = 3
    num_actions: int | None = None
    action_embedding_dim: int = 16
    hidden_dim: int = 100
    effect_dim: int = 100
    mlp_hidden_layers: int = 2
    index_code: Literal["linspace", "learned", "sinusoidal", "none"] = "linspace"
    positional_dim: int = 16
    num_passes: int = 1
    residual: bool = False
    mask_inactive: bool = False
    input_frame: Literal["relative", "absolute"] = "relative"
    motion_scale: float = 0.02

    def __post_init__(self) -> None:
        for name in ("num_keypoints", "history", "horizon", "hidden_dim", "effect_dim", "num_passes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ForwardModelConfig.{name}: expected an int >= 1, got {value!r}")
        if self.num_actions is not None and (not isinstance(self.num_actions, int) or self.num_actions < 1):
            raise ValueError(f"ForwardModelConfig.num_actions: expected None or an int >= 1, got {self.num_actions!r}")
        if self.action_embedding_dim < 1 or self.mlp_hidden_layers < 0 or self.positional_dim < 0:
            raise ValueError("ForwardModelConfig: action_embedding_dim must be >= 1, mlp_hidden_layers and "
                             f"positional_dim >= 0, got {self.action_embedding_dim}, {self.mlp_hidden_layers}, "
                             f"{self.positional_dim}")
        if self.input_frame not in ("relative", "absolute"):
            raise ValueError(f"ForwardModelConfig.input_frame: expected 'relative' or 'absolute', got {self.input_frame!r}")
        if not self.motion_scale > 0:
            raise ValueError(f"ForwardModelConfig.motion_scale: expected > 0, got {self.motion_scale!r}")
        if self.index_code not in ("linspace", "learned", "sinusoidal", "none"):
            raise ValueError(f"ForwardModelConfig.index_code: expected 'linspace', 'learned', 'sinusoidal' or "
                             f"'none', got {self.index_code!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (what checkpoints store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ForwardModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error (a newer or foreign file)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"ForwardModelConfig: unknown fields {unknown}")
        return cls(**data)

    def interaction_config(self) -> InteractionNetworkConfig:
        """The :class:`InteractionNetworkConfig` of the message-passing core."""
        return InteractionNetworkConfig(
            hidden_dim=self.hidden_dim,
            effect_dim=self.effect_dim,
            mlp_hidden_layers=self.mlp_hidden_layers,
            positional_encoding="none" if self.index_code == "linspace" else self.index_code,
            positional_dim=self.positional_dim,
            num_passes=self.num_passes,
            residual=self.residual,
            pooling="mean",  # no graph-level head here; pooling is unused
            mask_inactive=self.mask_inactive,
        )


def index_code(keypoint_id: Tensor, num_keypoints: int) -> Tensor:
    """The authors' scalar keypoint-index code ``linspace(-1, 1, K)[k]``, shape ``(N, 1)``.

    Example:
        >>> index_code(torch.tensor([0, 1, 2]), 3).flatten().tolist()
        [-1.0, 0.0, 1.0]
    """
    if num_keypoints == 1:
        return torch.zeros(keypoint_id.shape[0], 1, device=keypoint_id.device)
    return (keypoint_id.to(torch.float32) * (2.0 / (num_keypoints - 1)) - 1.0).unsqueeze(-1)


class ForwardPrediction(NamedTuple):
    """What :meth:`KeypointForwardModel.forward` returns.

    Attributes:
        positions: ``(B, H, K, 2)`` predicted ``(x, y)`` (normalised) for frames ``t+1 .. t+H``.
        status_logits: ``(B, H, K)`` logits of the keypoints' status in those frames.
    """

    positions: Tensor
    status_logits: Tensor

    @property
    def status(self) -> Tensor:
        """``(B, H, K)`` predicted active probability."""
        return torch.sigmoid(self.status_logits)


class ForwardInteractionNetwork(InteractionNetwork):
    r"""The policies' :class:`~mint_rl.policies.InteractionNetwork` with a forecasting decoder.

    Node ``i`` (keypoint ``i``) is encoded from its ``(x, y, s)`` in the ``T`` input frames, its
    index code ``c_i`` and, with actions, the broadcast action context
    :math:`u = [E(a_t), \dots, E(a_{t+H-1})]`:
    :math:`h_i = \phi_{enc}([x_i^{1..T}, y_i^{1..T}, s_i^{1..T}, c_i, u])`. The interaction passes
    are the inherited ones (:meth:`InteractionNetwork.forward`). Two decoders read the result:
    :math:`(x, y)_i^{t+h} = (x, y)_i^{t} + m\,\phi_D(h_i')_h` (``m = motion_scale``) for ``h = 1..H`` (the inherited
    ``next_keypoint_head`` widened to ``2H`` outputs, last layer zero-initialised so the untrained
    model predicts "stay") and the status logits :math:`\phi_S(h_i')_h`.
    """

    def __init__(self, config: ForwardModelConfig) -> None:
        super().__init__(history=config.history, num_keypoints=config.num_keypoints, num_actions=None,
                         config=config.interaction_config(), num_features=3)
        self.forward_config = config
        h, layers = config.hidden_dim, config.mlp_hidden_layers
        if config.index_code == "linspace":
            self.positional_dim = 1
        self.context_dim = config.horizon * config.action_embedding_dim if config.num_actions is not None else 0
        self.node_encoder = mlp(3 * config.history + self.positional_dim + self.context_dim, h, h, layers)
        self.next_keypoint_head = mlp(h, h, 2 * config.horizon, layers)
        self.status_head = mlp(h, h, config.horizon, layers)
        # one extra row: the "unknown action" token
        self.action_embedding = (
            nn.Embedding(config.num_actions + 1, config.action_embedding_dim) if config.num_actions is not None else None
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The inherited initialisation (zero last layer of the position decoder) plus the new heads."""
        super().reset_parameters()
        for name in ("status_head", "action_embedding"):
            module = getattr(self, name, None)
            if module is not None:
                for layer in module.modules():
                    if isinstance(layer, (nn.Linear, nn.Embedding)):
                        layer.reset_parameters()

    def positional_encoding(self, keypoint_id: Tensor) -> Tensor:
        """The index code of node keypoint indices ``(N,)``: ``(N, positional_dim)``."""
        if self.forward_config.index_code == "linspace":
            return index_code(keypoint_id, self.num_keypoints)
        return super().positional_encoding(keypoint_id)

    def action_context(self, actions: Tensor) -> Tensor:
        """``(B, H)`` action ids (``-1`` = unknown) -> ``(B, H * action_embedding_dim)``."""
        assert self.action_embedding is not None
        n = self.forward_config.num_actions
        assert n is not None
        ids = torch.where(actions < 0, torch.full_like(actions, n), actions)
        return self.action_embedding(ids).flatten(1)

    def encode(self, node_features: Tensor, keypoint_id: Tensor, context: Tensor | None = None) -> Tensor:
        """Node encoder: ``(N, 3T)`` features, ``(N,)`` indices, optional ``(N, context_dim)`` -> ``(N, hidden)``."""
        expected = self.num_features * self.history
        if node_features.dim() != 2 or node_features.shape[1] != expected:
            raise ValueError(f"expected node features of shape (N, {expected}), got {tuple(node_features.shape)}")
        parts = [node_features, self.positional_encoding(keypoint_id).to(node_features.dtype)]
        if self.context_dim:
            if context is None or tuple(context.shape) != (node_features.shape[0], self.context_dim):
                got = None if context is None else tuple(context.shape)
                raise ValueError(f"expected an action context of shape ({node_features.shape[0]}, {self.context_dim}), got {got}")
            parts.append(context)
        return self.node_encoder(torch.cat(parts, dim=-1))

    def input_features(self, history: Tensor) -> Tensor:
        """The rows fed to the graph: ``history`` itself (``"absolute"``) or, with ``"relative"``,
        the earlier frames' ``(x, y)`` replaced by ``((x, y) - (x, y)^t) / motion_scale``.

        Example:
            >>> net = ForwardInteractionNetwork(ForwardModelConfig(num_keypoints=1, history=2, hidden_dim=4, effect_dim=4))
            >>> rows = net.input_features(torch.tensor([[[[0.1, 0.0, 1.0]], [[0.14, 0.5, 1.0]]]]))[0, :, 0]
            >>> [[round(v, 3) for v in r] for r in rows.tolist()]
            [[-2.0, -25.0, 1.0], [0.14, 0.5, 1.0]]
        """
        cfg = self.forward_config
        if cfg.input_frame == "absolute":
            return history
        rel = (history[:, :-1, :, :2] - history[:, -1:, :, :2]) / cfg.motion_scale
        return torch.cat([torch.cat([rel, history[:, :-1, :, 2:]], dim=-1), history[:, -1:]], dim=1)

    def forecast(self, history: Tensor, actions: Tensor | None = None) -> ForwardPrediction:
        """``(B, T, K, 3)`` keypoints (and ``(B, H)`` actions) -> :class:`ForwardPrediction`."""
        b, _, k, _ = history.shape
        cfg = self.forward_config
        graph = self.graph(self.input_features(history))
        context = None
        if self.action_embedding is not None:
            assert actions is not None
            context = self.action_context(actions).repeat_interleave(k, dim=0)
        h = self.encode(graph.x, graph.keypoint_id, context)
        for _ in range(cfg.num_passes):
            h = self(h, graph.edge_index)
        h = h.view(b, k, self.hidden_dim)
        offsets = self.next_keypoint_head(h).view(b, k, cfg.horizon, 2).transpose(1, 2)  # (B, H, K, 2)
        positions = history[:, -1:, :, :2] + cfg.motion_scale * offsets
        status_logits = self.status_head(h).transpose(1, 2)  # (B, H, K)
        return ForwardPrediction(positions, status_logits)


class KeypointForwardModel(nn.Module):
    """Keypoint forward model: ``T`` frames of ``(x, y, status)`` per keypoint -> next ``H`` frames.

    Inputs are normalised coordinates (``[-1, 1]``, :mod:`mint_rl.coords`) and statuses in
    ``[0, 1]`` (a keypoint is active iff ``> 0.5``), oldest frame first; ``K`` must be the
    model's. With ``config.num_actions`` set, every call takes the ``H`` actions executed after
    the last input frame (``actions[:, j]`` moves frame ``t + j`` to ``t + j + 1``);
    ``UNKNOWN_ACTION`` (``-1``) marks actions not known yet.

    Args:
        config: sizes and options; :class:`ForwardModelConfig` defaults when ``None``.
    """

    def __init__(self, config: ForwardModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ForwardModelConfig()
        self.network = ForwardInteractionNetwork(self.config)
        self.extra: dict = {}  # what the checkpoint stored beside the weights (see :meth:`save`)

    # ----------------------------------------------------------------- checks
    @property
    def num_keypoints(self) -> int:
        return self.config.num_keypoints

    @property
    def action_conditioned(self) -> bool:
        return self.config.num_actions is not None

    def check_history(self, history: Tensor) -> None:
        """Raise ``ValueError`` unless ``history`` is ``(B, T, K, 3)`` with the model's ``T`` and ``K``."""
        cfg = self.config
        if not isinstance(history, Tensor) or history.dim() != 4 or history.shape[-1] != 3:
            got = tuple(history.shape) if isinstance(history, Tensor) else type(history).__name__
            raise ValueError(f"history: expected a tensor of shape (B, T={cfg.history}, K={cfg.num_keypoints}, 3) "
                             f"holding (x, y, status), got {got}")
        if history.shape[1] != cfg.history:
            raise ValueError(f"history: expected T={cfg.history} frames (dim 1), got {history.shape[1]}")
        if history.shape[2] != cfg.num_keypoints:
            raise ValueError(f"history: the model was built for K={cfg.num_keypoints} keypoints, got K="
                             f"{history.shape[2]} (a detector or keypoint source with another K?)")

    def check_actions(self, actions: Tensor | None, batch: int, length: int) -> Tensor | None:
        """Validate ``(B, length)`` action ids (``-1`` = unknown); ``None`` when not conditioned."""
        n = self.config.num_actions
        if n is None:
            if actions is not None:
                raise ValueError("actions: this model is not action-conditioned (num_actions=None), got actions")
            return None
        if actions is None:
            raise ValueError(f"actions: this model is conditioned on {n} actions; expected ({batch}, {length}) "
                             f"action ids (-1 = unknown), got None")
        actions = torch.as_tensor(actions, dtype=torch.long)
        if tuple(actions.shape) != (batch, length):
            raise ValueError(f"actions: expected shape ({batch}, {length}), got {tuple(actions.shape)}")
        if actions.numel() and (int(actions.min()) < UNKNOWN_ACTION or int(actions.max()) >= n):
            raise ValueError(f"actions: expected ids in [0, {n}) or -1 (unknown), got values in "
                             f"[{int(actions.min())}, {int(actions.max())}]")
        return actions

    def check_detector(self, detector: Any) -> None:
        """Raise ``ValueError`` unless ``detector`` (a ``MintDetector``) has the model's ``K``."""
        k = getattr(detector, "num_keypoints", None)
        if k is None and hasattr(detector, "config"):
            k = getattr(detector.config, "num_keypoints", None)
        if k != self.config.num_keypoints:
            raise ValueError(f"detector has K={k} keypoints but this forward model was trained for "
                             f"K={self.config.num_keypoints}")

    # ----------------------------------------------------------------- prediction
    def forward(self, history: Tensor, actions: Tensor | None = None) -> ForwardPrediction:
        """One forecast: ``(B, T, K, 3)`` history (and ``(B, H)`` actions) -> the next ``H`` frames."""
        self.check_history(history)
        actions = self.check_actions(actions, history.shape[0], self.config.horizon)
        if actions is not None:
            actions = actions.to(history.device)
        return self.network.forecast(history, actions)

    @torch.no_grad()
    def predict(self, history: Tensor, actions: Tensor | None = None, batch_size: int = 1024) -> ForwardPrediction:
        """:meth:`forward` in eval mode without gradients, in chunks of ``batch_size`` windows."""
        was_training = self.training
        self.eval()
        try:
            outs = [
                self(history[i : i + batch_size], None if actions is None else actions[i : i + batch_size])
                for i in range(0, max(len(history), 1), batch_size)
            ]
        finally:
            self.train(was_training)
        return ForwardPrediction(torch.cat([o.positions for o in outs]), torch.cat([o.status_logits for o in outs]))

    @torch.no_grad()
    def rollout(self, history: Tensor, steps: int, actions: Tensor | None = None, stride: int = 1) -> Tensor:
        """Autoregressive forecast of ``steps`` frames: ``(B, steps, K, 3)`` ``(x, y, status)``.

        Each call forecasts the next ``H`` frames from the last ``T`` (observed or predicted)
        ones; the first ``stride`` of them (status thresholded at 0.5, as the detector's status
        is binary) are appended and the window moves on. ``stride=1`` uses only 1-step
        predictions; ``stride=H`` one call per ``H`` frames.

        Args:
            history: ``(B, T, K, 3)`` or ``(T, K, 3)`` observed frames, oldest first.
            steps: frames to forecast (>= 1).
            actions: with an action-conditioned model, ``(B, steps)`` (or ``(steps,)``) the actions
                executed from the last observed frame on; ids beyond ``steps`` that a call needs are
                fed as unknown (``-1``), as may be any unknown action.
            stride: frames kept per call, ``1 <= stride <= H``.
        """
        single = history.dim() == 3
        if single:
            history = history.unsqueeze(0)
            if actions is not None:
                actions = torch.as_tensor(actions).unsqueeze(0)
        self.check_history(history)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps: expected an int >= 1, got {steps!r}")
        horizon = self.config.horizon
        if not 1 <= stride <= horizon:
            raise ValueError(f"stride: expected 1 <= stride <= H={horizon}, got {stride}")
        b = history.shape[0]
        actions = self.check_actions(actions, b, steps)
        if actions is not None:
            pad = torch.full((b, horizon), UNKNOWN_ACTION, dtype=torch.long)
            actions = torch.cat([actions.cpu(), pad], dim=1).to(history.device)
        was_training = self.training
        self.eval()
        try:
            frames = history.clone()
            out: list[Tensor] = []
            while len(out) < steps:
                i = len(out)
                window = frames[:, -self.config.history :]
                pred = self(window, None if actions is None else actions[:, i : i + horizon])
                for j in range(min(stride, steps - i)):
                    status = (pred.status_logits[:, j] > 0).to(history.dtype).unsqueeze(-1)
                    out.append(torch.cat([pred.positions[:, j], status], dim=-1))
                frames = torch.cat([frames, torch.stack(out[i:], dim=1)], dim=1)
        finally:
            self.train(was_training)
        result = torch.stack(out, dim=1)
        return result[0] if single else result

    # ----------------------------------------------------------------- checkpoints
    def save(self, path: str | os.PathLike, *, extra: dict | None = None) -> Path:
        """Write weights (safetensors) and config (JSON) to ``path`` (see :mod:`mint_rl.checkpoint`).

        ``extra`` (JSON-able) is stored alongside, e.g. the detector the keypoints came from.
        """
        return save_checkpoint(path, self.state_dict(), format=FORWARD_MODEL_FORMAT, config=self.config.to_dict(),
                               extra=extra)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "KeypointForwardModel":
        """Rebuild a model saved by :meth:`save` (eval mode, CPU); nothing is unpickled.

        Raises:
            FileNotFoundError: nothing at ``path``.
            CheckpointError: not a forward-model checkpoint, bad config, weights not matching it.
        """
        ckpt = load_checkpoint(path, format=FORWARD_MODEL_FORMAT)
        try:
            config = ForwardModelConfig.from_dict(ckpt.config)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: invalid forward-model config ({e})") from None
        model = cls(config)
        expected = model.state_dict()
        missing = sorted(set(expected) - set(ckpt.state_dict))
        unexpected = sorted(set(ckpt.state_dict) - set(expected))
        if missing or unexpected:
            raise CheckpointError(f"{path}: weights do not match the config (missing {missing[:5]}, "
                                  f"unexpected {unexpected[:5]})")
        for key, tensor in expected.items():
            if tuple(ckpt.state_dict[key].shape) != tuple(tensor.shape):
                raise CheckpointError(f"{path}: tensor {key!r} has shape {tuple(ckpt.state_dict[key].shape)}, "
                                      f"expected {tuple(tensor.shape)}")
        model.load_state_dict(ckpt.state_dict, strict=True)
        model.extra = dict(ckpt.extra)
        return model.eval()

    def __repr__(self) -> str:
        c = self.config
        n = sum(p.numel() for p in self.parameters())
        return (f"{type(self).__name__}(K={c.num_keypoints}, history={c.history}, horizon={c.horizon}, "
                f"num_actions={c.num_actions}, hidden_dim={c.hidden_dim}, parameters={n})")
