"""The MAGICAL environment ids, known without importing MAGICAL, and their gymnasium registration.

MAGICAL ids look like ``<Task>-<Variant>[-<Preproc>]-v0`` (e.g. ``MoveToCorner-TestJitter-v0``,
``MoveToCorner-Demo-LoRes4A-v0``). This module lists them statically (a test checks the list
against ``magical.ALL_REGISTERED_ENVS``) so that ``import mint_rl`` can register the gymnasium
ids ``magical/<MAGICAL id>`` cheaply: the entry point is a string, and MAGICAL, pymunk and pyglet
are imported only when an environment is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = [
    "ALL_VARIANTS",
    "TASKS",
    "TASK_VARIANTS",
    "PREPROCESSORS",
    "EPISODE_STEPS",
    "NAMESPACE",
    "MagicalId",
    "all_magical_ids",
    "magical_id",
    "parse_magical_id",
    "register_gymnasium_ids",
]

#: gymnasium namespace of the registered ids: ``magical/<MAGICAL id>``.
NAMESPACE = "magical"

_VARIANTS_8 = (
    "Demo",
    "TestJitter",
    "TestColour",
    "TestShape",
    "TestLayout",
    "TestCountPlus",
    "TestDynamics",
    "TestAll",
)

#: Every variant name any MAGICAL task has, in MAGICAL's order (the tables' column order).
ALL_VARIANTS: tuple[str, ...] = _VARIANTS_8

#: Variants of every MAGICAL task, as MAGICAL 0.0.1a4 registers them.
TASK_VARIANTS: dict[str, tuple[str, ...]] = {
    "MoveToCorner": ("Demo", "TestJitter", "TestColour", "TestShape", "TestDynamics", "TestAll"),
    "MoveToRegion": ("Demo", "TestJitter", "TestColour", "TestLayout", "TestDynamics", "TestAll"),
    "MakeLine": _VARIANTS_8,
    "MatchRegions": _VARIANTS_8,
    "FindDupe": _VARIANTS_8,
    "FixColour": _VARIANTS_8,
    "ClusterShape": _VARIANTS_8,
    "ClusterColour": _VARIANTS_8,
}

#: All task names.
TASKS: tuple[str, ...] = tuple(TASK_VARIANTS)

#: MAGICAL's observation preprocessors (suffix of preprocessed ids, e.g. ``-LoRes4A``).
PREPROCESSORS: tuple[str, ...] = ("LoRes3EA", "LoRes4E", "LoRes4A", "LoResStack", "LoResCHW4E")

#: Episode length (MAGICAL's only episode end) per task.
EPISODE_STEPS: dict[str, int] = {
    "MoveToCorner": 80,
    "MoveToRegion": 40,
    "MatchRegions": 120,
    "MakeLine": 180,
    "FindDupe": 100,
    "FixColour": 60,
    "ClusterShape": 240,
    "ClusterColour": 240,
}

_DEBUG_VARIANT = ("MoveToCorner", "Demo-DebugReward")


@dataclass(frozen=True)
class MagicalId:
    """A parsed MAGICAL env id.

    Attributes:
        task: e.g. ``"MoveToCorner"``.
        variant: e.g. ``"Demo"``, ``"TestJitter"`` (``"Demo-DebugReward"`` for the debug env).
        preproc: MAGICAL preprocessor name such as ``"LoRes4A"``, or None.
        version: e.g. ``"v0"``.
    """

    task: str
    variant: str
    preproc: Optional[str] = None
    version: str = "v0"

    @property
    def env_id(self) -> str:
        """The MAGICAL id, e.g. ``MoveToCorner-Demo-LoRes4A-v0``."""
        parts = [self.task, self.variant] + ([self.preproc] if self.preproc else []) + [self.version]
        return "-".join(parts)

    @property
    def gymnasium_id(self) -> str:
        """The gymnasium id, e.g. ``magical/MoveToCorner-Demo-v0``."""
        return f"{NAMESPACE}/{self.env_id}"

    @property
    def max_episode_steps(self) -> int:
        """Steps per episode."""
        return EPISODE_STEPS[self.task]


def _check_task_variant(task: str, variant: str) -> None:
    if not isinstance(task, str):
        raise TypeError(f"task: expected a str, got {type(task).__name__}")
    if not isinstance(variant, str):
        raise TypeError(f"variant: expected a str, got {type(variant).__name__}")
    if task not in TASK_VARIANTS:
        raise ValueError(f"unknown MAGICAL task {task!r}; expected one of {list(TASKS)}")
    valid = TASK_VARIANTS[task] + (("Demo-DebugReward",) if task == _DEBUG_VARIANT[0] else ())
    if variant not in valid:
        raise ValueError(f"unknown variant {variant!r} for task {task!r}; expected one of {list(valid)}")


def magical_id(task: str, variant: str = "Demo", preproc: Optional[str] = None) -> MagicalId:
    """Build a validated :class:`MagicalId`.

    Raises:
        ValueError: unknown task, variant or preprocessor (the message lists the valid ones).

    Example:
        >>> magical_id("MoveToCorner", "TestJitter").env_id
        'MoveToCorner-TestJitter-v0'
        >>> magical_id("MakeLine", "Demo", "LoRes4A").gymnasium_id
        'magical/MakeLine-Demo-LoRes4A-v0'
    """
    _check_task_variant(task, variant)
    if preproc is not None and preproc not in PREPROCESSORS:
        raise ValueError(f"unknown preprocessor {preproc!r}; expected None or one of {list(PREPROCESSORS)}")
    return MagicalId(task, variant, preproc)


def parse_magical_id(env_id: str) -> MagicalId:
    """Parse a MAGICAL id (with or without the ``magical/`` namespace).

    Raises:
        TypeError: ``env_id`` is not a string.
        ValueError: not a MAGICAL id; the message names the valid tasks/variants.

    Example:
        >>> parse_magical_id("magical/MoveToCorner-TestJitter-LoRes4A-v0")
        MagicalId(task='MoveToCorner', variant='TestJitter', preproc='LoRes4A', version='v0')
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env_id: expected a str, got {type(env_id).__name__}")
    name = env_id[len(NAMESPACE) + 1 :] if env_id.startswith(NAMESPACE + "/") else env_id
    parts = name.split("-")
    if len(parts) < 3 or parts[-1] != "v0":
        raise ValueError(
            f"{env_id!r} is not a MAGICAL env id; expected '<Task>-<Variant>[-<Preproc>]-v0' with "
            f"Task in {list(TASKS)}"
        )
    task, rest = parts[0], parts[1:-1]
    preproc = None
    if len(rest) >= 2 and rest[-1] in PREPROCESSORS:
        preproc = rest[-1]
        rest = rest[:-1]
    variant = "-".join(rest)
    _check_task_variant(task, variant)
    return MagicalId(task, variant, preproc)


def all_magical_ids() -> list[str]:
    """Every MAGICAL id (366 in MAGICAL 0.0.1a4), in a fixed order.

    Example:
        >>> ids = all_magical_ids()
        >>> len(ids), "MoveToCorner-TestJitter-LoRes4A-v0" in ids
        (366, True)
    """
    out = []
    pairs = [(t, v) for t, vs in TASK_VARIANTS.items() for v in vs] + [_DEBUG_VARIANT]
    for task, variant in pairs:
        for preproc in (None,) + PREPROCESSORS:
            out.append(MagicalId(task, variant, preproc).env_id)
    return out


def register_gymnasium_ids() -> int:
    """Register ``magical/<id>`` in gymnasium for every MAGICAL id; cheap (imports no MAGICAL).

    Idempotent: ids already registered are skipped.

    Returns:
        Number of ids newly registered.

    Example:
        >>> import gymnasium
        >>> _ = register_gymnasium_ids()
        >>> gymnasium.spec("magical/MoveToCorner-Demo-v0").max_episode_steps
        80
    """
    import gymnasium

    registry = gymnasium.envs.registration.registry
    count = 0
    for env_id in all_magical_ids():
        parsed = parse_magical_id(env_id)
        gid = parsed.gymnasium_id
        if gid in registry:
            continue
        gymnasium.register(
            id=gid,
            entry_point="mint_rl.envs.magical:MagicalEnv",
            max_episode_steps=parsed.max_episode_steps,
            kwargs={"env_id": env_id},
        )
        count += 1
    return count
