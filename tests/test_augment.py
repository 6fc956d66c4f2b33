"""Appearance augmentation of training windows (mint_rl.data.augment)."""

import pytest
import torch

from mint_rl.data.augment import CHANNEL_PERMUTATIONS, AppearanceAugment, appearance_augment


def _windows(b: int = 16, t: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, 3, 8, 8), generator=g, dtype=torch.uint8)


def test_colours_are_permuted_one_way_per_window_and_every_way_occurs():
    frames = _windows(64)
    out = appearance_augment(frames, AppearanceAugment(brightness=0.0, contrast=0.0), torch.Generator().manual_seed(1))
    used = set()
    for i in range(len(frames)):
        matches = [p for p in CHANNEL_PERMUTATIONS if torch.equal(out[i], frames[i][:, list(p)])]
        assert len(matches) == 1, f"window {i}: not one channel permutation applied to all its frames"
        used.add(matches[0])
    assert used == set(CHANNEL_PERMUTATIONS)


def test_nothing_changes_without_augmentation_and_lighting_is_shared_within_a_window():
    frames = _windows()
    off = AppearanceAugment(permute_channels=False, brightness=0.0, contrast=0.0)
    assert torch.equal(appearance_augment(frames, off, torch.Generator().manual_seed(0)), frames)
    flat = torch.full((4, 3, 3, 8, 8), 100, dtype=torch.uint8)
    out = appearance_augment(flat, AppearanceAugment(permute_channels=False, brightness=0.3, contrast=0.5),
                             torch.Generator().manual_seed(2)).float()
    # a uniform grey window: contrast does nothing, brightness scales it by one factor in [0.7, 1.3]
    per_window = out.flatten(1)
    assert torch.all(per_window == per_window[:, :1])
    assert torch.all((per_window[:, 0] >= 70) & (per_window[:, 0] <= 130)) and per_window[:, 0].unique().numel() > 1


def test_draws_repeat_with_the_generator_and_clip_to_uint8():
    frames = _windows()
    a = appearance_augment(frames, AppearanceAugment(), torch.Generator().manual_seed(5))
    b = appearance_augment(frames, AppearanceAugment(), torch.Generator().manual_seed(5))
    c = appearance_augment(frames, AppearanceAugment(), torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    white = torch.full((8, 2, 3, 4, 4), 250, dtype=torch.uint8)
    bright = appearance_augment(white, AppearanceAugment(brightness=0.5), torch.Generator().manual_seed(0))
    assert bright.dtype == torch.uint8 and int(bright.max()) == 255


def test_bad_windows_and_settings_are_refused():
    with pytest.raises(ValueError, match=r"expected \(B, T, 3, H, W\) uint8 windows, got torch.float32"):
        appearance_augment(torch.zeros(2, 3, 3, 4, 4))
    with pytest.raises(ValueError, match=r"got torch.uint8 \(3, 3, 4, 4\)"):
        appearance_augment(torch.zeros(3, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="brightness: expected a value in \\[0, 1\\)"):
        AppearanceAugment(brightness=1.5)
