"""Behaviour cloning with ``imitation``'s ``bc.BC``, plus the auxiliary next-keypoint loss.

How the auxiliary loss enters imitation 1.0.1's BC
--------------------------------------------------
``bc.BC.train`` draws transition batches (``obs``, ``acts``, ``next_obs``, ...) from its
demonstration loader and calls ``self.loss_calculator(policy, obs, acts)`` on each: the
calculator never sees ``next_obs``, which holds the auxiliary target (the next observation's
last frame). :class:`MintBC` subclasses ``bc.BC`` and changes two things only:

1. ``set_demonstrations`` wraps imitation's own data loader in a recorder that remembers the
   batch it last yielded (``BC.train`` computes that batch's loss before drawing the next one),
   and seeds the loader's shuffling;
2. ``loss_calculator`` becomes :class:`AuxiliaryBCLossCalculator`, which computes imitation's
   loss (negative log-likelihood, entropy bonus, L2) and adds
   ``aux_weight * next_keypoint_loss(policy's prediction, recorded next_obs)``, from one forward
   pass of the interaction network (:meth:`MintGraphPolicy.evaluate_actions_with_next_keypoints`).

Everything else (batching, minibatch accumulation, progress bar, logging) is ``bc.BC``'s own;
the metrics it logs gain ``bc/aux_loss``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
from imitation.algorithms import base as algo_base
from imitation.algorithms import bc
from imitation.data import types
from imitation.util import logger as imit_logger
from imitation.util import util as imit_util
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import get_device, set_random_seed
from torch import Tensor

from mint_rl.policies.bc_checkpoint import demos_digest, load_bc_checkpoint, restore_bc_state, save_bc_checkpoint
from mint_rl.policies.cnn_agent import CnnAgentPolicy
from mint_rl.policies.mint_policy import MintGraphPolicy
from mint_rl.policies.state_agent import StateAgentPolicy

#: The policy class of each ``agent`` of :func:`train_bc` (``bc_magical.py --agent``).
AGENT_POLICIES: dict[str, type[ActorCriticPolicy]] = {
    "mint": MintGraphPolicy,
    "cnn": CnnAgentPolicy,
    "state": StateAgentPolicy,
}

__all__ = [
    "AGENT_POLICIES",
    "BCTrainingMetricsWithAux",
    "AuxiliaryBCLossCalculator",
    "MintBC",
    "bc_run_fingerprint",
    "next_keypoint_loss",
    "jitter_keypoints",
    "train_bc",
    "make_bc_policy",
    "make_bc_trainer",
    "evaluate_policy_scores",
]


def next_keypoint_loss(predicted: Tensor, next_obs: Tensor) -> Tensor:
    """Status-weighted squared error of predicted next-frame keypoints.

    The target is the last frame of the next observation. Keypoint ``k`` of sample ``b`` counts
    with weight ``s = next_obs[b, -1, k, 2]`` (inactive keypoints have no meaningful position):
    ``sum(s * ||p - p*||^2) / sum(s)`` (``0`` when no keypoint is active).

    Args:
        predicted: ``(B, K, 2)`` predicted ``(x, y)``.
        next_obs: ``(B, history, K, F)`` next observations (``F >= 3``: x, y, status, ...).

    >>> obs = torch.tensor([[[[0.0, 0.0, 1.0], [5.0, 5.0, 0.0]]]])
    >>> float(next_keypoint_loss(torch.tensor([[[0.5, 0.0], [0.0, 0.0]]]), obs))
    0.25
    """
    if next_obs.dim() != 4 or next_obs.shape[-1] < 3:
        raise ValueError(f"expected next_obs of shape (B, history, K, F), F >= 3, got {tuple(next_obs.shape)}")
    target = next_obs[:, -1]
    if predicted.shape != target.shape[:-1] + (2,):
        expected = tuple(target.shape[:-1]) + (2,)
        raise ValueError(f"expected predicted keypoints of shape {expected}, got {tuple(predicted.shape)}")
    weight = target[..., 2]
    err = (predicted - target[..., :2]).square().sum(dim=-1)
    return (weight * err).sum() / weight.sum().clamp_min(1e-6)


def jitter_keypoints(obs: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """``(B, history, K, F)`` keypoint observations with ``N(0, sigma^2)`` added to every ``x, y``.

    Each keypoint of each frame gets its own draw; positions are clamped to ``[-1, 1]`` and the
    status is left alone. A data augmentation for behaviour cloning: the detector's keypoints
    move by a pixel or two from frame to frame, and a policy fitted to ten demonstrations
    otherwise keys on positions exactly as they were.

    >>> obs = torch.tensor([[[[0.0, 0.99, 1.0]]]])
    >>> out = jitter_keypoints(obs, 0.1, torch.Generator().manual_seed(0))
    >>> bool(out[..., 1] <= 1.0), float(out[..., 2]), jitter_keypoints(obs, 0.0) is obs
    (True, 1.0, True)
    """
    if obs.dim() != 4 or obs.shape[-1] < 3:
        raise ValueError(f"expected keypoint observations of shape (B, history, K, F), F >= 3, got {tuple(obs.shape)}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return obs
    noise = torch.randn(obs.shape[:-1] + (2,), generator=generator, dtype=obs.dtype, device="cpu").to(obs.device)
    xy = (obs[..., :2] + sigma * noise).clamp(-1.0, 1.0)
    return torch.cat([xy, obs[..., 2:]], dim=-1)


@dataclasses.dataclass(frozen=True)
class BCTrainingMetricsWithAux(bc.BCTrainingMetrics):
    """imitation's BC metrics plus the auxiliary next-keypoint loss (``loss`` includes it, weighted)."""

    aux_loss: Tensor


class _RecordingLoader:
    """Iterable over a batch loader that keeps the batch it yielded last."""

    def __init__(self, loader: Iterable[types.TransitionMapping]) -> None:
        self.loader = loader
        self.current: types.TransitionMapping | None = None

    def __iter__(self) -> Iterator[types.TransitionMapping]:
        for batch in self.loader:
            self.current = batch
            yield batch


@dataclasses.dataclass
class AuxiliaryBCLossCalculator:
    """imitation's BC loss plus ``aux_weight`` x :func:`next_keypoint_loss`.

    ``loss = -mean log pi(a|o) - ent_weight * mean entropy + l2_weight * ||theta||^2 / 2
    + aux_weight * next_keypoint_loss``. With ``aux_weight == 0`` it is exactly imitation's
    loss and works with any ``ActorCriticPolicy`` (e.g. the CNN agent); otherwise the policy
    must provide ``evaluate_actions_with_next_keypoints`` (:class:`MintGraphPolicy` does).

    Attributes:
        ent_weight: weight of the entropy bonus (imitation's ``ent_weight``).
        l2_weight: weight of the L2 penalty (imitation's ``l2_weight``).
        aux_weight: weight of the next-keypoint loss.
        next_obs_source: returns the ``next_obs`` of the batch being evaluated.
        keypoint_noise: standard deviation of :func:`jitter_keypoints` applied to the batch's
            observations (not to the auxiliary target) while the policy is in training mode;
            ``0`` disables it. Needs keypoint observations.
        generator: the noise's random generator (``None``: torch's global one).
    """

    ent_weight: float
    l2_weight: float
    aux_weight: float
    next_obs_source: Callable[[], Any] | None = None
    keypoint_noise: float = 0.0
    generator: torch.Generator | None = None

    def __call__(self, policy: ActorCriticPolicy, obs: Any, acts: Any) -> BCTrainingMetricsWithAux:
        tensor_obs = types.map_maybe_dict(imit_util.safe_to_tensor, types.maybe_unwrap_dictobs(obs))
        acts = imit_util.safe_to_tensor(acts)
        if self.keypoint_noise > 0 and policy.training:
            tensor_obs = jitter_keypoints(tensor_obs.float(), self.keypoint_noise, self.generator)
        if self.aux_weight > 0:
            if not hasattr(policy, "evaluate_actions_with_next_keypoints"):
                raise TypeError(
                    f"aux_weight={self.aux_weight} needs a policy that predicts next keypoints "
                    f"(MintGraphPolicy), got {type(policy).__name__}"
                )
            if self.next_obs_source is None:
                raise RuntimeError("aux_weight > 0 but no next_obs_source was given")
            next_obs = imit_util.safe_to_tensor(self.next_obs_source(), device=policy.device).float()
            if next_obs.shape != tensor_obs.shape:
                raise RuntimeError(
                    f"recorded next_obs {tuple(next_obs.shape)} does not match the batch's obs "
                    f"{tuple(tensor_obs.shape)}"
                )
            log_prob, entropy, predicted = policy.evaluate_actions_with_next_keypoints(tensor_obs, acts)
            aux_loss = next_keypoint_loss(predicted, next_obs)
        else:
            _, log_prob, entropy = policy.evaluate_actions(tensor_obs, acts)
            aux_loss = torch.zeros((), device=log_prob.device)

        prob_true_act = torch.exp(log_prob).mean()
        neglogp = -log_prob.mean()
        entropy_mean = entropy.mean() if entropy is not None else None
        ent_loss = -self.ent_weight * (entropy_mean if entropy_mean is not None else torch.zeros(()))
        l2_norm = sum(torch.sum(torch.square(w)) for w in policy.parameters()) / 2
        l2_loss = self.l2_weight * l2_norm
        loss = neglogp + ent_loss + l2_loss + self.aux_weight * aux_loss
        return BCTrainingMetricsWithAux(
            neglogp=neglogp,
            entropy=entropy_mean,
            ent_loss=ent_loss,
            prob_true_act=prob_true_act,
            l2_norm=l2_norm,  # type: ignore[arg-type]
            l2_loss=l2_loss,  # type: ignore[arg-type]
            loss=loss,
            aux_loss=aux_loss,
        )


class MintBC(bc.BC):
    """``imitation.algorithms.bc.BC`` with the auxiliary next-keypoint loss and seeded shuffling.

    Takes every keyword argument of ``bc.BC`` plus:

    Args:
        aux_weight: weight of :func:`next_keypoint_loss` (``0`` disables it).
        shuffle_seed: seed of the demonstration loader's shuffling and of the keypoint noise
            (``None``: torch's global RNG).
        keypoint_noise: standard deviation of the :func:`jitter_keypoints` augmentation (``0``: none).

    See the module docstring for how the auxiliary target reaches the loss.
    """

    def __init__(
        self, *, aux_weight: float = 0.0, shuffle_seed: int | None = None, keypoint_noise: float = 0.0, **kwargs: Any
    ) -> None:
        if aux_weight < 0:
            raise ValueError(f"aux_weight must be >= 0, got {aux_weight}")
        if keypoint_noise < 0:
            raise ValueError(f"keypoint_noise must be >= 0, got {keypoint_noise}")
        self.aux_weight = aux_weight
        self.shuffle_seed = shuffle_seed
        super().__init__(**kwargs)
        base = self.loss_calculator
        self.loss_calculator = AuxiliaryBCLossCalculator(  # type: ignore[assignment]
            ent_weight=base.ent_weight,
            l2_weight=base.l2_weight,
            aux_weight=aux_weight,
            next_obs_source=self._current_next_obs,
            keypoint_noise=keypoint_noise,
            generator=None if shuffle_seed is None else torch.Generator().manual_seed(shuffle_seed + 1),
        )

    def train(self, *args: Any, **kwargs: Any) -> None:
        """``bc.BC.train`` with the policy in training mode. ``bc.BC.train`` keeps whatever mode it
        finds, and SB3's ``predict()`` (a DAgger round's rollouts, an evaluation) leaves evaluation
        mode: BatchNorm layers (the CNN agent) would train on frozen running statistics."""
        self.policy.set_training_mode(True)
        super().train(*args, **kwargs)

    def set_demonstrations(self, demonstrations: algo_base.AnyTransitions) -> None:
        kwargs = None
        #: The loader's shuffling generator (``None``: torch's global RNG); a BC checkpoint saves it.
        self.shuffle_generator = None
        if self.shuffle_seed is not None:
            self.shuffle_generator = torch.Generator().manual_seed(self.shuffle_seed)
            kwargs = {"generator": self.shuffle_generator}
        loader = algo_base.make_data_loader(demonstrations, self.minibatch_size, data_loader_kwargs=kwargs)
        self._demo_data_loader = _RecordingLoader(loader)

    def _current_next_obs(self) -> Any:
        loader = self._demo_data_loader
        if not isinstance(loader, _RecordingLoader) or loader.current is None:
            raise RuntimeError("no demonstration batch is being processed")
        if "next_obs" not in loader.current:
            raise RuntimeError("demonstration batches hold no 'next_obs': pass trajectories or Transitions")
        return types.maybe_unwrap_dictobs(loader.current["next_obs"])


def _keep_earlier_csv(log_dir: Path, epoch: int) -> None:
    """Rename ``log_dir/progress.csv`` of an interrupted run (imitation rewrites the file on start)."""
    csv_path = log_dir / "progress.csv"
    if csv_path.exists():
        csv_path.rename(log_dir / f"progress.until-epoch{epoch}.csv")


def bc_run_fingerprint(agent: str, policy: ActorCriticPolicy, demos: Sequence[types.Trajectory], **hyper: Any) -> dict:
    """What a BC checkpoint must match to be resumed by this run (JSON-serialisable): the agent,
    the policy's class, parameter shapes and spaces, a digest of the demos, and ``hyper`` (floats
    as floats). DAgger's round checkpoints add its settings (:func:`mint_rl.experiments.dagger.dagger_fingerprint`)."""
    return {
        "agent": agent,
        "policy_class": type(policy).__name__,
        "parameters": {k: list(v.shape) for k, v in policy.state_dict().items()},
        "observation_space": repr(policy.observation_space),
        "action_space": repr(policy.action_space),
        "demos_sha256": demos_digest(demos),
        **{k: float(v) if isinstance(v, float) else v for k, v in hyper.items()},
    }


def _make_policy(
    agent: str,
    observation_space: gym.Space,
    action_space: gym.Space,
    learning_rate: float,
    policy_kwargs: Mapping[str, Any] | None,
) -> ActorCriticPolicy:
    policy_cls = AGENT_POLICIES[agent]
    return policy_cls(observation_space, action_space, lambda _: learning_rate, **dict(policy_kwargs or {}))


def make_bc_policy(
    agent: str,
    observation_space: gym.Space,
    action_space: gym.Space,
    learning_rate: float = 1e-3,
    policy_kwargs: Mapping[str, Any] | None = None,
) -> ActorCriticPolicy:
    """A fresh policy of ``agent``'s class (:data:`AGENT_POLICIES`), as :func:`train_bc` builds it."""
    if agent not in AGENT_POLICIES:
        raise ValueError(f"agent must be one of {list(AGENT_POLICIES)}, got {agent!r}")
    return _make_policy(agent, observation_space, action_space, learning_rate, policy_kwargs)


def make_bc_trainer(
    policy: ActorCriticPolicy,
    demos: Any,
    *,
    batch_size: int,
    seed: int,
    device: torch.device,
    learning_rate: float,
    ent_weight: float,
    l2_weight: float,
    aux_weight: float,
    keypoint_noise: float,
    logger: Any,
) -> "MintBC":
    """The :class:`MintBC` trainer :func:`train_bc` trains ``policy`` with (fused Adam, seeded
    shuffling); ``demos=None`` leaves the demonstrations to be set later (DAgger sets them
    round by round)."""
    return MintBC(
        observation_space=policy.observation_space,
        action_space=policy.action_space,
        rng=np.random.default_rng(seed),
        policy=policy,
        demonstrations=demos,
        batch_size=batch_size,
        # one fused Adam kernel over all parameters: 0.7 instead of 4.2 ms per MINT-agent step on 2 CPU cores
        optimizer_kwargs={"lr": learning_rate, "fused": device.type in ("cpu", "cuda")},
        ent_weight=ent_weight,
        l2_weight=l2_weight,
        device=device,
        custom_logger=logger,
        aux_weight=aux_weight,
        shuffle_seed=seed,
        keypoint_noise=keypoint_noise,
    )


def train_bc(
    demos: Sequence[types.Trajectory],
    observation_space: gym.Space,
    action_space: gym.Space,
    *,
    agent: Literal["mint", "cnn", "state"] = "mint",
    epochs: int = 40,
    batch_size: int = 32,
    aux_weight: float | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress_bar: bool = True,
    log_dir: str | None = None,
    learning_rate: float = 1e-3,
    ent_weight: float = 1e-3,
    l2_weight: float = 0.0,
    policy_kwargs: Mapping[str, Any] | None = None,
    keypoint_noise: float = 0.0,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 10,
    resume: bool = False,
) -> ActorCriticPolicy:
    """Behaviour-clone ``demos`` into a fresh MINT (interaction-network), CNN or state agent.

    Args:
        demos: imitation ``Trajectory`` objects (``len(obs) == len(acts) + 1``); keypoint
            observations ``(history, K, F)`` for ``agent="mint"``, stacked frames for ``"cnn"``,
            flat state vectors for ``"state"``.
        observation_space: the demos' observation space.
        action_space: the demos' action space (``Discrete(18)`` for MAGICAL).
        agent: ``"mint"`` (:class:`MintGraphPolicy`), ``"cnn"`` (:class:`CnnAgentPolicy`) or
            ``"state"`` (:class:`~mint_rl.policies.state_agent.StateAgentPolicy`, a privileged
            baseline). The paper trains the CNN agent twice as many epochs; that is the caller's
            ``epochs``.
        epochs: passes over the demonstrations.
        batch_size: transitions per gradient step (the demos must hold at least this many).
        aux_weight: weight of the next-keypoint loss; ``None`` means 1.0 for ``"mint"`` and 0
            for the others (which cannot use it).
        seed: seeds parameter init (via SB3's ``set_random_seed``: Python, NumPy and torch global
            RNGs) and the loader's shuffling.
        device: torch device of the policy (``"auto"``: CUDA when available).
        progress_bar: show imitation's tqdm progress bar.
        log_dir: where imitation writes its CSV and TensorBoard logs; ``None`` writes nothing.
            A resumed run continues the TensorBoard curve and keeps the earlier
            ``progress.csv`` as ``progress.until-epochE.csv``.
        learning_rate: Adam learning rate.
        ent_weight: entropy bonus weight (imitation's default 1e-3).
        l2_weight: L2 penalty weight.
        policy_kwargs: extra keyword arguments of the policy class (e.g. ``net_arch``).
        keypoint_noise: standard deviation of Gaussian noise added to the keypoint ``x, y`` of
            every training batch (:func:`jitter_keypoints`; MINT agent only, ``0``: none).
        checkpoint: file for the training state (:mod:`mint_rl.policies.bc_checkpoint`),
            written every ``checkpoint_every`` epochs and after the last; ``None``: none.
        checkpoint_every: epochs between checkpoint writes.
        resume: continue from ``checkpoint`` when it exists (it must come from the same run:
            agent, hyper-parameters, spaces, demonstrations, seed; ``epochs`` may be larger than
            the checkpoint's, which extends the run). The result is the same as an uninterrupted
            run of ``epochs`` epochs. ``False`` starts afresh and overwrites the file.

    Returns:
        The trained policy, in evaluation mode, on ``device``.
    """
    if agent not in AGENT_POLICIES:
        raise ValueError(f"agent must be one of {list(AGENT_POLICIES)}, got {agent!r}")
    if aux_weight is None:
        aux_weight = 1.0 if agent == "mint" else 0.0
    if agent != "mint" and aux_weight > 0:
        raise ValueError(f"the {agent} agent has no next-keypoint head: aux_weight must be 0, got {aux_weight}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if keypoint_noise and agent != "mint":
        raise ValueError(f"keypoint_noise jitters keypoint observations: MINT agent only, got agent={agent!r}")
    demos = list(demos)
    if not demos:
        raise ValueError("no demonstrations given")
    n_transitions = sum(len(d.acts) for d in demos)
    if n_transitions < batch_size:
        raise ValueError(f"the demos hold {n_transitions} transitions, fewer than batch_size={batch_size}")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")

    set_random_seed(seed)
    policy = _make_policy(agent, observation_space, action_space, learning_rate, policy_kwargs)
    state, fingerprint = None, None
    if checkpoint is not None:
        fingerprint = bc_run_fingerprint(
            agent, policy, demos, batch_size=batch_size, seed=seed, learning_rate=learning_rate,
            ent_weight=ent_weight, l2_weight=l2_weight, aux_weight=aux_weight, keypoint_noise=keypoint_noise,
            policy_kwargs=repr(sorted(dict(policy_kwargs or {}).items())),
        )
        if resume and Path(checkpoint).exists():
            state = load_bc_checkpoint(checkpoint, fingerprint)
            if state["epoch"] > epochs:
                raise ValueError(f"{checkpoint} holds {state['epoch']} epochs, more than epochs={epochs}")
    torch_device = get_device(device)
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="mint_rl_bc_"))
            logger = imit_logger.configure(folder, format_strs=[])
        else:
            if state is not None:
                _keep_earlier_csv(Path(log_dir), int(state["epoch"]))
            logger = imit_logger.configure(log_dir, format_strs=["csv", "tensorboard"])
        trainer = make_bc_trainer(policy, demos, batch_size=batch_size, seed=seed, device=torch_device,
                                  learning_rate=learning_rate, ent_weight=ent_weight, l2_weight=l2_weight,
                                  aux_weight=aux_weight, keypoint_noise=keypoint_noise, logger=logger)
        start_epoch, seconds_before = 0, 0.0
        if state is not None:
            restore_bc_state(trainer, state)
            start_epoch, seconds_before = int(state["epoch"]), float(state["train_seconds"])
        finished = [start_epoch]
        started = time.perf_counter()

        def on_epoch_end() -> None:
            finished[0] += 1
            if checkpoint is not None and (finished[0] % checkpoint_every == 0 or finished[0] == epochs):
                elapsed = seconds_before + time.perf_counter() - started
                save_bc_checkpoint(checkpoint, trainer, finished[0], fingerprint, elapsed)

        if epochs > start_epoch:
            with warnings.catch_warnings():
                # imitation logs its metrics with float() on tensors that require grad (harmless)
                warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
                trainer.train(n_epochs=epochs - start_epoch, on_epoch_end=on_epoch_end, progress_bar=progress_bar,
                              log_interval=max(1, n_transitions // batch_size))
        logger.close()
    trainer.policy.set_training_mode(False)
    return trainer.policy


def evaluate_policy_scores(
    policy: Any,
    env_fn: Callable[[], gym.Env],
    n_episodes: int,
    seed: int = 0,
    deterministic: bool = True,
) -> list[float]:
    """Roll ``policy`` out for ``n_episodes`` episodes and return one score per episode.

    The score is ``info["eval_score"]`` of the episode's last step (MAGICAL's score in [0, 1]);
    when the env reports none it falls back to the undiscounted episode return.

    Args:
        policy: anything with SB3's ``predict(obs, deterministic=...) -> (action, state)``.
        env_fn: builds the (single, non-vectorised) gymnasium env; it is closed afterwards.
        n_episodes: number of episodes.
        seed: episode ``i`` is reset with ``seed + i``.
        deterministic: take the most likely action instead of sampling.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    env = env_fn()
    scores: list[float] = []
    try:
        discrete = isinstance(env.action_space, gym.spaces.Discrete)
        for episode in range(n_episodes):
            obs, info = env.reset(seed=seed + episode)
            episode_return, done = 0.0, False
            while not done:
                action, _ = policy.predict(obs, deterministic=deterministic)
                if discrete:
                    action = int(np.asarray(action).reshape(()))
                obs, reward, terminated, truncated, info = env.step(action)
                episode_return += float(reward)
                done = terminated or truncated
            scores.append(float(info["eval_score"]) if "eval_score" in info else episode_return)
    finally:
        env.close()
    return scores
