"""Tests of mint_rl.ops: soft-argmax, Gaussians, heatmaps, masks, status, sharpening."""

import math

import pytest
import torch

from mint_rl.coords import normalized_to_pixel, pixel_to_normalized
from mint_rl.ops import (
    ActiveStatus,
    KeypointHeatmaps,
    SpatialSoftArgmax,
    active_status,
    adjust_sharpness,
    aggregated_mask,
    gaussian_maps,
    heatmap_area,
    keypoint_heatmaps,
    normalize_frames,
    spatial_soft_argmax,
    threshold_gaussians,
)


def test_soft_argmax_recovers_peak_of_sharp_map():
    h, w = 13, 21
    peaks = [(0, 0), (12, 20), (5, 7), (11, 3)]
    maps = torch.zeros(1, len(peaks), h, w)
    for k, (r, c) in enumerate(peaks):
        maps[0, k, r, c] = 50.0
    xy = spatial_soft_argmax(maps)
    uv = normalized_to_pixel(xy, h, w)
    expected = torch.tensor([[[c, r] for r, c in peaks]], dtype=torch.float32)
    torch.testing.assert_close(uv, expected, atol=1e-4, rtol=0)


def test_soft_argmax_uniform_map_is_centre_and_batched_shapes():
    xy = spatial_soft_argmax(torch.zeros(2, 3, 4, 6, 9))
    assert xy.shape == (2, 3, 4, 2)
    torch.testing.assert_close(xy, torch.zeros_like(xy), atol=1e-6, rtol=0)


def test_soft_argmax_sub_pixel_between_two_equal_peaks():
    maps = torch.full((1, 1, 5, 5), -1e4)
    maps[0, 0, 2, 1] = 0.0
    maps[0, 0, 2, 2] = 0.0
    uv = normalized_to_pixel(spatial_soft_argmax(maps), 5, 5)
    torch.testing.assert_close(uv, torch.tensor([[[1.5, 2.0]]]))


def test_soft_argmax_is_differentiable_and_module_matches():
    maps = torch.randn(2, 3, 8, 8, requires_grad=True)
    out = SpatialSoftArgmax()(maps)
    torch.testing.assert_close(out, spatial_soft_argmax(maps))
    out.sum().backward()
    assert maps.grad is not None and maps.grad.abs().sum() > 0


def test_soft_argmax_rejects_bad_input():
    with pytest.raises(ValueError, match=r"expected shape \(\.\.\., h, w\)"):
        spatial_soft_argmax(torch.zeros(5))
    with pytest.raises(ValueError, match="floating-point"):
        spatial_soft_argmax(torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        spatial_soft_argmax(torch.zeros(1, 3, 3), temperature=0.0)


def test_gaussian_centre_and_decay_in_feature_map_pixels():
    h, w, sigma = 9, 15, 2.0
    uv = torch.tensor([[4.0, 3.0]])
    g = gaussian_maps(pixel_to_normalized(uv, h, w), h, w, sigma)
    assert g.shape == (1, h, w)
    assert g[0, 3, 4] == pytest.approx(1.0)
    assert g.argmax() == 3 * w + 4
    # exp(-d^2 / sigma^2), d = 3 pixels to the right
    assert g[0, 3, 7].item() == pytest.approx(math.exp(-9.0 / 4.0), rel=1e-5)


def test_heatmap_threshold_and_clamp():
    g = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.5, 1.0])
    h = threshold_gaussians(g, eta=3.5, tau=0.1)
    torch.testing.assert_close(h, torch.tensor([0.0, 0.0, 0.35, 0.7, 1.0, 1.0]))
    hm = keypoint_heatmaps(torch.zeros(2, 3, 2), 11, 11, sigma=2.0, eta=3.5, tau=0.1)
    assert hm.shape == (2, 3, 11, 11)
    assert hm.min() >= 0 and hm.max() <= 1
    torch.testing.assert_close(KeypointHeatmaps((11, 11), 2.0, 3.5, 0.1)(torch.zeros(2, 3, 2)), hm)


def test_heatmap_area_matches_an_interior_heatmap():
    sigma, eta, tau = 3.0, 3.5, 0.1
    hm = keypoint_heatmaps(torch.zeros(1, 2), 41, 41, sigma, eta, tau)
    assert hm.sum().item() == pytest.approx(heatmap_area(sigma, eta, tau), rel=1e-5)


def test_aggregated_mask_weights_by_status_and_clamps():
    heat = torch.zeros(1, 3, 4, 4)
    heat[0, 0, :2] = 1.0
    heat[0, 1, 1:3] = 1.0
    heat[0, 2] = 1.0
    mask = aggregated_mask(heat, torch.tensor([[1.0, 1.0, 0.0]]))
    expected = torch.zeros(1, 4, 4)
    expected[0, :3] = 1.0  # overlapping rows clamp to 1, inactive third keypoint ignored
    torch.testing.assert_close(mask, expected)
    with pytest.raises(ValueError, match="expected status of shape"):
        aggregated_mask(heat, torch.ones(1, 2))


def test_active_status_threshold_and_module():
    maps = torch.zeros(1, 3, 5, 5)
    maps[0, 0, 2, 2] = 15.1
    maps[0, 1, 0, 0] = 14.9
    maps[0, 2] = 15.0
    s = active_status(maps, gamma=15.0)
    assert s[0, 0] > 0.999 and s[0, 1] < 1e-3 and s[0, 2].item() == pytest.approx(0.5)
    torch.testing.assert_close(ActiveStatus(15.0)(maps), s)


def test_normalize_frames_uint8_and_float_agree():
    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    a, b = normalize_frames(x), normalize_frames(x.float())
    torch.testing.assert_close(a, b)
    assert a.min() >= -0.5 and a.max() <= 0.5
    with pytest.raises(ValueError, match="uint8 or floating-point"):
        normalize_frames(x.long())


def test_adjust_sharpness_known_case():
    img = torch.zeros(1, 5, 5)
    img[0, 2, 2] = 0.5
    out = adjust_sharpness(img, 10.0)
    # interior blur of the single bright pixel: centre 5/13*0.5, its 8 neighbours 1/13*0.5
    centre = 10 * 0.5 - 9 * (5 / 13 * 0.5)
    assert out[0, 2, 2].item() == pytest.approx(min(centre, 1.0))
    assert out[0, 1, 1].item() == 0.0  # 10*0 - 9*(0.5/13) < 0 -> clamped
    low = torch.full((1, 5, 5), 0.4)
    low[0, 2, 2] = 0.45
    out = adjust_sharpness(low, 10.0)
    blurred_centre = (0.4 * 8 + 0.45 * 5) / 13
    assert out[0, 2, 2].item() == pytest.approx(10 * 0.45 - 9 * blurred_centre, rel=1e-5)  # 0.727
    neighbour_blur = (0.4 * 12 + 0.45) / 13
    assert out[0, 1, 2].item() == pytest.approx(10 * 0.4 - 9 * neighbour_blur, abs=1e-6)
    # border pixels are copied unchanged, factor 1 is the identity
    torch.testing.assert_close(out[0, 0], low[0, 0])
    rnd = torch.rand(2, 3, 6, 7)
    torch.testing.assert_close(adjust_sharpness(rnd, 1.0), rnd)
    with pytest.raises(ValueError, match="floating-point"):
        adjust_sharpness(torch.zeros(3, 4, 4, dtype=torch.uint8), 2.0)
