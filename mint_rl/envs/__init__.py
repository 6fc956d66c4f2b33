"""MAGICAL environments for mint_rl: gymnasium adapter, simulator state, scripted experts, demos.

Importing this package is cheap: MAGICAL (and pymunk/pyglet) are imported only when an
environment is made. ``import mint_rl`` registers the gymnasium ids ``magical/<MAGICAL id>``.

Modules: :mod:`~mint_rl.envs.registry` (ids, registration), :mod:`~mint_rl.envs._compat`
(Python 3.11 shim + headless EGL), :mod:`~mint_rl.envs.magical` (the gymnasium adapter),
:mod:`~mint_rl.envs.state` (simulator state, world <-> pixel), :mod:`~mint_rl.envs.experts`
(scripted experts), :mod:`~mint_rl.envs.demos` (trajectories: expert rollouts, npz, human demos).

Example:
    >>> import mint_rl.envs as envs
    >>> env = envs.make_magical_env("MoveToCorner", "Demo", view="allo", resolution=96)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, sorted(envs.object_positions_px(env))
    ((96, 96, 3), ['blocks', 'goals', 'robot'])
    >>> env.close()
"""

from mint_rl.envs.registry import (
    EPISODE_STEPS,
    PREPROCESSORS,
    TASK_VARIANTS,
    TASKS,
    MagicalId,
    all_magical_ids,
    magical_id,
    parse_magical_id,
    register_gymnasium_ids,
)

__all__ = [
    "EPISODE_STEPS",
    "PREPROCESSORS",
    "TASK_VARIANTS",
    "TASKS",
    "MagicalId",
    "all_magical_ids",
    "magical_id",
    "parse_magical_id",
    "register_gymnasium_ids",
    "MagicalEnv",
    "make_magical_env",
    "render_only_observed",
    "object_positions_px",
    "read_state",
    "world_to_pixel",
    "expert_for",
    "expert_episode",
    "ExpertEpisode",
    "rollout_expert",
    "save_demos",
    "load_demos",
    "load_demo_set",
    "load_human_demos",
    "replay_human_demo",
    "trajectory_scores",
    "DemoFormatError",
    "read_demo_metadata",
    "HumanTrajectory",
    "DemoUnpickler",
]

_LAZY = {
    "MagicalEnv": "mint_rl.envs.magical",
    "make_magical_env": "mint_rl.envs.magical",
    "render_only_observed": "mint_rl.envs.magical",
    "object_positions_px": "mint_rl.envs.state",
    "read_state": "mint_rl.envs.state",
    "world_to_pixel": "mint_rl.envs.state",
    "expert_for": "mint_rl.envs.experts",
    "rollout_expert": "mint_rl.envs.demos",
    "expert_episode": "mint_rl.envs.demos",
    "ExpertEpisode": "mint_rl.envs.demos",
    "save_demos": "mint_rl.envs.demos",
    "load_demos": "mint_rl.envs.demos",
    "load_human_demos": "mint_rl.envs.demos",
    "load_demo_set": "mint_rl.envs.demos",
    "replay_human_demo": "mint_rl.envs.demos",
    "trajectory_scores": "mint_rl.envs.demos",
    "DemoFormatError": "mint_rl.envs.demos",
    "read_demo_metadata": "mint_rl.envs.demos",
    "HumanTrajectory": "mint_rl.envs.demos",
    "DemoUnpickler": "mint_rl.envs.demos",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mint_rl.envs' has no attribute {name!r}")
