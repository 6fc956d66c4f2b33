"""Registry of the pretrained detectors shipped inside the package.

Each name maps to a ``.safetensors`` file in this folder (weights + JSON config in its metadata,
see :mod:`mint_rl.checkpoint`). :data:`PRETRAINED` holds the MINT detectors (load one with
``MintDetector.from_pretrained(name)``); :data:`BASELINE_PRETRAINED` the baselines' (Transporter,
Transporter-modified, Video Structure; ``mint_rl.detectors.load_detector(name)`` loads any of
the two registries, ``Transporter.from_pretrained(name)`` etc. their own).

Example:
    >>> known_names()
    ('magical', 'magical-recolour', 'clevrer-like', 'clevrer-like-economical')
    >>> [n for n in known_detector_names() if n.endswith("clevrer-like")]
    ['clevrer-like', 'transporter-clevrer-like', 'transporter-modified-clevrer-like', 'video-structure-clevrer-like']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["PretrainedEntry", "PRETRAINED", "BASELINE_PRETRAINED", "PRETRAINED_DIR", "known_names", "available_names",
           "known_detector_names", "entry", "resolve", "resolve_any"]

PRETRAINED_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PretrainedEntry:
    """One shipped detector: its file name in :data:`PRETRAINED_DIR` and what it was trained on."""

    filename: str
    description: str
    method: str = "mint"


PRETRAINED: dict[str, PretrainedEntry] = {
    "magical": PretrainedEntry(
        "magical.safetensors",
        "K=25, allocentric 96x96 MAGICAL frames from the scripted experts of all three tasks",
    ),
    "magical-recolour": PretrainedEntry(
        "magical-recolour.safetensors",
        "K=25, as 'magical', trained on recoloured windows (RGB channels permuted, brightness and contrast "
        "+-20%, one draw per window); behaviour cloning on it scores lower than on 'magical' (docs/results.md), "
        "shipped to reproduce that row",
    ),
    "clevrer-like": PretrainedEntry(
        "clevrer-like.safetensors",
        "K=25, the synthetic CLEVRER-like generator's small preset",
    ),
    "clevrer-like-economical": PretrainedEntry(
        "clevrer-like-economical.safetensors",
        "K=25, CLEVRER-like small preset, economical status (w/o temporal terms, status weight 50, "
        "surrogate slope 0.02): ~2.3 active keypoints per object instead of ~4.9",
    ),
}


#: shipped baseline detectors (MINT paper App. E.3), each reproduced by the command in docs/baselines.md
BASELINE_PRETRAINED: dict[str, PretrainedEntry] = {
    "transporter-clevrer-like": PretrainedEntry(
        "transporter-clevrer-like.safetensors",
        "Transporter, K=25, 128x128, the CLEVRER-like generator's small preset",
        "transporter",
    ),
    "transporter-modified-clevrer-like": PretrainedEntry(
        "transporter-modified-clevrer-like.safetensors",
        "Transporter-modified (receptive field 7, 122x122 features), K=25, 128x128, CLEVRER-like small preset",
        "transporter-modified",
    ),
    "video-structure-clevrer-like": PretrainedEntry(
        "video-structure-clevrer-like.safetensors",
        "Video Structure, K=25, 64x64, the CLEVRER-like generator's small preset",
        "video-structure",
    ),
    "transporter-magical": PretrainedEntry(
        "transporter-magical.safetensors",
        "Transporter, K=25, 128x128 (resized from 96x96), allocentric MAGICAL frames from the scripted experts "
        "of all three tasks (the BC comparison's baseline keypoints)",
        "transporter",
    ),
    "transporter-modified-magical": PretrainedEntry(
        "transporter-modified-magical.safetensors",
        "Transporter-modified (receptive field 7, 122x122 features), K=25, 128x128 (resized from 96x96), "
        "allocentric MAGICAL frames from the scripted experts of all three tasks",
        "transporter-modified",
    ),
    "video-structure-magical": PretrainedEntry(
        "video-structure-magical.safetensors",
        "Video Structure, K=25, 64x64 (resized from 96x96), allocentric MAGICAL frames from the scripted experts "
        "of all three tasks",
        "video-structure",
    ),
}


def known_detector_names() -> tuple[str, ...]:
    """Names of every registered detector, MINT and baselines (shipped or not)."""
    return tuple(PRETRAINED) + tuple(BASELINE_PRETRAINED)


def entry(name: str) -> PretrainedEntry:
    """The registry entry of any registered name (MINT or baseline).

    Raises:
        ValueError: an unknown name (the message lists every known one).
    """
    found = PRETRAINED.get(name) or BASELINE_PRETRAINED.get(name)
    if found is None:
        known = ", ".join(repr(n) for n in known_detector_names())
        raise ValueError(f"unknown pretrained detector {name!r}; known names: {known}")
    return found


def resolve_any(name: str) -> Path:
    """Path of the weight file of any registered name, MINT or baseline.

    Raises:
        ValueError: an unknown name (the message lists every known one).
        FileNotFoundError: a registered name whose weights are not shipped in this install.
    """
    path = PRETRAINED_DIR / entry(name).filename
    if not path.is_file():
        shipped = [n for n in known_detector_names() if (PRETRAINED_DIR / entry(n).filename).is_file()]
        raise FileNotFoundError(
            f"pretrained detector {name!r} is registered but its weights are not shipped yet (expected {path}); "
            f"shipped now: {', '.join(repr(n) for n in shipped) or 'none'}"
        )
    return path


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
        ValueError: unknown pretrained detector 'no-such-model'; known names: 'magical', 'magical-recolour', 'clevrer-like', 'clevrer-like-economical'
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
