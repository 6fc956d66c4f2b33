#!/usr/bin/env python
"""Train a MINT keypoint detector on any video data (the old name of ``scripts/train_keypoints.py``).

Examples:
    # CLEVRER-like clips generated on the fly (small 160x96 preset), held-out metrics at the end
    python scripts/train_mint.py --preset clevrer --data generate:60 --eval-data generate:10:small:100000 --out runs/clevrer-like

    # MAGICAL allocentric 96x96 frames from the scripted experts of all three tasks
    python scripts/train_mint.py --preset magical --data magical-experts:8 --out runs/magical

    # your own videos, 2 processes (gloo on CPU, nccl on GPU)
    torchrun --nproc_per_node 2 scripts/train_mint.py --preset clevrer --data ~/videos --out runs/mine

    # continue an interrupted run from its last checkpoint
    python scripts/train_mint.py --preset magical --data magical-experts:8 --out runs/magical --resume

    # a baseline: the same program with --method transporter | transporter-modified | video-structure
    python scripts/train_mint.py --method transporter --preset clevrer --data generate:40 --out runs/transporter

Data sources (``--data``, repeatable): see :mod:`mint_rl.training.sources`; everything else,
including what is printed: :mod:`mint_rl.training.cli`.
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
