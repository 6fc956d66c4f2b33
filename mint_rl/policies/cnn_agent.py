"""The paper's pixel baseline (Appendix E.5): a CNN on stacked frames, as an SB3 extractor and policy."""

from __future__ import annotations

import contextlib
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import is_image_space_channels_first
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import Tensor, nn

from mint_rl.policies.serialization import SafePolicyIOMixin

__all__ = [
    "CnnAgentExtractor",
    "CnnAgentPolicy",
    "CNN_AGENT_FILTERS",
    "CNN_AGENT_NET_ARCH",
    "COMPUTE_DTYPES",
    "has_fast_bf16",
]

#: (out_channels, kernel, stride, padding) of the five conv blocks.
CNN_AGENT_FILTERS: tuple[tuple[int, int, int, int], ...] = (
    (64, 5, 1, 2),
    (128, 3, 2, 1),
    (128, 3, 2, 1),
    (128, 3, 2, 1),
    (128, 3, 2, 1),
)
#: ``CnnAgentExtractor(compute_dtype=...)``: the autocast dtype of each choice (``None``: float32).
COMPUTE_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}
#: The policy MLP after the features (Appendix E.5).
CNN_AGENT_NET_ARCH: list[int] = [128, 64, 32, 32]


def has_fast_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` runs bfloat16 convolutions in hardware rather than by emulation.

    On a CPU this is oneDNN's own test (AVX512 with BF16 or AMX, or at least AVX512-BW/VL/DQ);
    on an AVX2-only CPU, ``torch.autocast(dtype=torch.bfloat16)`` still works but converts
    every value in software, and the CNN agent's BC step ran 6x *slower* than in float32 on
    one (``scripts/benchmark_bc.py``). On CUDA it is ``torch.cuda.is_bf16_supported`` without
    emulation (Ampere or newer). Other devices: ``False``.

    Example:
        >>> isinstance(has_fast_bf16("cpu"), bool)
        True
    """
    device = torch.device(device)
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a torch build without oneDNN
            return False
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return False


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class CnnAgentExtractor(BaseFeaturesExtractor):
    """Five ``Conv2d -> ReLU -> BatchNorm2d`` blocks, flatten, ``Linear -> ReLU`` features.

    Filters 64, 128, 128, 128, 128; the first block has kernel 5 and stride 1, the others kernel
    3 and stride 2 (padding keeps ``ceil(size / stride)``): a 96x96 input ends as 128 x 6 x 6.
    The input is a stack of RGB frames: MAGICAL's ``-LoRes4A`` observation, 96x96x12 ``uint8``
    (4 frames, channel-last) or its channel-first transpose ``(12, 96, 96)`` (what SB3's
    ``VecTransposeImage`` produces); the layout is read from the observation space (SB3's rule:
    the smallest of the first and last axes is the channel axis). ``uint8`` inputs are scaled
    to [0, 1] here; SB3 policies already scale image spaces before the extractor, and a float
    input is used as is.

    Args:
        observation_space: ``Box`` of shape ``(H, W, C)`` or ``(C, H, W)``.
        features_dim: size of the linear features after the conv stack.
        channels_first: force the layout instead of inferring it.
        compute_dtype: ``"fp32"``, or ``"bf16"`` to run the conv stack and the linear layer
            under ``torch.autocast`` in bfloat16 (mixed precision: weights and gradients stay
            float32 and the features come out as float32, so the policy heads and the loss are
            float32). On CPUs with AVX512-BF16 this halves the agent's training time
            (``scripts/benchmark_bc.py``).

    Example:
        >>> space = gym.spaces.Box(0, 255, shape=(32, 32, 12), dtype="uint8")
        >>> CnnAgentExtractor(space, features_dim=16)(torch.zeros(2, 32, 32, 12, dtype=torch.uint8)).shape
        torch.Size([2, 16])
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = 128,
        channels_first: bool | None = None,
        compute_dtype: str = "fp32",
    ) -> None:
        if compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"compute_dtype: expected one of {list(COMPUTE_DTYPES)}, got {compute_dtype!r}")
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 3:
            raise ValueError(
                f"CnnAgentExtractor needs a Box of shape (H, W, C) or (C, H, W), got {observation_space}"
            )
        super().__init__(observation_space, features_dim)
        if channels_first is None:
            channels_first = bool(is_image_space_channels_first(observation_space))
        self.channels_first = channels_first
        self.compute_dtype = compute_dtype
        shape = observation_space.shape
        channels, height, width = shape if channels_first else (shape[2], shape[0], shape[1])
        self.input_shape = (channels, height, width)

        blocks: list[nn.Module] = []
        in_ch = channels
        for out_ch, kernel, stride, padding in CNN_AGENT_FILTERS:
            blocks += [nn.Conv2d(in_ch, out_ch, kernel, stride, padding), nn.ReLU(), nn.BatchNorm2d(out_ch)]
            in_ch = out_ch
            height, width = _conv_out(height, kernel, stride, padding), _conv_out(width, kernel, stride, padding)
        if height < 1 or width < 1:
            raise ValueError(f"input {shape} is too small for the CNN agent's five conv blocks")
        self.cnn = nn.Sequential(*blocks, nn.Flatten())
        self.linear = nn.Sequential(nn.Linear(in_ch * height * width, features_dim), nn.ReLU())

    def forward(self, observations: Tensor) -> Tensor:
        """``(B, H, W, C)`` or ``(B, C, H, W)`` (as the space) -> ``(B, features_dim)``."""
        obs = observations
        c, h, w = self.input_shape
        expected = (c, h, w) if self.channels_first else (h, w, c)
        if obs.dim() != 4 or tuple(obs.shape[1:]) != expected:
            shape = ", ".join(map(str, expected))
            raise ValueError(f"expected observations of shape (B, {shape}), got {tuple(obs.shape)}")
        if obs.dtype == torch.uint8:
            obs = obs.float() / 255.0
        if not self.channels_first:
            obs = obs.permute(0, 3, 1, 2)
        dtype = COMPUTE_DTYPES[self.compute_dtype]
        precision = contextlib.nullcontext() if dtype is None else torch.autocast(obs.device.type, dtype=dtype)
        with precision:
            features = self.linear(self.cnn(obs.float()))
        return features.float()


class CnnAgentPolicy(SafePolicyIOMixin, ActorCriticPolicy):
    """SB3 actor-critic preset of the CNN agent: :class:`CnnAgentExtractor` + MLP 128-64-32-32 (ReLU).

    ``PPO(CnnAgentPolicy, env)`` and behaviour cloning use it like :class:`MintGraphPolicy`.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = CnnAgentExtractor,
        **kwargs: Any,
    ) -> None:
        if net_arch is None:
            net_arch = dict(pi=list(CNN_AGENT_NET_ARCH), vf=list(CNN_AGENT_NET_ARCH))
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            **kwargs,
        )
        self._record_kwargs(
            net_arch=net_arch,
            activation_fn=None if activation_fn is nn.ReLU else activation_fn,
            features_extractor_class=None if features_extractor_class is CnnAgentExtractor else features_extractor_class,
            **kwargs,
        )
