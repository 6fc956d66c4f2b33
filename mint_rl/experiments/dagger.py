"""DAgger with MAGICAL's scripted experts (``bc_magical.py --algo dagger``).

Behaviour cloning trains on the expert's state distribution only; a policy that drifts off it
meets states nobody showed it how to leave. DAgger (Ross et al., 2011) rolls the learner out,
asks the expert what it would have done in every state the learner visited, adds those labels
to the data and trains again. MAGICAL's scripted experts (:mod:`mint_rl.envs.experts`) act from
the simulator's state, so they can label any state the learner reaches.

The loop runs through ``imitation``'s :class:`~imitation.algorithms.dagger.DAggerTrainer`:

* round 0: the ``n_demos`` expert demonstrations, behaviour cloning for ``cfg.bc_epochs``
  epochs (the BC experiment's training, same agent, same trainer);
* round ``r = 1..rounds``: ``episodes`` episodes on the demo variant, each step driven by the
  expert's action with probability ``beta_r`` and by the learner's (sampled) action otherwise,
  ``imitation``'s :class:`~imitation.algorithms.dagger.InteractiveTrajectoryCollector`
  recording the expert's action as the label (:class:`ExpertLabeller` computes it from each
  sub-env's simulator state); then ``epochs`` more epochs of BC on all data so far, the policy
  and optimiser carried on. ``beta_r`` falls linearly from 1 to 0 over the rounds
  (``imitation``'s :class:`~imitation.algorithms.dagger.LinearBetaSchedule`, ``rampdown = rounds``):
  ``beta_r = 1 - r / rounds``, so the learner drives more of each round and all of the last.

Expert labels: ``(n_demos + rounds * episodes) * episode_length``; comparing with BC at the same
number of labels means BC with ``n_demos + rounds * episodes`` demos (:meth:`DaggerConfig.labels`).
Each round's trajectories are written by imitation (HuggingFace datasets; their ``infos`` as
jsonpickle) to a scratch folder that the seed's run empties first and reads back itself only.
The collected episodes use seeds ``DAGGER_SEED + 1000 * seed + 100 * round + i``, away from the
demo seeds (``cfg.demo_seed + i``) and the evaluation seeds (``cfg.eval_seed + 1000 * seed + i``).

With an output folder, the training state after each round goes to ``OUT/dagger/STEM/checkpoint.pt``
(:mod:`mint_rl.policies.bc_checkpoint`: policy, Adam, the noise generator, torch's RNG, and the
rounds' labels and betas); ``bc_magical.py --resume`` goes on after the last finished round, with
the rounds' trajectories read back from ``OUT/dagger/STEM/demos``, and ends with the same policy
as an uninterrupted run (``tests/test_dagger.py``). A CNN DAgger seed on MoveToRegion took 13 minutes
on two CPU threads, evaluation included (docs/policies.md); longer tasks take longer, and a session
that ends mid-seed loses at most one round.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

__all__ = ["DaggerConfig", "ExpertLabeller", "collect_round", "dagger_fingerprint", "train_dagger", "DAGGER_SEED"]

#: First seed of the episodes DAgger collects (training seed ``s``, round ``r``: ``+ 1000 s + 100 r``).
DAGGER_SEED = 200_000


@dataclass(frozen=True)
class DaggerConfig:
    """DAgger's schedule on top of a BC experiment's settings.

    Attributes:
        rounds: collection rounds after the initial behaviour cloning (>= 1).
        episodes: learner-driven episodes the expert labels per round (>= 1, < 100).
        epochs: BC epochs over all data after each round.

    Example:
        >>> DaggerConfig(rounds=3, episodes=2).labels(n_demos=4, episode_length=80)
        800
    """

    rounds: int = 3
    episodes: int = 2
    epochs: int = 50

    def __post_init__(self) -> None:
        for name, value in (("rounds", self.rounds), ("episodes", self.episodes), ("epochs", self.epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DaggerConfig.{name}: expected an int >= 1, got {value!r}")
        if self.episodes >= 100:
            raise ValueError(f"DaggerConfig.episodes: expected fewer than 100 per round (episode seeds are spaced "
                             f"by 100), got {self.episodes}")

    def labels(self, n_demos: int, episode_length: int) -> int:
        """Expert-labelled transitions in all: the demos' and every round's."""
        return (n_demos + self.rounds * self.episodes) * episode_length

    def beta(self, round_num: int) -> float:
        """Probability that the expert drives a step of round ``round_num`` (0: the demos).

        Example:
            >>> [DaggerConfig(rounds=4).beta(r) for r in range(5)]
            [1.0, 0.75, 0.5, 0.25, 0.0]
        """
        from imitation.algorithms.dagger import LinearBetaSchedule

        return float(LinearBetaSchedule(self.rounds)(round_num))


class ExpertLabeller:
    """One scripted expert per sub-env of an SB3 ``DummyVecEnv`` of MAGICAL envs, following its
    episodes: :meth:`actions` is what each expert does in its sub-env's current state.

    Call :meth:`start` after the vector env's reset and :meth:`after_step` after every step
    (sub-envs that finished were reset by the vector env: their experts start afresh).
    """

    def __init__(self, venv: Any, task: str, expert_factory: Optional[Callable[[], Any]] = None) -> None:
        from mint_rl.envs.experts import expert_for
        from mint_rl.envs.state import unwrap_magical

        self._factory = expert_factory or (lambda: expert_for(task))
        self._bases = [unwrap_magical(env) for env in venv.envs]
        self._experts: list[Any] = [None] * len(self._bases)

    def _restart(self, i: int) -> None:
        from mint_rl.envs.state import read_state

        self._experts[i] = self._factory()
        self._experts[i].reset(read_state(self._bases[i]))

    def start(self) -> None:
        for i in range(len(self._bases)):
            self._restart(i)

    def actions(self) -> np.ndarray:
        from mint_rl.envs.state import read_state

        return np.array([e.act(read_state(b)) for e, b in zip(self._experts, self._bases)], dtype=np.int64)

    def after_step(self, dones: np.ndarray) -> None:
        for i in np.flatnonzero(dones):
            self._restart(int(i))


def collect_round(collector: Any, labeller: ExpertLabeller, first_seed: int) -> int:
    """One episode per sub-env of ``collector`` (MAGICAL episodes have a fixed length), sub-env
    ``i`` seeded ``first_seed + i``; the collector saves each as an expert-labelled trajectory.
    Returns the number of transitions collected."""
    n = collector.num_envs
    collector.venv.seed(first_seed)  # DummyVecEnv: sub-env i gets first_seed + i at the next reset
    collector.reset()
    labeller.start()
    done = np.zeros(n, dtype=bool)
    steps = 0
    while not done.all():
        _, _, dones, _ = collector.step(labeller.actions())
        steps += int((~done).sum())
        done |= dones
        labeller.after_step(dones)
    return steps


def dagger_fingerprint(cfg: Any, policy: Any, demos: Any, seed: int) -> dict[str, Any]:
    """What a DAgger round checkpoint must match to be resumed (JSON-serialisable): the BC run's
    fingerprint (:func:`mint_rl.policies.bc.bc_run_fingerprint`: agent, policy, spaces, demos) with
    the training seed and every setting that changes what the rounds collect or train."""
    from mint_rl.policies.bc import bc_run_fingerprint

    return bc_run_fingerprint(
        cfg.agent, policy, demos, algo="dagger", task=cfg.task, demo_variant=cfg.demo_variant, seed=int(seed),
        batch_size=int(cfg.batch_size), bc_epochs=int(cfg.bc_epochs), keypoint_noise=float(cfg.keypoint_noise),
        dagger={"rounds": cfg.dagger.rounds, "episodes": cfg.dagger.episodes, "epochs": cfg.dagger.epochs},
    )


def train_dagger(cfg: Any, setup: Any, seed: int, out_dir: Optional[Path], device: Any, progress: bool,
                 log: Callable[[str], None], *, env_fn: Callable[[], Any], policy_kwargs: dict[str, Any],
                 stem: str, resume: bool = False) -> tuple[Any, dict[str, Any]]:
    """DAgger for training seed ``seed`` of the BC experiment ``cfg`` (whose ``dagger`` is set).

    ``setup`` holds the expert demos in the agent's observation format and the spaces
    (``magical_bc._prepare_seeds``); ``env_fn`` makes one environment of the demo variant with
    the agent's observations, ``policy_kwargs`` configure the agent's policy and ``stem`` names
    the seed's files (the experiment module passes them, so this one does not import it).
    With ``out_dir``, each round's trajectories go to ``OUT/dagger/STEM/demos/round-NNN`` and
    imitation's logs (CSV, TensorBoard) to ``OUT/logs/STEM``, and the training state after each
    round to ``OUT/dagger/STEM/checkpoint.pt``; ``resume=True`` goes on after the last round that
    checkpoint holds (a checkpoint of other settings is refused, naming them), without one the
    seed starts afresh. Returns the trained policy (evaluation mode) and a summary: labels per
    round, beta per round, seconds (of every process that trained the seed).

    Raises:
        ValueError: ``resume`` with a checkpoint written under other settings, or one that holds
            more rounds than ``cfg.dagger.rounds``.
    """
    import torch
    from imitation.algorithms.dagger import DAggerTrainer
    from imitation.data import serialize
    from imitation.util import logger as imit_logger
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import DummyVecEnv

    from mint_rl.policies.bc import make_bc_policy, make_bc_trainer
    from mint_rl.policies.bc_checkpoint import load_bc_checkpoint, restore_bc_state, save_bc_checkpoint

    dagger = cfg.dagger
    start = time.perf_counter()
    set_random_seed(seed)
    policy = make_bc_policy(cfg.agent, setup.obs_space, setup.act_space, policy_kwargs=policy_kwargs)
    policy.to(device)
    fingerprint = dagger_fingerprint(cfg, policy, setup.demos, seed)
    with tempfile.TemporaryDirectory(prefix="mint_rl_dagger_") as tmp:
        scratch = Path(tmp) if out_dir is None else Path(out_dir) / "dagger" / stem
        ckpt = None if out_dir is None else scratch / "checkpoint.pt"
        state = None
        if resume and ckpt is not None and ckpt.exists():
            state = load_bc_checkpoint(ckpt, fingerprint)
            if not 1 <= state["epoch"] <= dagger.rounds + 1:
                raise ValueError(f"{ckpt} holds {state['epoch']} finished rounds; this run has "
                                 f"{dagger.rounds + 1} (round 0 and {dagger.rounds} collection rounds)")
            for stale in (scratch / "demos").glob("round-*"):  # a round interrupted after its checkpoint
                if int(stale.name.split("-")[1]) >= state["epoch"]:
                    shutil.rmtree(stale)
        elif scratch.exists():  # a fresh start: trajectories of an interrupted run would be read as this one's
            shutil.rmtree(scratch)
        log_dir = Path(tmp) / "logs" if out_dir is None else Path(out_dir) / "logs" / stem
        if state is not None and (log_dir / "progress.csv").exists():  # imitation rewrites the file on start
            (log_dir / "progress.csv").rename(log_dir / f"progress.until-round{state['epoch'] - 1}.csv")
        logger = imit_logger.configure(str(log_dir), format_strs=["csv", "tensorboard"] if out_dir else [])
        trainer_bc = make_bc_trainer(policy, None, batch_size=cfg.batch_size, seed=seed, device=torch.device(device),
                                     learning_rate=1e-3, ent_weight=1e-3, l2_weight=0.0,
                                     aux_weight=1.0 if cfg.agent == "mint" else 0.0,
                                     keypoint_noise=cfg.keypoint_noise, logger=logger)
        venv = DummyVecEnv([env_fn] * dagger.episodes)
        summary: dict[str, Any] = {"labels": [], "beta": []}
        import datasets.utils.logging as hf_logging  # imitation saves trajectories as HF datasets

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # one bar per saved episode otherwise
        try:
            trainer = DAggerTrainer(venv=venv, scratch_dir=scratch, rng=np.random.default_rng(seed),
                                    beta_schedule=dagger.beta, bc_trainer=trainer_bc, custom_logger=logger)
            earlier_seconds = 0.0
            if state is not None:
                # the loader's shuffling generator is re-seeded with every round's data: nothing to restore
                restore_bc_state(trainer_bc, {**state, "shuffle_rng": None})
                trainer.round_num = first_round = int(state["epoch"])  # rounds 0..first_round-1 are done
                summary = {"labels": list(state["extra"]["labels"]), "beta": list(state["extra"]["beta"])}
                earlier_seconds = float(state["train_seconds"])
                log(f"seed {seed}: DAgger resuming after round {first_round - 1}/{dagger.rounds} from {ckpt}")
            else:
                first_round = 0
                round_dir = scratch / "demos" / "round-000"
                round_dir.mkdir(parents=True)
                for i, traj in enumerate(setup.demos):
                    serialize.save(round_dir / f"expert-demo-{i:04d}.npz", [traj])
                summary["labels"].append(int(sum(len(t.acts) for t in setup.demos)))
                summary["beta"].append(1.0)
            labeller = ExpertLabeller(venv, cfg.task)
            for round_num in range(first_round, dagger.rounds + 1):
                if round_num > 0:
                    collector = trainer.create_trajectory_collector()
                    collector.seed(seed * 1000 + round_num)  # the beta draws
                    first = DAGGER_SEED + 1000 * seed + 100 * round_num
                    summary["labels"].append(collect_round(collector, labeller, first))
                    summary["beta"].append(dagger.beta(round_num))
                epochs = cfg.bc_epochs if round_num == 0 else dagger.epochs
                with warnings.catch_warnings():
                    # imitation logs its metrics with float() on tensors that require grad (harmless)
                    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
                    trainer.extend_and_update({"n_epochs": epochs, "progress_bar": progress,
                                               "log_rollouts_venv": None})
                if ckpt is not None:
                    save_bc_checkpoint(ckpt, trainer_bc, round_num + 1, fingerprint,
                                       earlier_seconds + time.perf_counter() - start,
                                       extra={"labels": summary["labels"], "beta": summary["beta"]})
                log(f"seed {seed}: DAgger round {round_num}/{dagger.rounds}: beta {summary['beta'][-1]:.2f}, "
                    f"{sum(summary['labels'])} expert labels, {epochs} epochs")
        finally:
            venv.close()
            logger.close()
            if bars:
                hf_logging.enable_progress_bar()
    policy.set_training_mode(False)
    summary["seconds"] = earlier_seconds + time.perf_counter() - start
    return policy, summary
