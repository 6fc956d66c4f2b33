"""The detector trainer: resume equivalence, checkpoints, DDP smoke, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mint_rl.data.augment import AppearanceAugment
from mint_rl.losses import loss_preset
from mint_rl.models import DetectorConfig, MintDetector
from mint_rl.training import TrainConfig, Trainer, epoch_batches, latest_checkpoint


def _blob_windows(n: int = 8, size: int = 32, t: int = 3) -> list[dict]:
    """Windows of a bright square moving over a dark textured floor."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        frames = np.full((t, size, size, 3), 40, np.uint8)
        frames += rng.integers(0, 8, frames.shape, dtype=np.uint8)
        for k in range(t):
            x = 4 + (i + 2 * k) % (size - 12)
            frames[k, 10:18, x : x + 8] = (220, 60, 30)
        out.append({"frames": torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()})
    return out


def _params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()] + [b.flatten().float() for b in model.buffers()])


def _trainer(out, steps, data=None, **kw) -> Trainer:
    torch.manual_seed(1)
    det = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=4))
    cfg = TrainConfig(steps=steps, batch_size=2, checkpoint_every=kw.pop("checkpoint_every", 3), **kw)
    return Trainer(det, loss_preset("magical"), cfg, data or _blob_windows(), out, progress=False, tensorboard=False)


def test_epoch_batches_partition_and_determinism():
    a = epoch_batches(11, 2, epoch=3, seed=5, rank=0, world=2)
    b = epoch_batches(11, 2, epoch=3, seed=5, rank=1, world=2)
    assert a == epoch_batches(11, 2, epoch=3, seed=5, rank=0, world=2)
    flat_a, flat_b = sum(a, []), sum(b, [])
    assert len(a) == len(b) == 2 and not set(flat_a) & set(flat_b)
    assert epoch_batches(11, 2, epoch=4, seed=5) != epoch_batches(11, 2, epoch=3, seed=5)
    with pytest.raises(ValueError, match="fewer than one batch"):
        epoch_batches(3, 2, epoch=0, seed=0, world=2)


def test_training_changes_weights_and_writes_checkpoints(tmp_path):
    trainer = _trainer(tmp_path, steps=4, checkpoint_every=2)
    before = _params(trainer.detector).clone()
    result = trainer.fit()
    assert result.steps == 4 and np.isfinite(result.last_terms["total"])
    assert not torch.allclose(before, _params(trainer.detector))
    latest = latest_checkpoint(tmp_path)
    assert latest is not None and latest.name == "step_0000004"
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_0000002", "step_0000004"]
    assert not list((tmp_path / "checkpoints").glob(".*tmp*"))
    reloaded = MintDetector.from_pretrained(tmp_path / "detector.safetensors")
    assert torch.equal(_params(reloaded), _params(trainer.detector))


@pytest.mark.parametrize("augment", [None, AppearanceAugment()], ids=["plain", "augmented"])
def test_resume_matches_uninterrupted_run(tmp_path, augment):
    full = _trainer(tmp_path / "full", steps=6, augment=augment)
    full.fit()
    part = _trainer(tmp_path / "part", steps=3, augment=augment)
    part.fit()
    resumed = _trainer(tmp_path / "part", steps=6, augment=augment)
    assert not torch.allclose(_params(resumed.detector), _params(part.detector))  # fresh init before resume
    resumed.fit(resume=True)
    assert resumed.step == 6
    torch.testing.assert_close(_params(resumed.detector), _params(full.detector), atol=1e-5, rtol=1e-4)


def test_appearance_augment_reaches_the_losses_and_round_trips_in_the_config(tmp_path, monkeypatch):
    from mint_rl.training import trainer as trainer_module

    seen = []
    real = trainer_module.entropy_targets
    monkeypatch.setattr(trainer_module, "entropy_targets", lambda frames, *a: seen.append(frames.clone()) or real(frames, *a))
    data = _blob_windows()
    _trainer(tmp_path / "aug", steps=2, data=data, augment=AppearanceAugment()).fit()
    batches = seen
    seen = []
    _trainer(tmp_path / "plain", steps=2, data=data).fit()
    # the entropy target is computed on the augmented windows: same shapes, other values
    assert [b.shape for b in batches] == [b.shape for b in seen]
    assert not all(torch.equal(a, b) for a, b in zip(batches, seen))
    cfg = TrainConfig(augment=AppearanceAugment(brightness=0.1))
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(TypeError, match="expected an AppearanceAugment"):
        TrainConfig(augment="colour")


def test_resume_rejects_other_loss_config(tmp_path):
    _trainer(tmp_path, steps=1).fit()
    torch.manual_seed(1)
    det = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=4))
    other = Trainer(det, loss_preset("magical", "wo-reg"), TrainConfig(steps=2, batch_size=2), _blob_windows(),
                    tmp_path, progress=False, tensorboard=False)
    with pytest.raises(ValueError, match="loss config"):
        other.fit(resume=True)


def test_bad_inputs(tmp_path):
    det = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=4))
    with pytest.raises(ValueError, match="T=3 frames but TrainConfig.window=2"):
        Trainer(det, loss_preset("magical"), TrainConfig(window=2), _blob_windows(), tmp_path)
    with pytest.raises(ValueError, match="need windows of >= 2 frames"):
        Trainer(det, loss_preset("magical"), TrainConfig(window=1), _blob_windows(), tmp_path)
    bad = [{"frames": torch.zeros(3, 4, 32, 32, dtype=torch.uint8)}] * 4
    with pytest.raises(ValueError, match=r"expected a \(T, 3, H, W\) tensor"):
        Trainer(det, loss_preset("magical"), TrainConfig(), bad, tmp_path)
    with pytest.raises(TypeError, match="MintDetector"):
        Trainer(torch.nn.Linear(2, 2), loss_preset("magical"), TrainConfig(), _blob_windows(), tmp_path)


def test_ddp_two_cpu_processes(tmp_path):
    worker = Path(__file__).with_name("_ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(worker), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert (r0["world"], r1["world"], r0["steps"]) == (2, 2, 3)
    torch.testing.assert_close(r0["params"], r1["params"])  # gradients were averaged: replicas agree
    assert latest_checkpoint(tmp_path).name == "step_0000003"  # only rank 0 wrote, once per step


def _run_script(name: str, argv: list[str], capsys) -> list[str]:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(argv) == 0
    return capsys.readouterr().out.strip().splitlines()


def test_train_and_eval_scripts_smoke(tmp_path, capsys):
    out = tmp_path / "run"
    lines = _run_script("train_mint", ["--preset", "clevrer", "--data", "generate:1", "--eval-data", "generate:1:small:7",
                                       "--steps", "2", "--batch-size", "2", "--num-keypoints", "4", "--out", str(out),
                                       "--no-progress", "--gamma", "20"], capsys)
    assert lines[-2].startswith("steps=2 frames_per_s=")
    assert lines[-1].startswith("DOP=") and len(lines[-1].split()) == 4
    assert (out / "detector.safetensors").is_file() and (out / "train_summary.json").is_file()
    det = MintDetector.from_pretrained(out / "detector.safetensors")
    assert det.config.image_size == (96, 160) and det.num_keypoints == 4
    assert det.config.gamma == 20.0  # --gamma: the status threshold the detector carries in its checkpoint

    ev = tmp_path / "eval"
    lines = _run_script("eval_keypoints", ["--detector", str(out / "detector.safetensors"), "--generate", "1",
                                           "--preset", "come-and-go", "--seed", "7", "--out", str(ev), "--no-video"], capsys)
    last = lines[-1].split()
    assert [kv.split("=")[0] for kv in last] == ["DOP", "TOP", "UAK", "RAK"]
    assert all(0.0 <= float(kv.split("=")[1]) for kv in last)
    assert (ev / "come_and_go.png").is_file() and (ev / "metrics.json").is_file()
    # the economy numbers: printed, and in metrics.json (the controlled clip has its four entries/exits)
    assert "active/object=" in lines[-2] and "come-and-go=" in lines[-2]
    econ = json.loads((ev / "metrics.json").read_text())["economy"][str(out / "detector.safetensors")]
    assert econ["n_event_clips"] == 1 and econ["n_events"] == 4
    assert econ["active_per_object"] >= 0 and 0.0 <= econ["follows_events"] <= 1.0
    # the temporal information status: a subset of the learned active keypoints, recorded in metrics.json
    ev2 = tmp_path / "eval-temporal"
    lines = _run_script("eval_keypoints", ["--detector", str(out / "detector.safetensors"), "--generate", "1",
                                           "--preset", "come-and-go", "--seed", "7", "--out", str(ev2), "--no-video",
                                           "--status", "information-temporal", "--keep-unique", "0.1"], capsys)
    temporal = json.loads((ev2 / "metrics.json").read_text())
    assert temporal["status"] == "information-temporal"
    assert temporal["mean"]["active_per_object"] <= econ["active_per_object"] + 1e-9
    with pytest.raises(SystemExit, match="--keep-unique"):
        _run_script("eval_keypoints", ["--detector", str(out / "detector.safetensors"), "--generate", "1", "--out",
                                       str(ev2), "--status", "information-temporal", "--keep-unique", "2"], capsys)


def test_unknown_data_source_lists_forms():
    from mint_rl.training.sources import clips_from_source

    with pytest.raises(ValueError, match="generate:N"):
        clips_from_source("nonsense-that-is-not-a-dir")
    with pytest.raises(ValueError, match="positive count"):
        clips_from_source("generate:zero")


def test_eval_magical_coverage_script(tmp_path, capsys):
    pytest.importorskip("magical")
    out = tmp_path / "cov"
    lines = _run_script("eval_magical_coverage", ["--detector", "magical", "--tasks", "MoveToRegion", "--episodes", "1",
                                                  "--variants", "Demo", "TestJitter", "--out", str(out),
                                                  "--no-progress"], capsys)
    last = dict(kv.split("=") for kv in lines[-1].split())
    assert list(last) == ["robot", "blocks", "all_objects"]
    # MoveToRegion has no blocks: every object covered == robot covered
    assert float(last["all_objects"]) == float(last["robot"]) and 0.0 <= float(last["robot"]) <= 1.0
    data = json.loads((out / "coverage.json").read_text())
    assert data["per_task"]["MoveToRegion"]["frames"] == 82  # 2 x (40 steps + the reset frame)
    rows = data["per_variant"]["MoveToRegion"]
    assert list(rows) == ["Demo", "TestJitter"] and rows["Demo"]["frames"] == 41
    # the reference variant agrees with itself; its robot-index histogram sums to one when covered
    assert rows["TestJitter"]["role_agreement"] == pytest.approx(1.0)
    assert sum(rows["TestJitter"]["robot_index"]) == pytest.approx(1.0) or rows["TestJitter"]["robot"] == 0
    assert 0.0 <= rows["Demo"]["robot_agreement"] <= 1.0 and len(rows["Demo"]["roles"]) == 25
    demo_row = [line for line in lines if line.split()[:2] == ["MoveToRegion", "Demo"]]
    assert len(demo_row) == 1 and f"{rows['Demo']['role_agreement']:.3f}" in demo_row[0]
    with pytest.raises(SystemExit):
        _run_script("eval_magical_coverage", ["--tasks", "MoveToCorner", "--variants", "TestLayout"], capsys)
    assert "['TestLayout'] are not variants of MoveToCorner" in capsys.readouterr().err


def test_train_script_loss_overrides_are_typed_and_checked():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "train_mint.py"
    spec = importlib.util.spec_from_file_location("train_mint_overrides", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    got = module._loss_overrides(["lambda_it=5", "it_keypoint_reduction=mean", "region_size=5"])
    assert got == {"lambda_it": 5.0, "it_keypoint_reduction": "mean", "region_size": 5}
    assert isinstance(got["region_size"], int) and isinstance(got["lambda_it"], float)
    for bad in (["lambda_it"], ["colour=red"], ["reference_map_size=3"]):
        with pytest.raises(SystemExit, match="FIELD=VALUE"):
            module._loss_overrides(bad)
    with pytest.raises(SystemExit, match="expected a float"):
        module._loss_overrides(["kappa=high"])


@pytest.mark.parametrize("argv,message", [
    (["--generate", "0"], "--generate: expected a number of clips >= 1, got 0"),
    (["--generate", "-3"], "--generate: expected a number of clips >= 1, got -3"),
    (["--keypoint-area", "nan"], "--keypoint-area: expected a finite area > 0 in pixels, got nan"),
    (["--keypoint-area", "inf"], "--keypoint-area: expected a finite area > 0 in pixels, got inf"),
    (["--keypoint-area", "0"], "--keypoint-area: expected a finite area > 0 in pixels, got 0.0"),
    (["--keypoint-area", "-5"], "--keypoint-area: expected a finite area > 0 in pixels, got -5.0"),
])
def test_eval_keypoints_refuses_bad_counts_and_areas(tmp_path, capsys, argv, message):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "eval_keypoints.py"
    spec = importlib.util.spec_from_file_location("eval_keypoints_errors", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exit_info:
        module.main([*argv, "--out", str(tmp_path / "eval")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "eval").exists()


# ---------------------------------------------------------------------------------------------
# resuming from damaged checkpoints


def _checkpointed_run(out) -> Path:
    """A 4-step run with checkpoints step_0000002 and step_0000004 (latest)."""
    _trainer(out, steps=4, checkpoint_every=2).fit()
    root = out / "checkpoints"
    assert sorted(p.name for p in root.glob("step_*")) == ["step_0000002", "step_0000004"]
    return root


@pytest.mark.parametrize("pointer,why", [
    (b"\x00\xffgarbage", "is unreadable"),
    (b"../../etc\n", r"is corrupt: expected a name like step_0000100, got '../../etc'"),
    (b"step_0000009\n", r"names step_0000009, but .*step_0000009 does not exist"),
])
def test_resume_falls_back_to_the_newest_intact_checkpoint_when_latest_is_damaged(tmp_path, pointer, why):
    root = _checkpointed_run(tmp_path)
    (root / "latest").write_bytes(pointer)
    with pytest.warns(RuntimeWarning, match=rf"latest {why}.*: falling back to .*step_0000004"):
        assert latest_checkpoint(tmp_path).name == "step_0000004"
    resumed = _trainer(tmp_path, steps=5)
    with pytest.warns(RuntimeWarning, match=rf"latest {why}.*: resuming from .*step_0000004 \(step 4\) instead"):
        result = resumed.fit(resume=True)
    assert result.resumed_from.name == "step_0000004" and result.steps == 5
    assert (root / "latest").read_text().strip() == "step_0000005"  # the next checkpoint repairs the pointer


def test_resume_skips_an_unreadable_checkpoint_and_refuses_when_none_is_usable(tmp_path):
    from mint_rl.checkpoint import CheckpointError

    root = _checkpointed_run(tmp_path)
    (root / "step_0000004" / "trainer_state.pt").write_bytes(b"truncated")
    resumed = _trainer(tmp_path, steps=3)
    before = _params(resumed.detector).clone()
    with pytest.warns(RuntimeWarning, match=r"step_0000004/trainer_state\.pt: unreadable trainer state.*"
                                            r"resuming from .*step_0000002 \(step 2\) instead"):
        assert resumed.resume().name == "step_0000002"
    assert resumed.step == 2 and not torch.equal(before, _params(resumed.detector))
    (root / "step_0000002" / "model.safetensors").unlink()
    fresh = _trainer(tmp_path, steps=3)
    with pytest.raises(CheckpointError, match=r"resume: no usable checkpoint in .*checkpoints \(.*step_0000002 lacks "
                                              r"model\.safetensors.*step_0000004/trainer_state\.pt: unreadable.*"
                                              r"remove that folder to start afresh"):
        fresh.fit(resume=True)
    assert fresh.step == 0
    assert _trainer(tmp_path / "new", steps=1).fit(resume=True).resumed_from is None  # nothing to resume: fresh start


def test_train_script_without_held_out_clips_prints_no_metrics(tmp_path, capsys):
    from mint_rl.viz import write_video

    videos = tmp_path / "videos"  # clips without instance masks: nothing to score
    frames = (np.arange(4)[:, None, None, None] * 40 + np.zeros((4, 32, 32, 3))).astype(np.uint8)
    write_video(frames, videos / "a.gif", fps=5)
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "train_mint.py"
    spec = importlib.util.spec_from_file_location("train_mint_no_held_out", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--preset", "magical", "--data", str(videos), "--eval-data", str(videos), "--steps", "1",
                        "--batch-size", "1", "--num-keypoints", "2", "--out", str(tmp_path / "run"),
                        "--no-progress"]) == 0
    captured = capsys.readouterr()
    lines, err = captured.out.strip().splitlines(), captured.err
    assert lines[-1].startswith("steps=1 frames_per_s=") and not any(line.startswith("DOP=") for line in lines)
    assert "no held-out clips (no --eval-data or --held-out clips with instance masks): no DOP/TOP/UAK/RAK" in err


def test_economy_ramp_scales_only_the_redundancy_weight(tmp_path):
    torch.manual_seed(1)
    det = MintDetector(DetectorConfig.for_image(32, 32, num_keypoints=4))
    loss = loss_preset("magical", lambda_redundancy=100.0)
    trainer = Trainer(det, loss, TrainConfig(steps=3, batch_size=2, economy_ramp=(10, 20)), _blob_windows(), tmp_path,
                      progress=False, tensorboard=False)
    weights = [trainer.loss_config_at(s).lambda_redundancy for s in (0, 9, 10, 15, 20, 500)]
    assert weights == [0.0, 0.0, 0.0, 50.0, 100.0, 100.0]
    assert trainer.loss_config_at(15).lambda_status == trainer.loss_config.lambda_status
    assert trainer.loss_config_at(15).sigma == trainer.loss_config.sigma  # the map-size scaling is kept
    result = trainer.fit()  # the ramp trains (redundancy still off at these steps) and the term is reported
    assert result.last_terms["redundancy"] == 0.0
    with pytest.raises(ValueError, match=r"economy_ramp: expected \(start, end\)"):
        TrainConfig(economy_ramp=(5, 2))
