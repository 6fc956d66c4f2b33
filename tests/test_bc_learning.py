"""Behaviour cloning on MAGICAL learns: a MINT agent from a few expert demos beats a random policy.

The end-to-end tests in test_bc_magical.py check plumbing with a tiny untrained detector and one
epoch; this one checks the claim: with the shipped ``magical`` detector, 5 scripted-expert
demonstrations of MoveToRegion and 100 BC epochs (about 30 s here), the agent scores well above a
random policy on held-out TestJitter episodes (the same episode seeds for both). Measured when
written: 1.0 for the agent (Demo and TestJitter), 0.0 for the random policy.
"""

from __future__ import annotations

import numpy as np
import pytest

from mint_rl.envs import make_magical_env
from mint_rl.experiments.magical_bc import BCExperimentConfig, evaluation_seed, run_bc_experiment
from mint_rl.policies import evaluate_policy_scores


class RandomPolicy:
    """SB3's ``predict`` interface, uniform over MAGICAL's 18 actions."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def predict(self, obs, deterministic: bool = True):
        return int(self.rng.integers(18)), None


@pytest.mark.usefixtures("single_torch_thread")
def test_bc_mint_agent_on_move_to_region_scores_well_above_random():
    cfg = BCExperimentConfig(task="MoveToRegion", n_demos=5, seeds=1, epochs=100, eval_episodes=10,
                             variants=["Demo", "TestJitter"], eval_modes=["argmax"])
    result = run_bc_experiment(cfg, progress=False, log=lambda *_: None)
    learned = float(np.mean(result.scores["TestJitter/argmax"][0]))
    first = evaluation_seed(cfg, 0)
    random_scores = evaluate_policy_scores(RandomPolicy(0), lambda: make_magical_env("MoveToRegion", "TestJitter",
                                                                                      view="state"),
                                           n_episodes=cfg.eval_episodes, seed=first)
    chance = float(np.mean(random_scores))
    assert learned >= 0.7 and learned >= chance + 0.4, f"BC agent {learned:.2f} vs random policy {chance:.2f}"
