"""Tests of mint_rl.models: the MINT hourglass detector and its config."""

import pytest
import torch
from torch import nn

from mint_rl.models import DetectorConfig, DetectorOutput, MintDetector, PhaseConvTranspose2d, detector_preset


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_count_matches_paper():
    assert _n_params(MintDetector(DetectorConfig(in_channels=3, num_keypoints=25))) == 58_725
    # small-image strides change no weight shapes
    assert _n_params(MintDetector(detector_preset("magical"))) == 58_725


def test_layer_structure():
    model = MintDetector(DetectorConfig(num_keypoints=4))
    kinds = [type(m) for m in list(model.encoder) + list(model.decoder)]
    assert kinds == [nn.Conv2d, nn.LeakyReLU, nn.BatchNorm2d] * 3 + [PhaseConvTranspose2d, nn.LeakyReLU, nn.BatchNorm2d] * 3
    assert all(isinstance(m, nn.ConvTranspose2d) for m in model.decoder[::3])
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [m.kernel_size[0] for m in convs] == [5, 3, 3, 3, 3, 3]
    assert [m.stride[0] for m in convs] == [3, 2, 2, 1, 2, 2]
    assert [(m.in_channels, m.out_channels) for m in convs] == [(3, 4), (4, 4), (4, 8), (8, 8), (8, 4), (4, 4)]
    assert all(m.negative_slope == 0.01 for m in model.modules() if isinstance(m, nn.LeakyReLU))
    assert all(torch.all(m.bias == 0) for m in convs)


def test_feature_map_sizes():
    # the paper's uncropped geometry (NOTES.md: 480x320 -> 171x119, 96x96 -> 135x135)
    assert DetectorConfig(crop_to_image=False).feature_map_size == (119, 171)
    assert detector_preset("magical", crop_to_image=False).feature_map_size == (135, 135)
    # cropped to the image-aligned part (default)
    assert DetectorConfig().feature_map_size == (107, 160)
    assert detector_preset("magical").feature_map_size == (127, 127)
    assert DetectorConfig.for_image(96, 96).conv_strides == (3, 2, 1)
    assert DetectorConfig.for_image(320, 480).conv_strides == (3, 2, 2)
    for crop, size in ((False, (119, 171)), (True, (107, 160))):
        model = MintDetector(DetectorConfig(num_keypoints=2, crop_to_image=crop))
        assert model(torch.zeros(1, 3, 320, 480, dtype=torch.uint8)).feature_maps.shape == (1, 2, *size)
    for crop, size in ((False, (135, 135)), (True, (127, 127))):
        small = MintDetector(detector_preset("magical", num_keypoints=2, crop_to_image=crop))
        assert small(torch.zeros(1, 3, 96, 96)).feature_maps.shape == (1, 2, *size)


def _receptive_field_centroids(config: DetectorConfig, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input-gradient centroid of every map pixel of a network whose layers all average (no learning)."""
    model = MintDetector(config).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.fill_(1.0 / m.weight[0].numel())
                m.bias.zero_()
    h, w = config.map_size_for(height, width)
    frames = torch.full((1, 3, height, width), 200.0, requires_grad=True)
    maps = model.feature_maps(frames)[0, 0]
    cy, cx = torch.zeros(h), torch.zeros(w)
    ys, xs = torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64)
    for i in range(h):
        (g,) = torch.autograd.grad(maps[i, w // 2], frames, retain_graph=True)
        g = g[0].abs().sum(0).double()
        cy[i] = (g.sum(1) * ys).sum() / g.sum()
    for j in range(w):
        (g,) = torch.autograd.grad(maps[h // 2, j], frames, retain_graph=True)
        g = g[0].abs().sum(0).double()
        cx[j] = (g.sum(0) * xs).sum() / g.sum()
    return cy, cx


@pytest.mark.parametrize("size", [(96, 160), (96, 96)])
def test_cropped_maps_line_up_with_the_image(size):
    """Independent check of the crop: the receptive-field centre of each map pixel, measured by
    back-propagation through an averaging network, must follow the map's [-1, 1] grid stretched
    over the image (away from the borders, where zero padding pulls the centroid inwards)."""
    height, width = size

    def fitted_error(c: torch.Tensor, n: int) -> float:
        # transposed convolutions make the centroids zig-zag around a line (checkerboard);
        # compare the fitted line with the map grid stretched over the image
        idx = torch.arange(len(c), dtype=torch.float64)
        inner = slice(len(c) // 4, len(c) - len(c) // 4)
        a = torch.stack([idx[inner], torch.ones_like(idx[inner])], 1)
        slope, icpt = torch.linalg.lstsq(a, c[inner].double().unsqueeze(1)).solution.flatten().tolist()
        line = slope * idx + icpt
        return float((line - torch.linspace(0, n - 1, len(c), dtype=torch.float64)).abs().max())

    cy, cx = _receptive_field_centroids(DetectorConfig.for_image(height, width, num_keypoints=1), height, width)
    # within one map pixel everywhere (a map pixel is ~3 image pixels at 160x96, 0.75 at 96x96)
    assert fitted_error(cy, height) < (height - 1) / (len(cy) - 1)
    assert fitted_error(cx, width) < (width - 1) / (len(cx) - 1)
    # the paper's uncropped maps drift by many pixels (a keypoint moves 0.8x the object on 160-px inputs)
    cy, cx = _receptive_field_centroids(
        DetectorConfig.for_image(height, width, num_keypoints=1, crop_to_image=False), height, width
    )
    assert fitted_error(cx, width) > (10.0 if width == 160 else 3.0)


def test_config_without_crop_field_loads_as_uncropped():
    d = DetectorConfig().to_dict()
    assert d["crop_to_image"] is True
    del d["crop_to_image"]
    assert DetectorConfig.from_dict(d).crop_to_image is False


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


# ------------------------------------------------------------- transposed convolution by phases
@pytest.mark.parametrize("stride,kernel,size", [(2, 3, (5, 7)), (1, 3, (4, 4)), (3, 3, (3, 5)), (2, 1, (4, 3)),
                                                ((2, 1), (3, 2), (6, 5)), (2, 4, (1, 1))])
def test_conv_transpose2d_by_phases_equals_torch(stride, kernel, size):
    from mint_rl.models import conv_transpose2d_by_phases

    torch.manual_seed(0)
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = torch.randn(2, 4, *size)
    w = torch.randn(4, 3, *kernel)
    b = torch.randn(3)
    expected = torch.nn.functional.conv_transpose2d(x, w, b, stride=stride)
    got = conv_transpose2d_by_phases(x, w, b, stride=stride)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(conv_transpose2d_by_phases(x, w, None, stride=stride),
                          torch.nn.functional.conv_transpose2d(x, w, None, stride=stride), atol=1e-5)


def test_conv_transpose2d_by_phases_gradients_equal_torch():
    from mint_rl.models import conv_transpose2d_by_phases

    torch.manual_seed(0)
    inputs = [torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True),
              torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True),
              torch.randn(2, dtype=torch.float64, requires_grad=True)]
    assert torch.autograd.gradcheck(lambda x, w, b: conv_transpose2d_by_phases(x, w, b, stride=2), inputs)
    upstream = torch.randn(2, 2, 9, 11, dtype=torch.float64)
    ours = torch.autograd.grad((conv_transpose2d_by_phases(*inputs, stride=2) * upstream).sum(), inputs)
    theirs = torch.autograd.grad((torch.nn.functional.conv_transpose2d(*inputs, stride=2) * upstream).sum(), inputs)
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b)


def test_phase_conv_transpose_layer_is_a_drop_in_for_the_pretrained_detector():
    import copy

    from mint_rl.models import PhaseConvTranspose2d
    from mint_rl.wrappers.encoder import load_detector

    detector = load_detector("magical").eval()
    layers = [m for m in detector.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(layers) == 3 and all(type(m) is PhaseConvTranspose2d for m in layers)
    reference = copy.deepcopy(detector)
    for m in reference.decoder:
        if isinstance(m, torch.nn.ConvTranspose2d):
            m.__class__ = torch.nn.ConvTranspose2d  # torch's own kernel, same parameters
    frames = torch.randint(0, 256, (3, 3, 96, 96), dtype=torch.uint8)
    with torch.no_grad():
        ours, theirs = detector(frames), reference(frames)
    assert torch.allclose(ours.feature_maps, theirs.feature_maps, rtol=1e-4, atol=1e-5)
    assert torch.allclose(ours.keypoints, theirs.keypoints, atol=1e-5)
    with pytest.raises(ValueError, match="padding=0"):
        PhaseConvTranspose2d(4, 3, 3, stride=2, padding=1)
    with pytest.raises(ValueError, match="expected weight"):
        from mint_rl.models import conv_transpose2d_by_phases

        conv_transpose2d_by_phases(torch.zeros(1, 4, 3, 3), torch.zeros(5, 3, 3, 3))
