"""Resumable behaviour cloning: the training state of a :class:`~mint_rl.policies.bc.MintBC` run.

A BC checkpoint holds everything that decides the rest of a run: the policy's ``state_dict``
(BatchNorm statistics included), the Adam state, the state of the loader's shuffling generator
and of the keypoint-noise generator, torch's global RNG, the number of finished epochs and the
cumulative training seconds. Restored at an epoch boundary, the run goes on exactly as if it had
never stopped (``tests/test_bc_checkpoint.py`` checks parameter equality), so a long CPU run
(the CNN agent on MakeLine takes hours) can be split over several processes.

The file is written with ``torch.save`` to a temporary name and renamed (an interrupted write
leaves the previous checkpoint intact), and read with ``torch.load(weights_only=True)``: tensors,
numbers, strings and containers only, no pickled code. It records a *fingerprint* of the run
(agent, policy class, spaces, hyper-parameters, a hash of the demonstrations); resuming with a
different fingerprint is an error that names the fields that differ. A checkpoint whose policy
tensors hold NaN or inf is refused (:class:`~mint_rl.checkpoint.CheckpointError`, naming the file
and the tensor).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from mint_rl.checkpoint import check_finite_tensors

__all__ = [
    "BC_CHECKPOINT_FORMAT",
    "demos_digest",
    "load_bc_checkpoint",
    "restore_bc_state",
    "save_bc_checkpoint",
]

#: Value of the ``format`` entry of every BC checkpoint this version writes and reads.
BC_CHECKPOINT_FORMAT = "mint_rl.bc_checkpoint/1"


def demos_digest(demos: Sequence[Any]) -> str:
    """SHA-256 of the demonstrations' observations and actions (order included).

    Example:
        >>> from imitation.data.types import Trajectory
        >>> t = Trajectory(obs=np.zeros((3, 2)), acts=np.array([0, 1]), infos=None, terminal=True)
        >>> demos_digest([t]) == demos_digest([t]), demos_digest([t]) == demos_digest([t, t])
        (True, False)
    """
    h = hashlib.sha256()
    for demo in demos:
        for part in (demo.obs, demo.acts):
            array = np.ascontiguousarray(np.asarray(part))
            h.update(f"{array.dtype.str}{array.shape}".encode())
            h.update(array.tobytes())
    return h.hexdigest()


def save_bc_checkpoint(
    path: str | Path,
    trainer: Any,
    epoch: int,
    fingerprint: Mapping[str, Any],
    train_seconds: float,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the training state of ``trainer`` (a :class:`MintBC`) after ``epoch`` epochs.

    Args:
        path: checkpoint file (parent folders are created).
        trainer: the BC trainer; its policy, optimizer, loader generator and loss calculator's
            noise generator are saved.
        epoch: finished epochs.
        fingerprint: JSON-serialisable description of the run, compared on resume.
        train_seconds: training time so far, all processes together.
        extra: JSON-serialisable progress of the caller that the training state does not hold
            (DAgger: the labels and beta of each finished round); :func:`load_bc_checkpoint`
            returns it under ``"extra"`` (``{}`` when none was saved).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = getattr(trainer.loss_calculator, "generator", None)
    shuffle = getattr(trainer, "shuffle_generator", None)
    state = {
        "format": BC_CHECKPOINT_FORMAT,
        "epoch": int(epoch),
        "fingerprint": json.dumps(dict(fingerprint), sort_keys=True),
        "train_seconds": float(train_seconds),
        "policy": {k: v.detach().cpu() for k, v in trainer.policy.state_dict().items()},
        "optimizer": trainer.optimizer.state_dict(),
        "shuffle_rng": None if shuffle is None else shuffle.get_state(),
        "noise_rng": None if noise is None else noise.get_state(),
        "torch_rng": torch.get_rng_state(),
        "tensorboard_step": int(getattr(getattr(trainer, "_bc_logger", None), "_tensorboard_step", 0)),
        "extra": json.dumps(dict(extra or {}), sort_keys=True),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_bc_checkpoint(path: str | Path, fingerprint: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a BC checkpoint (no pickled code) and check it belongs to the run ``fingerprint``.

    Args:
        path: the file :func:`save_bc_checkpoint` wrote.
        fingerprint: the run that wants to resume; ``None`` skips the check.

    Returns:
        The checkpoint's entries (``epoch``, ``train_seconds``, ``fingerprint`` and ``extra`` as dicts, states).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a BC checkpoint of this format, or written by a different run.
        CheckpointError: (a ``ValueError``) a policy tensor holds NaN or inf: the run diverged,
            and resuming it would go on from garbage; the message names the file and tensor.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no BC checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"{path} is not a readable BC checkpoint: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != BC_CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path}: expected a BC checkpoint of format {BC_CHECKPOINT_FORMAT!r}, got {found!r}")
    policy = state.get("policy")
    if not isinstance(policy, dict) or not all(isinstance(v, torch.Tensor) for v in policy.values()):
        raise ValueError(f"{path}: expected the policy's tensors under 'policy', got {type(policy).__name__}")
    check_finite_tensors(policy, path)
    state["fingerprint"] = json.loads(state["fingerprint"])
    state["extra"] = json.loads(state.get("extra", "{}"))  # files written before 'extra' existed have none
    if fingerprint is not None:
        want = json.loads(json.dumps(dict(fingerprint), sort_keys=True))
        have = state["fingerprint"]
        differ = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        if differ:
            details = "; ".join(f"{k}: checkpoint {have.get(k)!r}, this run {want.get(k)!r}" for k in differ)
            raise ValueError(f"{path} was written by a different BC run ({details})")
    return state


def restore_bc_state(trainer: Any, state: Mapping[str, Any]) -> None:
    """Load a checkpoint's policy, optimizer and generator states into ``trainer``."""
    trainer.policy.load_state_dict(state["policy"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    shuffle = getattr(trainer, "shuffle_generator", None)
    if (shuffle is None) != (state["shuffle_rng"] is None):
        raise ValueError("the checkpoint and the trainer disagree on whether shuffling is seeded")
    if shuffle is not None:
        shuffle.set_state(state["shuffle_rng"])
    noise = getattr(trainer.loss_calculator, "generator", None)
    if noise is not None and state["noise_rng"] is not None:
        noise.set_state(state["noise_rng"])
    torch.set_rng_state(state["torch_rng"])
    bc_logger = getattr(trainer, "_bc_logger", None)
    if hasattr(bc_logger, "_tensorboard_step"):
        # imitation numbers its TensorBoard points per BC object; continue the resumed curve.
        bc_logger._tensorboard_step = int(state["tensorboard_step"])
