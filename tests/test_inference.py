"""The detector's inference path (mint_rl.inference): folded BatchNorm, phase convolutions, one-pass head.

Every check compares with the reference ``MintDetector.forward`` (or the unfolded layers), on
random weights with random BatchNorm running statistics and on the shipped detectors with real
MAGICAL and CLEVRER-like frames.
"""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mint_rl.inference as inference
from mint_rl.inference import BiasMap, InferenceDetector, compiled_kernels, depth_to_space, fold_affine, phase_weight
from mint_rl.models import DetectorConfig, MintDetector
from mint_rl.pretrained import PRETRAINED

#: normalised units; the paths differ by float rounding only (~1e-5 on real frames)
KEYPOINT_ATOL = 1e-4


def _randomise_batchnorms(model: nn.Module, seed: int, negative: bool = True, last_scale: float = 30.0) -> nn.Module:
    """Random BatchNorm weights, biases and running statistics (some scales negative if ``negative``).

    The last BatchNorm's scale is multiplied by ``last_scale``, so that the random feature maps
    have peaks and the keypoints spread over the image instead of sitting at its centre.
    """
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_((torch.rand(c, generator=g) + 0.5) * (torch.randint(0, 2, (c,), generator=g) * 2 - 1
                                                                    if negative else 1))
                if m is bns[-1]:
                    m.weight.mul_(last_scale)
                m.bias.copy_(torch.randn(c, generator=g) * 0.5)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(c, generator=g) * 2 + 0.1)
            elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model.eval().requires_grad_(False)


_NO_KERNELS = "mint_rl._C without the fused inference kernels (csrc/inference_cpu.cpp)"
needs_kernels = pytest.mark.skipif(compiled_kernels() is None, reason=_NO_KERNELS)


@pytest.fixture(params=["compiled", "torch"])
def kernels(request, monkeypatch):
    """Run a test with the compiled kernels (skipped when the extension lacks them) and with the torch steps."""
    if request.param == "compiled":
        if compiled_kernels() is None:
            pytest.skip(_NO_KERNELS)
    else:
        monkeypatch.setattr(inference, "_KERNELS", [None])
        assert compiled_kernels() is None
    return request.param


def _assert_same_detections(out, ref, margin=1e-3):
    """Keypoints within KEYPOINT_ATOL; status equal except where the map peak sits within ``margin`` of gamma."""
    assert out.keypoints.shape == ref.keypoints.shape and out.status.shape == ref.status.shape
    assert (out.keypoints - ref.keypoints).abs().max() < KEYPOINT_ATOL
    assert (out.status - ref.status).abs().max() < 1e-3 or _near_threshold(ref, margin).any()
    clear = ~_near_threshold(ref, margin)
    assert torch.equal(out.active[clear], ref.active[clear])


def _near_threshold(ref, margin):
    # status = sigmoid(s (peak - gamma)); recover |peak - gamma| without the config
    logit = torch.logit(ref.status.double().clamp(1e-300, 1 - 1e-16))
    return logit.abs() < 1000.0 * margin


# ------------------------------------------------------------------ building blocks


@pytest.mark.parametrize("stride,kernel,size", [(2, 3, (5, 7)), (1, 3, (4, 4)), (3, 3, (3, 5)), (2, 1, (4, 3)),
                                                ((2, 1), (3, 2), (6, 5)), (2, 4, (1, 1)), (3, 5, (4, 2))])
def test_phase_weight_and_depth_to_space_equal_conv_transpose2d(stride, kernel, size):
    torch.manual_seed(0)
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    s = (stride, stride) if isinstance(stride, int) else stride
    x, w, b = torch.randn(2, 4, *size), torch.randn(4, 3, *kernel), torch.randn(3)
    expected = F.conv_transpose2d(x, w, b, stride=stride)
    u, (a_h, a_w) = phase_weight(w, stride)
    assert u.shape == (s[0] * s[1] * 3, 4, a_h, a_w)
    grid = F.conv2d(x, u, b.repeat(s[0] * s[1]), padding=(a_h - 1, a_w - 1))
    h, wd = expected.shape[-2:]
    got = depth_to_space(grid, stride, slice(0, h), slice(0, wd))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert got.is_contiguous(memory_format=torch.channels_last)
    # a crop that starts inside (what the last layer's window asks of the layer before it)
    if h > 2 and wd > 2:
        torch.testing.assert_close(depth_to_space(grid, stride, slice(1, h - 1), slice(2, wd)),
                                   expected[..., 1 : h - 1, 2:], atol=1e-5, rtol=1e-5)


def test_depth_to_space_and_phase_weight_refuse_bad_input():
    with pytest.raises(ValueError, match="multiple of 4 channels"):
        depth_to_space(torch.zeros(1, 6, 2, 2), 2)
    with pytest.raises(ValueError, match="outside the 4x4 output"):
        depth_to_space(torch.zeros(1, 4, 2, 2), 2, slice(0, 5), slice(0, 4))
    with pytest.raises(ValueError, match=r"expected weight of shape \(C_in, C_out, kH, kW\)"):
        phase_weight(torch.zeros(3, 3, 3), 2)


@pytest.mark.parametrize("transposed,stride,padding", [(False, 1, 1), (False, 3, 1), (False, 2, 0), (False, 1, 2),
                                                       (True, 2, 0), (True, 1, 0)])
def test_folded_batchnorm_equals_the_unfolded_modules(transposed, stride, padding):
    """BatchNorm (random weights and running statistics, eval mode) -> layer == folded layer + bias map."""
    torch.manual_seed(1)
    bn = _randomise_batchnorms(nn.Sequential(nn.BatchNorm2d(5)), seed=3)[0]
    if transposed:
        layer = nn.ConvTranspose2d(5, 4, 3, stride=stride)
    else:
        layer = nn.Conv2d(5, 4, 3, stride=stride, padding=padding)
    with torch.no_grad():
        layer.bias.normal_()
    v = torch.randn(2, 5, 9, 11)
    with torch.no_grad():
        expected = layer(bn(v)).double()
    from mint_rl.inference import batchnorm_affine

    scale, shift = batchnorm_affine(bn)
    if transposed:
        u, (a_h, a_w) = phase_weight(layer.weight, stride)
        folded, bias_map = fold_affine(u, layer.bias.repeat(stride * stride), scale, shift, (9, 11),
                                       padding=(a_h - 1, a_w - 1))
        grid = F.conv2d(v.double(), folded, padding=(a_h - 1, a_w - 1)) + bias_map
        got = depth_to_space(grid, stride, slice(0, expected.shape[-2]), slice(0, expected.shape[-1]))
    else:
        folded, bias_map = fold_affine(layer.weight, layer.bias, scale, shift, (9, 11), stride, padding)
        got = F.conv2d(v.double(), folded, stride=stride, padding=padding) + bias_map
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # the compact form (interior as the conv bias + rim) is the same map, its rim a border
    compact = BiasMap.from_map(bias_map)
    h, w = bias_map.shape[-2:]
    rows, cols = compact.index // w, compact.index % w
    assert compact.index.numel() < h * w
    assert bool(((rows < 2) | (rows >= h - 2) | (cols < 2) | (cols >= w - 2)).all())
    torch.testing.assert_close(compact.dense(), bias_map)


def test_bias_map_keeps_infinite_entries_and_any_pattern():
    m = torch.full((1, 2, 6, 7), 0.5, dtype=torch.float64)
    m[..., -1, :] = -float("inf")
    m[..., :, 0] = 2.0
    b = BiasMap.from_map(m)
    assert b.interior.tolist() == [0.5, 0.5] and b.index.numel() == 7 + 5
    torch.testing.assert_close(b.dense(), m)
    m[..., 2, 4] = 1.0  # not a border: still exact
    torch.testing.assert_close(BiasMap.from_map(m).dense(), m)
    x = torch.zeros(3, 2, 6, 7)  # NCHW-contiguous input: the result is right, channels-last
    out = BiasMap.from_map(m).to(torch.device("cpu"), torch.float32).add_rim_(x)
    torch.testing.assert_close(out, (m - 0.5).float().expand(3, -1, -1, -1))


# ------------------------------------------------------------------ the whole detector


CONFIGS = {
    "magical": DetectorConfig.for_image(96, 96, num_keypoints=25, gamma=10.0),
    "clevrer-like": DetectorConfig.for_image(96, 160, num_keypoints=6),
    "uncropped": DetectorConfig.for_image(96, 96, num_keypoints=5, crop_to_image=False),
    "odd-size": DetectorConfig.for_image(45, 67, num_keypoints=3),
    "large": DetectorConfig(num_keypoints=4, image_size=(120, 168)),
}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("negative", [False, True], ids=["positive-bn", "signed-bn"])
def test_inference_path_equals_forward_with_random_weights(name, negative, kernels):
    config = CONFIGS[name]
    torch.manual_seed(0)
    model = _randomise_batchnorms(MintDetector(config), seed=7, negative=negative)
    fast = model.for_inference()
    h, w = config.image_size
    frames = torch.randint(0, 256, (3, 3, h, w), dtype=torch.uint8)
    with torch.no_grad():
        ref = model(frames)
    out = fast(frames)
    _assert_same_detections(out, ref)
    # keypoints spread over the image: the random maps have peaks
    assert ref.keypoints.std() > 5e-3
    # float frames, NCHW-contiguous input and (B, T, C, H, W) give the same
    torch.testing.assert_close(fast(frames.float()).keypoints, out.keypoints)
    video = fast(frames.reshape(1, 3, 3, h, w))
    torch.testing.assert_close(video.keypoints[0], out.keypoints)
    torch.testing.assert_close(video.status[0], out.status)


def test_inference_path_handles_any_input_size_and_batch(kernels):
    torch.manual_seed(0)
    model = _randomise_batchnorms(MintDetector(DetectorConfig.for_image(64, 64, num_keypoints=4)), seed=1)
    fast = model.for_inference()
    for size, batch in (((64, 64), 1), ((50, 80), 5), ((64, 64), 2)):
        frames = torch.randint(0, 256, (batch, 3, *size), dtype=torch.uint8)
        with torch.no_grad():
            _assert_same_detections(fast(frames), model(frames))
    assert len(fast._plans) == 2  # one plan per input size, any batch
    with pytest.raises(ValueError, match="too small"):
        fast(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"expected frames of shape \(B, 3, H, W\)"):
        fast(torch.zeros(1, 4, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8 or floating-point"):
        fast(torch.zeros(1, 3, 64, 64, dtype=torch.long))


def test_for_inference_refuses_training_mode_and_gradients():
    model = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=2))
    with pytest.raises(ValueError, match="training mode"):
        model.for_inference()
    with pytest.raises(ValueError, match="require gradients"):
        model.eval().for_inference()
    fast = model.requires_grad_(False).for_inference()
    out = fast(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    assert not out.keypoints.requires_grad and out.keypoints.is_inference()


def test_inference_path_is_a_snapshot_of_the_weights():
    model = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=2)).eval().requires_grad_(False)
    frames = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    fast = model.for_inference()
    before = fast(frames).keypoints
    with torch.no_grad():
        model.decoder[-1].bias.add_(torch.tensor([5.0, -5.0]))
        model.decoder[-3].weight.mul_(-1.0)
    torch.testing.assert_close(fast(frames).keypoints, before)
    _assert_same_detections(model.for_inference()(frames), model(frames))


def _magical_frames(n=12):
    import mint_rl  # noqa: F401  (registers the MAGICAL environments)
    from mint_rl.envs import make_magical_env

    env = make_magical_env("MoveToCorner", "TestJitter")
    frames = []
    try:
        for seed in range(3):
            obs, _ = env.reset(seed=seed)
            env.action_space.seed(seed)
            frames.append(obs)
            for _ in range(n // 3 - 1):
                obs, *_ = env.step(env.action_space.sample())
                frames.append(obs)
    finally:
        env.close()
    return np.stack(frames)


def _clevrer_like_frames():
    from mint_rl.data import clevrer_like_preset, generate_clip

    return generate_clip(clevrer_like_preset("small"), seed=0).frames[::4]


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_inference_path_equals_forward_for_shipped_detectors_on_real_frames(name, kernels):
    model = MintDetector.from_pretrained(name).requires_grad_(False)
    fast = model.for_inference()
    frames = (_clevrer_like_frames if name.startswith("clevrer-like") else _magical_frames)()
    assert frames.shape[1:3] == tuple(model.config.image_size)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)  # channels-last, as the encoder passes them
    with torch.no_grad():
        ref = model(x)
    out = fast(x)
    assert (out.keypoints - ref.keypoints).abs().max() < KEYPOINT_ATOL
    assert torch.equal(out.active, ref.active)
    assert 0 < int(ref.active.sum()) < ref.active.numel()  # both decisions occur
    # random frames too
    noise = torch.randint(0, 256, (4, 3, *model.config.image_size), dtype=torch.uint8)
    with torch.no_grad():
        _assert_same_detections(fast(noise), model(noise))


# ------------------------------------------------------------------ compiled kernels = their torch steps


def _last_layer_input(config, batch, seed):
    """A random detector's plan for ``config`` and the input of its last layer for random frames."""
    torch.manual_seed(seed)
    model = _randomise_batchnorms(MintDetector(config), seed=seed, negative=True)
    fast = model.for_inference()
    h, w = config.image_size
    layers, head = fast._plan(h, w)
    x = torch.randint(0, 256, (batch, 3, h, w), dtype=torch.uint8).float().contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for layer in layers[:-1]:
            x = layer(x)
    return layers[-1], head, x


@needs_kernels
@pytest.mark.parametrize("name,batch", [("magical", 1), ("magical", 3), ("clevrer-like", 2), ("odd-size", 2),
                                        ("uncropped", 1), ("large", 2)])
def test_compiled_head_equals_torch_steps(name, batch):
    last, head, x = _last_layer_input(CONFIGS[name], batch, seed=5)
    with torch.inference_mode():
        v = last.conv(x)
    assert head.flip  # some negative signs
    if name == "magical":
        assert torch.isinf(last.bias.delta).any()  # entries outside the map crop are -sign * inf in the rim
    g = torch.Generator().manual_seed(0)
    inputs = [v] + [(torch.randn(v.shape, generator=g) * scale).contiguous(memory_format=torch.channels_last)
                    for scale in (0.1, 3.0, 30.0)]
    for v in inputs:
        with torch.inference_mode():
            keypoints, status = head(v, last.bias, last.slope)
            ref_keypoints, ref_status = head.torch_steps(v.clone(), last.bias, last.slope)
        assert keypoints.shape == ref_keypoints.shape == (batch, head.sign.numel(), 2)
        # float32 sums over the map in another order (the kernel's AVX-512 / AVX2 / scalar clone, torch's
        # reductions): measured up to 2.8e-5 on the 135x135 uncropped map of an AVX-512 machine, 2e-6 elsewhere
        torch.testing.assert_close(keypoints, ref_keypoints, atol=KEYPOINT_ATOL, rtol=0)
        torch.testing.assert_close(status, ref_status, atol=2e-6, rtol=0)
        assert keypoints.abs().max() <= 1.0
    # the same numbers for every batch size and thread count (a fixed split of the rows)
    threads = torch.get_num_threads()
    try:
        for t in (1, 2):
            torch.set_num_threads(t)
            with torch.inference_mode():
                for i in range(batch):
                    one = head(v[i : i + 1].contiguous(memory_format=torch.channels_last), last.bias, last.slope)
                    assert torch.equal(one[0], keypoints[i : i + 1]) and torch.equal(one[1], status[i : i + 1])
    finally:
        torch.set_num_threads(threads)


@needs_kernels
@pytest.mark.parametrize("phases,size,crop", [((2, 2), (5, 7), ((1, 9), (0, 14))), ((1, 1), (6, 5), ((0, 6), (0, 5))),
                                              ((2, 1), (4, 3), ((0, 8), (1, 3))), ((3, 3), (3, 4), ((2, 7), (3, 12)))])
@pytest.mark.parametrize("batch", [1, 3])
def test_compiled_interleave_equals_torch_steps(phases, size, crop, batch):
    g = torch.Generator().manual_seed(0)
    channels = phases[0] * phases[1] * 5
    dense = torch.randn(1, channels, 1, 1, dtype=torch.float64, generator=g).expand(1, channels, *size).clone()
    dense[..., 0, :] += torch.randn(channels, size[1], dtype=torch.float64, generator=g)  # a rim: first row,
    dense[..., -1] -= torch.rand(channels, size[0], dtype=torch.float64, generator=g)  # last column
    bias = BiasMap.from_map(dense).to(torch.device("cpu"), torch.float32)
    assert 0 < bias.index.numel() < size[0] * size[1]
    v = torch.randn(batch, channels, *size, generator=g) + bias.interior.view(1, -1, 1, 1)
    v = v.contiguous(memory_format=torch.channels_last)
    rows, cols = slice(*crop[0]), slice(*crop[1])
    expected = depth_to_space(F.leaky_relu(bias.add_rim_(v.clone()), 0.1), phases, rows, cols)
    got = compiled_kernels().rim_lrelu_interleave(v, bias.index, bias.delta, 0.1, *phases, *crop[0], *crop[1])
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)


@needs_kernels
def test_compiled_kernels_refuse_bad_input():
    ops = compiled_kernels()
    last, head, x = _last_layer_input(CONFIGS["odd-size"], 1, seed=1)
    with torch.inference_mode():
        v = last.conv(x)
    tables = (head.sign, head.shift, head.row_in, head.row_y, head.col_in, head.col_x, head.totals, 10.0, 5.0)
    with pytest.raises(ValueError, match="expected a channels-last tensor"):
        ops.softargmax_head(v.contiguous(), last.bias.index, last.bias.delta, 0.01, *tables)
    with pytest.raises(ValueError, match="dtype float32, got Double"):
        ops.softargmax_head(v.double(), last.bias.index, last.bias.delta, 0.01, *tables)
    with pytest.raises(ValueError, match="strictly increasing"):
        ops.softargmax_head(v, last.bias.index.flip(0), last.bias.delta, 0.01, *tables)
    with pytest.raises(ValueError, match=r"row_in to be a contiguous \("):
        ops.softargmax_head(v, last.bias.index, last.bias.delta, 0.01, head.sign, head.shift, head.row_in[:-1],
                            *tables[3:])
    with pytest.raises(ValueError, match="inside the"):
        ops.rim_lrelu_interleave(v, last.bias.index, last.bias.delta, 0.01, 2, 2, 0, 10 ** 4, 0, 4)


@pytest.mark.parametrize("factors", [(2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (8, 8), (2, 4), (4, 1), (1, 1), (7, 3)])
def test_area_downsample_equals_cv2_inter_area(factors, kernels):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(sum(factors))
    fy, fx = factors
    for channels in (1, 3, 4):
        h, w = 11, 13
        frames = rng.integers(0, 256, (2, h * fy, w * fx, channels), dtype=np.uint8)
        # ties (block sums at .5) are where the rounding rules differ: put some in on purpose
        frames[:, :fy, :fx] = 0
        frames[:, 0, 0] = fy * fx // 2 if fy * fx % 2 == 0 else 0
        ref = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, channels) for f in frames])
        got = inference.area_downsample(torch.from_numpy(frames), (h, w))
        assert got.dtype == torch.uint8 and got.shape == (2, h, w, channels)
        np.testing.assert_array_equal(got.numpy(), ref)


def test_area_downsample_reads_strided_frames_and_refuses_bad_input():
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 256, (3, 384, 384, 12), dtype=np.uint8)  # MAGICAL's -LoRes4A-like channel stack
    newest = torch.from_numpy(stack)[..., -3:]
    assert not newest.is_contiguous()
    expect = stack[..., -3:].reshape(3, 96, 4, 96, 4, 3).astype(np.float64).mean(axis=(2, 4))
    got = inference.area_downsample(newest, (96, 96)).numpy()
    assert np.abs(got - expect).max() <= 0.5  # the block mean, rounded
    np.testing.assert_array_equal(got, inference.area_downsample(newest.contiguous(), (96, 96)).numpy())
    with pytest.raises(ValueError, match="divides the 384 x 384 frames, got 100 x 96"):
        inference.area_downsample(newest, (100, 96))
    with pytest.raises(ValueError, match=r"expected a uint8 \(N, H, W, C\) CPU tensor, got torch.float32"):
        inference.area_downsample(newest.float(), (96, 96))
    with pytest.raises(ValueError, match="got ndarray"):
        inference.area_downsample(stack, (96, 96))
    if compiled_kernels() is not None:  # the kernel checks for itself too
        with pytest.raises(ValueError, match="expected uint8 frames"):
            compiled_kernels().area_downsample(newest.float(), 96, 96)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_inference_path_on_cuda_equals_cpu_forward():
    model = MintDetector.from_pretrained("magical").requires_grad_(False)
    frames = torch.from_numpy(_magical_frames(6)).permute(0, 3, 1, 2)
    with torch.no_grad():
        ref = model(frames)
    fast = model.to("cuda").for_inference()
    prev = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        out = fast(frames.cuda())
    finally:
        torch.backends.cudnn.allow_tf32 = prev
    assert out.keypoints.is_cuda
    assert (out.keypoints.cpu() - ref.keypoints).abs().max() < KEYPOINT_ATOL
    assert torch.equal(out.active.cpu(), ref.active)


# ------------------------------------------------------------------ frame checks (issue 28)


def _entry_points():
    model = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=2)).eval().requires_grad_(False)
    fast = model.for_inference()
    from mint_rl.wrappers.encoder import ImageSpec, KeypointEncoder

    encoder = KeypointEncoder(model, ImageSpec(None, 32, 32, 3))
    nchw = lambda x: x  # noqa: E731
    nhwc = lambda x: x.permute(0, 2, 3, 1).numpy()  # noqa: E731
    return {"MintDetector": (model, nchw), "InferenceDetector": (fast, nchw), "KeypointEncoder": (encoder, nhwc)}


@pytest.mark.parametrize("entry", ["MintDetector", "InferenceDetector", "KeypointEncoder"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_frames_raise(entry, bad):
    fn, layout = _entry_points()[entry]
    frames = torch.full((1, 3, 32, 32), 100.0)
    frames[0, 1, 5, 7] = bad
    with pytest.raises(ValueError, match=f"{entry}: expected finite values on the 0..255 scale, got NaN or inf"):
        fn(layout(frames))


@pytest.mark.parametrize("entry", ["MintDetector", "InferenceDetector", "KeypointEncoder"])
def test_unit_scale_float_frames_warn_and_0_255_frames_do_not(entry):
    fn, layout = _entry_points()[entry]
    unit = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.9
    with pytest.warns(UserWarning, match=r"largest value of 0\.\d+; frames are expected on the 0\.\.255 scale"):
        fn(layout(unit))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn(layout(unit * 255))  # 0..255 floats
        fn(layout(torch.zeros(1, 3, 32, 32)))  # black, on either scale
        fn(layout((unit * 255).to(torch.uint8)))  # uint8: not even looked at


# ------------------------------------------------------------------ the wrappers' encoder


def test_encoder_uses_the_inference_path_and_matches_forward_on_magical_frames():
    from mint_rl.wrappers.encoder import ImageSpec, KeypointEncoder

    model = MintDetector.from_pretrained("magical")
    frames = _magical_frames(9)
    for orientation in (False, True):
        fast = KeypointEncoder(model, ImageSpec(None, 96, 96, 3), orientation=orientation)
        slow = KeypointEncoder(model, ImageSpec(None, 96, 96, 3), orientation=orientation, fast=False)
        assert isinstance(fast.inference, InferenceDetector) and slow.inference is None
        a, b = fast(frames), slow(frames)
        assert a.shape == b.shape == (9, 25, 5 if orientation else 3) and a.dtype == np.float32
        assert np.abs(a[..., :2] - b[..., :2]).max() < KEYPOINT_ATOL
        assert np.array_equal(a[..., 2] > 0.5, b[..., 2] > 0.5)
        if orientation:  # the orientation disc sits on the keypoint: moves with it by < 1e-4 of the image
            assert np.abs(a[..., 3:] - b[..., 3:]).max() < 1e-2
        # whole batch in one call equals frame by frame: keypoints and status to float rounding (the
        # convolutions round differently per batch size); the orientation amplifies a keypoint's
        # rounding where little contrast is in its disc (measured: 3e-8 -> 2e-5), so it gets 1e-3
        whole = KeypointEncoder(model, ImageSpec(None, 96, 96, 3), chunk_size=9, orientation=orientation)(frames)
        np.testing.assert_allclose(whole[..., :3], a[..., :3], atol=1e-5)
        np.testing.assert_allclose(whole[..., 3:], a[..., 3:], atol=1e-3)


def test_default_wrapper_runs_the_inference_path():
    import gymnasium as gym

    import mint_rl  # noqa: F401
    from mint_rl.wrappers import MintKeypointWrapper

    env = MintKeypointWrapper(gym.make("magical/MoveToCorner-Demo-v0"), detector="magical")
    try:
        assert isinstance(env.encoder.inference, InferenceDetector)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4, 25, 3)
        frame = torch.from_numpy(env.encoder.resize(env._last_frame[None])).permute(0, 3, 1, 2)  # what it encoded
        with torch.no_grad():
            ref = env.detector(frame)
        assert np.abs(obs[-1, :, :2] - ref.keypoints[0].clamp(-1, 1).numpy()).max() < KEYPOINT_ATOL
        assert np.array_equal(obs[-1, :, 2] > 0.5, ref.active[0].numpy())
    finally:
        env.close()
