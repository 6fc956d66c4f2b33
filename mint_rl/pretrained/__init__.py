"""Registry of the pretrained MINT detectors shipped inside the package.

Each name maps to a ``.safetensors`` file in this folder (weights + JSON config in its metadata,
see :mod:`mint_rl.checkpoint`). Load one with ``MintDetector.from_pretrained(name)``.

Example:
    >>> known_names()
    ('magical', 'clevrer-like')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["PretrainedEntry", "PRETRAINED", "PRETRAINED_DIR", "known_names", "available_names", "resolve"]

PRETRAINED_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PretrainedEntry:
    """One shipped detector: its file name in :data:`PRETRAINED_DIR` and what it was trained on."""

    filename: str
    description: str


PRETRAINED: dict[str, PretrainedEntry] = {
    "magical": PretrainedEntry(
        "magical.safetensors",
        "K=25, allocentric 96x96 MAGICAL frames from the scripted experts of all three tasks",
    ),
    "clevrer-like": PretrainedEntry(
        "clevrer-like.safetensors",
        "K=25, the synthetic CLEVRER-like generator's small preset",
    ),
}


def known_names() -> tuple[str, ...]:
    """Names of the registered pretrained detectors (shipped or not)."""
    return tuple(PRETRAINED)


def available_names() -> tuple[str, ...]:
    """Names whose weight file is present in this installation."""
    return tuple(n for n, e in PRETRAINED.items() if (PRETRAINED_DIR / e.filename).is_file())


def resolve(name: str) -> Path:
    """Path of the weight file registered under ``name``.

    Raises:
        ValueError: ``name`` is not a registered name (the message lists the known names).
        FileNotFoundError: the name is registered but its weights are not shipped in this install.

    Example:
        >>> resolve("no-such-model")
        Traceback (most recent call last):
        ...
        ValueError: unknown pretrained detector 'no-such-model'; known names: 'magical', 'clevrer-like'
    """
    if name not in PRETRAINED:
        known = ", ".join(repr(n) for n in PRETRAINED)
        raise ValueError(f"unknown pretrained detector {name!r}; known names: {known}")
    path = PRETRAINED_DIR / PRETRAINED[name].filename
    if not path.is_file():
        shipped = ", ".join(repr(n) for n in available_names()) or "none"
        raise FileNotFoundError(
            f"pretrained detector {name!r} is registered but its weights are not shipped yet "
            f"(expected {path}); shipped now: {shipped}; known names: "
            + ", ".join(repr(n) for n in PRETRAINED)
        )
    return path
