"""Scripted MAGICAL experts: action encoding, line planning, scores on a few seeds."""

from __future__ import annotations

import numpy as np
import pytest

from mint_rl.envs.experts import MakeLineExpert, action_id, expert_for
from mint_rl.envs.magical import make_magical_env
from mint_rl.envs.state import read_state


def _scores(task: str, variant: str, seeds: list[int]) -> list[float]:
    env = make_magical_env(task, variant, view="state")  # no rendering: fast
    out = []
    try:
        for seed in seeds:
            env.reset(seed=seed)
            expert = expert_for(task)
            state = read_state(env)
            expert.reset(state)
            truncated = False
            while not truncated:
                _, _, _, truncated, info = env.step(expert.act(state))
                state = read_state(env)
            out.append(info["eval_score"])
    finally:
        env.close()
    return out


def test_action_id_matches_magical_flags():
    from mint_rl.envs._compat import import_magical

    import_magical()
    import magical.entities as en
    move = {1: en.RobotAction.UP, 0: en.RobotAction.NONE, -1: en.RobotAction.DOWN}
    turn = {1: en.RobotAction.LEFT, 0: en.RobotAction.NONE, -1: en.RobotAction.RIGHT}
    seen = set()
    for m, mf in move.items():
        for t, tf in turn.items():
            for close in (False, True):
                gf = en.RobotAction.CLOSE if close else en.RobotAction.OPEN
                a = action_id(m, t, close)
                assert en.ACTION_ID_TO_FLAGS[a] == (mf, tf, gf)
                seen.add(a)
    assert seen == set(range(18))
    with pytest.raises(ValueError):
        action_id(2, 0)


# TestJitter on the contiguous seeds 0-7 (no hand-picked subset); the 50-seed means are in
# docs/magical.md (1.000, 0.995, 0.950). The Demo variants are one fixed scene whatever the seed.
@pytest.mark.parametrize(
    "task, variant, seeds, minimum",
    [
        ("MoveToRegion", "Demo", [0], 1.0),
        ("MoveToRegion", "TestJitter", list(range(8)), 1.0),
        ("MoveToCorner", "Demo", [0], 1.0),
        ("MoveToCorner", "TestJitter", list(range(8)), 0.875),
        ("MakeLine", "Demo", [0], 1.0),
        ("MakeLine", "TestJitter", list(range(8)), 0.875),
    ],
)
def test_expert_scores_on_contiguous_seeds(task, variant, seeds, minimum):
    scores = _scores(task, variant, seeds)
    assert np.mean(scores) >= minimum, scores


def test_make_line_plan_is_a_scoring_line():
    from mint_rl.envs._compat import import_magical

    import_magical()
    from magical.benchmarks.make_line import longest_line

    blocks = np.array([(0.79, -0.82), (-0.177, 0.383), (-0.051, -0.128), (-0.292, -0.745)])
    expert = MakeLineExpert()
    slots, normal = expert.plan_line(blocks)
    assert slots.shape == (4, 2) and abs(np.linalg.norm(normal) - 1) < 1e-9
    # blocks put on their slots form a 4-block line by MAGICAL's own criterion
    assert longest_line(slots, 0.12 * 1.5, 0.12 * 3.5) == 4
    # and the plan leaves at least one block where it is
    assert np.min(np.linalg.norm(slots - blocks, axis=1)) < 1e-9


def test_expert_for_unknown_task_lists_valid_ones():
    with pytest.raises(ValueError, match="MakeLine"):
        expert_for("ClusterShape")
    with pytest.raises(ValueError, match="not a MAGICAL task"):
        expert_for("Nope")
