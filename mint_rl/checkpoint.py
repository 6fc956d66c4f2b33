"""Checkpoint files: safetensors weights plus the JSON needed to rebuild the model.

A checkpoint is either

* one ``.safetensors`` file whose header metadata holds ``format``, ``format_version``,
  ``mint_rl_version`` and ``config`` (the config dataclass as a JSON object), or
* a directory holding ``model.safetensors`` (same content) and a human-readable ``config.json``
  with the same fields (``config.json`` wins if both are present).

Nothing is unpickled: weights are read with :func:`safetensors.torch.load`, the header with
:mod:`json`. Writes are atomic (temporary file in the target folder, then :func:`os.replace`).
Every defect of a file (missing, truncated, not safetensors, wrong format or version, missing
config) raises :class:`FileNotFoundError` or :class:`CheckpointError` (a :class:`ValueError`).
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

__all__ = [
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "CONFIG_NAME",
    "CheckpointError",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "check_finite_tensors",
    "FORMAT_DESCRIPTIONS",
]

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
_MAX_HEADER = 100_000_000

#: what each known ``format`` tag holds, for the message when a file of one format is loaded as another
FORMAT_DESCRIPTIONS: dict[str, str] = {
    "mint_rl.MintDetector": "a MINT keypoint detector",
    "mint_rl.Transporter": "a Transporter / Transporter-modified keypoint detector",
    "mint_rl.VideoStructure": "a Video Structure keypoint detector",
}


class CheckpointError(ValueError):
    """A checkpoint exists but cannot be used (corrupt, truncated, wrong format or mismatch)."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns."""

    state_dict: dict[str, torch.Tensor]
    config: dict
    format: str
    format_version: int
    mint_rl_version: str
    path: Path
    extra: dict = field(default_factory=dict)


def _version() -> str:
    from mint_rl import __version__

    return __version__


def chmod_as_open(path: str | os.PathLike) -> None:
    """Give ``path`` the mode a plain ``open()`` would have created it with (``0o666 & ~umask``).

    ``tempfile.mkstemp`` creates files ``0o600``; atomic writers call this before the rename.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        chmod_as_open(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(
    path: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    *,
    format: str,
    config: dict,
    extra: dict | None = None,
) -> Path:
    """Write ``state_dict`` and ``config`` atomically; returns the path written.

    ``path`` ending in ``.safetensors`` gives one file; any other path is a directory that gets
    ``model.safetensors`` and ``config.json``.

    Args:
        path: target file or directory.
        state_dict: name -> tensor (copied to contiguous CPU tensors; shared storage is fine).
        format: a tag naming what the weights are (e.g. ``"mint_rl.MintDetector"``).
        config: JSON-serialisable dict that rebuilds the model.
        extra: optional JSON-serialisable dict stored alongside (e.g. training step).
    """
    from safetensors.torch import save

    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    meta = {
        "format": str(format),
        "format_version": str(FORMAT_VERSION),
        "mint_rl_version": _version(),
        "config": json.dumps(config, sort_keys=True),
        "extra": json.dumps(extra or {}, sort_keys=True),
    }
    blob = save(tensors, metadata=meta)
    if path.suffix == ".safetensors":
        atomic_write_bytes(path, blob)
        return path
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"save_checkpoint: expected a directory or a '*.safetensors' path, got the file {path}")
    atomic_write_bytes(path / WEIGHTS_NAME, blob)
    readable = {
        "format": meta["format"],
        "format_version": FORMAT_VERSION,
        "mint_rl_version": meta["mint_rl_version"],
        "config": config,
        "extra": extra or {},
    }
    atomic_write_bytes(path / CONFIG_NAME, (json.dumps(readable, indent=2, sort_keys=True) + "\n").encode())
    return path


def _read_header(data: bytes, path: Path) -> dict:
    if len(data) < 8:
        raise CheckpointError(f"{path}: not a safetensors file (expected at least 8 bytes, got {len(data)})")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise CheckpointError(
            f"{path}: truncated or not a safetensors file (header says {n} bytes, file has {len(data) - 8} after the length)"
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt safetensors header ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (expected a JSON object)")
    return header


def _parse_meta(meta: dict, path: Path, source: str) -> tuple[str, int, str, dict, dict]:
    def need(key: str) -> object:
        if key not in meta:
            raise CheckpointError(f"{path}: not a mint_rl checkpoint ({source} has no {key!r} entry)")
        return meta[key]

    fmt = str(need("format"))
    try:
        version = int(need("format_version"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CheckpointError(f"{path}: bad format_version {meta.get('format_version')!r}") from None
    if version > FORMAT_VERSION or version < 1:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is not supported by this mint_rl "
            f"(expected 1..{FORMAT_VERSION})"
        )
    config = need("config")
    extra = meta.get("extra", {})
    try:
        if isinstance(config, str):
            config = json.loads(config)
        if isinstance(extra, str):
            extra = json.loads(extra)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: config in {source} is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: expected the config to be a JSON object, got {type(config).__name__}")
    return fmt, version, str(meta.get("mint_rl_version", "unknown")), config, extra if isinstance(extra, dict) else {}


def check_finite_tensors(tensors: "dict[str, torch.Tensor]", path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` naming ``path`` and the tensor if a floating tensor holds NaN/inf.

    A model trained into a divergence saves fine and then predicts garbage everywhere it is
    loaded; refusing such weights at load time says where the problem is.

    Example:
        >>> check_finite_tensors({"w": torch.ones(2)}, "ok.safetensors")
        >>> check_finite_tensors({"w": torch.tensor([1.0, float("nan")])}, "bad.safetensors")
        Traceback (most recent call last):
        ...
        mint_rl.checkpoint.CheckpointError: bad.safetensors: tensor 'w' holds 1 non-finite value(s) (NaN or inf) of 2; refusing to load it
    """
    for name, tensor in tensors.items():
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise CheckpointError(f"{path}: tensor {name!r} holds {bad} non-finite value(s) (NaN or inf) of "
                                      f"{tensor.numel()}; refusing to load it")


def load_checkpoint(path: str | os.PathLike, *, format: str | None = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (no pickle is involved).

    Args:
        path: a ``.safetensors`` file or a checkpoint directory.
        format: if given, the ``format`` tag the checkpoint must carry.

    Raises:
        FileNotFoundError: nothing at ``path`` (or a directory without ``model.safetensors``).
        CheckpointError: truncated/corrupt file, missing metadata, wrong format or version.
    """
    from safetensors.torch import load

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    config_json: dict | None = None
    weights = path
    if path.is_dir():
        weights = path / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"checkpoint directory {path} has no {WEIGHTS_NAME}")
        cfg_file = path / CONFIG_NAME
        if cfg_file.is_file():
            try:
                config_json = json.loads(cfg_file.read_text())
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise CheckpointError(f"{cfg_file}: not valid JSON ({e})") from None
            if not isinstance(config_json, dict):
                raise CheckpointError(f"{cfg_file}: expected a JSON object")
    data = weights.read_bytes()
    header = _read_header(data, weights)
    if config_json is not None:
        fmt, version, lib_version, config, extra = _parse_meta(config_json, path / CONFIG_NAME, CONFIG_NAME)
    else:
        meta = header.get("__metadata__") or {}
        fmt, version, lib_version, config, extra = _parse_meta(meta, weights, "the safetensors metadata")
    if format is not None and fmt != format:
        hint = ""
        if fmt in FORMAT_DESCRIPTIONS and format in FORMAT_DESCRIPTIONS:
            hint = f" ({FORMAT_DESCRIPTIONS[fmt]}; mint_rl.detectors.load_detector loads any keypoint method)"
        raise CheckpointError(f"{path}: expected a checkpoint of format {format!r}, got {fmt!r}{hint}")
    try:
        state_dict = load(data)
    except Exception as e:  # safetensors raises its own error type for bad buffers
        raise CheckpointError(f"{weights}: corrupt or truncated safetensors data ({e})") from None
    check_finite_tensors(state_dict, weights)
    return Checkpoint(state_dict, config, fmt, version, lib_version, path, extra)
