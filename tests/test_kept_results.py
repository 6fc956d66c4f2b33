"""The seed files kept in ``results/bc`` give the README's rows for them (``results/README.md``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mint_rl.experiments.magical_bc import result_from_seed_records

ROOT = Path(__file__).resolve().parents[1]
KEPT = sorted(p for p in (ROOT / "results" / "bc").glob("*") if (p / "seeds").is_dir())


def _readme_cells(task: str, demos: str, agent: str) -> list[str]:
    """The README BC-table rows ``| task | demos | agent ... |`` whose agent cell starts with ``agent``."""
    rows = []
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] == task and cells[1] == demos and cells[2].startswith(agent):
            rows.append(cells)
    return rows


def _number(cell: str) -> float:
    match = re.search(r"\d+\.\d+", cell)
    assert match, f"no number in README cell {cell!r}"
    return float(match.group())


@pytest.mark.parametrize("folder", KEPT, ids=[p.name for p in KEPT])
def test_kept_seed_files_give_the_readme_row(folder):
    records = [json.loads(p.read_text()) for p in sorted((folder / "seeds").glob("*.json"))]
    assert records, f"{folder}/seeds holds no seed file"
    result = result_from_seed_records(records)
    cfg = result.config
    demos = "human" if cfg["demos"] == "human" else "expert"
    rows = _readme_cells(cfg["task"], demos, cfg["agent"].upper())
    assert len(rows) == 1, f"expected one README row for {folder.name}, found {rows}"
    row = rows[0]
    summary = result.summary()
    assert _number(row[3]) == pytest.approx(summary["Demo"]["mean"], abs=5e-4)
    assert _number(row[4]) == pytest.approx(summary["TestJitter"]["mean"], abs=5e-4)
    n = len(records)
    assert row[5].startswith(f"{n} of 5") or row[5] == "5", f"seed cell {row[5]!r} for {n} kept seeds"
    minutes = sum(float(m) for m in re.findall(r"\d+\.\d+", row[6]))  # "95.4 + 121.7 min": per-seed parts
    assert minutes == pytest.approx(result.seconds / 60, abs=0.05 * n)
