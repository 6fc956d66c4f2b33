"""The keypoint forward model (mint_rl.dynamics): score, baselines, model, data, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mint_rl.coords import pixel_to_normalized
from mint_rl.data import Clip, clevrer_like_preset, generate_clip
from mint_rl.dynamics import (
    DynamicsTrainConfig,
    ForwardModelConfig,
    KeypointForwardModel,
    KeypointSequence,
    RecordingPolicy,
    constant_position,
    constant_velocity,
    extract_keypoints,
    forecast_success,
    make_windows,
    oracle_keypoints,
    score_sequences,
    train_forward_model,
)
from mint_rl.models import DetectorConfig, MintDetector

H_IMG, W_IMG = 10, 30


def _norm(u: float, v: float) -> list[float]:
    return pixel_to_normalized(torch.tensor([[u, v]], dtype=torch.float64), H_IMG, W_IMG)[0].tolist()


def _square(mask: np.ndarray, obj: int, u: int, v: int) -> None:
    mask[v - 1 : v + 2, u - 1 : u + 2] = obj


def _scene(present: dict[int, list[tuple[int, int] | None]], kp_px: list[list[tuple[float, float]]],
           status: list[list[float]]) -> KeypointSequence:
    """Masks with 3x3 squares: ``present[obj][t]`` is the square's centre (None: absent)."""
    t_len = len(kp_px)
    masks = np.zeros((t_len, H_IMG, W_IMG), np.int32)
    for obj, centres in present.items():
        for t, c in enumerate(centres):
            if c is not None:
                _square(masks[t], obj, *c)
    kp = np.array([[_norm(*p) for p in frame] for frame in kp_px], np.float32)
    return KeypointSequence(kp, np.array(status, np.float32), (H_IMG, W_IMG), name="scene", masks=masks)


def _fixed(pred_px: list[tuple[float, float]]):
    """A predictor returning the given pixel positions for the one window's ``h = 1``."""
    def predict(windows):
        return torch.tensor([[[_norm(*p) for p in pred_px]]], dtype=torch.float32).expand(len(windows), 1, -1, -1)
    return predict


def _score(seq: KeypointSequence, pred_px) -> dict:
    return score_sequences(_fixed(pred_px), [seq], history=2, horizon=1)["objects"][1]


# object 1 moves right 3 px per frame, object 2 rests at the right edge
MOVING = {1: [(4, 4), (7, 4), (10, 4)], 2: [(25, 5), (25, 5), (25, 5)]}


def test_a_keypoint_that_follows_its_object_predicts_it():
    seq = _scene(MOVING, [[(4, 4)], [(7, 4)], [(10, 4)]], [[1.0]] * 3)
    r = _score(seq, [(10, 4)])
    assert r["success"] == pytest.approx(0.5)  # object 1 predicted; object 2 has no keypoint
    assert r["ceiling"] == pytest.approx(0.5)
    assert r["error_px"] == pytest.approx(0.0)
    # constant position leaves it 3 px behind, off the 3x3 square: not predicted
    assert _score(seq, [(7, 4)])["success"] == 0.0


def test_a_keypoint_that_jumps_to_another_object_predicts_neither():
    seq = _scene(MOVING, [[(4, 4)], [(7, 4)], [(10, 4)]], [[1.0]] * 3)
    r = _score(seq, [(25, 5)])  # forecast lands on object 2, but the keypoint was on object 1 at t
    assert r["success"] == 0.0 and r["ceiling"] == pytest.approx(0.5)


def test_inactive_keypoints_never_count():
    # keypoint 0 lies on object 1 at t but is inactive there; keypoint 1 is active on the background
    seq = _scene(MOVING, [[(4, 4), (15, 8)], [(7, 4), (15, 8)], [(10, 4), (15, 8)]],
                 [[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    r = _score(seq, [(10, 4), (25, 5)])
    assert r["success"] == 0.0 and r["ceiling"] == 0.0
    assert np.isnan(r["error_px"])  # no keypoint stays on an object from t to t+1


def test_objects_entering_and_leaving_at_t_plus_h():
    present = {
        1: [(4, 4), (7, 4), (10, 4)],
        3: [(20, 2), (20, 2), None],  # leaves: not in the denominator at t+1
        4: [None, None, (15, 7)],  # enters: in the denominator, nobody could have predicted it
    }
    seq = _scene(present, [[(4, 4), (20, 2)], [(7, 4), (20, 2)], [(10, 4), (20, 2)]], [[1.0, 1.0]] * 3)
    r = _score(seq, [(10, 4), (20, 2)])
    assert r["success"] == pytest.approx(0.5)  # object 1 of the visible {1, 4}
    assert r["ceiling"] == pytest.approx(0.5)


def test_forecast_success_counts_objects_not_keypoints():
    on_now = torch.zeros(1, 3, 2, dtype=torch.bool)
    on_now[0, :, 0] = True  # three keypoints on object 0
    on_pred = on_now.clone()
    predicted, ceiling = forecast_success(on_now, on_pred, torch.tensor([[True, True]]))
    assert predicted.tolist() == [[True, False]] and ceiling.tolist() == [[True, False]]
    with pytest.raises(ValueError, match="expected on_now"):
        forecast_success(on_now, on_pred[:, :2], torch.tensor([[True, True]]))


def test_predictions_outside_the_image_lie_on_nothing():
    seq = _scene(MOVING, [[(4, 4)], [(7, 4)], [(10, 4)]], [[1.0]] * 3)
    r = score_sequences(lambda w: torch.full((len(w), 1, 1, 2), 5.0), [seq], history=2, horizon=1)
    assert r["objects"][1]["success"] == 0.0


def test_ceiling_bounds_every_method():
    clip = generate_clip(clevrer_like_preset("small", num_frames=14), seed=3)
    seq = oracle_keypoints([clip], 10)[0]
    rng = torch.Generator().manual_seed(0)
    seq.keypoints = seq.keypoints + np.random.default_rng(0).normal(0, 0.02, seq.keypoints.shape).astype(np.float32)
    torch.manual_seed(0)
    model = KeypointForwardModel(ForwardModelConfig(num_keypoints=10, hidden_dim=16, effect_dim=16))
    for p in model.parameters():  # an arbitrary (untrained, perturbed) network
        torch.nn.init.normal_(p, std=0.3)
    methods = {
        "cp": lambda w: constant_position(w.inputs, 3),
        "cv": lambda w: constant_velocity(w.inputs, 3),
        "random": lambda w: torch.rand(len(w), 3, 10, 2, generator=rng) * 2 - 1,
        "model": lambda w: model.predict(w.inputs).positions,
    }
    for name, fn in methods.items():
        res = score_sequences(fn, [seq])["objects"]
        for h in (1, 2, 3):
            assert res[h]["success"] <= res[h]["ceiling"] + 1e-12, (name, h, res[h])
    assert score_sequences(methods["cv"], [seq])["objects"][1]["success"] > 0.5


def test_constant_velocity_on_a_linear_trajectory():
    xs = torch.tensor([0.0, 0.1, 0.2, 0.3])
    hist = torch.stack([xs, -2 * xs, torch.ones(4)], dim=-1).view(1, 4, 1, 3)
    pred = constant_velocity(hist, 3)[0, :, 0]
    assert torch.allclose(pred, torch.tensor([[0.4, -0.8], [0.5, -1.0], [0.6, -1.2]]), atol=1e-6)
    assert torch.allclose(constant_position(hist, 2)[0, :, 0], torch.tensor([[0.3, -0.6]] * 2))
    stale = hist.clone()
    stale[0, 2, 0, 2] = 0.0  # inactive at t-1: its coordinates are stale, no velocity from them
    assert torch.allclose(constant_velocity(stale, 2)[0, :, 0], torch.tensor([[0.3, -0.6]] * 2))


def _constant_velocity_sequences(n: int, k: int = 4, t: int = 12, seed: int = 0) -> list[KeypointSequence]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        start = rng.uniform(-0.6, 0.6, (1, k, 2))
        vel = rng.uniform(-0.04, 0.04, (1, k, 2))
        kp = start + vel * np.arange(t)[:, None, None]
        out.append(KeypointSequence(kp, np.ones((t, k)), (64, 64), name=f"toy{i}"))
    return out


def _mean_error(pred: torch.Tensor, windows) -> float:
    return float(torch.linalg.norm(pred - windows.targets[..., :2], dim=-1).mean())


def test_model_fits_a_constant_velocity_toy_far_below_constant_position(single_torch_thread):
    train = make_windows(_constant_velocity_sequences(40))
    test = make_windows(_constant_velocity_sequences(10, seed=1))
    torch.manual_seed(0)
    model = KeypointForwardModel(ForwardModelConfig(num_keypoints=4, hidden_dim=32, effect_dim=32, mlp_hidden_layers=1))
    train_forward_model(model, train, DynamicsTrainConfig(epochs=25, batch_size=32, lr=3e-3), progress=False)
    err_model = _mean_error(model.predict(test.inputs).positions, test)
    err_cp = _mean_error(constant_position(test.inputs, 3), test)
    assert err_model < 0.15 * err_cp, (err_model, err_cp)


def test_action_conditioning_changes_the_prediction(single_torch_thread):
    # one keypoint, action 0 moves it left, 1 right, 2 not at all: only the actions tell
    rng = np.random.default_rng(0)
    seqs = []
    for i in range(30):
        acts = rng.integers(0, 3, 15)
        x = np.concatenate([[0.0], np.cumsum(np.array([-0.05, 0.05, 0.0])[acts])])
        kp = np.stack([x, np.zeros_like(x)], -1)[:, None, :]
        seqs.append(KeypointSequence(kp, np.ones((16, 1)), (32, 32), actions=acts))
    windows = make_windows(seqs)
    torch.manual_seed(0)
    cfg = dict(num_keypoints=1, hidden_dim=32, effect_dim=32, mlp_hidden_layers=1)
    conditioned = KeypointForwardModel(ForwardModelConfig(num_actions=3, **cfg))
    train_forward_model(conditioned, windows, DynamicsTrainConfig(epochs=15, lr=3e-3, action_dropout=0.0), progress=False)
    hist = torch.zeros(1, 4, 1, 3)
    hist[..., 2] = 1
    left = conditioned.predict(hist, torch.tensor([[0, 0, 0]])).positions[0, :, 0, 0]
    right = conditioned.predict(hist, torch.tensor([[1, 1, 1]])).positions[0, :, 0, 0]
    ideal = torch.tensor([0.1, 0.2, 0.3])  # right minus left after h steps
    assert ((right - left) > 0.5 * ideal).all(), (right - left)
    free = KeypointForwardModel(ForwardModelConfig(**cfg))
    with pytest.raises(ValueError, match="not action-conditioned"):
        free(hist, torch.tensor([[0, 0, 0]]))
    with pytest.raises(ValueError, match="action ids"):
        conditioned(hist)
    with pytest.raises(ValueError, match=r"ids in \[0, 3\)"):
        conditioned(hist, torch.tensor([[0, 5, 0]]))
    # rollouts: actions (B, steps); the unknown future actions are padded with -1
    roll = conditioned.rollout(hist, steps=5, actions=torch.tensor([[1, 1, 1, 1, 1]]))
    assert roll.shape == (1, 5, 1, 3) and float(roll[0, -1, 0, 0]) > 0.15


def test_rollout_shapes_and_stride():
    torch.manual_seed(0)
    model = KeypointForwardModel(ForwardModelConfig(num_keypoints=3, hidden_dim=8, effect_dim=8))
    hist = torch.rand(4, 3, 3)
    assert model.rollout(hist, 5).shape == (5, 3, 3)
    one_call = model.rollout(hist[None], 3, stride=3)
    assert torch.allclose(one_call[0, :, :, :2], model.predict(hist[None]).positions[0])
    with pytest.raises(ValueError, match="stride"):
        model.rollout(hist, 2, stride=4)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = KeypointForwardModel(ForwardModelConfig(num_keypoints=5, num_actions=18, hidden_dim=16, effect_dim=16,
                                                    index_code="learned"))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    hist, acts = torch.rand(2, 4, 5, 3), torch.randint(0, 18, (2, 3))
    want = model.predict(hist, acts)
    for path in (tmp_path / "model.safetensors", tmp_path / "model_dir"):
        model.save(path, extra={"detector": "magical"})
        back = KeypointForwardModel.load(path)
        assert back.config == model.config and back.extra == {"detector": "magical"}
        got = back.predict(hist, acts)
        assert torch.equal(got.positions, want.positions) and torch.equal(got.status_logits, want.status_logits)
    MintDetector(DetectorConfig.for_image(16, 16, num_keypoints=2)).save_pretrained(tmp_path / "det.safetensors")
    from mint_rl.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="format"):
        KeypointForwardModel.load(tmp_path / "det.safetensors")


def test_clips_shorter_than_history_plus_horizon_are_refused():
    short = KeypointSequence(np.zeros((6, 2, 2)), np.ones((6, 2)), (8, 8), name="short")
    with pytest.raises(ValueError, match=r"'short' has 6 frames, expected at least history \+ horizon = 4 \+ 3 = 7"):
        make_windows([short], history=4, horizon=3)
    assert len(make_windows([short], history=4, horizon=2)) == 1


def test_a_detector_with_another_k_is_refused():
    model = KeypointForwardModel(ForwardModelConfig(num_keypoints=25, hidden_dim=8, effect_dim=8))
    detector = MintDetector(DetectorConfig.for_image(16, 16, num_keypoints=4))
    with pytest.raises(ValueError, match="detector has K=4 keypoints but this forward model was trained for K=25"):
        model.check_detector(detector)
    clip = Clip(np.zeros((8, 16, 16, 3), np.uint8))
    seq = extract_keypoints(detector, [clip], progress=False)[0]
    with pytest.raises(ValueError, match="built for K=25 keypoints, got K=4"):
        model.predict(make_windows([seq]).inputs)


def test_keypoints_are_detected_once_and_cached(tmp_path, monkeypatch):
    import mint_rl.dynamics.data as data

    torch.manual_seed(0)
    detector = MintDetector(DetectorConfig.for_image(16, 16, num_keypoints=3)).eval()
    clips = [Clip(np.random.default_rng(i).integers(0, 255, (9, 16, 16, 3), dtype=np.uint8), name=str(i)) for i in range(2)]
    calls = []
    real = data.detect_clip
    monkeypatch.setattr(data, "detect_clip", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = extract_keypoints(detector, clips, cache_dir=tmp_path, progress=False)
    second = extract_keypoints(detector, clips, cache_dir=tmp_path, progress=False)
    assert len(calls) == 2 and len(list(tmp_path.glob("*.npz"))) == 2
    for a, b in zip(first, second):
        assert np.array_equal(a.keypoints, b.keypoints) and np.array_equal(a.status, b.status)


def test_recording_policy_records_what_it_executes():
    class Expert:
        def reset(self, state):
            pass

        def act(self, state):
            return 5

    noisy = RecordingPolicy(Expert(), 18, action_noise=0.5, seed=0)
    noisy.reset(None)
    acts = [noisy.act(None) for _ in range(200)]
    assert noisy.executed == acts and 0.3 < np.mean(np.array(acts) != 5) < 0.7
    rand = RecordingPolicy(None, 18, action_noise=1.0, seed=0)
    assert len({rand.act(None) for _ in range(100)}) > 10


def _script(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dynamics_clevrer_script_runs_and_ends_with_its_line(tmp_path, capsys, single_torch_thread):
    script = _script("dynamics_clevrer")
    args = ["--generate", "2", "--train-clips", "2", "--seeds", "1", "--epochs", "1", "--out", str(tmp_path),
            "--no-progress", "--no-video", "--oracle-k", "10"]
    assert script.main(args) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("success_1=") and [p.split("=")[0] for p in last.split()] == [
        "success_1", "success_3", "cv_success_1", "cv_success_3"]
    assert (tmp_path / "results.json").is_file() and (tmp_path / "trajectories.png").is_file()
    # a rerun with the same data and settings reuses the finished seed instead of training again
    run = tmp_path / "runs" / "in-clevrer-like-seed0.json"
    before = run.stat().st_mtime_ns
    assert script.main(args) == 0
    assert run.stat().st_mtime_ns == before
    assert capsys.readouterr().out.strip().splitlines()[-1] == last


def test_dynamics_magical_script_runs_and_ends_with_its_line(tmp_path, capsys, single_torch_thread):
    script = _script("dynamics_magical")
    assert script.main(["MoveToRegion", "--train-episodes", "1", "--test-episodes", "1", "--seeds", "1",
                        "--epochs", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert [p.split("=")[0] for p in last.split()] == ["success_1", "success_3", "no_action_success_1", "cv_success_1"]
    import json

    result = json.loads((tmp_path / "results.json").read_text())
    assert set(result["table"]["IN with actions"]) == {"robot"}  # MoveToRegion has no blocks


def test_demo_files_give_keypoints_and_actions(tmp_path):
    from mint_rl.dynamics import demo_sequences
    from mint_rl.envs import rollout_expert, save_demos

    trajs = rollout_expert("MoveToRegion-Demo-v0", 1, seed=0, env_kwargs={"view": "allo", "resolution": 32},
                           progress=False)
    path = save_demos(tmp_path / "demos.npz", trajs, "MoveToRegion-Demo-v0")
    detector = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=3)).eval()
    (seq,) = demo_sequences(path, detector, progress=False)
    assert seq.keypoints.shape == (41, 3, 2) and np.array_equal(seq.actions, trajs[0].acts)
    windows = make_windows([seq])
    assert windows.actions.shape == (len(windows), 3)
    assert torch.equal(windows.actions[0], torch.as_tensor(trajs[0].acts[3:6]))
