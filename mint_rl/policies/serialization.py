"""Saving and loading our SB3 policies without pickle: safetensors weights + JSON description.

SB3 2.2's ``BasePolicy.save`` pickles the constructor arguments (spaces, classes, schedules)
next to the weights, and loading them means executing that pickle. Our policies instead write
one ``.safetensors`` file whose metadata holds a JSON description of how to rebuild the policy:
its class name (one of :data:`POLICY_CLASSES`), the observation and action spaces, and the
JSON-able keyword arguments it was built with. Loading rebuilds the policy from that
description and loads the tensors; nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, TypeVar

import gymnasium as gym
import numpy as np
import torch

from mint_rl.checkpoint import check_finite_tensors

__all__ = ["SafePolicyIOMixin", "space_to_json", "space_from_json", "load_policy", "POLICY_FORMAT", "POLICY_REGISTRY"]

POLICY_FORMAT = "mint_rl.policy"
POLICY_FORMAT_VERSION = 2
_P = TypeVar("_P")


def _array_to_json(a: np.ndarray) -> Any:
    a = np.asarray(a)
    flat = a.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return float(flat[0])
    return a.astype(np.float64).tolist()


def space_to_json(space: gym.Space) -> dict[str, Any]:
    """JSON description of a ``Box`` or ``Discrete`` space.

    Example:
        >>> space_to_json(gym.spaces.Discrete(18))
        {'type': 'Discrete', 'n': 18}
    """
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _array_to_json(space.low),
            "high": _array_to_json(space.high),
        }
    raise TypeError(f"space_to_json: expected a Box or Discrete space, got {type(space).__name__}")


def space_from_json(data: Mapping[str, Any]) -> gym.Space:
    """Inverse of :func:`space_to_json`.

    Example:
        >>> space_from_json(space_to_json(gym.spaces.Box(0, 255, (2, 3), np.uint8)))
        Box(0, 255, (2, 3), uint8)
    """
    kind = data.get("type")
    if kind == "Discrete":
        return gym.spaces.Discrete(int(data["n"]))
    if kind == "Box":
        shape = tuple(int(v) for v in data["shape"])
        dtype = np.dtype(data["dtype"])
        low = np.broadcast_to(np.asarray(data["low"], np.float64), shape).astype(dtype)
        high = np.broadcast_to(np.asarray(data["high"], np.float64), shape).astype(dtype)
        return gym.spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
    raise ValueError(f"space_from_json: expected type Box or Discrete, got {kind!r}")


#: policy class name -> class; filled by :class:`SafePolicyIOMixin` subclasses as they are defined,
#: so that this module never imports the policy modules that import it
POLICY_REGISTRY: dict[str, type] = {}
#: the classes this package defines (each registers itself when ``mint_rl.policies`` is imported)
POLICY_CLASSES = ("MintGraphPolicy", "CnnAgentPolicy", "StateAgentPolicy")


def _state_aliases(module: torch.nn.Module) -> dict[str, str]:
    """Every ``state_dict`` name of ``module`` -> the first name of the same tensor.

    SB3 policies that share their features extractor list its tensors three times
    (``features_extractor.*``, ``pi_features_extractor.*``, ``vf_features_extractor.*``).
    """
    first: dict[int, str] = {}
    aliases: dict[str, str] = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        aliases[name] = first.setdefault(id(tensor), name)
    return aliases


def _unique_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state with each shared tensor once, under its first name."""
    state = module.state_dict()
    return {name: state[name] for name, first in _state_aliases(module).items() if name == first}


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


class SafePolicyIOMixin:
    """``save(path)`` / ``load(path)`` for our policy classes, in safetensors + JSON (no pickle).

    The concrete class calls :meth:`_record_kwargs` in ``__init__`` with the keyword arguments
    it was built with; JSON-able ones are saved, and saving a policy built with others (a
    custom class, a function) raises a clear error rather than writing a file that cannot be
    rebuilt.
    """

    _json_kwargs: dict[str, Any]
    _unsaveable: list[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        known = POLICY_REGISTRY.get(cls.__name__)
        if known is not None and known.__module__ != cls.__module__:
            raise TypeError(f"policy class name {cls.__name__!r} is already registered by {known.__module__}; "
                            "policy files name their class, so names must be unique")
        POLICY_REGISTRY[cls.__name__] = cls

    @classmethod
    def _upgrade_kwargs(cls, kwargs: dict[str, Any], format_version: int) -> dict[str, Any]:
        """The constructor kwargs of a file of an older ``format_version``, as this version reads them."""
        return kwargs

    def _record_kwargs(self, **kwargs: Any) -> None:
        self._json_kwargs = {k: v for k, v in kwargs.items() if v is not None and _is_json(v)}
        self._unsaveable = sorted(k for k, v in kwargs.items() if v is not None and not _is_json(v))

    def save(self, path: str | os.PathLike, extra: Mapping[str, Any] | None = None) -> Path:  # type: ignore[override]
        """Write the weights and the rebuild description to ``path`` (a ``.safetensors`` file), atomically."""
        from safetensors.torch import save_file

        path = Path(path)
        if getattr(self, "_unsaveable", None):
            raise ValueError(
                f"{type(self).__name__}.save: keyword arguments {self._unsaveable} are not JSON-able, so the policy "
                "could not be rebuilt without pickle; save the state_dict yourself"
            )
        description = {
            "format": POLICY_FORMAT,
            "format_version": POLICY_FORMAT_VERSION,
            "class": type(self).__name__,
            "observation_space": space_to_json(self.observation_space),  # type: ignore[attr-defined]
            "action_space": space_to_json(self.action_space),  # type: ignore[attr-defined]
            "kwargs": getattr(self, "_json_kwargs", {}),
            "extra": dict(extra or {}),
        }
        try:
            meta = json.dumps(description)
        except TypeError as exc:
            raise ValueError(f"policy keyword arguments must be JSON-able to be saved safely: {exc}") from exc
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        # a tensor shared between the policy's extractors is stored once, under its first name
        tensors = {name: t.detach().cpu().contiguous() for name, t in _unique_state(self).items()}  # type: ignore[arg-type]
        save_file(tensors, str(tmp), metadata={"mint_rl": meta})
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls: type[_P], path: str | os.PathLike, device: torch.device | str = "cpu") -> _P:  # type: ignore[override]
        """Rebuild a policy saved by :meth:`save` (checks that it is of this class)."""
        policy = load_policy(path, device)
        if not isinstance(policy, cls):
            raise ValueError(f"{path} holds a {type(policy).__name__}, not a {cls.__name__}")
        return policy


def policy_extra(path: str | os.PathLike) -> dict[str, Any]:
    """The ``extra`` mapping a policy file was saved with (``bc_magical.py``: task, seed, detector).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a mint_rl policy file.
    """
    return dict(_read_description(Path(path)).get("extra", {}))


def _read_description(path: Path) -> dict[str, Any]:
    """The JSON description :meth:`SafePolicyIOMixin.save` stores in a policy file's metadata."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise FileNotFoundError(f"no policy file at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = (f.metadata() or {}).get("mint_rl")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable safetensors policy file ({exc})") from exc
    if meta is None:
        raise ValueError(f"{path}: safetensors file without mint_rl policy metadata")
    return json.loads(meta)


def load_policy(path: str | os.PathLike, device: torch.device | str = "cpu") -> Any:
    """Rebuild any policy saved by :meth:`SafePolicyIOMixin.save` (no pickle is executed).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a mint_rl policy file, an unknown class, or mismatched weights.
    """
    from safetensors.torch import load_file

    path = Path(path)
    description = _read_description(path)
    if description.get("format") != POLICY_FORMAT:
        raise ValueError(f"{path}: expected format {POLICY_FORMAT!r}, got {description.get('format')!r}")
    if int(description.get("format_version", -1)) > POLICY_FORMAT_VERSION:
        raise ValueError(f"{path}: format version {description['format_version']} is newer than this mint_rl reads")
    registry = POLICY_REGISTRY
    name = description.get("class")
    if name not in registry:
        raise ValueError(f"{path}: unknown policy class {name!r}; expected one of {sorted(registry)}")
    obs_space = space_from_json(description["observation_space"])
    act_space = space_from_json(description["action_space"])
    kwargs = registry[name]._upgrade_kwargs(dict(description.get("kwargs", {})), int(description["format_version"]))
    policy = registry[name](obs_space, act_space, lambda _: 0.0, **kwargs)
    stored = load_file(str(path))
    check_finite_tensors(stored, path)
    aliases = _state_aliases(policy)  # every state_dict name -> the name it is stored under
    canonical = set(aliases.values())
    # older files (safetensors' save_model) may keep a shared tensor under another of its names
    by_canonical = {aliases[k]: v for k, v in stored.items() if k in aliases}
    unexpected = sorted(k for k in stored if k not in aliases)
    missing = sorted(canonical - set(by_canonical))
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match {name}: missing {missing}, unexpected {unexpected}")
    try:
        policy.load_state_dict({k: by_canonical[c] for k, c in aliases.items()}, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not match {name}: {exc}") from exc
    policy.set_training_mode(False)
    return policy.to(device)
