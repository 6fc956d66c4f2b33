"""Loading policies saved with SB3's ``BasePolicy.save`` under torch >= 2.6.

SB3 2.2's ``BasePolicy.save`` pickles the constructor arguments (observation and action spaces,
extractor class, ...) next to the state dict, and its ``load`` calls ``torch.load`` with torch's
default ``weights_only=True``, which refuses those objects since torch 2.6. The mixin below
restores SB3's behaviour for our policies by loading with ``weights_only=False``: as with any
pickle, only load files you trust.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
from stable_baselines3.common.utils import get_device

__all__ = ["TrustedLoadMixin"]

_P = TypeVar("_P")


class TrustedLoadMixin:
    """Gives an SB3 policy class a ``load`` that works with files written by its ``save``."""

    @classmethod
    def load(cls: type[_P], path: Any, device: torch.device | str = "auto") -> _P:
        """Rebuild the policy saved at ``path`` (by ``policy.save(path)``) on ``device``."""
        device = get_device(device)
        saved = torch.load(path, map_location=device, weights_only=False)
        if not isinstance(saved, dict) or not {"data", "state_dict"} <= saved.keys():
            raise ValueError(f"{path} does not hold a policy saved with BasePolicy.save")
        policy = cls(**saved["data"])
        policy.load_state_dict(saved["state_dict"])  # type: ignore[attr-defined]
        return policy.to(device)  # type: ignore[attr-defined]
