"""One trainer for keypoint detectors (MINT and the baselines) on any video dataset.

The trainer takes a ``torch.utils.data.Dataset`` whose items are dicts with ``"frames"``:
``(T, 3, H, W)`` uint8 windows of consecutive frames (:class:`mint_rl.data.VideoWindowDataset`
over CLEVRER-like clips, real CLEVRER, MAGICAL expert frames or a folder of videos), and
minimises the MINT loss (:func:`mint_rl.losses.mint_loss`) of a :class:`mint_rl.models.MintDetector`,
or a baseline's own loss (:mod:`mint_rl.baselines`: Transporter's reconstruction of a target
frame from a source frame of the window, Video Structure's reconstruction + separation +
sparsity); the baselines' loss weights live in their configs.

It is DDP-aware: started with ``torchrun --nproc_per_node N`` each process takes its share of
every epoch's windows, gradients are averaged (gloo on CPU, nccl on GPU), and only rank 0
logs and writes checkpoints.

Checkpoints (``OUT/checkpoints/step_XXXXXXX/``) hold the detector (safetensors + JSON config),
the optimiser state and the step (``trainer_state.pt``, loaded with ``weights_only=True``, so
no pickle is executed). A directory is written under a temporary name and renamed, and the
pointer file ``OUT/checkpoints/latest`` is replaced atomically, so an interrupted run never
leaves a half-written checkpoint behind. The data order depends only on ``(seed, epoch)``,
so ``resume=True`` continues exactly where the last checkpoint left off. If ``latest`` is
corrupt, or names a missing or unreadable checkpoint, resuming falls back to the newest intact
``step_*`` directory and warns (``RuntimeWarning``); see :meth:`Trainer.resume`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from mint_rl.baselines import BaselineDetector
from mint_rl.checkpoint import WEIGHTS_NAME, CheckpointError, atomic_write_bytes
from mint_rl.data.augment import appearance_augment
from mint_rl.detectors import detector_method, load_detector
from mint_rl.losses import LossConfig, entropy_targets, mint_loss
from mint_rl.models import MintDetector
from mint_rl.training.config import TrainConfig

STATE_NAME = "trainer_state.pt"
LATEST_NAME = "latest"


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        steps: optimiser steps done in total (including those before a resume).
        seconds: wall time of this call.
        frames_per_second: training frames (windows x T) processed per second in this call,
            summed over processes.
        last_terms: the loss terms of the last step (floats).
        history: ``(step, terms)`` every ``log_every`` steps of this call.
        checkpoint: path of the last checkpoint directory written (rank 0), else ``None``.
        evaluations: ``(step, metrics)`` of the held-out evaluations of this call.
        resumed_from: the checkpoint directory ``fit(resume=True)`` continued from, else ``None``.
    """

    steps: int
    seconds: float
    frames_per_second: float
    last_terms: dict[str, float]
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    checkpoint: Optional[Path] = None
    evaluations: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    resumed_from: Optional[Path] = None


# ---------------------------------------------------------------------------------------------
# distributed helpers
# ---------------------------------------------------------------------------------------------


def distributed_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group torchrun prepared (gloo on CPU, nccl on CUDA); ``(rank, world)``."""
    rank, world, _ = distributed_env()
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return rank, world


def _resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"TrainConfig.device={name!r}: CUDA is not available on this machine")
        _, world, local = distributed_env()
        if world > 1 and device.index is None:
            device = torch.device("cuda", local)
    return device


# ---------------------------------------------------------------------------------------------
# data order
# ---------------------------------------------------------------------------------------------


def epoch_batches(
    num_items: int, batch_size: int, epoch: int, seed: int, rank: int = 0, world: int = 1
) -> list[list[int]]:
    """Dataset indices of every batch of ``epoch`` for process ``rank`` of ``world``.

    The permutation depends only on ``(seed, epoch)``; each process takes a strided share of
    it and the tail that does not fill a batch on every process is dropped, so all processes
    run the same number of steps.

    Example:
        >>> epoch_batches(10, 2, epoch=0, seed=0, rank=0, world=2)  # doctest: +ELLIPSIS
        [[...], [...]]
        >>> len(epoch_batches(10, 3, epoch=0, seed=0))
        3
    """
    if num_items < batch_size * world:
        raise ValueError(
            f"the dataset has {num_items} windows, fewer than one batch per process "
            f"(batch_size={batch_size} x processes={world}); use more data or a smaller batch"
        )
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(num_items, generator=g).tolist()
    per_rank = num_items // world
    mine = perm[rank::world][:per_rank]
    n_batches = per_rank // batch_size
    return [mine[i * batch_size : (i + 1) * batch_size] for i in range(n_batches)]


def _collate_frames(dataset: Dataset, indices: Sequence[int]) -> torch.Tensor:
    items = [dataset[i] for i in indices]
    frames = [it["frames"] if isinstance(it, dict) else it for it in items]
    for i, f in zip(indices, frames):
        if not isinstance(f, torch.Tensor) or f.ndim != 4 or f.shape[1] != 3:
            got = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
            raise ValueError(f"dataset[{i}]['frames']: expected a (T, 3, H, W) tensor, got {got}")
    return torch.stack(frames)


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------


_STEP_NAME = re.compile(r"step_\d+")


def _incomplete(path: Path) -> Optional[str]:
    """Why the checkpoint directory ``path`` cannot be resumed from, or ``None`` if it looks complete."""
    if not path.is_dir():
        return f"{path} does not exist"
    missing = [name for name in (STATE_NAME, WEIGHTS_NAME) if not (path / name).is_file()]
    if missing:
        return f"{path} lacks {', '.join(missing)}"
    return None


def _pointer_target(pointer: Path) -> tuple[Optional[Path], Optional[str]]:
    """The checkpoint directory the ``latest`` file names, or ``(None, why it names none)``."""
    try:
        name = pointer.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{pointer} is unreadable ({type(exc).__name__}: {exc})"
    if not _STEP_NAME.fullmatch(name):
        return None, f"{pointer} is corrupt: expected a name like step_0000100, got {name[:40]!r}"
    return pointer.parent / name, None


def resume_candidates(out_dir: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """Checkpoint directories to resume from, best first, and why others were passed over.

    First the one ``OUT/checkpoints/latest`` names, then every other ``step_*`` directory, newest
    (highest step) first; directories lacking their weights or training state are left out,
    each with a note.
    """
    root = Path(out_dir) / "checkpoints"
    notes: list[str] = []
    ordered: list[Path] = []
    pointer = root / LATEST_NAME
    if pointer.exists():
        target, why = _pointer_target(pointer)
        if target is None:
            notes.append(why)
        else:
            ordered.append(target)
    steps = sorted((p for p in root.glob("step_*") if _STEP_NAME.fullmatch(p.name)),
                   key=lambda p: int(p.name[len("step_"):]), reverse=True)
    ordered += [p for p in steps if p not in ordered]
    candidates = []
    for path in ordered:
        why = _incomplete(path)
        if why is None:
            candidates.append(path)
        else:
            notes.append(f"{pointer} names {path.name}, but {why}" if path not in steps else why)
    return candidates, notes


def latest_checkpoint(out_dir: str | os.PathLike) -> Optional[Path]:
    """The checkpoint directory to resume ``OUT`` from, or ``None`` when there is none.

    That is the one ``OUT/checkpoints/latest`` points to; when that file is corrupt or names a
    missing or incomplete step, the newest complete ``step_*`` directory instead, with a
    ``RuntimeWarning`` saying so (also when no complete one is left: then ``None``).
    """
    candidates, notes = resume_candidates(out_dir)
    if notes:
        fallback = f"falling back to {candidates[0]}" if candidates else "no complete checkpoint left"
        warnings.warn(f"{'; '.join(notes)}: {fallback}", RuntimeWarning, stacklevel=2)
    return candidates[0] if candidates else None


class _BaselineObjective(torch.nn.Module):
    """``forward(frames, generator)`` = the baseline's ``training_loss``: what DDP wraps, so that
    the gradients of a baseline's loss are averaged over processes like MINT's."""

    def __init__(self, detector: BaselineDetector) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, frames: torch.Tensor, generator: Optional[torch.Generator] = None) -> Any:
        return self.detector.training_loss(frames, generator)


def _to_image(x: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` on the ``x/255 - 0.5`` scale -> ``(H, W, 3)`` uint8."""
    img = ((x.detach().float().cpu() + 0.5) * 255.0).round().clamp(0, 255).to(torch.uint8)
    if img.shape[0] == 1:
        img = img.expand(3, *img.shape[1:])
    return img[:3].permute(1, 2, 0).numpy()


class Trainer:
    """Train a keypoint detector on windows of video frames: a :class:`MintDetector` with the
    MINT loss, or a baseline (:class:`~mint_rl.baselines.Transporter`,
    :class:`~mint_rl.baselines.VideoStructure`) with its own loss.

    Args:
        detector: the model to train (its config, and for the baselines their loss weights,
            travel with every checkpoint).
        loss_config: for MINT, loss weights and heatmap settings; its sigma is rescaled to the
            detector's feature-map size with :meth:`LossConfig.scaled_to` when the sizes differ.
            ``None`` for a baseline.
        config: optimisation settings (:class:`TrainConfig`).
        dataset: items are dicts with ``"frames"`` ``(T, 3, H, W)`` uint8 (all the same size).
        out_dir: where checkpoints, tensorboard logs (``OUT/tb``) and the final detector
            (``OUT/detector.safetensors``) go.
        eval_fn: optional ``fn(detector) -> dict`` run on rank 0 every ``eval_every`` steps and
            at the end (e.g. held-out DOP/TOP); its numeric entries go to tensorboard.
        progress: show a tqdm progress bar with the loss terms (rank 0).
        tensorboard: write scalars (``loss/*``), keypoint overlays and, for the baselines, the
            reconstruction of a training frame next to the frame (``OUT/tb``).

    Example:
        >>> from mint_rl.models import DetectorConfig
        >>> from mint_rl.losses import loss_preset
        >>> frames = torch.randint(0, 255, (6, 3, 3, 32, 32), dtype=torch.uint8)
        >>> data = [{"frames": f} for f in frames]
        >>> det = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=4))
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as out:
        ...     res = Trainer(det, loss_preset("magical"), TrainConfig(steps=2, batch_size=2),
        ...                   data, out, progress=False, tensorboard=False).fit()
        >>> res.steps
        2
    """

    def __init__(
        self,
        detector: MintDetector | BaselineDetector,
        loss_config: Optional[LossConfig],
        config: TrainConfig,
        dataset: Dataset,
        out_dir: str | os.PathLike,
        eval_fn: Optional[Callable[[MintDetector], dict[str, Any]]] = None,
        progress: bool = True,
        tensorboard: bool = True,
    ) -> None:
        if not isinstance(detector, (MintDetector, BaselineDetector)):
            raise TypeError(f"Trainer: expected a MintDetector or a baseline detector (Transporter, VideoStructure), "
                            f"got {type(detector).__name__}")
        self.method = detector_method(detector)
        if not isinstance(config, TrainConfig):
            raise TypeError(f"Trainer: expected a TrainConfig, got {type(config).__name__}")
        if self.method == "mint":
            if not isinstance(loss_config, LossConfig):
                raise TypeError(f"Trainer: a MintDetector needs a LossConfig, got {type(loss_config).__name__}")
            if config.window < 2 and loss_config.uses_temporal:
                raise ValueError(
                    f"Trainer: the temporal losses (MCE, IT) need windows of >= 2 frames, got window={config.window}; "
                    "use the 'wo-temp' ablation for single frames"
                )
        else:
            if loss_config is not None:
                raise TypeError(f"Trainer: a {self.method} detector carries its loss weights in its config; "
                                f"expected loss_config=None, got {type(loss_config).__name__}")
            if config.window < 2:
                raise ValueError(f"Trainer: {self.method} learns from frames of the same window and needs windows "
                                 f"of >= 2 frames, got window={config.window}")
        self.config = config
        self.dataset = dataset
        self.out_dir = Path(out_dir)
        self.eval_fn = eval_fn
        self.progress = progress
        self.tensorboard = tensorboard
        if config.num_threads:
            torch.set_num_threads(int(config.num_threads))
        self.device = _resolve_device(config.device)
        self.rank, self.world = init_distributed(self.device)
        self.detector = detector.to(self.device)
        probe = _collate_frames(dataset, [0])
        if probe.shape[1] != config.window:
            raise ValueError(
                f"Trainer: dataset windows have T={probe.shape[1]} frames but TrainConfig.window={config.window}"
            )
        self.image_size = (int(probe.shape[-2]), int(probe.shape[-1]))
        self.map_size: Optional[tuple[int, int]] = None
        if isinstance(detector, MintDetector):
            self.map_size = detector.config.map_size_for(*self.image_size)
            if tuple(loss_config.reference_map_size) != tuple(self.map_size):
                loss_config = loss_config.scaled_to(self.map_size)
        self.loss_config = loss_config
        self.model: torch.nn.Module = self.detector if self.method == "mint" else _BaselineObjective(self.detector)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self._last_images: Optional[torch.Tensor] = None
        self.optimizer = torch.optim.Adam(self.detector.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.step = 0
        self.steps_per_epoch = len(epoch_batches(len(dataset), config.batch_size, 0, config.seed, self.rank, self.world))
        self.total_steps = int(config.steps) if config.steps is not None else config.epochs * self.steps_per_epoch

    # ----------------------------------------------------------------------------- state

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "train_config": json.dumps(self.config.to_dict()),
            "loss_config": json.dumps(self.loss_config.to_dict() if self.loss_config is not None else None),
            "method": self.method,
        }

    def save_checkpoint(self) -> Optional[Path]:
        """Write ``OUT/checkpoints/step_XXXXXXX`` atomically (rank 0 only) and point ``latest`` at it."""
        if self.rank != 0:
            return None
        ckpt_root = self.out_dir / "checkpoints"
        ckpt_root.mkdir(parents=True, exist_ok=True)
        name = f"step_{self.step:07d}"
        final = ckpt_root / name
        tmp = ckpt_root / f".{name}.tmp{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        self.detector.save_pretrained(tmp, extra={"step": self.step})
        torch.save(self._state(), tmp / STATE_NAME)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        atomic_write_bytes(ckpt_root / LATEST_NAME, (name + "\n").encode())
        kept = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir())
        for old in kept[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore detector weights, optimiser state and step from a checkpoint directory.

        Everything is read and checked before anything of the trainer changes.

        Raises:
            FileNotFoundError: no such checkpoint.
            CheckpointError: (a ``ValueError``) an unreadable, truncated or incomplete
                checkpoint (the message names the file).
            ValueError: a checkpoint of another method, detector config or loss config.
        """
        path = Path(path)
        loaded = load_detector(path)
        if detector_method(loaded) != self.method:
            raise ValueError(f"checkpoint {path}: holds a {detector_method(loaded)} detector, but this trainer trains a "
                             f"{self.method} detector")
        if loaded.config != self.detector.config:
            raise ValueError(
                f"checkpoint {path}: detector config {loaded.config} does not match the trainer's {self.detector.config}"
            )
        state_path = path / STATE_NAME
        if not state_path.is_file():
            raise FileNotFoundError(f"checkpoint {path}: expected {state_path}, the file does not exist")
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
            saved = json.loads(state["loss_config"])
            saved_loss = LossConfig.from_dict(saved) if saved is not None else None
            step, optimizer = int(state["step"]), state["optimizer"]
        except Exception as exc:  # noqa: BLE001 - any unreadable state file gets the same clear error
            raise CheckpointError(f"{state_path}: unreadable trainer state ({type(exc).__name__}: {exc})") from exc
        if saved_loss != self.loss_config:
            raise ValueError(f"checkpoint {path}: loss config {saved_loss} differs from the trainer's {self.loss_config}")
        self.detector.load_state_dict(loaded.state_dict())
        self.optimizer.load_state_dict(optimizer)
        self.step = step

    def resume(self) -> Optional[Path]:
        """Load the newest usable checkpoint of ``OUT/checkpoints``; the directory loaded, or ``None``.

        Tries the one ``latest`` names, then the other ``step_*`` directories newest first: a
        corrupt ``latest`` file, or a checkpoint that is missing, incomplete or unreadable, is
        passed over with a ``RuntimeWarning`` naming it and the checkpoint used instead.

        With no checkpoint at all (a new ``OUT``) training starts fresh, as a first run would.
        When checkpoints exist but none can be read, resuming stops with
        :class:`~mint_rl.checkpoint.CheckpointError` listing each one and why: starting over
        silently would throw away what the user asked to continue.

        Raises:
            CheckpointError: checkpoints exist, none usable.
            ValueError: a readable checkpoint of another detector or loss config (not skipped).
        """
        candidates, notes = resume_candidates(self.out_dir)
        for path in candidates:
            try:
                self.load_checkpoint(path)
            except (CheckpointError, FileNotFoundError) as exc:
                notes.append(str(exc))
                continue
            if notes:
                warnings.warn(f"{'; '.join(notes)}: resuming from {path} (step {self.step}) instead",
                              RuntimeWarning, stacklevel=2)
            return path
        if notes:
            raise CheckpointError(f"resume: no usable checkpoint in {self.out_dir / 'checkpoints'} "
                                  f"({'; '.join(notes)}); remove that folder to start afresh, or train without resume")
        return None

    # ----------------------------------------------------------------------------- training

    def _batches(self) -> Iterator[list[int]]:
        epoch, offset = divmod(self.step, self.steps_per_epoch)
        while True:
            batches = epoch_batches(len(self.dataset), self.config.batch_size, epoch, self.config.seed, self.rank, self.world)
            yield from batches[offset:]
            epoch, offset = epoch + 1, 0

    def step_generator(self) -> torch.Generator:
        """The random generator of this step (a baseline's frame pairs): a function of ``(seed, step, rank)``
        only, so a resumed run draws what an uninterrupted one would."""
        return torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.step * 1_009 + self.rank)

    def loss_config_at(self, step: int) -> Optional[LossConfig]:
        """The loss configuration of optimiser step ``step`` (``TrainConfig.economy_ramp`` scales the
        redundancy weight; otherwise :attr:`loss_config` itself)."""
        ramp = self.config.economy_ramp
        if ramp is None or self.loss_config is None or self.loss_config.lambda_redundancy == 0:
            return self.loss_config
        start, end = ramp
        factor = 1.0 if step >= end else 0.0 if step < start else (step - start) / max(end - start, 1)
        return dataclasses.replace(self.loss_config, lambda_redundancy=self.loss_config.lambda_redundancy * factor)

    def train_step(self, frames: torch.Tensor) -> dict[str, float]:
        """One optimiser step on a ``(B, T, 3, H, W)`` uint8 batch; returns the loss terms."""
        self.model.train()
        frames = frames.to(self.device, non_blocking=True)
        generator = self.step_generator()
        if self.config.augment is not None:
            frames = appearance_augment(frames, self.config.augment, generator)
        if self.method == "mint":
            entropy = entropy_targets(frames, self.map_size, self.loss_config)
            out = self.model(frames)
            loss, terms = mint_loss(out.keypoints, out.status, entropy, self.loss_config_at(self.step))
        else:
            loss, terms, self._last_images = self.model(frames, generator)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{self.method} loss is {float(loss)} at step {self.step}; "
                                     f"terms {({k: float(v) for k, v in terms.items()})}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.detector.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.step += 1
        return {k: float(v) for k, v in terms.items()}

    def _log_images(self, writer: Any, frames: torch.Tensor) -> None:
        from mint_rl.viz import draw_keypoints

        self.detector.eval()
        with torch.no_grad():
            out = self.detector(frames[:1, -1].to(self.device))
        img = frames[0, -1].permute(1, 2, 0).cpu().numpy()
        overlay = draw_keypoints(img, out.keypoints[0].cpu(), out.status[0].cpu())
        writer.add_image("keypoints", overlay, self.step, dataformats="HWC")
        if self._last_images is not None:  # a baseline: its target frame | its reconstruction
            target, recon = self._last_images[0]
            writer.add_image("reconstruction", np.concatenate([_to_image(target), _to_image(recon)], axis=1),
                             self.step, dataformats="HWC")

    def _evaluate(self, writer: Any, result: TrainResult) -> None:
        if self.eval_fn is None or self.rank != 0:
            return
        self.detector.eval()
        with torch.no_grad():
            metrics = self.eval_fn(self.detector)
        result.evaluations.append((self.step, metrics))
        if writer is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    writer.add_scalar(f"eval/{k}", v, self.step)

    def fit(self, resume: bool = False) -> TrainResult:
        """Train until ``total_steps``; with ``resume`` continue from the newest usable checkpoint
        (``OUT/checkpoints/latest``, or the newest intact ``step_*`` when that one is corrupt or
        missing: see :meth:`resume`)."""
        torch.manual_seed(self.config.seed)
        resumed_from = self.resume() if resume else None
        writer = None
        if self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "train_config.json").write_text(
                json.dumps(
                    {
                        "train": self.config.to_dict(),
                        "loss": self.loss_config.to_dict() if self.loss_config is not None else None,
                        "detector": self.detector.config.to_dict(),
                        "method": self.method,
                        "world_size": self.world,
                    },
                    indent=2,
                )
            )
            if self.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                writer = SummaryWriter(str(self.out_dir / "tb"))
        bar = None
        if self.progress and self.rank == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, desc=self.method, unit="step", dynamic_ncols=True)
        result = TrainResult(steps=self.step, seconds=0.0, frames_per_second=0.0, last_terms={},
                             resumed_from=resumed_from)
        start, frames_seen = time.perf_counter(), 0
        batches = self._batches()
        while self.step < self.total_steps:
            frames = _collate_frames(self.dataset, next(batches))
            terms = self.train_step(frames)
            frames_seen += frames.shape[0] * frames.shape[1] * self.world
            result.last_terms = terms
            if bar is not None:
                bar.update(1)
                shown = ("total", "me", "mce", "it", "overlap", "redundancy", "active", "reconstruction", "separation", "sparsity")
                bar.set_postfix({k: f"{terms[k]:.3f}" for k in shown if k in terms})
            if self.step % self.config.log_every == 0 or self.step == self.total_steps:
                result.history.append((self.step, terms))
                if writer is not None:
                    for k, v in terms.items():
                        writer.add_scalar(f"loss/{k}", v, self.step)
            if writer is not None and self.config.image_every and self.step % self.config.image_every == 0:
                self._log_images(writer, frames)
            if self.config.eval_every and self.step % self.config.eval_every == 0 and self.step < self.total_steps:
                self._evaluate(writer, result)
            if self.step % self.config.checkpoint_every == 0 and self.step < self.total_steps:
                result.checkpoint = self.save_checkpoint() or result.checkpoint
                if self.world > 1:
                    dist.barrier()
        if bar is not None:
            bar.close()
        result.seconds = time.perf_counter() - start
        result.frames_per_second = frames_seen / max(result.seconds, 1e-9)
        result.steps = self.step
        self._evaluate(writer, result)
        result.checkpoint = self.save_checkpoint() or result.checkpoint
        if self.rank == 0:
            self.detector.save_pretrained(self.out_dir / "detector.safetensors", extra={"step": self.step})
        if writer is not None:
            writer.close()
        if self.world > 1:
            dist.barrier()
        return result
