"""Worker for the DDP smoke test (run by torchrun from tests/test_training.py)."""

import sys

import torch

from mint_rl.losses import loss_preset
from mint_rl.models import DetectorConfig, MintDetector
from mint_rl.training import TrainConfig, Trainer


def main(out: str) -> None:
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (8, 3, 3, 32, 32), dtype=torch.uint8)
    data = [{"frames": f} for f in frames]
    det = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=3))
    trainer = Trainer(det, loss_preset("magical"), TrainConfig(steps=3, batch_size=2, checkpoint_every=2),
                      data, out, progress=False, tensorboard=False)
    result = trainer.fit()
    flat = torch.cat([p.detach().flatten() for p in det.parameters()])
    torch.save({"rank": trainer.rank, "world": trainer.world, "params": flat, "steps": result.steps},
               f"{out}/rank{trainer.rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1])
