"""Tests of mint_rl.models: the MINT hourglass detector and its config."""

import pytest
import torch
from torch import nn

from mint_rl.models import DetectorConfig, DetectorOutput, MintDetector, detector_preset


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_count_matches_paper():
    assert _n_params(MintDetector(DetectorConfig(in_channels=3, num_keypoints=25))) == 58_725
    # small-image strides change no weight shapes
    assert _n_params(MintDetector(detector_preset("magical"))) == 58_725


def test_layer_structure():
    model = MintDetector(DetectorConfig(num_keypoints=4))
    kinds = [type(m) for m in list(model.encoder) + list(model.decoder)]
    assert kinds == [nn.Conv2d, nn.LeakyReLU, nn.BatchNorm2d] * 3 + [nn.ConvTranspose2d, nn.LeakyReLU, nn.BatchNorm2d] * 3
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [m.kernel_size[0] for m in convs] == [5, 3, 3, 3, 3, 3]
    assert [m.stride[0] for m in convs] == [3, 2, 2, 1, 2, 2]
    assert [(m.in_channels, m.out_channels) for m in convs] == [(3, 4), (4, 4), (4, 8), (8, 8), (8, 4), (4, 4)]
    assert all(m.negative_slope == 0.01 for m in model.modules() if isinstance(m, nn.LeakyReLU))
    assert all(torch.all(m.bias == 0) for m in convs)


def test_feature_map_sizes():
    assert DetectorConfig().feature_map_size == (119, 171)  # 480x320 -> 171x119
    assert detector_preset("magical").feature_map_size == (135, 135)
    assert DetectorConfig.for_image(96, 96).conv_strides == (3, 2, 1)
    assert DetectorConfig.for_image(320, 480).conv_strides == (3, 2, 2)
    model = MintDetector(DetectorConfig(num_keypoints=2))
    out = model(torch.zeros(1, 3, 320, 480, dtype=torch.uint8))
    assert out.feature_maps.shape == (1, 2, 119, 171)
    small = MintDetector(detector_preset("magical", num_keypoints=2))
    assert small(torch.zeros(1, 3, 96, 96)).feature_maps.shape == (1, 2, 135, 135)


def test_forward_outputs_and_video_input():
    torch.manual_seed(0)
    model = MintDetector(DetectorConfig.for_image(48, 64, num_keypoints=5, gamma=2.0)).eval()
    frames = torch.randint(0, 256, (2, 3, 3, 48, 64), dtype=torch.uint8)
    out = model(frames)
    assert isinstance(out, DetectorOutput)
    h, w = model.config.feature_map_size
    assert out.keypoints.shape == (2, 3, 5, 2)
    assert out.status.shape == (2, 3, 5)
    assert out.feature_maps.shape == (2, 3, 5, h, w)
    assert out.keypoints.abs().max() <= 1.0
    assert out.status.min() >= 0 and out.status.max() <= 1
    assert out.feature_maps.min() > 0  # softplus
    assert out.active.dtype == torch.bool and torch.equal(out.active, out.status > 0.5)
    # (B, T, C, H, W) is the flattened (B*T, C, H, W) computation; uint8 and float agree
    flat = model(frames.reshape(6, 3, 48, 64).float())
    torch.testing.assert_close(flat.keypoints.reshape(2, 3, 5, 2), out.keypoints)
    torch.testing.assert_close(flat.status.reshape(2, 3, 5), out.status)


def test_status_follows_gamma():
    model = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=3)).eval()
    x = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        peak = model(x).feature_maps.flatten(-2).amax(-1)
    model.config = model.config.replace(gamma=float(peak.max()) + 1.0)
    assert not model(x).active.any()
    model.config = model.config.replace(gamma=float(peak.min()) - 1.0)
    assert model(x).active.all()


def test_bad_inputs_raise_value_error():
    model = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=2))
    with pytest.raises(ValueError, match=r"expected frames of shape \(B, 3, H, W\).*got \(1, 4, 32, 32\)"):
        model(torch.zeros(1, 4, 32, 32))
    with pytest.raises(ValueError, match="got"):
        model(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="too small"):
        model(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="uint8 or floating-point"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.long))


def test_config_validation_roundtrip_and_presets():
    cfg = detector_preset("magical")
    assert cfg.gamma == 10.0 and cfg.num_keypoints == 25 and cfg.image_size == (96, 96)
    assert detector_preset("clevrer").gamma == 15.0
    assert DetectorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown keys"):
        DetectorConfig.from_dict({"num_keypoints": 3, "colour": 1})
    with pytest.raises(ValueError, match="unknown detector preset"):
        detector_preset("atari")
    with pytest.raises(ValueError, match="num_keypoints"):
        DetectorConfig(num_keypoints=0)
    with pytest.raises(ValueError, match="conv_strides"):
        DetectorConfig(conv_strides=(3, 2))
    # presets are copies: mutating one does not leak into the registry
    cfg.gamma = 99.0
    assert detector_preset("magical").gamma == 10.0


def test_gradients_reach_every_layer():
    model = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=3))
    out = model(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8).float())
    (out.keypoints.square().sum() + out.feature_maps.mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
