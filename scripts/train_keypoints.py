#!/usr/bin/env python
"""Train a keypoint detector (MINT, Transporter, Transporter-modified or Video Structure) on any video data.

    python scripts/train_keypoints.py --preset clevrer --data generate:40 --out runs/clevrer-like
    python scripts/train_keypoints.py --method transporter --preset clevrer --data generate:40 --out runs/transporter
    python scripts/train_keypoints.py --method video-structure --preset clevrer --data generate:40 --out runs/vs --resume

Options and output: ``--help`` and :mod:`mint_rl.training.cli`. ``scripts/train_mint.py`` is the
same program under its old name.
"""

from __future__ import annotations

import sys

from mint_rl.experiments.allocator import keep_freed_memory
from mint_rl.training.cli import _loss_overrides, parse_args  # noqa: F401  (the tests and users reach them here)
from mint_rl.training.cli import main as _main


def main(argv: list[str] | None = None) -> int:
    keep_freed_memory()  # reuse freed activations instead of faulting them in again (mint_rl.experiments.allocator)
    return _main(argv)


if __name__ == "__main__":
    sys.exit(main())
