"""The keypoint baselines (Transporter, Transporter-modified, Video Structure) in the package's harness."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mint_rl.baselines import (
    BASELINE_METHODS,
    Transporter,
    TransporterConfig,
    VideoStructure,
    VideoStructureConfig,
    activity_status,
    baseline_detector,
    feature_transport,
    heatmap_keypoints,
    sample_frame_pairs,
    temporal_separation_loss,
)
from mint_rl.baselines.common import conv_geometry, map_to_image_affine
from mint_rl.baselines.transporter import ENCODER_LAYERS
from mint_rl.checkpoint import CheckpointError, load_checkpoint
from mint_rl.data import Clip
from mint_rl.detectors import load_detector
from mint_rl.models import DetectorConfig, DetectorOutput, MintDetector
from mint_rl.training import TrainConfig, Trainer, latest_checkpoint
from mint_rl.training.evaluation import detect_clip, evaluate_detector

pytestmark = pytest.mark.usefixtures("single_torch_thread")

SMALL = {
    "transporter": dict(num_keypoints=4, num_features=4, image_size=(32, 32)),
    "transporter-modified": dict(num_keypoints=4, num_features=4, image_size=(32, 32)),
    "video-structure": dict(num_keypoints=4, initial_filters=4, image_size=(16, 16)),
}


def small(method: str, seed: int = 0):
    torch.manual_seed(seed)
    return baseline_detector(method, **SMALL[method])


def _windows(n: int = 4, t: int = 4, h: int = 24, w: int = 40) -> torch.Tensor:
    """``(n, t, 3, h, w)`` uint8: a red square moving right over a dark textured floor."""
    rng = np.random.default_rng(0)
    frames = np.full((n, t, h, w, 3), 40, np.uint8) + rng.integers(0, 10, (n, t, h, w, 3), dtype=np.uint8)
    for i in range(n):
        for k in range(t):
            x = 2 + (3 * i + 4 * k) % (w - 10)
            frames[i, k, 8:16, x:x + 8] = (220, 60, 30)
    return torch.from_numpy(frames).permute(0, 1, 4, 2, 3).contiguous()


# ---------------------------------------------------------------------------------------------
# forward shapes and the detector interface


@pytest.mark.parametrize("method", BASELINE_METHODS)
def test_forward_shapes_status_range_and_coordinates(method):
    det = small(method).eval()
    frames = _windows(2, 3)  # 24x40 frames: resized inside to the detector's image size
    with torch.no_grad():
        out = det(frames)
        single = det(frames[:, 0])
    assert isinstance(out, DetectorOutput)
    k = det.num_keypoints
    map_hw = (8, 8) if method.startswith("transporter") else (4, 4)
    assert out.keypoints.shape == (2, 3, k, 2) and out.status.shape == (2, 3, k)
    assert out.feature_maps.shape == (2, 3, k, *map_hw)
    assert single.keypoints.shape == (2, k, 2)
    torch.testing.assert_close(single.keypoints, out.keypoints[:, 0])
    assert ((out.status >= 0) & (out.status <= 1)).all()
    assert out.keypoints.abs().max() <= 1.0 + 1e-6 and torch.isfinite(out.keypoints).all()
    if method.startswith("transporter"):
        assert bool((out.status == 1).all())  # every Transporter keypoint is always active
    with pytest.raises(ValueError, match=r"expected frames of shape \(B, 3, H, W\) or \(B, T, 3, H, W\), got \(2, 1, 8, 8\)"):
        det(torch.zeros(2, 1, 8, 8))


def test_default_configs_are_the_authors_sizes():
    t = Transporter()
    assert t.config.image_size == (128, 128) and t.feature_size == (32, 32) and t.num_keypoints == 25
    m = Transporter(TransporterConfig(variant="modified"))
    assert m.feature_size == (122, 122)  # receptive field 7, full-resolution feature maps (App. E.3)
    vs = VideoStructure()
    assert vs.config.heatmap_size == (16, 16) and vs.config.activity_threshold == 0.9
    with pytest.raises(ValueError, match="variant: expected one of"):
        TransporterConfig(variant="bigger")
    with pytest.raises(ValueError, match="image_size: expected .* divisible by 4"):
        VideoStructureConfig(image_size=(30, 30))


def test_keypoint_geometry_matches_the_receptive_field_centres():
    # with all-positive unit weights the keynet is linear and symmetric: the gradient of one map
    # pixel with respect to the input is centred on that pixel's receptive-field centre
    n, (m, a, b) = 64, conv_geometry(64, ENCODER_LAYERS)
    net = torch.nn.Sequential(*[torch.nn.Conv2d(1, 1, k, s, p, bias=False) for k, s, p in ENCODER_LAYERS])
    for conv in net:
        torch.nn.init.constant_(conv.weight, 1.0)
    x = torch.ones(1, 1, n, n, requires_grad=True)
    i = 6
    net(x)[0, 0, i, i].backward()
    g = x.grad[0, 0].sum(0)
    centre = float((g * torch.arange(n)).sum() / g.sum())
    assert m == 16 and abs(centre - (a * i + b)) < 1e-4
    scale, offset = map_to_image_affine(n, ENCODER_LAYERS)
    x_map = -1 + 2 * i / (m - 1)
    assert abs(scale * x_map + offset - (-1 + 2 * (a * i + b) / (n - 1))) < 1e-9


# ---------------------------------------------------------------------------------------------
# the pieces of the losses


def test_feature_transport_on_hand_built_heatmaps():
    torch.manual_seed(0)
    src, tgt = torch.randn(2, 5, 6, 7), torch.randn(2, 5, 6, 7)
    h_src, h_tgt = torch.zeros(2, 1, 6, 7), torch.zeros(2, 1, 6, 7)
    h_src[:, :, 0:2, 0:2] = 1.0  # where a source keypoint was
    h_tgt[:, :, 3:5, 4:7] = 1.0  # where a target keypoint is
    out = feature_transport(src, tgt, h_src, h_tgt)
    inside_tgt = h_tgt.bool().expand_as(src)
    inside_src = h_src.bool().expand_as(src)
    elsewhere = ~(inside_tgt | inside_src)
    assert torch.equal(out[inside_tgt], tgt[inside_tgt])  # target features inside the target heatmap
    assert torch.equal(out[elsewhere], src[elsewhere])  # source features elsewhere
    assert torch.equal(out[inside_src], torch.zeros_like(src[inside_src]))  # the source keypoint's features removed
    # soft heatmaps blend: (1 - hs)(1 - ht) src + ht tgt
    hs, ht = torch.full((2, 1, 6, 7), 0.25), torch.full((2, 6, 7), 0.5)
    torch.testing.assert_close(feature_transport(src, tgt, hs, ht), 0.375 * src + 0.5 * tgt)
    with pytest.raises(ValueError, match=r"expected target_heatmap of shape \(2, 1, 6, 7\), got \(2, 3, 6, 7\)"):
        feature_transport(src, tgt, h_src, torch.zeros(2, 3, 6, 7))


def test_separation_loss_falls_as_trajectories_move_apart():
    t = torch.linspace(0, 1, 8)
    base = torch.stack([t * 0.5, torch.zeros_like(t)], -1)  # keypoint 0 moves right
    losses = []
    for spread in (0.0, 0.01, 0.03, 0.1, 0.3, 1.0):
        # keypoint 1 starts elsewhere and moves ever more differently (a static offset alone costs nothing)
        other = torch.stack([t * 0.5 - spread * t, spread * t], -1) + 0.4
        losses.append(float(temporal_separation_loss(torch.stack([base, other], 1)[None], sigma=0.05)))
    assert losses[0] == pytest.approx(1.0)  # identical motion: the full penalty, whatever the offset
    assert all(a > b for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 1e-6
    # the default sigma (0.002) of the authors' run: already nearly zero for 0.03 units of difference
    apart = torch.stack([base, base + torch.stack([0.03 * t, 0 * t], -1)], 1)[None]
    assert float(temporal_separation_loss(apart)) < 1e-3


def test_activity_threshold_relative_to_the_strongest_keypoint():
    heat = torch.zeros(1, 4, 4, 4)
    for k, mass in enumerate((10.0, 9.5, 9.0, 8.9)):  # relative intensities 1, 0.95, 0.9, 0.89
        heat[0, k, k, k] = mass
    _, intensity, mu = heatmap_keypoints(heat)
    torch.testing.assert_close(intensity[0], torch.tensor([1.0, 0.95, 0.9, 0.89]))
    assert activity_status(intensity).tolist() == [[1.0, 1.0, 1.0, 0.0]]
    assert activity_status(intensity, threshold=0.5).tolist() == [[1.0, 1.0, 1.0, 1.0]]
    # only relative intensity counts: scaling every heatmap changes nothing
    assert torch.equal(activity_status(heatmap_keypoints(heat * 100)[1]), activity_status(intensity))
    # the model's status is that rule applied to its own heatmaps
    vs = small("video-structure").eval()
    with torch.no_grad():
        out = vs(_windows(1, 2)[:, 0])
    _, inten, _ = heatmap_keypoints(out.feature_maps)
    assert torch.equal(out.status, activity_status(inten, vs.config.activity_threshold))


def test_frame_pairs_are_distinct_and_reproducible():
    s, t = sample_frame_pairs(64, 8, torch.Generator().manual_seed(3))
    s2, t2 = sample_frame_pairs(64, 8, torch.Generator().manual_seed(3))
    assert torch.equal(s, s2) and torch.equal(t, t2) and bool((s != t).all())
    with pytest.raises(ValueError, match=">= 2 frames"):
        sample_frame_pairs(4, 1)


@pytest.mark.parametrize("method", BASELINE_METHODS)
def test_one_training_step_lowers_the_loss_on_a_fixed_batch(method):
    det = small(method).train()
    frames = _windows(4, 4)
    opt = torch.optim.Adam(det.parameters(), lr=1e-3)

    def loss_now():
        return det.training_loss(frames, torch.Generator().manual_seed(0))

    loss, terms, images = loss_now()
    assert set(terms) >= {"total", "reconstruction"} and float(terms["total"]) == pytest.approx(float(loss.detach()))
    assert images.shape[:2] == (4, 2) and images.shape[-2:] == tuple(det.config.image_size)
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is not None for p in det.parameters())
    opt.step()
    after, _, _ = loss_now()
    assert float(after.detach()) < float(loss.detach())


# ---------------------------------------------------------------------------------------------
# checkpoints and the loader


@pytest.mark.parametrize("method", BASELINE_METHODS)
def test_checkpoint_round_trip_and_loader(tmp_path, method):
    det = small(method)
    det.training_loss(_windows(2, 4), torch.Generator().manual_seed(0))[0].backward()  # BN statistics move
    det.eval()
    frames = _windows(2, 3)
    for path in (tmp_path / "one.safetensors", tmp_path / "dir"):
        det.save_pretrained(path)
        for loaded in (type(det).from_pretrained(path), load_detector(path), load_detector(str(path), method=method)):
            assert type(loaded) is type(det) and loaded.config == det.config and not loaded.training
            with torch.no_grad():
                a, b = det(frames), loaded(frames)
            assert torch.equal(a.keypoints, b.keypoints) and torch.equal(a.status, b.status)
    meta = json.loads((tmp_path / "dir" / "config.json").read_text())
    assert meta["extra"]["method"] == method
    with pytest.raises(CheckpointError, match="num_keypoints=4 but num_keypoints=25 was requested"):
        type(det).from_pretrained(tmp_path / "one.safetensors", num_keypoints=25)


@pytest.mark.parametrize("method", BASELINE_METHODS)
def test_keypoint_only_checkpoint_detects_as_the_full_one_and_refuses_training(tmp_path, method):
    det = small(method)
    det.training_loss(_windows(2, 4), torch.Generator().manual_seed(0))[0].backward()
    det.eval()
    full = det.save_pretrained(tmp_path / "full.safetensors", extra={"step": 3})
    part = det.save_pretrained(tmp_path / "kp.safetensors", extra={"step": 3}, keypoints_only=True)
    assert part.stat().st_size < full.stat().st_size
    ckpt = load_checkpoint(part)
    # only the modules forward reads: the decoder / feature extractor / refiner are left out
    assert {k.split(".")[0] for k in ckpt.state_dict} == set(type(det).KEYPOINT_MODULES)
    assert set(ckpt.state_dict) < set(det.state_dict())
    assert ckpt.extra == {"step": 3, "method": method, "keypoints_only": True}
    loaded = load_detector(part, method=method)
    assert loaded.keypoints_only and not load_detector(full).keypoints_only
    frames = _windows(2, 3)
    with torch.no_grad():
        a, b = det(frames), loaded(frames)
    assert torch.equal(a.keypoints, b.keypoints) and torch.equal(a.status, b.status)
    with pytest.raises(ValueError, match="keypoint-only checkpoint.*cannot reconstruct or train|can detect keypoints but not"):
        loaded.training_loss(_windows(2, 4), torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="pass keypoints_only=True"):
        loaded.save_pretrained(tmp_path / "again.safetensors")
    loaded.save_pretrained(tmp_path / "again.safetensors", keypoints_only=True)
    # a keypoint-only file with a tensor missing is refused with what is missing
    from safetensors.torch import save_file

    tensors = dict(ckpt.state_dict)
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    meta = {"format": det.CHECKPOINT_FORMAT, "format_version": "1", "mint_rl_version": "0",
            "config": json.dumps(det.config.to_dict()), "extra": json.dumps(ckpt.extra)}
    save_file(tensors, str(tmp_path / "broken.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match=f"keypoint-only checkpoint \\(missing \\['{re.escape(dropped)}'\\]"):
        load_detector(tmp_path / "broken.safetensors")


def test_a_checkpoint_of_one_method_loaded_as_another_fails_clearly(tmp_path):
    paths = {m: small(m).save_pretrained(tmp_path / f"{m}.safetensors") for m in BASELINE_METHODS}
    paths["mint"] = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=4)).save_pretrained(tmp_path / "mint.safetensors")
    with pytest.raises(CheckpointError, match=r"expected a checkpoint of format 'mint_rl.MintDetector', got "
                                              r"'mint_rl.Transporter' \(a Transporter / Transporter-modified keypoint "
                                              r"detector; mint_rl.detectors.load_detector loads any keypoint method\)"):
        MintDetector.from_pretrained(paths["transporter"])
    with pytest.raises(CheckpointError, match=r"expected a checkpoint of format 'mint_rl.Transporter' \(Transporter\), "
                                              r"got 'mint_rl.VideoStructure': this is a video-structure detector"):
        Transporter.from_pretrained(paths["video-structure"])
    with pytest.raises(CheckpointError, match="got 'mint_rl.MintDetector': this is a mint detector"):
        VideoStructure.from_pretrained(paths["mint"])
    with pytest.raises(CheckpointError, match="expected a transporter detector, got a transporter-modified checkpoint"):
        load_detector(paths["transporter-modified"], method="transporter")
    with pytest.raises(CheckpointError, match="expected a mint detector, got a video-structure checkpoint"):
        load_detector(paths["video-structure"], method="mint")
    with pytest.raises(ValueError, match="unknown keypoint method 'sift'"):
        load_detector(paths["mint"], method="sift")
    with pytest.raises(ValueError, match="unknown pretrained detector 'no-such'; known names: 'magical', 'magical-recolour', 'clevrer-like', 'clevrer-like-economical', "
                                         "'transporter-clevrer-like'"):
        load_detector("no-such")
    assert isinstance(load_detector(paths["mint"]), MintDetector)
    with pytest.raises(ValueError, match="expected 5 keypoints"):
        load_detector(paths["mint"], num_keypoints=5)


# ---------------------------------------------------------------------------------------------
# the rest of the package takes any method


def _clip_with_masks(t: int = 5, h: int = 24, w: int = 40) -> Clip:
    frames = _windows(1, t, h, w)[0].permute(0, 2, 3, 1).numpy()
    masks = np.zeros((t, h, w), np.int32)
    masks[:, 8:16] = np.where(frames[..., 0] > 200, 1, 0)[:, 8:16]
    return Clip(frames=np.ascontiguousarray(frames), masks=masks, name="square")


@pytest.mark.parametrize("method", BASELINE_METHODS)
def test_every_method_goes_through_detect_clip_and_the_metrics(method):
    det = small(method)
    clip = _clip_with_masks()
    kp, st = detect_clip(det, clip.frames)
    assert kp.shape == (5, 4, 2) and st.shape == (5, 4)
    [res] = evaluate_detector(det, [clip])
    assert 0.0 <= res.dop <= 1.0 and 0.0 <= res.top <= 1.0 and res.n_active.shape == (5,)
    # the wrappers' fast path: a frozen copy giving the same keypoints and status
    det.eval().requires_grad_(False)
    fast = det.for_inference()
    x = torch.from_numpy(clip.frames).permute(0, 3, 1, 2)
    with torch.no_grad():
        a, b = fast(x), det(x)
    assert torch.equal(a.keypoints, b.keypoints) and torch.equal(a.status, b.status)
    with pytest.raises(ValueError, match="frozen detector"):
        small(method).for_inference()


# ---------------------------------------------------------------------------------------------
# the trainer


def _window_data(t: int = 4) -> list[dict]:
    return [{"frames": w} for w in _windows(6, t, 24, 40)]


def _baseline_trainer(out, method, steps, **kw) -> Trainer:
    det = small(method, seed=1)
    cfg = TrainConfig(steps=steps, batch_size=2, window=4, checkpoint_every=kw.pop("checkpoint_every", 2), **kw)
    return Trainer(det, None, cfg, _window_data(), out, progress=False, tensorboard=False)


def _params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()] + [b.flatten().float() for b in model.buffers()])


@pytest.mark.parametrize("method", ["transporter", "video-structure"])
def test_trainer_checkpoints_and_resumes_a_baseline_exactly(tmp_path, method):
    full = _baseline_trainer(tmp_path / "full", method, steps=4)
    result = full.fit()
    assert result.steps == 4 and np.isfinite(result.last_terms["total"]) and "reconstruction" in result.last_terms
    assert latest_checkpoint(tmp_path / "full").name == "step_0000004"
    reloaded = load_detector(tmp_path / "full" / "detector.safetensors", method=method)
    assert torch.equal(_params(reloaded), _params(full.detector))
    config = json.loads((tmp_path / "full" / "train_config.json").read_text())
    assert config["method"] == method and config["loss"] is None

    _baseline_trainer(tmp_path / "part", method, steps=2).fit()
    resumed = _baseline_trainer(tmp_path / "part", method, steps=4)
    resumed.fit(resume=True)
    torch.testing.assert_close(_params(resumed.detector), _params(full.detector), atol=1e-6, rtol=1e-5)


def test_trainer_refuses_a_checkpoint_of_another_method_and_a_mint_loss_for_a_baseline(tmp_path):
    from mint_rl.losses import loss_preset

    _baseline_trainer(tmp_path, "transporter", steps=1).fit()
    other = _baseline_trainer(tmp_path, "transporter-modified", steps=2)
    with pytest.raises(ValueError, match="holds a transporter detector, but this trainer trains a transporter-modified"):
        other.fit(resume=True)
    with pytest.raises(TypeError, match="carries its loss weights in its config; expected loss_config=None"):
        Trainer(small("transporter"), loss_preset("clevrer"), TrainConfig(window=4), _window_data(), tmp_path)
    with pytest.raises(ValueError, match="needs windows of >= 2 frames"):
        Trainer(small("video-structure"), None, TrainConfig(window=1), [{"frames": w[:1]} for w in _windows(4, 1)],
                tmp_path)


def test_trainer_logs_a_reconstruction_image_for_baselines(tmp_path):
    trainer = _baseline_trainer(tmp_path, "transporter", steps=1)
    frames = torch.stack([d["frames"] for d in _window_data()[:2]])
    trainer.train_step(frames)

    class Writer:
        def __init__(self):
            self.images = {}

        def add_image(self, tag, img, step, dataformats):
            self.images[tag] = img

    writer = Writer()
    trainer._log_images(writer, frames)
    assert set(writer.images) == {"keypoints", "reconstruction"}
    assert writer.images["reconstruction"].shape == (32, 64, 3) and writer.images["reconstruction"].dtype == np.uint8


# ---------------------------------------------------------------------------------------------
# the training script


def _script(name: str):
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_baselines", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", ["train_keypoints", "train_mint"])
def test_train_script_takes_a_method(tmp_path, capsys, monkeypatch, script):
    from mint_rl import pretrained

    out = tmp_path / "run"
    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", shipped)  # --export writes here, not into the package
    argv = ["--method", "video-structure", "--preset", "clevrer", "--data", "generate:1", "--eval-data", "generate:1:small:7",
            "--steps", "1", "--batch-size", "2", "--window", "3", "--num-keypoints", "3", "--config", "initial_filters=4",
            "--config", "image_size=16x16", "--out", str(out), "--no-progress", "--export", "video-structure-clevrer-like"]
    assert _script(script).main(argv) == 0
    # the exported file holds the keypoint path only and detects exactly as the trainer's full checkpoint
    exported = load_detector(shipped / "video-structure-clevrer-like.safetensors")
    assert exported.keypoints_only and load_checkpoint(shipped / "video-structure-clevrer-like.safetensors").extra["step"] == 1
    with torch.no_grad():
        frames = _windows(1, 2)
        a, b = load_detector(out / "detector.safetensors")(frames), exported(frames)
    assert torch.equal(a.keypoints, b.keypoints) and torch.equal(a.status, b.status)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("steps=1 ") and lines[-1].startswith("DOP=")
    det = load_detector(out / "detector.safetensors", method="video-structure")
    assert det.num_keypoints == 3 and det.config.image_size == (16, 16) and det.config.initial_filters == 4
    assert json.loads((out / "train_summary.json").read_text())["method"] == "video-structure"
    if script == "train_keypoints":  # and eval_keypoints.py scores it like a MINT detector
        assert _script("eval_keypoints").main(["--detector", str(out / "detector.safetensors"), "--generate", "1",
                                               "--seed", "7", "--out", str(tmp_path / "eval"), "--no-video"]) == 0
        assert capsys.readouterr().out.strip().splitlines()[-1].startswith("DOP=")


@pytest.mark.parametrize("argv,message", [
    (["--method", "transporter", "--ablation", "wo-reg"], "--ablation: MINT options, not for --method transporter"),
    (["--method", "video-structure", "--loss", "kappa=1"], "--loss: MINT options, not for --method video-structure"),
    (["--method", "transporter", "--gamma", "20"], "--gamma: MINT options, not for --method transporter"),
    (["--config", "num_features=3"], "--config: baseline config fields"),
])
def test_train_script_refuses_options_of_another_method(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        _script("train_keypoints").main([*argv, "--preset", "clevrer", "--out", str(tmp_path / "x")])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_train_script_export_names_are_checked_per_method():
    module = _script("train_keypoints")
    with pytest.raises(SystemExit, match=r"--export: expected one of \['transporter-clevrer-like', 'transporter-magical'\] for --method transporter"):
        module.main(["--method", "transporter", "--preset", "clevrer", "--export", "clevrer-like"])
    with pytest.raises(SystemExit, match=r"--config: expected FIELD=VALUE with FIELD one of .*got 'colour=red'"):
        module.main(["--method", "transporter", "--preset", "clevrer", "--data", "generate:1", "--config", "colour=red",
                     "--no-progress"])


# ---------------------------------------------------------------------------------------------
# the comparison script


def test_compare_script_runs_every_method_and_reuses_finished_runs(tmp_path, capsys):
    module = _script("compare_keypoints")
    out, table_json = tmp_path / "cmp", tmp_path / "results" / "cmp.json"
    argv = ["--smoke", "--steps", "1", "--clips", "1", "--eval-clips", "1", "--seeds", "1", "--out", str(out),
            "--json", str(table_json), "--no-progress"]
    assert module.main(argv) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[-1] == str(table_json)
    labels = ["MINT", "MINT w/o Reg.", "MINT w/o Temp.", "Transporter", "Transporter-modified", "Video Structure"]
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| method")]
    assert [line.split(" | ")[0].lstrip("| ") for line in rows] == labels
    data = json.loads(table_json.read_text())
    assert list(data["rows"]) == list(module.ROWS)
    for row in data["rows"].values():
        assert set(row) >= {"dop", "top", "uak", "rak", "count_following", "active_keypoints"} and row["seeds"] == 1
    assert (out / "come_and_go.png").stat().st_size > 0 and (out / "overlay.mp4").stat().st_size > 0
    assert data["rows"]["transporter"]["active_keypoints"]["mean"] == 4.0  # every Transporter keypoint is active
    # a second call reuses the finished runs and their cached scores
    assert module.main([*argv, "--methods", "transporter,mint", "--no-video"]) == 0
    assert "[compare] training" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        module.main(["--methods", "mint,sift"])


_DDP_WORKER = '''
import sys
import torch
from mint_rl.baselines import baseline_detector
from mint_rl.training import TrainConfig, Trainer

torch.manual_seed(0)
frames = torch.randint(0, 256, (8, 4, 3, 24, 24), dtype=torch.uint8)
det = baseline_detector("transporter", num_keypoints=3, num_features=3, image_size=(24, 24))
trainer = Trainer(det, None, TrainConfig(steps=2, batch_size=2, window=4, checkpoint_every=5),
                  [{"frames": f} for f in frames], sys.argv[1], progress=False, tensorboard=False)
trainer.fit()
flat = torch.cat([p.detach().flatten() for p in det.parameters()])
torch.save({"world": trainer.world, "params": flat}, f"{sys.argv[1]}/rank{trainer.rank}.pt")
'''


def test_ddp_averages_a_baselines_gradients(tmp_path):
    import os
    import subprocess
    import sys

    worker = tmp_path / "worker.py"
    worker.write_text(_DDP_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(worker), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2
    torch.testing.assert_close(r0["params"], r1["params"])  # each rank drew other frame pairs; gradients were averaged
    assert latest_checkpoint(tmp_path).name == "step_0000002"


@pytest.mark.parametrize("name", ["transporter-clevrer-like", "transporter-modified-clevrer-like",
                                  "video-structure-clevrer-like", "transporter-magical",
                                  "transporter-modified-magical", "video-structure-magical"])
def test_shipped_baseline_names_load_as_their_method(name):
    from mint_rl import pretrained

    method = pretrained.entry(name).method
    assert name.startswith(method) and name in pretrained.known_detector_names()
    assert name not in pretrained.known_names()  # MintDetector's registry stays MINT-only
    if (pretrained.PRETRAINED_DIR / pretrained.entry(name).filename).is_file():
        det = load_detector(name, method=method)
        assert det.num_keypoints == 25 and det.method == method
        with pytest.raises(CheckpointError, match="expected a mint detector"):
            load_detector(name, method="mint")
    else:
        with pytest.raises(FileNotFoundError, match="not shipped yet"):
            load_detector(name)


@pytest.mark.parametrize("method", BASELINE_METHODS)
def test_every_method_plugs_into_the_wrapper_and_the_dynamics_model(tmp_path, method):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from toy_square_env import SquareEnv

    from mint_rl.dynamics import ForwardModelConfig, KeypointForwardModel, extract_keypoints, make_windows
    from mint_rl.wrappers import MintKeypointWrapper

    det = small(method)
    path = det.save_pretrained(tmp_path / f"{method}.safetensors")
    # the wrapper loads the checkpoint by path and gives (history, K, 3) rows from the baseline's keypoints
    env = MintKeypointWrapper(SquareEnv(), detector=str(path), history=2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 4, 3) and env.observation_space.contains(obs)
    frame = torch.from_numpy(env.unwrapped.frame()).permute(2, 0, 1)[None]
    resized = torch.nn.functional.interpolate(frame.float(), size=tuple(det.config.image_size), mode="bilinear",
                                              align_corners=False, antialias=True)
    with torch.no_grad():
        expected = det.eval()(resized)
    assert np.allclose(obs[-1, :, :2], expected.keypoints[0].numpy(), atol=0.05)
    # the dynamics pipeline: keypoints of a clip, windows, a forward model of the same K
    seqs = extract_keypoints(load_detector(path), [_clip_with_masks()], progress=False)
    assert seqs[0].keypoints.shape == (5, 4, 2)
    model = KeypointForwardModel(ForwardModelConfig(num_keypoints=4, horizon=1))
    model.check_detector(det)
    windows = make_windows(seqs, history=4, horizon=1)
    pred = model.predict(windows.inputs[:1])
    assert pred.positions.shape[-1] == 2
    with pytest.raises(ValueError, match="K=4"):
        KeypointForwardModel(ForwardModelConfig(num_keypoints=5)).check_detector(det)


@pytest.mark.parametrize("method", BASELINE_METHODS)
def test_baselines_refuse_nan_frames_and_warn_about_unit_scale_frames(method):
    import warnings

    det = small(method).eval()
    frames = torch.full((1, 3, 32, 32), 100.0)
    frames[0, 2, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="expected finite values on the 0..255 scale, got NaN or inf"):
        det(frames)
    unit = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.9
    with pytest.warns(UserWarning, match="frames are expected on the 0..255 scale"):
        det(unit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        det(unit * 255)


def test_compare_script_merges_an_earlier_calls_seeds(tmp_path, capsys):
    module = _script("compare_keypoints")
    out = tmp_path / "cmp"
    common = ["--smoke", "--steps", "1", "--clips", "1", "--eval-clips", "1", "--out", str(out), "--no-progress",
              "--no-video", "--methods", "transporter,mint"]
    first, second, both = tmp_path / "s0.json", tmp_path / "s1.json", tmp_path / "s01.json"
    assert module.main([*common, "--seeds", "1", "--json", str(first)]) == 0
    assert module.main([*common, "--seeds", "1", "--first-seed", "1", "--json", str(second)]) == 0
    assert module.main([*common, "--seeds", "2", "--json", str(both)]) == 0  # reuses the four finished runs
    capsys.readouterr()
    merged_path = tmp_path / "merged.json"
    assert module.main([*common, "--seeds", "1", "--first-seed", "1", "--merge", str(first),
                        "--json", str(merged_path)]) == 0
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    direct = json.loads(both.read_text())
    # merging only (no training): the two one-seed files give the same table
    assert module.main([*common, "--seeds", "0", "--merge", str(second), "--merge", str(first),
                        "--json", str(tmp_path / "joined.json")]) == 0
    joined = json.loads((tmp_path / "joined.json").read_text())
    assert joined["artefacts"] == {} and joined["come_and_go_clip"] is None
    for merged in (json.loads(merged_path.read_text()), joined):
        assert merged["seeds"] == [0, 1]
        for row in ("transporter", "mint"):
            assert merged["rows"][row]["seeds"] == 2
            for key in module.SEED_STATS:
                expected = [a["rows"][row][key]["per_seed"][0], b["rows"][row][key]["per_seed"][0]]
                got = merged["rows"][row][key]
                np.testing.assert_allclose(got["per_seed"], expected)  # in seed order, whatever the merge order
                np.testing.assert_allclose([got["mean"], got["std"]], [direct["rows"][row][key]["mean"],
                                                                       direct["rows"][row][key]["std"]])
            assert [r["seed"] for r in merged["runs"][row]] == [0, 1]
    # a row the earlier file lacks keeps this call's seeds only
    capsys.readouterr()
    assert module.main([*common[:-1], "transporter,video-structure", "--seeds", "1", "--first-seed", "1",
                        "--merge", str(first), "--json", str(tmp_path / "rows.json")]) == 0
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert rows["transporter"]["seeds"] == 2 and rows["video-structure"]["seeds"] == 1
    # the same seed twice, other held-out clips, a row without any seed, a real file into a smoke run
    for argv, message in [
        (["--seeds", "1", "--merge", str(first)], "seed(s) [0] in more than one of ['this call', "),
        (["--seeds", "1", "--first-seed", "1", "--eval-seed", "7", "--merge", str(first)],
         "scored on generate:1:small:100000"),
        (["--seeds", "0", "--merge", str(first), "--methods", "transporter,video-structure"],
         "Video Structure: no seed trained in this call (--seeds 0) nor in a --merge file"),
    ]:
        with pytest.raises(SystemExit, match=re.escape(message)):
            module.main([*common, *argv, "--json", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):
        module.main([*common, "--seeds", "0", "--json", str(tmp_path / "x.json")])  # --seeds 0 needs --merge
    real = json.loads(first.read_text())
    real["smoke"] = False
    (tmp_path / "real.json").write_text(json.dumps(real))
    with pytest.raises(SystemExit, match="--smoke run"):
        module.main([*common, "--seeds", "1", "--first-seed", "1", "--merge", str(tmp_path / "real.json"),
                     "--json", str(tmp_path / "x.json")])


def test_the_comparison_table_in_the_docs_is_the_kept_json():
    """docs/results.md's "Keypoint methods compared" rows are results/keypoint_comparison.json's
    means (± stds), seed counts and steps: the table cannot drift from the run that produced it."""
    root = Path(__file__).resolve().parents[1]
    data = json.loads((root / "results" / "keypoint_comparison.json").read_text())
    text = (root / "docs" / "results.md").read_text().split("## Keypoint methods compared", 1)[1]
    rows = {}
    for line in re.split(r"\n#", text, maxsplit=1)[0].splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) > 5 and cells[0] != "method" and not set(cells[0]) <= {"-"}:
            rows[cells[0]] = cells
    assert set(rows) == {row["label"] for row in data["rows"].values()}
    for key, row in data["rows"].items():
        cells = rows[row["label"]]
        for col, metric in enumerate(("dop", "top", "uak", "rak", "count_following"), start=1):
            printed = re.findall(r"\d+\.\d+", cells[col])  # rounded as printed: 2 or 3 decimals
            tol = [0.5 * 10.0 ** -len(x.split(".")[1]) + 1e-9 for x in printed]
            assert float(printed[0]) == pytest.approx(row[metric]["mean"], abs=tol[0]), (row["label"], metric, cells[col])
            if row["seeds"] > 1:
                assert float(printed[1]) == pytest.approx(row[metric]["std"], abs=tol[1]), (row["label"], metric, cells[col])
        assert len(data["runs"][key]) == row["seeds"] == len(row["dop"]["per_seed"])
        assert str(row["steps"]) in cells[7], (row["label"], cells[7])
