"""The front door cannot rot: every example of README.md runs, and every link of the docs resolves.

Each code block of the README other than the two set-up commands follows an
``<!-- example: NAME -->`` marker and is run here: Python blocks as they are (in a temporary
working directory), shell blocks line by line through the scripts' ``main`` with options that
scale them down to seconds (fewer demos, seeds, epochs, steps), which the test appends, so that
argparse's last-one-wins keeps the README's own options otherwise.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shlex
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250
SETUP_COMMANDS = (
    "bash install.sh && .venv/bin/python scripts/bc_magical.py MoveToCorner",
    "bash install.sh && .venv/bin/python -m pytest -q tests",
)

_BLOCK = re.compile(r"(?:<!-- example: (?P<name>[\w-]+) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)```", re.S)


def readme_blocks(text: str | None = None) -> list[tuple[str | None, str, str]]:
    """``(example name or None, language, code)`` of every fenced block of the README, in order."""
    text = README.read_text() if text is None else text
    return [(m["name"], m["lang"], m["code"]) for m in _BLOCK.finditer(text)]


def readme_examples() -> dict[str, tuple[str, str]]:
    return {name: (lang, code) for name, lang, code in readme_blocks() if name}


def _script_main(name: str):
    spec = importlib.util.spec_from_file_location(f"readme_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _shell_lines(code: str) -> list[list[str]]:
    """Each command line of a shell block as argv (comments dropped)."""
    return [shlex.split(line, comments=True) for line in code.splitlines() if line.strip() and not line.startswith("#")]


def _run_script_line(argv: list[str], extra: list[str]) -> int:
    assert argv[0] == "python" and argv[1].startswith("scripts/"), f"README shell line must run a script: {argv}"
    name = Path(argv[1]).stem
    return _script_main(name)(argv[2:] + extra)


def _exec_python(code: str, name: str) -> dict:
    namespace: dict = {"__name__": f"readme_{name}"}
    exec(compile(code, f"README.md:{name}", "exec"), namespace)  # noqa: S102 - our own README
    return namespace


# ----------------------------------------------------------------------------- the README itself
def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md: expected <= {MAX_README_LINES} lines, got {len(lines)}"


def test_every_readme_block_is_a_set_up_command_or_a_tested_example():
    blocks = readme_blocks()
    setup = [code.strip() for name, _, code in blocks if name is None]
    assert setup == list(SETUP_COMMANDS), "the README's only unmarked blocks are its two set-up commands"
    names = [name for name, _, _ in blocks if name]
    assert len(names) == len(set(names)), f"duplicate example names: {names}"
    assert set(names) == set(RUNNERS), f"examples without a runner here, or runners without an example: {names} vs {sorted(RUNNERS)}"


def test_block_parser_sees_markers_and_plain_blocks():
    text = "a\n\n```bash\necho 1\n```\n\n<!-- example: x -->\n```python\nprint(2)\n```\n"
    assert readme_blocks(text) == [(None, "bash", "echo 1\n"), ("x", "python", "print(2)\n")]


# ----------------------------------------------------------------------------- the examples
def run_wrapper(code: str, tmp_path: Path, capsys) -> None:
    _exec_python(code, "wrapper")
    assert capsys.readouterr().out.strip().splitlines()[0] == "(4, 25, 3)"


def run_ppo(code: str, tmp_path: Path, capsys) -> None:
    ns = _exec_python(code, "ppo")
    assert ns["model"].num_timesteps >= 128
    assert (tmp_path / "out" / "ppo_mint.zip").is_file()


def run_evaluate(code: str, tmp_path: Path, capsys) -> None:
    ns = _exec_python(code, "evaluate")
    table = ns["table"]
    assert set(table) >= {"dop", "top", "uak", "rak"}
    # the shipped detector on held-out clips: close to its documented 0.87 (3 clips, so loosely)
    assert table["dop"]["mean"] > 0.6, table
    kp, st = ns["keypoints"], ns["status"]
    assert tuple(kp.shape[1:]) == (25, 2) and tuple(st.shape[1:]) == (25,)


def run_bc(code: str, tmp_path: Path, capsys) -> None:
    small = ["--n-demos", "2", "--seeds", "1", "--epochs", "1", "--eval-episodes", "1", "--jobs", "1",
             "--no-gif", "--no-progress"]
    for argv in _shell_lines(code):
        extra = small if argv[1] == "scripts/bc_magical.py" else []
        assert _run_script_line(argv, extra) == 0, argv
        last = capsys.readouterr().out.strip().splitlines()[-1]
        if argv[1] == "scripts/bc_magical.py":
            assert re.fullmatch(r"demo_score=\S+ testjitter_score=\S+", last), last
    assert (tmp_path / "out" / "bc" / "MoveToRegion-mint" / "results.json").is_file()


def _my_videos(folder: Path) -> None:
    from mint_rl.data import clevrer_like_preset, generate_clip
    from mint_rl.video import write_video

    folder.mkdir()
    for seed in range(2):
        clip = generate_clip(clevrer_like_preset("small"), seed=seed)
        write_video(clip.frames[:12], folder / f"video{seed}.mp4", fps=10)


def run_train(code: str, tmp_path: Path, capsys) -> None:
    _my_videos(tmp_path / "my_videos")
    lines = _shell_lines(code)
    assert _run_script_line(lines[0], ["--steps", "2", "--batch-size", "2", "--no-progress"]) == 0
    assert (tmp_path / "runs" / "mine" / "detector.safetensors").is_file()
    for argv in lines[1:]:
        assert _run_script_line(argv, []) == 0, argv
    assert any((tmp_path / "out" / "rec").iterdir())


RUNNERS = {"wrapper": run_wrapper, "bc": run_bc, "ppo": run_ppo, "train": run_train, "evaluate": run_evaluate}


@pytest.mark.parametrize("name", sorted(RUNNERS))
def test_readme_example_runs(name, tmp_path, monkeypatch, capsys):
    examples = readme_examples()
    assert name in examples, f"README.md has no example {name!r}"
    lang, code = examples[name]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["readme"])
    RUNNERS[name](code, tmp_path, capsys)


# ----------------------------------------------------------------------------- links of the docs
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens.

    Example:
        >>> github_anchor("Local entropy (`mint_rl.entropy`)")
        'local-entropy-mint_rlentropy'
    """
    text = heading.strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {github_anchor(m[1]) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def _markdown_files() -> list[Path]:
    return [README, ROOT / "results" / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_links_of_the_docs_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading with that anchor in {dest.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_every_docs_page_is_linked_from_the_index():
    index = (DOCS / "README.md").read_text()
    missing = [p.name for p in DOCS.glob("*.md") if p.name != "README.md" and f"({p.name})" not in index]
    assert not missing, f"docs/README.md does not link {missing}"
