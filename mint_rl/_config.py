"""Dict round-trips shared by the config dataclasses (``DetectorConfig``, ``LossConfig``, ``TrainConfig``)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

_C = TypeVar("_C", bound="ConfigMixin")


class ConfigMixin:
    """``to_dict`` / ``from_dict`` / ``replace`` for a dataclass config.

    Example:
        >>> @dataclasses.dataclass
        ... class Demo(ConfigMixin):
        ...     size: tuple = (2, 3)
        >>> Demo().to_dict()
        {'size': [2, 3]}
        >>> Demo.from_dict({"size": (4, 5)}).size
        (4, 5)
        >>> Demo.from_dict({"colour": 1})
        Traceback (most recent call last):
        ...
        ValueError: Demo.from_dict: unknown keys ['colour']; expected a subset of ['size']
    """

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists)."""
        d = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls: type[_C], data: dict[str, Any]) -> _C:
        """Inverse of :meth:`to_dict`; a non-dict or unknown keys raise ``ValueError``."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}.from_dict: expected a dict, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}.from_dict: unknown keys {unknown}; expected a subset of {sorted(names)}")
        return cls(**data)

    def replace(self: _C, **changes: Any) -> _C:
        """Copy with some fields changed (validated again by ``__post_init__``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
