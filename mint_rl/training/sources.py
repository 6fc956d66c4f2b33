"""Turn a data-source string into clips, so one trainer serves every dataset.

Source strings (``scripts/train_mint.py --data``):

* ``generate:N[:PRESET[:SEED]]`` — ``N`` CLEVRER-like clips from :mod:`mint_rl.data.synthetic`
  (preset ``small`` by default, seeds ``SEED .. SEED+N-1``, default ``SEED`` = 0).
* ``magical-experts:N[:VARIANT[:SEED]]`` — ``N`` scripted-expert episodes of each MAGICAL task
  (MoveToRegion, MoveToCorner, MakeLine), allocentric view at 96x96; ``VARIANT`` is ``Demo``,
  ``TestJitter`` or ``both`` (default ``both``: the Demo scene, which is the same for every
  seed, once, plus ``N`` TestJitter episodes).
* ``clevrer:VIDEO_DIR[:PROPOSALS_DIR]`` — real CLEVRER ``video_XXXXX.mp4`` files, with masks
  from the ``derender_proposals`` JSON files when given.
* ``DIR`` — a directory written by ``scripts/make_clevrer_like.py`` (``<name>.json`` +
  ``<name>.npz``), or else a folder of the user's own videos (mp4/avi/gif/...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mint_rl.data import Clip

SOURCE_KINDS = ("generate:N[:PRESET[:SEED]]", "magical-experts:N[:VARIANT[:SEED]]", "clevrer:VIDEO_DIR[:PROPOSALS_DIR]", "DIR")
MAGICAL_TASKS = ("MoveToRegion", "MoveToCorner", "MakeLine")


def _positive_int(text: str, spec: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 1:
        raise ValueError(f"data source {spec!r}: expected a positive count, got {text!r}")
    return value


def generated_clips(n: int, preset: str = "small", seed: int = 0, progress: bool = True) -> list[Clip]:
    """``n`` CLEVRER-like clips of a generator preset, seeds ``seed .. seed + n - 1``."""
    from tqdm.auto import tqdm

    from mint_rl.data import clevrer_like_preset, generate_clip

    cfg = clevrer_like_preset(preset)
    return [generate_clip(cfg, seed + i) for i in tqdm(range(n), desc=f"generate {preset}", disable=not progress)]


def magical_expert_clips(
    n: int, variant: str = "both", seed: int = 0, resolution: int = 96, progress: bool = True
) -> list[Clip]:
    """Allocentric frames of ``n`` scripted-expert episodes per MAGICAL task (and variant)."""
    from mint_rl.envs import rollout_expert

    if variant not in ("Demo", "TestJitter", "both"):
        raise ValueError(f"magical-experts: expected variant Demo, TestJitter or both, got {variant!r}")
    # Demo variants reset to one fixed scene whatever the seed: one episode of it is enough.
    plan = [("Demo", 1), ("TestJitter", n)] if variant == "both" else [(variant, 1 if variant == "Demo" else n)]
    clips: list[Clip] = []
    for task in MAGICAL_TASKS:
        for v, count in plan:
            trajs = rollout_expert(
                f"{task}-{v}-v0", count, seed=seed, env_kwargs={"view": "allo", "resolution": resolution}, progress=progress
            )
            clips += [Clip(frames=t.obs, name=f"{task}-{v}-seed{seed + i}", fps=10.0) for i, t in enumerate(trajs)]
    return clips


def clips_from_source(spec: str, progress: bool = True) -> list[Clip]:
    """Clips of one source string (see the module docstring for the forms).

    Raises:
        ValueError: an unknown form or a bad count (the message lists the valid forms).
        FileNotFoundError: a directory that does not exist or holds no clips or videos.
    """
    kind, _, rest = spec.partition(":")
    if kind == "generate" and rest:
        parts = rest.split(":")
        n = _positive_int(parts[0], spec)
        preset = parts[1] if len(parts) > 1 and parts[1] else "small"
        seed = int(parts[2]) if len(parts) > 2 else 0
        return generated_clips(n, preset, seed, progress)
    if kind == "magical-experts" and rest:
        parts = rest.split(":")
        n = _positive_int(parts[0], spec)
        variant = parts[1] if len(parts) > 1 and parts[1] else "both"
        seed = int(parts[2]) if len(parts) > 2 else 0
        return magical_expert_clips(n, variant, seed, progress=progress)
    if kind == "clevrer" and rest:
        from mint_rl.data import load_clevrer

        video_dir, _, proposals = rest.partition(":")
        return list(load_clevrer(video_dir, proposals or None))
    path = Path(spec)
    if not path.is_dir():
        raise ValueError(f"data source {spec!r}: expected one of {', '.join(SOURCE_KINDS)} (an existing directory)")
    from mint_rl.data.io import clip_files, load_clip_dir, load_video_folder

    if clip_files(path):
        return load_clip_dir(path)
    return list(load_video_folder(path))


def clips_from_sources(specs: Sequence[str], progress: bool = True) -> list[Clip]:
    """Concatenation of :func:`clips_from_source` over several source strings."""
    clips: list[Clip] = []
    for spec in specs:
        clips += clips_from_source(spec, progress)
    if not clips:
        raise ValueError(f"data sources {list(specs)}: no clips")
    return clips
