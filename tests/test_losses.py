"""Tests of mint_rl.losses: the MINT loss terms, total, ablations and entropy preparation."""

import math

import pytest
import torch

from mint_rl.coords import normalized_to_pixel, pixel_to_normalized
from mint_rl.losses import (
    LossConfig,
    MintLoss,
    active_status_loss,
    conditional_entropy,
    information_transport_loss,
    loss_preset,
    masked_conditional_entropy_loss,
    masked_entropy_loss,
    mint_loss,
    overlap_loss,
    prepare_frames_for_entropy,
    redundancy_loss,
)
from mint_rl.models import DetectorConfig, MintDetector
from mint_rl.ops import aggregated_mask, gaussian_maps, heatmap_area, keypoint_heatmaps, threshold_gaussians

H, W = 24, 32


def _disk(u: float, v: float, r: float = 5.0, value: float = 2.0) -> torch.Tensor:
    vv, uu = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    return ((uu - u) ** 2 + (vv - v) ** 2 <= r * r).float() * value


# ------------------------------------------------------------------ masked entropy (Eq. 3)


def test_me_is_one_without_active_keypoints_and_zero_with_full_cover():
    torch.manual_seed(0)
    entropy = torch.rand(2, 3, H, W) * 3
    kp = torch.rand(2, 3, 5, 2) * 2 - 1
    cfg = LossConfig(sigma=3.0, reference_map_size=(H, W))
    _, terms = mint_loss(kp, torch.zeros(2, 3, 5), entropy, cfg)
    assert terms["me"].item() == pytest.approx(1.0)
    # a huge Gaussian makes every active heatmap 1 everywhere: the mask covers the whole image
    _, terms = mint_loss(kp, torch.ones(2, 3, 5), entropy, cfg.replace(sigma=1e4))
    assert terms["me"].item() == pytest.approx(0.0, abs=1e-6)
    assert masked_entropy_loss(entropy, torch.ones_like(entropy)).item() == pytest.approx(0.0, abs=1e-6)
    assert masked_entropy_loss(entropy, torch.zeros_like(entropy)).item() == pytest.approx(1.0)


def test_me_value_is_uncovered_entropy_fraction():
    entropy = torch.zeros(1, 4, 4)
    entropy[0, 0, 0], entropy[0, 3, 3] = 1.0, 3.0
    mask = torch.zeros(1, 4, 4)
    mask[0, 3, 3] = 0.5
    # 1 - (3 * 0.5) / 4
    assert masked_entropy_loss(entropy, mask).item() == pytest.approx(1 - 1.5 / 4)
    per_frame = masked_entropy_loss(torch.stack([entropy[0], entropy[0]]), torch.stack([mask[0], mask[0] * 2]), "none")
    torch.testing.assert_close(per_frame, torch.tensor([1 - 1.5 / 4, 1 - 3.0 / 4]))
    with pytest.raises(ValueError, match="same shape"):
        masked_entropy_loss(entropy, mask[:, :3])
    with pytest.raises(ValueError, match="reduction"):
        masked_entropy_loss(entropy, mask, "avg")


# ------------------------------------------------------- masked conditional entropy (Eq. 5)


def test_conditional_entropy_is_appearing_information():
    now, prev = torch.tensor([3.0, 1.0, 2.0]), torch.tensor([1.0, 3.0, 2.0])
    torch.testing.assert_close(conditional_entropy(now, prev), torch.tensor([2.0, 0.0, 0.0]))


def test_mce_ignores_first_frame_of_window_no_wraparound():
    torch.manual_seed(1)
    entropy = torch.rand(2, 3, H, W) * 3
    mask = torch.rand(2, 3, H, W)
    base = masked_conditional_entropy_loss(entropy, mask, "none")
    assert base.shape == (2, 2)  # pairs (0, 1) and (1, 2) only
    changed = mask.clone()
    changed[:, 0] = 1.0 - changed[:, 0]  # frame 0's mask is never used
    torch.testing.assert_close(masked_conditional_entropy_loss(entropy, changed, "none"), base)
    changed = mask.clone()
    changed[:, 2] = 1.0 - changed[:, 2]
    assert not torch.allclose(masked_conditional_entropy_loss(entropy, changed, "none")[:, 1], base[:, 1])
    # a window equals the mean of its consecutive pairs
    pairs = [masked_conditional_entropy_loss(entropy[:, t : t + 2], mask[:, t : t + 2]) for t in range(2)]
    assert masked_conditional_entropy_loss(entropy, mask).item() == pytest.approx(sum(pairs).item() / 2, rel=1e-6)
    # explicit value of the first pair
    cond = torch.clamp(entropy[:, 1] - entropy[:, 0], min=0)
    expected = 1 - (cond * mask[:, 1]).sum((-2, -1)) / cond.sum((-2, -1))
    torch.testing.assert_close(base[:, 0], expected)


def test_temporal_losses_need_two_frames():
    with pytest.raises(ValueError, match="T >= 2"):
        masked_conditional_entropy_loss(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="T >= 2"):
        mint_loss(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2), torch.rand(1, 1, 8, 8))
    # the w/o Temp. ablation works on single frames
    loss, terms = mint_loss(
        torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2), torch.rand(1, 1, 8, 8), LossConfig(sigma=2.0).without_temporal()
    )
    assert torch.isfinite(loss) and terms["it"] == 0 and terms["mce"] == 0


# ------------------------------------------------------------- information transport (2.2.2)


def test_it_matches_hand_computation_and_has_no_wraparound():
    torch.manual_seed(2)
    b, t, k = 2, 3, 3
    entropy = torch.rand(b, t, H, W) * 3
    kp = torch.rand(b, t, k, 2) * 1.6 - 0.8
    status = torch.rand(b, t, k)
    heat = keypoint_heatmaps(kp, H, W, 3.0, 3.5, 0.1)
    kappa, md, area = 0.7, 0.5, 42.0
    per_pair = information_transport_loss(
        entropy, heat, kp, status, kappa=kappa, movement_weight=md, area=area, reduction="none"
    )
    assert per_pair.shape == (b, t - 1)
    e1, e0, h1, h0 = entropy[0, 2], entropy[0, 1], heat[0, 2, 1], heat[0, 1, 1]
    hc = torch.clamp(e1 - e0, min=0)
    r = e0 * (1 - h1) * (1 - h0) + e1 * h1 + kappa * hc * (1 - h1)
    mi = torch.minimum(r, e1)
    move = torch.linalg.norm(kp[0, 2, 1] - kp[0, 1, 1]) * status[0, 2, 1] * status[0, 1, 1]
    one_keypoint = (e1.sum() - mi.sum()) / area + md * move
    single = information_transport_loss(
        entropy[:1, 1:], heat[:1, 1:, 1:2], kp[:1, 1:, 1:2], status[:1, 1:, 1:2], kappa=kappa,
        movement_weight=md, area=area,
    )
    assert single.item() == pytest.approx(one_keypoint.item(), rel=1e-5)
    # summed over keypoints, averaged over the (t-1, t) pairs inside the window only
    pairs = [
        information_transport_loss(entropy[:, s : s + 2], heat[:, s : s + 2], kp[:, s : s + 2], status[:, s : s + 2],
                                   kappa=kappa, movement_weight=md, area=area)
        for s in range(t - 1)
    ]
    full = information_transport_loss(entropy, heat, kp, status, kappa=kappa, movement_weight=md, area=area)
    assert full.item() == pytest.approx(sum(pairs).item() / (t - 1), rel=1e-5)
    mean_k = information_transport_loss(
        entropy, heat, kp, status, kappa=kappa, movement_weight=md, area=area, keypoint_reduction="mean"
    )
    assert mean_k.item() == pytest.approx(full.item() / k, rel=1e-5)


def test_it_static_scene_with_static_keypoint_only_costs_soft_edges():
    entropy = torch.stack([_disk(12, 12), _disk(12, 12)])[None]
    kp = pixel_to_normalized(torch.tensor([12.0, 12.0]), H, W).expand(1, 2, 1, 2)
    binary = torch.zeros(1, 2, 1, H, W)
    binary[..., 5:20, 5:20] = 1.0
    zero = information_transport_loss(entropy, binary, kp, torch.ones(1, 2, 1), area=10.0)
    assert zero.item() == pytest.approx(0.0, abs=1e-6)
    # a keypoint that stays away from the information costs nothing either
    far = torch.zeros(1, 2, 1, H, W)
    far[..., 20:, 28:] = 1.0
    assert information_transport_loss(entropy, far, kp, torch.ones(1, 2, 1), area=10.0).item() == pytest.approx(0.0)


def test_it_movement_term_only_for_active_pairs():
    entropy = torch.zeros(1, 2, H, W)
    heat = torch.zeros(1, 2, 2, H, W)
    kp = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]], [[0.3, 0.4], [0.3, 0.4]]]])
    status = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    value = information_transport_loss(entropy, heat, kp, status, movement_weight=2.0, area=1.0)
    assert value.item() == pytest.approx(2.0 * 0.5)  # only keypoint 0 is active at both times


@pytest.mark.parametrize("kappa", [0.0, 1.0])
def test_it_moves_keypoint_toward_moving_blob(kappa):
    """A blob moves 7 px to the right; the keypoint at t starts where the blob was at t-1."""
    sigma, eta, tau = 3.0, 3.5, 0.1
    blob_now = torch.tensor([17.0, 12.0])
    entropy = torch.stack([_disk(10, 12), _disk(*blob_now.tolist())])[None]
    kp_prev = pixel_to_normalized(torch.tensor([[10.0, 12.0]]), H, W)
    kp_now = torch.nn.Parameter(kp_prev.clone())
    opt = torch.optim.Adam([kp_now], lr=0.03)
    losses = []
    for _ in range(40):
        kps = torch.stack([kp_prev, kp_now])[None]  # (1, 2, 1, 2)
        heat = keypoint_heatmaps(kps, H, W, sigma, eta, tau)
        loss = information_transport_loss(
            entropy, heat, kps, torch.ones(1, 2, 1), kappa=kappa, movement_weight=0.0,
            area=heatmap_area(sigma, eta, tau),
        )
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = normalized_to_pixel(kp_now.detach(), H, W)[0]
    assert losses[-1] < 0.5 * losses[0]
    assert (final - blob_now).norm() < (torch.tensor([10.0, 12.0]) - blob_now).norm() - 2.0
    if kappa == 0.0:  # all new information must be transported: the keypoint reaches the blob
        assert (final - blob_now).norm() < 1.5


# ------------------------------------------------------------------ overlap and status


def test_overlap_is_a_hinge_on_the_summed_gaussian_peak():
    kp_apart = torch.tensor([[[-0.9, -0.9], [0.9, 0.9], [-0.9, 0.9]]])
    g = gaussian_maps(kp_apart, H, W, 2.0)
    assert overlap_loss(g, beta=1.5).item() == 0.0
    kp_same = pixel_to_normalized(torch.tensor([12.0, 9.0]), H, W).expand(1, 6, 2)  # on a pixel centre
    g = gaussian_maps(kp_same, H, W, 2.0)
    assert overlap_loss(g, beta=4.0).item() == pytest.approx((6.0 - 4.0) / 6, rel=1e-4)
    assert overlap_loss(g, beta=7.0).item() == 0.0


def test_active_only_overlap_ignores_inactive_keypoints_and_pushes_stacked_active_ones_off():
    centre = pixel_to_normalized(torch.tensor([12.0, 9.0]), H, W)
    g = gaussian_maps(centre.expand(1, 3, 2), H, W, 2.0)  # three keypoints on one spot
    status = torch.tensor([[1.0, 1.0, 0.0]], requires_grad=True)
    loss = overlap_loss(g, beta=1.5, status=status)
    assert loss.item() == pytest.approx((2.0 - 1.5) / 3, rel=1e-4)  # the inactive one does not count
    assert overlap_loss(g, beta=1.5).item() == pytest.approx((3.0 - 1.5) / 3, rel=1e-4)  # the paper's: all three
    (grad,) = torch.autograd.grad(loss, status)
    assert (grad > 0).all()  # lowering any of them, the inactive one too, lowers the loss
    with pytest.raises(ValueError, match=r"expected status of shape \(1, 3\), got \(1, 2\)"):
        overlap_loss(g, status=torch.ones(1, 2))


def test_redundancy_loss_matches_a_per_keypoint_loop():
    torch.manual_seed(5)
    entropy = torch.rand(2, 3, 6, 7)
    heat = torch.rand(2, 3, 4, 6, 7)
    status = torch.rand(2, 3, 4)
    expected = torch.zeros(2, 3)
    for b in range(2):
        for t in range(3):
            for k in range(4):
                others = sum(status[b, t, j] * heat[b, t, j] for j in range(4) if j != k).clamp(max=1.0)
                covered = (entropy[b, t] * heat[b, t, k]).sum()
                shared = (entropy[b, t] * heat[b, t, k] * others).sum()
                expected[b, t] += status[b, t, k] * shared / covered / 4
    torch.testing.assert_close(redundancy_loss(entropy, heat, status, reduction="none"), expected)
    assert redundancy_loss(entropy, heat, status).item() == pytest.approx(expected.mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match="expected status of shape"):
        redundancy_loss(entropy, heat, status[..., :2])


def test_redundancy_spares_a_lone_keypoint_and_charges_a_duplicate():
    e = _disk(10.0, 12.0, r=3.0)[None, None]
    kp = pixel_to_normalized(torch.tensor([[10.0, 12.0], [10.0, 12.0], [28.0, 12.0]]), H, W)[None, None]
    heat = threshold_gaussians(gaussian_maps(kp, H, W, 3.0), 3.5, 0.1)
    alone = torch.tensor([[[1.0, 0.0, 1.0]]])  # one keypoint on the object, one far away
    assert redundancy_loss(e, heat, alone).item() == 0.0
    both = torch.tensor([[[1.0, 1.0, 0.0]]], requires_grad=True)  # two on the object
    loss = redundancy_loss(e, heat, both)
    assert loss.item() == pytest.approx(2.0 / 3, rel=0.02)  # each (nearly) fully shared: (1 + 1) / K
    (grad,) = torch.autograd.grad(loss, both)
    assert grad[0, 0, 0] > 0 and grad[0, 0, 1] > 0


def _status_gradient(status: list[float], keypoints_px: list[list[float]], overlap: str, beta: float = 1.5,
                     redundancy: float = 0.0) -> torch.Tensor:
    """d(total MINT loss)/d(status) for one frame pair with a disk of entropy at (10, 12)."""
    entropy = _disk(10.0, 12.0, r=3.0).expand(1, 2, H, W).clone()
    kp = pixel_to_normalized(torch.tensor(keypoints_px), H, W).expand(1, 2, -1, 2).clone()
    s = torch.tensor(status).expand(1, 2, -1).clone().requires_grad_()
    cfg = LossConfig(sigma=3.0, beta=beta, reference_map_size=(H, W), overlap_keypoints=overlap,
                     it_keypoint_reduction="mean", lambda_redundancy=redundancy)
    loss, _ = mint_loss(kp, s, entropy, cfg)
    (grad,) = torch.autograd.grad(loss, s)
    return grad[0].sum(dim=0)  # summed over the two frames


def test_inactive_keypoint_over_an_uncovered_object_is_pushed_active():
    # keypoint 0 on the entropy disk but inactive, keypoint 1 far away and active
    grad = _status_gradient([0.0, 1.0], [[10.0, 12.0], [28.0, 2.0]], "active")
    assert grad[0] < 0  # gradient descent raises its status
    # once the disk is covered (keypoint 0 active), the idle keypoint is pushed off by the status term
    grad = _status_gradient([1.0, 1.0], [[10.0, 12.0], [28.0, 2.0]], "active")
    assert grad[1] > 0 and grad[0] < 0


@pytest.mark.parametrize("overlap", ["all", "active"])
def test_redundant_active_keypoint_is_pushed_inactive_and_more_so_with_active_overlap(overlap):
    # both keypoints cover the whole disk: either alone would do, the mask is saturated
    grad = _status_gradient([1.0, 1.0], [[10.0, 12.0], [10.0, 12.0]], overlap)
    assert (grad > 0).all()
    if overlap == "active":
        paper = _status_gradient([1.0, 1.0], [[10.0, 12.0], [10.0, 12.0]], "all")
        assert (grad > paper + 1e-3).all()  # the overlap of active keypoints adds to the push
    with_redundancy = _status_gradient([1.0, 1.0], [[10.0, 12.0], [10.0, 12.0]], overlap, redundancy=50.0)
    assert (with_redundancy > grad + 1.0).all()  # and so does the redundancy term


def test_redundancy_term_leaves_a_lone_keypoint_on_an_object_alone():
    lone = [[10.0, 12.0], [28.0, 2.0]]  # one on the disk, one idle far away
    plain = _status_gradient([1.0, 0.0], lone, "all")
    with_redundancy = _status_gradient([1.0, 0.0], lone, "all", redundancy=50.0)
    assert with_redundancy[0] < 0  # still pushed to stay active by ME
    torch.testing.assert_close(with_redundancy, plain)


def test_active_status_loss_is_active_fraction():
    assert active_status_loss(torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])).item() == pytest.approx(0.75)


# -------------------------------------------------------------------------------- total


def test_total_is_weighted_sum_with_detached_status_schedule():
    torch.manual_seed(3)
    cfg = LossConfig(sigma=3.0, beta=1.0, reference_map_size=(H, W))
    entropy = torch.rand(2, 3, H, W) * 3
    kp = (torch.rand(2, 3, 4, 2) * 1.6 - 0.8).requires_grad_()
    status = torch.rand(2, 3, 4).requires_grad_()
    loss, terms = mint_loss(kp, status, entropy, cfg)
    g = gaussian_maps(kp, H, W, cfg.sigma)
    heat = threshold_gaussians(g, cfg.eta, cfg.tau)
    mask = aggregated_mask(heat, status)
    me = masked_entropy_loss(entropy, mask)
    mce = masked_conditional_entropy_loss(entropy, mask)
    it = information_transport_loss(entropy, heat, kp, status, kappa=cfg.kappa, movement_weight=1.0, area=cfg.heatmap_area)
    o, s = overlap_loss(g, cfg.beta), active_status_loss(status)
    manual = 100 * me + 100 * mce + 20 * it + 30 * o + (1 - me.detach()) * 10 * s
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)
    for name, value in [("me", me), ("mce", mce), ("it", it), ("overlap", o), ("status", s)]:
        assert terms[name].item() == pytest.approx(value.item(), rel=1e-5)
        assert not terms[name].requires_grad
    (g1,) = torch.autograd.grad(loss, status, retain_graph=True)
    (g2,) = torch.autograd.grad(manual, status)
    torch.testing.assert_close(g1, g2)


def test_total_loss_finite_on_constant_frames():
    model = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=4, gamma=1.0, status_sharpness=1.0))
    frames = torch.full((2, 3, 3, 32, 32), 128, dtype=torch.uint8)
    out = model(frames)
    h, w = out.feature_maps.shape[-2:]
    entropy = torch.zeros(2, 3, h, w)  # constant frames carry no local entropy
    loss, terms = mint_loss(out.keypoints, out.status, entropy, LossConfig().scaled_to((h, w)))
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in terms.values())
    assert terms["me"].item() == pytest.approx(1.0)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_total_loss_finite_on_constant_frames_with_entropy_layer():
    entropy_mod = pytest.importorskip("mint_rl.entropy")
    from mint_rl.losses import entropy_targets

    frames = torch.full((1, 2, 3, 40, 40), 77, dtype=torch.uint8)
    entropy = entropy_targets(frames, (30, 30), LossConfig())
    assert entropy.shape == (1, 2, 30, 30) and entropy.abs().max() == 0
    assert entropy_mod is not None
    loss, _ = mint_loss(torch.zeros(1, 2, 3, 2, requires_grad=True), torch.ones(1, 2, 3), entropy,
                        LossConfig().scaled_to((30, 30)))
    assert torch.isfinite(loss)


def test_gradients_reach_detector_weights_from_every_loss():
    torch.manual_seed(4)
    # a soft status (sharpness 1) so that gradients through the status are not vanishingly small
    model = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=4, gamma=1.0, status_sharpness=1.0))
    frames = torch.randint(0, 256, (2, 2, 3, 32, 32), dtype=torch.uint8)
    h, w = model.config.feature_map_size
    entropy = torch.rand(2, 2, h, w) * 3
    cfg = LossConfig(beta=0.2).scaled_to((h, w))
    cfg = cfg.replace(sigma=max(cfg.sigma, 4.0))

    def terms_of(out):
        g = gaussian_maps(out.keypoints, h, w, cfg.sigma)
        heat = threshold_gaussians(g, cfg.eta, cfg.tau)
        mask = aggregated_mask(heat, out.status)
        return {
            "me": masked_entropy_loss(entropy, mask),
            "mce": masked_conditional_entropy_loss(entropy, mask),
            "it": information_transport_loss(entropy, heat, out.keypoints, out.status, area=cfg.heatmap_area),
            "overlap": overlap_loss(g, cfg.beta),
            "status": active_status_loss(out.status),
            "total": mint_loss(out.keypoints, out.status, entropy, cfg)[0],
        }

    terms = terms_of(model(frames))
    weights = [model.encoder[0].weight, model.decoder[-3].weight]  # first and last convolution
    for name, value in terms.items():
        first, last = torch.autograd.grad(value, weights, retain_graph=True)
        assert torch.isfinite(first).all() and first.abs().sum() > 0, name
        assert torch.isfinite(last).all() and last.abs().sum() > 0, name


# ---------------------------------------------------------------------- configs, ablations


def test_presets_and_ablation_switches():
    c = loss_preset("clevrer")
    assert (c.lambda_me, c.lambda_mce, c.lambda_it, c.lambda_overlap, c.lambda_status) == (100, 100, 20, 30, 10)
    assert (c.kappa, c.beta, c.movement_weight, c.sigma, c.eta, c.tau) == (0.9, 4, 1, 9, 3.5, 0.1)
    m = loss_preset("magical")
    assert (m.sigma, m.tau, m.reference_map_size) == (7.0, 0.2, (135, 135))
    r = loss_preset("clevrer", "wo-reg")
    assert (r.movement_weight, r.lambda_overlap, r.lambda_status, r.lambda_it, r.lambda_mce) == (0, 0, 0, 20, 100)
    t = loss_preset("magical", "wo-temp")
    assert (t.lambda_mce, t.lambda_it, t.lambda_overlap, t.lambda_status) == (0, 0, 30, 10)
    assert LossConfig.from_dict(m.to_dict()) == m
    with pytest.raises(ValueError, match="unknown ablation"):
        loss_preset("clevrer", "wo-everything")
    with pytest.raises(ValueError, match="kappa"):
        LossConfig(kappa=1.5)


def test_wo_reg_ignores_movement_overlap_and_status():
    torch.manual_seed(5)
    entropy = torch.rand(1, 2, H, W)
    kp = torch.zeros(1, 2, 6, 2)
    kp[:, 1] += 0.5  # every keypoint moves and they all overlap
    cfg = LossConfig(sigma=3.0, reference_map_size=(H, W))
    full, _ = mint_loss(kp, torch.ones(1, 2, 6), entropy, cfg)
    noreg, terms = mint_loss(kp, torch.ones(1, 2, 6), entropy, cfg.without_regularization())
    info_only, _ = mint_loss(kp, torch.ones(1, 2, 6), entropy, cfg.replace(lambda_overlap=0, lambda_status=0, movement_weight=0))
    assert noreg.item() == pytest.approx(info_only.item())
    assert full.item() > noreg.item()


def test_sigma_scaling_helper():
    c = loss_preset("magical")
    assert c.scaled_to((135, 135)).sigma == pytest.approx(7.0)
    assert c.scaled_to((67, 67)).sigma == pytest.approx(7.0 * 67 / 135)
    s = loss_preset("clevrer").scaled_to((43, 67))
    assert s.sigma == pytest.approx(9.0 * math.sqrt(43 / 119 * 67 / 171)) and s.reference_map_size == (43, 67)
    assert s.tau == 0.1 and s.eta == 3.5


def test_module_twin_matches_function():
    cfg = LossConfig(sigma=3.0, reference_map_size=(H, W))
    args = (torch.rand(1, 2, 3, 2) - 0.5, torch.rand(1, 2, 3), torch.rand(1, 2, H, W))
    assert MintLoss(cfg)(*args)[0].item() == pytest.approx(mint_loss(*args, cfg)[0].item())


def test_mint_loss_shape_errors():
    with pytest.raises(ValueError, match=r"expected status of shape \(1, 2, 3\)"):
        mint_loss(torch.zeros(1, 2, 3, 2), torch.zeros(1, 2, 4), torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="expected keypoints of shape"):
        mint_loss(torch.zeros(1, 3, 3, 2), torch.zeros(1, 3, 3), torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"expected entropy of shape \(B, T, h, w\)"):
        mint_loss(torch.zeros(1, 2, 3, 2), torch.zeros(1, 2, 3), torch.zeros(2, 8, 8))


# -------------------------------------------------------------------- entropy preparation


def test_prepare_frames_resizes_and_sharpens_only_small_frames():
    torch.manual_seed(6)
    small = torch.randint(0, 256, (2, 3, 3, 96, 96), dtype=torch.uint8)
    out = prepare_frames_for_entropy(small, (135, 135))
    assert out.shape == (2, 3, 3, 135, 135) and out.dtype == torch.float32
    assert torch.equal(out, out.round()) and out.min() >= 0 and out.max() <= 255
    plain = prepare_frames_for_entropy(small, (135, 135), sharpen_below_width=0)
    assert not torch.equal(out, plain)  # sharpened
    # bilinear with aligned corners keeps the corner pixels
    torch.testing.assert_close(plain[..., 0, 0], small[..., 0, 0].float())
    large = torch.randint(0, 256, (1, 3, 120, 160), dtype=torch.uint8)
    same = prepare_frames_for_entropy(large, (120, 160))
    torch.testing.assert_close(same, large.float())  # no resize, no sharpening for width >= 100
    with pytest.raises(ValueError, match=r"expected frames of shape \(\.\.\., 3, H, W\)"):
        prepare_frames_for_entropy(torch.zeros(1, 4, 8, 8), (4, 4))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_detector_and_loss_run_on_cuda():
    model = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=4)).cuda()
    out = model(torch.randint(0, 256, (2, 2, 3, 32, 32), dtype=torch.uint8, device="cuda"))
    h, w = model.config.feature_map_size
    loss, terms = mint_loss(out.keypoints, out.status, torch.rand(2, 2, h, w, device="cuda"),
                            LossConfig().scaled_to((h, w)))
    loss.backward()
    assert loss.device.type == "cuda" and torch.isfinite(loss)
    assert all(v.device.type == "cuda" for v in terms.values())
