"""Tests of the local-entropy layer (mint_rl.entropy, csrc/).

The reference implementations here (preprocessing and the published 256-bin sigmoid-KDE
formula) are written independently of the package, in numpy/scipy and float64.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.special import expit

import mint_rl._ext as ext_mod
from mint_rl.entropy import (
    EntropyLayer,
    _soft_entropy_torch,
    local_entropy,
    local_entropy_torch,
    preprocess,
    published_local_entropy,
    soft_histogram,
)

LN27 = math.log(27.0)


# ----------------------------------------------------------------------------- references


def ref_preprocess(img: np.ndarray) -> np.ndarray:
    """NOTES.md preprocessing on one (3, H, W) image, float32 like the published layer."""
    x = img.astype(np.float32)
    _, h, w = x.shape
    pad = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    acc = np.zeros_like(x)
    for dy in range(5):
        for dx in range(5):
            acc += pad[:, dy : dy + h, dx : dx + w]
    smooth = np.round(acc / np.float32(25.0))
    sharp = np.round(np.clip(np.float32(2.5) * x - np.float32(1.25) * smooth, 0, 255))
    return np.round(np.clip(np.float32(255.0) * sharp / (smooth + np.float32(1e-8)), 0, 255))


def ref_published_entropy(img: np.ndarray, region: int = 3, bandwidth: float = 1e-3) -> np.ndarray:
    """The published formula on one (3, H, W) image: 256 bins of width L = 1/256, dmax norm."""
    _, h, w = img.shape
    r = region // 2
    L = 1.0 / 256.0
    dmax = expit(L / (2 * bandwidth)) - expit(-L / (2 * bandwidth))
    bins = np.arange(256, dtype=np.float64)
    out = np.zeros((h, w))
    for y in range(r, h - r):
        for x in range(r, w - r):
            v = img[:, y - r : y + r + 1, x - r : x + r + 1].reshape(-1).astype(np.float64)
            d = v[:, None] - bins[None, :]
            hist = (expit((d + L / 2) / bandwidth) - expit((d - L / 2) / bandwidth)).sum(0)
            p = hist / (v.size * dmax)
            out[y, x] = -(p * np.log(p + 1e-8)).sum()
    return out


def distinct_entropy(samples: np.ndarray) -> float:
    _, counts = np.unique(samples, return_counts=True)
    p = counts / samples.size
    return float(-(p * np.log(p + 1e-8)).sum())


def random_frames(seed: int, shape=(2, 3, 12, 13)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)


def blocky_frames(seed: int, n: int = 2, blocks: int = 4, size: int = 4, levels: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    b = torch.randint(0, levels, (n, 3, blocks, blocks), generator=g) * (255 // (levels - 1))
    return b.repeat_interleave(size, -1).repeat_interleave(size, -2).to(torch.uint8)


def scene_frames(seed: int = 0) -> torch.Tensor:
    """Gradient + discs + a little noise: a natural-looking (3, 24, 28) frame batch of 2."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:24, 0:28]
    frames = []
    for _ in range(2):
        img = np.stack([60 + 3 * yy, 80 + 2 * xx, 120 + yy + xx], 0).astype(np.float64)
        for _ in range(3):
            cy, cx, rad = rng.uniform(4, 20), rng.uniform(4, 24), rng.uniform(2, 6)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < rad**2
            img[:, disc] = rng.uniform(0, 255, size=(3, 1))
        img += rng.normal(0, 2, img.shape)
        frames.append(np.clip(np.round(img), 0, 255))
    return torch.from_numpy(np.stack(frames)).to(torch.uint8)


IMAGES = {
    "random": lambda: random_frames(1),
    "blocky": lambda: blocky_frames(2),
    "scene": lambda: scene_frames(3),
}


# ----------------------------------------------------------------------------- extension


def test_extension_is_built():
    # The install (pip install --no-build-isolation --no-deps -e .) must build mint_rl._C; the parity
    # tests below would otherwise compare the torch path with itself.
    assert ext_mod.has_extension(), "mint_rl._C is missing: rebuild with pip install --no-build-isolation --no-deps -e ."


def ext():
    e = ext_mod.load_extension(warn=False)
    if e is None:
        pytest.skip("mint_rl._C not built")
    return e


# ----------------------------------------------------------------------------- published formula


@pytest.mark.parametrize("kind", sorted(IMAGES))
@pytest.mark.parametrize("pre", [True, False])
def test_matches_published_formula(kind, pre):
    frames = IMAGES[kind]()
    got = local_entropy(frames, preprocess=pre)
    got_torch = local_entropy_torch(frames, preprocess=pre)
    for i in range(frames.shape[0]):
        img = frames[i].numpy()
        src = ref_preprocess(img) if pre else img
        want = ref_published_entropy(src)
        np.testing.assert_allclose(got[i].numpy(), want, rtol=0, atol=1e-5)
        np.testing.assert_allclose(got_torch[i].numpy(), want, rtol=0, atol=1e-5)


def test_preprocess_matches_reference():
    for frames in (random_frames(5, (2, 3, 9, 11)), scene_frames(6)):
        want = np.stack([ref_preprocess(f) for f in frames.numpy()])
        np.testing.assert_array_equal(preprocess(frames).numpy(), want)
        np.testing.assert_array_equal(preprocess(frames.float()).numpy(), want)


def test_published_local_entropy_port_matches_reference():
    frames = blocky_frames(7, n=1)
    got = published_local_entropy(frames.float())
    np.testing.assert_allclose(got[0].numpy(), ref_published_entropy(frames[0].numpy()), atol=1e-5)


def test_hard_equals_distinct_value_sum_region5():
    frames = random_frames(8, (1, 3, 8, 9)) // 32  # many repeated values
    got = local_entropy(frames, region_size=5, preprocess=False)[0]
    img = frames[0].numpy()
    for y in range(2, 6):
        for x in range(2, 7):
            want = distinct_entropy(img[:, y - 2 : y + 3, x - 2 : x + 3])
            assert abs(float(got[y, x]) - want) < 1e-5


# ----------------------------------------------------------------------------- known values


@pytest.mark.parametrize("fn", [local_entropy, local_entropy_torch])
@pytest.mark.parametrize("pre", [True, False])
def test_constant_image_is_zero(fn, pre):
    for value in (0, 77, 255):
        frames = torch.full((2, 3, 7, 9), value, dtype=torch.uint8)
        assert torch.equal(fn(frames, preprocess=pre), torch.zeros(2, 7, 9))


@pytest.mark.parametrize("fn", [local_entropy, local_entropy_torch])
def test_all_distinct_patch_is_ln27(fn):
    frames = (torch.randperm(27, generator=torch.Generator().manual_seed(0)) * 9).reshape(3, 3, 3)
    e = fn(frames.to(torch.uint8), preprocess=False)
    assert abs(float(e[1, 1]) - LN27) < 1e-5
    e = fn(frames.float(), preprocess=False)
    assert abs(float(e[1, 1]) - LN27) < 1e-5


@pytest.mark.parametrize("fn", [local_entropy, local_entropy_torch])
def test_two_valued_patch(fn):
    frames = torch.zeros(3, 3, 3, dtype=torch.uint8)
    frames[:, :, 2] = 200  # 18 zeros, 9 x 200
    want = -(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)
    assert abs(float(fn(frames, preprocess=False)[1, 1]) - want) < 1e-6


@pytest.mark.parametrize("fn", [local_entropy, local_entropy_torch])
def test_permutation_invariance_within_patch(fn):
    g = torch.Generator().manual_seed(3)
    patch = torch.randint(0, 6, (27,), generator=g).to(torch.uint8) * 40
    base = fn(patch.reshape(3, 3, 3), preprocess=False)[1, 1]
    for _ in range(5):
        perm = patch[torch.randperm(27, generator=g)]
        assert abs(float(fn(perm.reshape(3, 3, 3), preprocess=False)[1, 1]) - float(base)) < 1e-6
    assert abs(float(base) - distinct_entropy(patch.numpy())) < 1e-5


@pytest.mark.parametrize("region", [1, 3, 5, 7])
@pytest.mark.parametrize("pre", [True, False])
def test_border_zero_and_range(region, pre):
    frames = random_frames(9, (2, 3, 16, 17))
    e = local_entropy(frames, region_size=region, preprocess=pre)
    r = region // 2
    assert e.shape == (2, 16, 17) and e.dtype == torch.float32
    mask = torch.ones(16, 17, dtype=torch.bool)
    mask[r : 16 - r, r : 17 - r] = False
    assert torch.all(e[:, mask] == 0)
    inner = e[:, r : 16 - r, r : 17 - r]
    if pre and region == 1:  # preprocessing saturates many pixels at 255 in all channels
        assert float((inner > 0).float().mean()) > 0.3
    else:
        assert torch.all(inner > 0)
    assert float(e.min()) >= 0.0
    assert float(e.max()) <= math.log(3 * region * region) + 1e-6


def test_region_one_uses_the_three_channels():
    frames = torch.tensor([[[[5]], [[5]], [[9]]]], dtype=torch.uint8)  # (1, 3, 1, 1)
    want = distinct_entropy(np.array([5, 5, 9]))
    assert abs(float(local_entropy(frames, region_size=1, preprocess=False)) - want) < 1e-6


# ----------------------------------------------------------------------------- parity


@pytest.mark.parametrize("region", [1, 3, 5, 11])
@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_cpp_equals_torch_hard(region, kind):
    frames = IMAGES[kind]()
    for pre in (True, False):
        a = local_entropy(frames, region_size=region, preprocess=pre)
        b = local_entropy_torch(frames, region_size=region, preprocess=pre)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("bandwidth", [1e-3, 0.05, 0.7, 6.0])
def test_cpp_equals_torch_soft(bandwidth):
    g = torch.Generator().manual_seed(4)
    frames = torch.rand(2, 3, 7, 8, generator=g, dtype=torch.float64) * 255
    frames[0, :, :3, :3] = torch.tensor([0.0, 0.3, 254.8])[:, None, None]  # near both ends
    a = local_entropy(frames, bandwidth=bandwidth, preprocess=False)
    b = local_entropy_torch(frames, bandwidth=bandwidth, preprocess=False)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    a32 = local_entropy(frames.float(), bandwidth=bandwidth, preprocess=False)
    torch.testing.assert_close(a32, b, rtol=0, atol=1e-4)


def test_batch_dims_and_layouts():
    frames = random_frames(10, (2, 3, 3, 11, 13))
    flat = local_entropy(frames.reshape(6, 3, 11, 13))
    assert torch.equal(local_entropy(frames), flat.reshape(2, 3, 11, 13))
    assert torch.equal(local_entropy(frames[1, 2]), flat[5])
    x4 = frames.reshape(6, 3, 11, 13)
    cl = x4.contiguous(memory_format=torch.channels_last)
    assert not cl.is_contiguous()
    assert torch.equal(local_entropy(cl), flat)
    torch.testing.assert_close(local_entropy_torch(cl), flat, rtol=0, atol=1e-5)
    wide = random_frames(11, (2, 3, 11, 26))
    strided = wide[..., ::2]
    assert not strided.is_contiguous()
    assert torch.equal(local_entropy(strided), local_entropy(strided.contiguous()))
    hwc = frames.reshape(6, 3, 11, 13).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert torch.equal(local_entropy(hwc.float(), preprocess=False), local_entropy(x4, preprocess=False))
    assert local_entropy(frames[:0]).shape == (0, 3, 11, 13)


def test_uint8_and_integer_float_agree_and_no_grad():
    frames = random_frames(12, (1, 3, 9, 9))
    f = frames.float().requires_grad_(True)
    e = local_entropy(f, preprocess=False)
    assert not e.requires_grad
    assert torch.equal(e, local_entropy(frames, preprocess=False))
    assert not EntropyLayer()(f).requires_grad


def test_entropy_layer_matches_function():
    frames = scene_frames(13)
    layer = EntropyLayer(region_size=5, bandwidth=1e-3, preprocess=True)
    assert torch.equal(layer(frames), local_entropy(frames, region_size=5))
    assert list(layer.parameters()) == []


# ----------------------------------------------------------------------------- soft path


@pytest.mark.parametrize("bandwidth", [1e-4, 1e-3, 0.2, 3.0, 80.0])
def test_soft_histogram_sums_to_one(bandwidth):
    g = torch.Generator().manual_seed(5)
    samples = torch.rand(6, 27, generator=g, dtype=torch.float64) * 255
    samples[0, :4] = torch.tensor([0.0, 0.1, 254.9, 255.0])
    p = soft_histogram(samples, bandwidth)
    assert p.shape == (6, 256) and float(p.min()) >= 0
    torch.testing.assert_close(p.sum(-1), torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-12)
    for row in range(6):  # the kernel's own histogram (csrc/entropy_kernels.h) agrees
        q = ext().soft_histogram(samples[row], bandwidth)
        torch.testing.assert_close(q, p[row], rtol=0, atol=1e-12)
        assert abs(float(q.sum()) - 1.0) < 1e-12


def test_soft_half_integer_samples_split_into_two_bins():
    frames = torch.full((1, 3, 3, 3), 10.5, dtype=torch.float64)
    for fn in (local_entropy, local_entropy_torch):
        e = fn(frames, bandwidth=1e-3, preprocess=False)
        assert abs(float(e[0, 1, 1]) - math.log(2)) < 1e-6
    # the published L = 1/256 bins lose these samples entirely (documented difference)
    assert float(published_local_entropy(frames)[0, 1, 1]) < 1e-6


def test_soft_end_bins_are_open():
    frames = torch.full((1, 3, 3, 3), 0.2, dtype=torch.float64)
    frames[..., 1:] = 254.7  # bins 0 and 255 only: 9 vs 18 samples
    want = -(1 / 3) * math.log(1 / 3) - (2 / 3) * math.log(2 / 3)
    for fn in (local_entropy, local_entropy_torch):
        assert abs(float(fn(frames, preprocess=False)[0, 1, 1]) - want) < 1e-6


def test_soft_with_tiny_bandwidth_on_integers_equals_hard():
    frames = torch.cat([random_frames(14, (1, 3, 9, 10)), blocky_frames(15, n=1, blocks=4, size=3)[..., :9, :10]])
    hard = local_entropy(frames, preprocess=False)
    x = frames.to(torch.float64)
    torch.testing.assert_close(ext().entropy_soft(x, 3, 1e-3), hard, rtol=0, atol=1e-6)
    torch.testing.assert_close(_soft_entropy_torch(x, 3, 1e-3), hard, rtol=0, atol=1e-6)


def test_large_bandwidth_uses_soft_path():
    frames = blocky_frames(16, n=1)
    sharp = local_entropy(frames, preprocess=False)
    smooth = local_entropy(frames, bandwidth=2.0, preprocess=False)
    assert float((smooth - sharp)[0, 1:-1, 1:-1].min()) > 0  # each sample spreads over bins


# ----------------------------------------------------------------------------- fallback


def test_fallback_warns_once_and_agrees(monkeypatch):
    frames = scene_frames(17)
    want = local_entropy(frames)
    monkeypatch.setattr(ext_mod, "_EXT", None)
    monkeypatch.setattr(ext_mod, "_TRIED", True)
    monkeypatch.setattr(ext_mod, "_WARNED", False)
    with pytest.warns(RuntimeWarning, match="pure-torch"):
        got = local_entropy(frames)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        local_entropy(frames)


# ----------------------------------------------------------------------------- bad input


GOOD = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)


@pytest.mark.parametrize(
    "frames, kwargs, pattern",
    [
        (torch.zeros(8, 8), {}, r"expected shape \(\.\.\., 3, H, W\).*got \(8, 8\)"),
        (torch.zeros(1, 4, 8, 8), {}, r"expected 3 colour channels.*got \(1, 4, 8, 8\)"),
        (torch.zeros(1, 1, 8, 8), {}, r"expected 3 colour channels.*got"),
        (torch.full((3, 8, 8), float("nan")), {}, r"expected finite.*got NaN or inf"),
        (torch.full((3, 8, 8), float("inf")), {}, r"expected finite.*got NaN or inf"),
        (torch.full((3, 8, 8), -1.0), {}, r"expected values in \[0, 255\], got values in \[-1.0"),
        (torch.full((3, 8, 8), 256.0), {}, r"expected values in \[0, 255\].*256.0"),
        (torch.zeros(3, 2, 8), {}, r"expected H and W >= 3.*got H=2, W=8"),
        (torch.zeros(3, 8, 4), {"region_size": 5}, r"expected H and W >= 5.*got H=8, W=4"),
        (GOOD, {"region_size": 4}, r"expected an odd integer.*got 4"),
        (GOOD, {"region_size": 0}, r"expected an odd integer.*got 0"),
        (GOOD, {"region_size": 33}, r"expected an odd integer.*got 33"),
        (GOOD, {"region_size": 3.0}, r"expected an odd int, got float"),
        (GOOD, {"bandwidth": 0.0}, r"expected a finite value > 0.*got 0.0"),
        (GOOD, {"bandwidth": -1e-3}, r"expected a finite value > 0.*got -0.001"),
        (GOOD, {"bandwidth": float("nan")}, r"expected a finite value > 0.*got nan"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.int32), {}, r"expected dtype uint8 or a floating.*got torch.int32"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.bool), {}, r"expected dtype uint8.*got torch.bool"),
        (np.zeros((3, 8, 8)), {}, r"expected a torch.Tensor, got ndarray"),
    ],
)
@pytest.mark.parametrize("fn", [local_entropy, local_entropy_torch])
def test_bad_input_raises_value_error(fn, frames, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        fn(frames, **kwargs)


def test_bad_input_preprocess_layer_histogram():
    with pytest.raises(ValueError, match="expected 3 colour channels"):
        preprocess(torch.zeros(2, 8, 8, 8))
    with pytest.raises(ValueError, match="expected finite"):
        preprocess(torch.full((3, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="odd integer"):
        EntropyLayer(region_size=2)
    with pytest.raises(ValueError, match="expected 3 colour channels"):
        EntropyLayer()(torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match="expected finite values in"):
        soft_histogram(torch.tensor([1.0, 300.0]))
    with pytest.raises(ValueError, match="bandwidth"):
        soft_histogram(torch.tensor([1.0]), bandwidth=0.0)


def test_kernel_entry_points_validate():
    e = ext()
    with pytest.raises(ValueError, match="expected uint8"):
        e.entropy_hard(torch.zeros(1, 3, 5, 5), 3)
    with pytest.raises(ValueError, match=r"expected frames of shape \(N, 3, H, W\)"):
        e.entropy_hard(torch.zeros(1, 4, 5, 5, dtype=torch.uint8), 3)
    with pytest.raises(ValueError, match="odd region size"):
        e.entropy_soft(torch.zeros(1, 3, 5, 5), 2, 1e-3)
    with pytest.raises(ValueError, match="H and W >= region size"):
        e.entropy_soft(torch.zeros(1, 3, 2, 5), 3, 1e-3)
    with pytest.raises(ValueError, match="bandwidth > 0"):
        e.entropy_soft(torch.zeros(1, 3, 5, 5), 3, 0.0)
