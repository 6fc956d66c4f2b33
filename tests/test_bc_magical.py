"""scripts/bc_magical.py and mint_rl.experiments.magical_bc: plumbing, formats and errors."""

import dataclasses
import importlib.util
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mint_rl.experiments.magical_bc import BCExperimentConfig, frames_to_keypoint_trajectories, keypoint_history_obs
from mint_rl.models import DetectorConfig, MintDetector
from mint_rl.policies.serialization import load_policy

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "magical-demos"


def _script(name: str = "bc_magical"):
    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory):
    torch.manual_seed(0)
    det = MintDetector(DetectorConfig.for_image(96, 96, num_keypoints=4, gamma=0.0))
    return det.save_pretrained(tmp_path_factory.mktemp("det") / "tiny.safetensors")


def test_keypoint_history_matches_wrapper_convention():
    rows = np.random.default_rng(0).random((5, 3, 3)).astype(np.float32)
    obs = keypoint_history_obs(rows, 4)
    assert obs.shape == (5, 4, 3, 3)
    np.testing.assert_array_equal(obs[0], np.repeat(rows[:1], 4, axis=0))  # filled with the first frame
    np.testing.assert_array_equal(obs[4], rows[1:5])  # oldest first, newest last


def test_end_to_end_tiny_run(tmp_path, tiny_detector, capsys):
    out = tmp_path / "bc"
    rc = _script().main(["MoveToRegion", "--detector", str(tiny_detector), "--n-demos", "2", "--seeds", "2",
                         "--epochs", "1", "--eval-episodes", "2", "--out", str(out), "--no-progress"])
    assert rc == 0
    captured = capsys.readouterr()
    last = captured.out.strip().splitlines()[-1]
    keys = [kv.split("=")[0] for kv in last.split()]
    assert keys == ["demo_score", "testjitter_score"]
    assert all(0.0 <= float(kv.split("=")[1]) <= 1.0 for kv in last.split())
    results = json.loads((out / "results.json").read_text())
    # every variant MAGICAL defines for MoveToRegion, each in both modes, 2 seeds x 2 episodes
    variants = ["Demo", "TestJitter", "TestColour", "TestLayout", "TestDynamics", "TestAll"]
    assert list(results["scores"]) == [f"{v}/{m}" for v in variants for m in ("argmax", "sampled")]
    assert all(len(seeds) == 2 and all(len(ep) == 2 for ep in seeds) for seeds in results["scores"].values())
    assert results["config"]["variants"] == variants and results["config"]["eval_modes"] == ["argmax", "sampled"]
    # the last line is the headline pair: Demo and TestJitter with argmax actions
    assert float(last.split()[0].split("=")[1]) == pytest.approx(results["summary"]["Demo/argmax"]["mean"], abs=1e-4)
    assert float(last.split()[1].split("=")[1]) == pytest.approx(results["summary"]["TestJitter/argmax"]["mean"],
                                                                 abs=1e-4)
    # stdout's table: one row per variant with both modes' mean ± std
    for v in variants:
        row = [line for line in captured.out.splitlines() if line.split()[:1] == [v]]
        assert len(row) == 1, captured.out
        numbers = [float(x) for x in re.findall(r"\d+\.\d+", row[0])]
        want = [results["summary"][f"{v}/{m}"][k] for m in ("argmax", "sampled") for k in ("mean", "std")]
        assert numbers == pytest.approx(want, abs=5e-4)
    policy = load_policy(results["policies"][0])
    assert policy.observation_space.shape == (4, 4, 3)
    assert (out / "MoveToRegion-mint-rollout.gif").stat().st_size > 0
    assert results["seed_ids"] == [0, 1]
    # the summary names the seed time summed over seeds, stderr this run's wall time
    assert f"{results['seconds'] / 60:.1f} min of seed time" in captured.out
    assert re.search(r"^wall time of this run: \d+\.\d min$", captured.err, re.M)
    # default --threads/--jobs: one torch thread per seed, whatever the core count
    assert [json.loads(f.read_text())["threads"] for f in sorted((out / "seeds").glob("*.json"))] == [1, 1]
    assert results["config"]["network"]["pooling"] == "flatten"  # the whole effective config is recorded
    # the trained policies re-predict their own demos (2 demos of MoveToRegion: 80 actions) and,
    # with one detector loaded for both, replay the run's own evaluation episodes
    acc_rc = _script("bc_demo_accuracy").main(["MoveToRegion", *results["policies"], "--n-demos", "2",
                                               "--detector", str(tiny_detector), "--eval-episodes", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert acc_rc == 0 and "of 80 demo actions" in lines[0]
    accs = [float(line.split("reproduces ")[1].split()[0]) for line in lines if "reproduces " in line]
    assert len(accs) == 2 and all(0.0 <= a <= 1.0 for a in accs)
    assert lines[-1] == f"accuracy={np.mean(accs):.4f}"
    for seed, path in enumerate(results["policies"]):
        for variant in ("Demo", "TestJitter"):
            line = [x for x in lines if x.startswith(f"{path}: {variant} ")][0]
            assert line.endswith(f"{np.mean(results['scores'][variant + '/argmax'][seed]):.3f} over 2 episodes")


def test_state_agent_end_to_end(tmp_path, capsys):
    from mint_rl.envs.magical import state_vector
    from mint_rl.envs.state import unwrap_magical
    from mint_rl.experiments.magical_bc import make_env
    from mint_rl.policies import StateAgentPolicy

    # the observation: the last 4 state vectors, oldest first, the first repeated at reset
    env = make_env("MoveToCorner", "TestJitter", "state", history=4)
    obs, _ = env.reset(seed=3)
    d = env.observation_space.shape[0] // 4
    assert env.observation_space.shape == (40,) and d == 10  # robot 5 + one block slot 5
    first = state_vector(unwrap_magical(env), 1, 0)
    np.testing.assert_allclose(obs.reshape(4, d), np.tile(first, (4, 1)), atol=1e-6)
    obs, *_ = env.step(1)
    np.testing.assert_allclose(obs.reshape(4, d)[:3], np.tile(first, (3, 1)), atol=1e-6)
    np.testing.assert_allclose(obs.reshape(4, d)[3], state_vector(unwrap_magical(env), 1, 0), atol=1e-6)
    env.close()

    out = tmp_path / "state"
    rc = _script().main(["MoveToCorner", "--agent", "state", "--n-demos", "2", "--seeds", "1", "--epochs", "2",
                         "--eval-episodes", "2", "--out", str(out), "--no-progress"])
    assert rc == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("demo_score=") and " testjitter_score=" in last
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["agent"] == "state" and results["config"]["network"] is None
    assert isinstance(load_policy(results["policies"][0]), StateAgentPolicy)
    assert (out / "MoveToCorner-state-rollout.gif").stat().st_size > 0
    capsys.readouterr()
    assert _script("bc_demo_accuracy").main(["MoveToCorner", results["policies"][0], "--n-demos", "2"]) == 0
    assert "state agent reproduces" in capsys.readouterr().out
    # --eval-episodes replays the run's own evaluation episodes (seeds read from the policy file)
    assert _script("bc_demo_accuracy").main(["MoveToCorner", results["policies"][0], "--n-demos", "2",
                                             "--eval-episodes", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for variant in ("Demo", "TestJitter"):
        line = [x for x in lines if f": {variant} " in x][0]
        assert line.endswith(f"{variant} {np.mean(results['scores'][variant + '/argmax'][0]):.3f} over 2 episodes")
    demo_accuracy = _script("bc_demo_accuracy")
    assert demo_accuracy.main(["MoveToCorner", results["policies"][0], "--n-demos", "2", "--recalibrate-bn"]) == 2
    assert "has no BatchNorm layer" in capsys.readouterr().err
    assert demo_accuracy.main(["MoveToCorner", results["policies"][0], "--save-dir", str(tmp_path)]) == 2
    assert "expected --recalibrate-bn with it" in capsys.readouterr().err
    assert demo_accuracy.main(["MoveToCorner", results["policies"][0], "--eval-episodes", "-1"]) == 2
    assert "--eval-episodes: expected >= 0, got -1" in capsys.readouterr().err
    assert BCExperimentConfig(task="MakeLine", agent="state").bc_epochs == 150


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, capsys):
    """Seed 0 finished, seed 1 stopped after 2 of 3 epochs: --resume gives the straight run's table."""
    script = _script()
    common = ["MoveToCorner", "--agent", "state", "--n-demos", "2", "--eval-episodes", "2", "--no-progress", "--no-gif",
              "--jobs", "1"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert script.main([*common, "--seeds", "2", "--epochs", "3", "--out", str(straight)]) == 0
    assert script.main([*common, "--seeds", "1", "--epochs", "3", "--out", str(split)]) == 0
    assert script.main([*common, "--seeds", "1", "--first-seed", "1", "--epochs", "2", "--out", str(split)]) == 0
    (split / "seeds" / "MoveToCorner-state-seed1.json").unlink()  # seed 1 "died" in training
    capsys.readouterr()
    assert script.main([*common, "--seeds", "2", "--epochs", "3", "--out", str(split), "--resume"]) == 0
    captured = capsys.readouterr()
    err = captured.err
    assert "seed 0: finished earlier" in err and "seed 1: resuming from" in err and "(epoch 2)" in err
    assert "seed 0: finished earlier" in err and "matches its recorded sha256" in err
    assert f"1 of 2 seeds reused from earlier runs in {split} (seeds 0)" in captured.out
    a, b = (json.loads((d / "results.json").read_text()) for d in (straight, split))
    assert a["scores"] == b["scores"] and b["seed_ids"] == [0, 1]
    record = json.loads((split / "seeds" / "MoveToCorner-state-seed1.json").read_text())
    assert record["device"] == "cpu"
    from mint_rl.experiments.magical_bc import file_sha256

    assert record["policy_sha256"] == file_sha256(record["policy"])  # the seed file pins its policy file
    sa, sb = (load_policy(r["policies"][1]).state_dict() for r in (a, b))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    logs = split / "logs" / "MoveToCorner-state-seed1"
    assert (logs / "progress.csv").exists() and (logs / "progress.until-epoch2.csv").exists()
    assert list(logs.glob("events.out.tfevents.*"))
    # seed files without their policies (copied from another machine) still give the table, no GIF
    for f in (split / "policies").glob("*"):
        f.unlink()
    with_gif = [a for a in common if a != "--no-gif"]
    assert script.main([*with_gif, "--seeds", "2", "--epochs", "3", "--out", str(split), "--resume"]) == 0
    captured = capsys.readouterr()
    assert "no rollout GIF" in captured.err and not list(split.glob("*.gif"))
    assert json.loads((split / "results.json").read_text())["scores"] == a["scores"]
    # a folder written with other settings is refused, naming them
    assert script.main([*common, "--seeds", "2", "--epochs", "4", "--out", str(split), "--resume"]) == 2
    assert "other settings (epochs)" in capsys.readouterr().err


def test_jobs_split_the_seeds_over_workers_to_the_single_process_result(tmp_path, capsys, monkeypatch):
    """--jobs 2: three seeds in two worker processes, one table equal to the one-process run's."""
    script = _script()
    common = ["MoveToCorner", "--agent", "state", "--n-demos", "2", "--eval-episodes", "2", "--no-progress",
              "--no-gif", "--seeds", "3", "--epochs", "2"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # both runs: one torch thread per seed, whatever the CI sets
    threads = torch.get_num_threads()
    assert script.main([*common, "--out", str(tmp_path / "one"), "--jobs", "1"]) == 0
    assert torch.get_num_threads() == threads  # the in-process run restores the caller's thread count
    capsys.readouterr()
    assert script.main([*common, "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0
    err = capsys.readouterr().err
    assert "worker seeds 0-1:" in err and "worker seed 2:" in err, err
    assert err.count("finished earlier") == 3  # the parent read every seed back from OUT/seeds
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("one", "two"))
    assert a["scores"] == b["scores"] and b["seed_ids"] == [0, 1, 2]
    for seed in range(3):
        record = json.loads((tmp_path / "two" / "seeds" / f"MoveToCorner-state-seed{seed}.json").read_text())
        assert record["threads"] == 1
    assert sorted(p.name for p in (tmp_path / "two" / "logs").glob("worker-*.log")) == [
        "worker-seeds0-1.log", "worker-seeds2-2.log"]
    assert script.main([*common, "--jobs", "0"]) == 2
    assert "--jobs: expected >= 1" in capsys.readouterr().err
    assert script.main([*common, "--threads", "0"]) == 2
    assert "--threads: expected >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([*common, "--jobs", "many"])
    assert "expected an integer or 'auto', got 'many'" in capsys.readouterr().err
    # bc_table reads the run folder's seed files: the same row as its results.json
    (tmp_path / "two" / "results.json").unlink()
    assert _script("bc_table").main([str(tmp_path / "two"), "--json", str(tmp_path / "rows.json")]) == 0
    row = json.loads((tmp_path / "rows.json").read_text())[0]
    assert row["seed_ids"] == [0, 1, 2] and row["scores"] == a["scores"] and row["summary"] == a["summary"]
    # a seed file written with other settings is refused, naming the setting
    other = json.loads((tmp_path / "one" / "seeds" / "MoveToCorner-state-seed0.json").read_text())
    other["settings"]["epochs"], other["seed"] = 7, 5
    (tmp_path / "two" / "seeds" / "MoveToCorner-state-seed5.json").write_text(json.dumps(other))
    capsys.readouterr()
    assert _script("bc_table").main([str(tmp_path / "two")]) == 2
    assert "runs differ in ['epochs']" in capsys.readouterr().err


def test_parallelism_defaults_and_their_errors(tmp_path):
    from mint_rl.experiments.workers import resolve_parallelism, run_seed_workers

    # serial agents: one thread per seed, one worker per core (never more than seeds)
    assert resolve_parallelism("state", 3, cpus=8, environ={}) == (3, 1)
    assert resolve_parallelism("mint", 1, cpus=8, environ={}) == (1, 1)
    assert resolve_parallelism("mint", 5, cpus=1, environ={}) == (1, 1)
    # explicit values win over OMP_NUM_THREADS and the agent's rule
    assert resolve_parallelism("mint", 5, jobs=5, threads=3, cpus=2, environ={"OMP_NUM_THREADS": "2"}) == (5, 3)
    assert resolve_parallelism("cnn", 4, cpus=8, environ={"OMP_NUM_THREADS": "2"}) == (4, 2)
    assert resolve_parallelism("cnn", 4, jobs=2, cpus=8, environ={}) == (2, None)
    assert resolve_parallelism("mint", 5, "cuda:1", environ={}) == (1, None)
    for bad in ("two", "0", "-1"):
        with pytest.raises(ValueError, match=f"OMP_NUM_THREADS: expected a positive integer, got '{bad}'"):
            resolve_parallelism("mint", 5, environ={"OMP_NUM_THREADS": bad})
    with pytest.raises(ValueError, match="--threads: expected >= 1, got 0"):
        resolve_parallelism("mint", 5, threads=0)
    # the workers get the thread count in OMP_NUM_THREADS, whatever the parent's environment says
    import sys

    def command(first: int, count: int) -> list[str]:
        code = f"import os; open(r'{tmp_path}/t{first}', 'w').write(os.environ['OMP_NUM_THREADS'])"
        return [sys.executable, "-c", code]

    run_seed_workers(command, 0, 2, 2, tmp_path, done=lambda s: True, threads=3, progress=False, log=lambda m: None,
                     poll_seconds=0.05)
    assert [(tmp_path / f"t{i}").read_text() for i in range(2)] == ["3", "3"]


def test_failed_worker_is_reported_with_its_log(tmp_path):
    import sys

    from mint_rl.experiments.workers import run_seed_workers, split_seeds

    def command(first: int, count: int) -> list[str]:
        code = f"print('worker {first} says hello'); raise SystemExit({3 if first else 0})"
        return [sys.executable, "-c", code]

    with pytest.raises(RuntimeError, match=r"1 of 2 workers failed\n.*seeds 2-3 exited with status 3") as info:
        run_seed_workers(command, 0, 4, 2, tmp_path, done=lambda s: False, progress=False, log=lambda m: None,
                         poll_seconds=0.05)
    assert "worker 2 says hello" in str(info.value)
    assert split_seeds(0, 4, 2) == [(0, 2), (2, 2)]
    assert [sum(c for _, c in split_seeds(f, n, j)) for f, n, j in [(0, 5, 3), (7, 1, 8), (2, 9, 4)]] == [5, 1, 9]
    with pytest.raises(ValueError, match="jobs >= 1"):
        split_seeds(0, 3, 0)


def _write_result(path: Path, first_seed: int, seed_scores: list[float], **config) -> Path:
    cfg = {**vars(BCExperimentConfig(task="MoveToCorner", agent="cnn", precision="bf16")), **config}
    cfg.update(first_seed=first_seed, seeds=len(seed_scores))
    scores = {v: [[m, m] for m in seed_scores] for v in ("Demo", "TestJitter")}
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps({"config": cfg, "scores": scores, "seconds": 60.0, "policies": []}))
    return path


def test_bc_table_merges_seed_splits_into_one_row(tmp_path, capsys):
    a = _write_result(tmp_path / "a", 0, [1.0, 0.0])
    b = _write_result(tmp_path / "b", 2, [0.5])
    other = _write_result(tmp_path / "c", 0, [0.25], demos="human", human_dir=str(tmp_path))
    assert _script("bc_table").main([str(b), str(a / "results.json"), str(other), "--json", str(tmp_path / "m.json")]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| MoveToCorner")]
    # seeds 0, 1, 2 with means 1, 0, 0.5: mean 0.5, population std sqrt(1/6)
    assert rows[0] == "| MoveToCorner | cnn, bf16 | expert (n=10) | 3 | 0.500 ± 0.408 | 0.500 ± 0.408 | 2.0 min |"
    assert rows[1].startswith("| MoveToCorner | cnn, bf16 | human (n=10) | 1 | 0.250 ± 0.000")
    longer = _write_result(tmp_path / "e", 0, [1.0], epochs=600)
    assert _script("bc_table").main([str(longer)]) == 0
    assert "| MoveToCorner | cnn, epochs=600, bf16 | expert (n=10) | 1 |" in capsys.readouterr().out
    merged = json.loads((tmp_path / "m.json").read_text())
    assert merged[0]["seed_ids"] == [0, 1, 2]
    # overlapping seeds are refused
    dup = _write_result(tmp_path / "d", 1, [0.0])
    assert _script("bc_table").main([str(a), str(dup)]) == 2
    assert "more than one run" in capsys.readouterr().err


def test_seed_files_from_before_a_network_field_merge_with_newer_ones():
    """A seed file whose network settings predate ``attention_queries`` and one written after
    merge into one row, and a resumed run accepts the older one (the field's default)."""
    from mint_rl.experiments.magical_bc import result_from_seed_records, upgrade_seed_record
    from mint_rl.policies.interaction_network import InteractionNetworkConfig

    network = dataclasses.asdict(InteractionNetworkConfig())
    older = {k: v for k, v in network.items() if k != "attention_queries"}
    recs = [{"settings": {"task": "MoveToCorner", "agent": "mint", "network": net}, "seed": s,
             "scores": {"Demo/argmax": [1.0]}, "seconds": 1.0, "policy": None}
            for s, net in ((0, older), (1, network))]
    assert result_from_seed_records(recs).seed_ids == [0, 1]
    assert upgrade_seed_record(recs[0]["settings"], recs[0]["scores"])[0] == recs[1]["settings"]
    # a field the file does hold keeps its value: another network stays another network
    other = {**older, "pooling": "mean"}
    assert upgrade_seed_record({"network": other}, {})[0]["network"]["pooling"] == "mean"


def test_network_option_reaches_the_policy_and_the_table(tmp_path, tiny_detector, capsys):
    out = tmp_path / "bc"
    rc = _script().main(["MoveToRegion", "--detector", str(tiny_detector), "--n-demos", "1", "--seeds", "1",
                         "--epochs", "1", "--eval-episodes", "1", "--out", str(out), "--no-progress", "--no-gif",
                         "--network", "pooling=mean,mask_inactive=true,hidden_dim=24", "--keypoint-noise", "0.03",
                         "--orientation", "--history", "2", "--variants", "TestJitter", "Demo", "--modes", "argmax"])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["scores"]) == ["TestJitter/argmax", "Demo/argmax"]  # the variants and mode asked for
    net = results["config"]["network"]
    assert (net["pooling"], net["mask_inactive"], net["hidden_dim"], net["effect_dim"]) == ("mean", True, 24, 100)
    assert results["config"]["keypoint_noise"] == 0.03 and results["config"]["orientation"] is True
    policy = load_policy(results["policies"][0])
    network = policy.features_extractor.network
    assert (network.config.pooling, network.config.mask_inactive, network.hidden_dim) == ("mean", True, 24)
    assert policy.observation_space.shape == (2, 4, 5) and network.num_features == 5  # (x, y, s, ox, oy), 2 frames
    assert results["config"]["history"] == 2
    capsys.readouterr()
    assert _script("bc_table").main([str(out)]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| MoveToRegion")][0]
    assert "| mint, detector=tiny, epochs=1, hidden_dim=24, mask_inactive=True, pooling=mean, keypoint_noise=0.03, orientation, history=2 |" in row
    # demo accuracy rebuilds the demos with the orientation and history the policy was trained on
    assert _script("bc_demo_accuracy").main(["MoveToRegion", results["policies"][0], "--n-demos", "1",
                                             "--detector", str(tiny_detector)]) == 0


def test_results_without_a_network_entry_read_as_the_legacy_network():
    from mint_rl.experiments.magical_bc import BCResult
    from mint_rl.policies.interaction_network import LEGACY_CONFIG

    cfg = vars(BCExperimentConfig(task="MoveToCorner", seeds=1))
    del cfg["network"]
    old = BCResult.from_json({"config": cfg, "scores": {"Demo": [[1.0]], "TestJitter": [[0.5]]}})
    assert {k: old.config["network"][k] for k in LEGACY_CONFIG} == LEGACY_CONFIG
    cnn = BCResult.from_json({"config": {**cfg, "agent": "cnn"}, "scores": {"Demo": [[1.0]]}})
    assert cnn.config["network"] is None


def test_experiment_precisions_are_the_cnn_agent_compute_dtypes():
    # the experiment names its precision choices without importing the policies (fast --help);
    # both lists must stay the same, or a precision would pass the config and fail in the agent
    from mint_rl.experiments.magical_bc import PRECISIONS
    from mint_rl.policies.cnn_agent import COMPUTE_DTYPES

    assert tuple(COMPUTE_DTYPES) == PRECISIONS
    assert COMPUTE_DTYPES["fp32"] is None and COMPUTE_DTYPES["bf16"] is torch.bfloat16


def test_has_fast_bf16_follows_the_cpu_flags():
    # independent reference: the kernel's CPU flags. bfloat16 instructions (AVX512-BF16, AMX)
    # mean hardware support; a CPU without any AVX512 has none (oneDNN would emulate it)
    from mint_rl.policies.cnn_agent import has_fast_bf16

    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("needs Linux's /proc/cpuinfo")
    flags = set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
    if not flags or not any(f.startswith("avx") for f in flags):
        pytest.skip("no x86 SIMD flags listed (another architecture)")
    if {"avx512_bf16", "amx_bf16"} & flags:
        assert has_fast_bf16("cpu") is True
    elif not any(f.startswith("avx512") for f in flags):
        assert has_fast_bf16("cpu") is False
    else:
        pytest.skip("AVX512 without BF16: oneDNN's call, no independent reference")
    assert has_fast_bf16("meta") is False


class _StopAfterChecks(Exception):
    pass


@pytest.mark.parametrize("fast", [False, True])
def test_bf16_without_hardware_support_warns(monkeypatch, fast):
    import warnings

    import mint_rl.experiments.magical_bc as magical_bc
    import mint_rl.policies.cnn_agent as cnn_agent

    def stop(*args, **kwargs):
        raise _StopAfterChecks

    monkeypatch.setattr(cnn_agent, "has_fast_bf16", lambda device: fast)
    monkeypatch.setattr(magical_bc, "build_demos", stop)  # the checks run before any demo
    cfg = BCExperimentConfig(task="MoveToCorner", agent="cnn", precision="bf16")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(_StopAfterChecks):
            magical_bc.run_bc_experiment(cfg, progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    if fast:
        assert not any("bf16" in m for m in messages)
    else:
        assert any("no bfloat16 arithmetic in hardware" in m and "fp32" in m for m in messages)


def test_argument_errors(tmp_path, capsys):
    script = _script()
    assert script.main(["MoveToNowhere"]) == 2
    assert "expected one of" in capsys.readouterr().err
    assert script.main(["MoveToCorner", "--demos", str(tmp_path / "missing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert script.main(["MoveToCorner", "--demos", "human"]) == 2
    assert "human_dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["MoveToCorner", "--agent", "transformer"])
    with pytest.raises(ValueError, match="n_demos"):
        BCExperimentConfig(task="MakeLine", n_demos=0)
    assert script.main(["MoveToCorner", "--demo-noise", "1.5"]) == 2
    assert "demo_noise" in capsys.readouterr().err
    with pytest.raises(ValueError, match="identical expert demos"):
        BCExperimentConfig(task="MakeLine", demo_variant="Demo")
    with pytest.raises(ValueError, match="demo_variant"):
        BCExperimentConfig(task="MakeLine", demo_variant="TestAllDemo")
    with pytest.raises(ValueError, match="CNN agent only"):
        BCExperimentConfig(task="MakeLine", precision="bf16")
    with pytest.raises(ValueError, match="precision"):
        BCExperimentConfig(task="MakeLine", agent="cnn", precision="fp16")
    with pytest.raises(ValueError, match="first_seed"):
        BCExperimentConfig(task="MakeLine", first_seed=-1)
    assert script.main(["MoveToCorner", "--agent", "cnn", "--history", "8"]) == 2
    assert "the CNN agent observes MAGICAL's -LoRes4A stack of 4 frames, so history must be 4, got 8" in capsys.readouterr().err
    assert script.main(["MoveToCorner", "--history", "0"]) == 2
    assert "history: expected >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["MoveToCorner", "--agent", "cnn", "--precision", "int8"])
    assert script.main(["MoveToCorner", "--agent", "cnn", "--keypoint-noise", "0.02"]) == 2
    assert "MINT agent only" in capsys.readouterr().err
    assert script.main(["MoveToCorner", "--agent", "cnn", "--orientation"]) == 2
    assert "orientation adds a feature to keypoint observations" in capsys.readouterr().err
    assert script.main(["MoveToCorner", "--keypoint-noise", "-1"]) == 2
    assert "keypoint_noise" in capsys.readouterr().err
    assert script.main(["MoveToCorner", "--network", "pooling=max"]) == 2
    assert "pooling must be" in capsys.readouterr().err
    assert script.main(["MoveToCorner", "--network", "width=3"]) == 2
    assert "unknown field 'width'" in capsys.readouterr().err
    assert script.main(["MoveToCorner", "--network", "pooling"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert script.main(["MoveToCorner", "--agent", "cnn", "--network", "pooling=mean"]) == 2
    assert "MINT agent" in capsys.readouterr().err
    assert script.main(["MoveToCorner", "--agent", "state", "--demos", "human", "--human-dir", str(tmp_path)]) == 2
    assert "only the scripted-expert demos" in capsys.readouterr().err
    with pytest.raises(ValueError, match="only applies to scripted-expert"):
        BCExperimentConfig(task="MakeLine", demos="human", human_dir=str(tmp_path), demo_noise=0.2)
    assert script.main(["MoveToCorner", "--device", "gpu0"]) == 2
    assert "expected a torch device such as 'cpu' or 'cuda', got 'gpu0'" in capsys.readouterr().err
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert script.main(["MoveToCorner", "--device", f"cuda:{visible}"]) == 2
    assert f"expected a visible CUDA GPU, torch sees {visible}" in capsys.readouterr().err


@pytest.mark.skipif(not SHARED.is_dir(), reason="MAGICAL human demos not available")
def test_human_demos_become_keypoint_trajectories(tiny_detector):
    from mint_rl.envs import load_human_demos

    trajs = load_human_demos(SHARED, "MoveToRegion", view="allo", resolution=96, limit=1)
    kp = frames_to_keypoint_trajectories(trajs, str(tiny_detector), history=4)
    assert kp[0].obs.shape == (len(trajs[0].acts) + 1, 4, 4, 3)
    np.testing.assert_array_equal(kp[0].acts, trajs[0].acts)
    assert kp[0].infos[-1]["eval_score"] == trajs[0].infos[-1]["eval_score"]


KEPT = sorted(p for p in (ROOT / "results" / "bc").glob("*") if (p / "seeds").is_dir())


def _kept_agent_cells() -> dict[str, str]:
    """results/README.md's table: kept folder name -> the agent cell of its README row."""
    cells = {}
    for line in (ROOT / "results" / "README.md").read_text().splitlines():
        found = re.match(r"\|\s*`bc/([^`]+)`\s*\|\s*([^|]+?)\s*\|", line)
        if found:
            cells[found.group(1)] = found.group(2)
    return cells


def _readme_bc_rows(task: str, demos: str, agent_cell: str) -> list[list[str]]:
    """The BC-table rows of docs/results.md ``| task | demos | agent_cell ... |``."""
    rows = []
    for line in (ROOT / "docs" / "results.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] == task and cells[1] == demos and cells[2] == agent_cell:
            rows.append(cells)
    return rows


def _numbers(cell: str) -> list[float]:
    found = [float(m) for m in re.findall(r"\d+\.\d+", cell)]
    assert found, f"no number in README cell {cell!r}"
    return found


@pytest.mark.parametrize("folder", KEPT, ids=[p.name for p in KEPT])
def test_kept_seed_files_give_the_readme_row(folder):
    # what `python scripts/bc_table.py results/bc/NAME` reads (results/README.md)
    result = _script("bc_table").load(folder)
    cfg, n = result.config, len(result.seed_ids)
    demos = "human" if cfg["demos"] == "human" else "expert"
    agent_cell = _kept_agent_cells().get(folder.name)
    assert agent_cell, f"results/README.md does not list bc/{folder.name} with its README row's agent cell"
    assert agent_cell.lower().startswith(cfg["agent"]), (agent_cell, cfg["agent"])
    rows = _readme_bc_rows(cfg["task"], demos, agent_cell)
    assert len(rows) == 1, f"expected one README row for {folder.name}, found {rows}"
    row = rows[0]
    summary = result.headline()
    assert _numbers(row[3])[0] == pytest.approx(summary["Demo"]["mean"], abs=5e-4)
    assert _numbers(row[4])[0] == pytest.approx(summary["TestJitter"]["mean"], abs=5e-4)
    assert _numbers(row[3])[1] == pytest.approx(summary["Demo"]["std"], abs=5e-4)
    assert _numbers(row[4])[1] == pytest.approx(summary["TestJitter"]["std"], abs=5e-4)
    assert row[5].startswith(f"{n} of 5") or (n == 5 and row[5] == "5"), f"seed cell {row[5]!r} for {n} kept seeds"
    # the seeds' total time: "95.4 + 121.7 min" (its parts add up), or "... 21.8 min of seed time"
    total = result.seconds / 60
    parts = _numbers(row[6].split("(")[0])
    spelled = re.search(r"(\d+\.\d+) min of seed time", row[6])
    assert sum(parts) == pytest.approx(total, abs=0.05 * n) or (
        spelled and float(spelled.group(1)) == pytest.approx(total, abs=0.05)), (row[6], total)


def test_seed_files_of_before_every_variant_resume_with_their_variants_and_mode(tmp_path, capsys):
    """Kept seed files (Demo and TestJitter, argmax, keyed by variant) resume under the settings
    they were written with (--variants Demo TestJitter --modes argmax); today's defaults refuse them."""
    import shutil

    shutil.copytree(ROOT / "results" / "bc" / "MoveToCorner-mint-expert" / "seeds", tmp_path / "seeds")
    common = ["MoveToCorner", "--out", str(tmp_path), "--resume", "--no-gif", "--no-progress", "--jobs", "1"]
    assert _script().main([*common, "--variants", "Demo", "TestJitter", "--modes", "argmax"]) == 0
    captured = capsys.readouterr()
    assert "5 of 5 seeds reused" in captured.out
    assert captured.out.strip().splitlines()[-1] == "demo_score=0.7981 testjitter_score=0.6481"
    assert _script().main(common) == 2
    assert "other settings (eval_modes, variants)" in capsys.readouterr().err


def test_kept_every_variant_seed_files_give_the_variant_table():
    """docs/results.md's "Every test variant" table is what bc_table.py --variants reads from its kept seed files."""
    folder = ROOT / "results" / "bc" / "MoveToCorner-mint-expert-variants"
    result = _script("bc_table").load(folder)
    summary = result.summary()
    assert result.variants == ["Demo", "TestJitter", "TestColour", "TestShape", "TestDynamics", "TestAll"]
    text = (ROOT / "docs" / "results.md").read_text()
    header = "| MoveToCorner, MINT, expert demos | " + " | ".join(result.variants) + " |"
    assert header in text
    lines = text[text.index(header):].splitlines()
    for mode in ("argmax", "sampled"):
        row = next(line for line in lines if line.startswith(f"| {mode} |"))
        cells = [c.strip() for c in row.strip().strip("|").split("|")][1:]
        for variant, cell in zip(result.variants, cells):
            mean, std = _numbers(cell)
            assert mean == pytest.approx(summary[f"{variant}/{mode}"]["mean"], abs=5e-4), (variant, mode)
            assert std == pytest.approx(summary[f"{variant}/{mode}"]["std"], abs=5e-4), (variant, mode)


def test_docs_full_variant_table_is_what_bc_table_grid_prints_from_the_kept_seed_files():
    """docs/results.md's full variant table: the folders named in its ``<!-- grid: ... -->`` comment,
    read by ``bc_table.py --grid``, give exactly the table lines below the comment."""
    text = (ROOT / "docs" / "results.md").read_text()
    match = re.search(r"<!-- grid: ([^>]*?) -->\n((?:\|.*\n)+)", text)
    assert match, "docs/results.md has no '<!-- grid: FOLDER ... -->' comment followed by a table"
    folders = match.group(1).split()
    assert folders and all((ROOT / f / "seeds").is_dir() for f in folders), folders
    table = _script("bc_table")
    merged = [table.load(ROOT / f) for f in folders]
    assert match.group(2).strip() == table.grid_table(merged)
    # every task, and the MINT and CNN agents of each, appear
    rows = match.group(2).strip().splitlines()[2:]
    for task in ("MoveToCorner", "MoveToRegion", "MakeLine"):
        for agent in ("mint", "cnn", "state"):
            assert any(r.startswith(f"| {task} | {agent}") for r in rows), (task, agent)


# --------------------------------------------------------------------------------------------
# demo files that do not fit the experiment (--demos FILE.npz)


def _demo_file(path: Path, env_id="MoveToCorner-TestJitter-v0", episodes=3, shape=(96, 96, 3), dtype=np.uint8,
               **extra) -> Path:
    from imitation.data.types import Trajectory

    from mint_rl.envs.demos import save_demos

    trajs = [Trajectory(obs=np.zeros((3, *shape), dtype), acts=np.array([1, 2]),
                        infos=np.array([{"eval_score": 0.0}, {"eval_score": 1.0}]), terminal=False)
             for _ in range(episodes)]
    return save_demos(path, trajs, env_id, extra=extra or {"view": "allo", "resolution": shape[0]})


def test_demo_files_of_another_task_format_or_size_are_refused(tmp_path, capsys):
    good = _demo_file(tmp_path / "good.npz")
    BCExperimentConfig(task="MoveToCorner", demos=str(good), n_demos=3)  # fits the MINT agent
    cases = [
        (_demo_file(tmp_path / "region.npz", env_id="MoveToRegion-TestJitter-v0"), {},
         "expected demos of task MoveToCorner, got demos recorded on MoveToRegion-TestJitter-v0 (task MoveToRegion)"),
        (good, {"n_demos": 4}, "holds 3 MoveToCorner demos, fewer than n_demos=4 (--n-demos)"),
        (_demo_file(tmp_path / "ego.npz", view="ego", resolution=96), {},
         "demos recorded with view='ego'; the mint agent needs uint8 frames (96, 96, 3): the allocentric view"),
        (_demo_file(tmp_path / "small.npz", shape=(48, 48, 3)), {},
         "demos recorded with observations uint8 (48, 48, 3) (resolution 48); the mint agent needs uint8 frames "
         "(96, 96, 3)"),
        (good, {"agent": "cnn"}, "demos recorded with observations uint8 (96, 96, 3) (resolution 96); the cnn agent "
                                 "needs uint8 frames (96, 96, 12): the allocentric view at resolution 96 with 4 stacked"),
        (_demo_file(tmp_path / "stacked.npz", shape=(96, 96, 12)), {}, "observations uint8 (96, 96, 12)"),
        (_demo_file(tmp_path / "kp.npz", shape=(4, 25, 3), dtype=np.float32), {"history": 2},
         r"observations float32 (4, 25, 3)"),
    ]
    for path, kwargs, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)) as info:
            BCExperimentConfig(task="MoveToCorner", demos=str(path), **{"n_demos": 3, **kwargs})
        assert str(info.value).startswith(f"{path}: "), info.value  # the message names the file
    BCExperimentConfig(task="MoveToCorner", demos=str(tmp_path / "kp.npz"), n_demos=3)  # keypoints of history 4
    # the script says so and stops before any work
    assert _script().main(["MoveToCorner", "--demos", str(good), "--n-demos", "5", "--out", str(tmp_path / "o")]) == 2
    assert f"error: {good}: holds 3 MoveToCorner demos, fewer than n_demos=5 (--n-demos)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_build_demos_checks_keypoint_demos_against_the_detector(tmp_path):
    from mint_rl.experiments.magical_bc import build_demos

    path = _demo_file(tmp_path / "kp.npz", shape=(4, 25, 3), dtype=np.float32)
    cfg = BCExperimentConfig(task="MoveToCorner", demos=str(path), n_demos=2)

    class FourKeypoints:
        num_keypoints = 4

    with pytest.raises(ValueError, match=re.escape("observations float32 (4, 25, 3)")):
        build_demos(cfg, FourKeypoints(), progress=False)

    class TwentyFive:
        num_keypoints = 25

    demos = build_demos(cfg, TwentyFive(), progress=False)
    assert len(demos) == 2 and demos[0].obs.shape == (3, 4, 25, 3)


# --------------------------------------------------------------------------------------------
# --resume: reused seeds, their settings and their policy files' hashes


def _finished_seeds(out: Path, seeds=(0, 1), hashes=True) -> BCExperimentConfig:
    """Seed files (and stand-in policy files) as a finished state-agent run leaves them."""
    from mint_rl.experiments.magical_bc import file_sha256, seed_settings

    cfg = BCExperimentConfig(task="MoveToCorner", agent="state", n_demos=2, seeds=len(seeds), epochs=3, eval_episodes=2)
    (out / "seeds").mkdir(parents=True)
    (out / "policies").mkdir()
    for s in seeds:
        policy = out / "policies" / f"MoveToCorner-state-seed{s}.safetensors"
        policy.write_bytes(f"policy of seed {s}".encode())
        record = {"settings": seed_settings(cfg), "seed": s, "scores": {k: [1.0, 0.0] for k in cfg.score_keys},
                  "seconds": 60.0, "policy": str(policy)}
        if hashes:
            record["policy_sha256"] = file_sha256(policy)
        (out / "seeds" / f"MoveToCorner-state-seed{s}.json").write_text(json.dumps(record))
    return cfg


RESUME = ["MoveToCorner", "--agent", "state", "--n-demos", "2", "--eval-episodes", "2", "--epochs", "3", "--seeds", "2",
          "--no-progress", "--no-gif", "--jobs", "1", "--resume"]


def test_resume_reports_reused_seeds_and_checks_their_policy_hashes(tmp_path, capsys):
    out = tmp_path / "run"
    _finished_seeds(out)
    script = _script()
    assert script.main([*RESUME, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"2 of 2 seeds reused from earlier runs in {out} (seeds 0, 1)" in captured.out
    assert captured.out.strip().splitlines()[-1] == "demo_score=0.5000 testjitter_score=0.5000"
    assert captured.err.count("matches its recorded sha256") == 2
    # a policy file changed after its seed was evaluated is refused
    policy = out / "policies" / "MoveToCorner-state-seed1.safetensors"
    policy.write_bytes(b"retrained elsewhere")
    assert script.main([*RESUME, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"MoveToCorner-state-seed1\.json: policy file {re.escape(str(policy))} has sha256 [0-9a-f]{{64}}, "
                     r"the seed file recorded [0-9a-f]{64}: the policy changed", err), err
    # a policy file that is not here: the results are reused without it, and the output says so
    policy.unlink()
    assert script.main([*RESUME, "--out", str(out)]) == 0
    assert f"seed 1: finished earlier ({out / 'seeds' / 'MoveToCorner-state-seed1.json'}); its policy {policy} is not " \
           "on this machine: results reused without the policy" in capsys.readouterr().err


def test_resume_reads_old_seed_files_without_hashes_and_refuses_foreign_ones(tmp_path, capsys):
    out = tmp_path / "run"
    cfg = _finished_seeds(out, hashes=False)
    script = _script()
    assert script.main([*RESUME, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "2 of 2 seeds reused from earlier runs" in captured.out
    assert captured.err.count("its hash could not be checked (the seed file records none)") == 2
    # a run folder moved elsewhere: policies are found under OUT/policies by name
    moved = tmp_path / "moved"
    out.rename(moved)
    assert script.main([*RESUME, "--out", str(moved)]) == 0
    assert f"policy {moved / 'policies' / 'MoveToCorner-state-seed0.safetensors'} found" in capsys.readouterr().err
    records = moved / "seeds"
    seed1 = records / "MoveToCorner-state-seed1.json"
    seed1.write_text((records / "MoveToCorner-state-seed0.json").read_text())  # seed 0's file under seed 1's name
    assert script.main([*RESUME, "--out", str(moved)]) == 2
    assert f"{seed1}: expected the seed file of seed 1, got one of seed 0" in capsys.readouterr().err
    seed1.write_text('{"settings": ')
    assert script.main([*RESUME, "--out", str(moved)]) == 2
    assert f"{seed1}: expected a seed file (JSON), could not read it (JSONDecodeError" in capsys.readouterr().err
    from mint_rl.experiments.magical_bc import seed_settings

    seed1.write_text(json.dumps({"settings": {**seed_settings(cfg), "extra_knob": 1}, "seed": 1, "scores": {},
                                 "seconds": 1.0}))
    assert script.main([*RESUME, "--out", str(moved)]) == 2
    assert "was written with other settings (extra_knob)" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# every test variant, both evaluation modes


def test_evaluation_variants_and_modes_are_checked():
    assert BCExperimentConfig(task="MakeLine").eval_variants == (
        "Demo", "TestJitter", "TestColour", "TestShape", "TestLayout", "TestCountPlus", "TestDynamics", "TestAll")
    cfg = BCExperimentConfig(task="MoveToCorner", variants=["TestColour", "Demo", "TestJitter"], eval_modes=["sampled", "argmax"])
    assert cfg.score_keys == ("TestColour/sampled", "TestColour/argmax", "Demo/sampled", "Demo/argmax",
                              "TestJitter/sampled", "TestJitter/argmax")
    with pytest.raises(ValueError, match=r"\['TestLayout'\] are not variants of MoveToCorner"):
        BCExperimentConfig(task="MoveToCorner", variants=["Demo", "TestJitter", "TestLayout"])
    with pytest.raises(ValueError, match=r"missing \['Demo'\]"):
        BCExperimentConfig(task="MoveToCorner", variants=["TestJitter", "TestColour"])
    with pytest.raises(ValueError, match="each variant once"):
        BCExperimentConfig(task="MoveToCorner", variants=["Demo", "TestJitter", "Demo"])
    with pytest.raises(TypeError, match="the string 'Demo'"):
        BCExperimentConfig(task="MoveToCorner", variants="Demo")
    with pytest.raises(ValueError, match="headline mode 'argmax'"):
        BCExperimentConfig(task="MoveToCorner", eval_modes=["sampled"])
    assert BCExperimentConfig(task="MoveToCorner", deterministic=False, eval_modes=["sampled"]).headline_mode == "sampled"
    with pytest.raises(ValueError, match="distinct modes"):
        BCExperimentConfig(task="MoveToCorner", eval_modes=["argmax", "greedy"])


def test_score_keys_and_files_of_earlier_versions():
    from mint_rl.experiments.magical_bc import BCResult, legacy_scores, score_key, split_score_key

    assert split_score_key(score_key("TestCountPlus", "argmax")) == ("TestCountPlus", "argmax")
    for bad in ("Demo", "Demo/greedy", "/argmax"):
        with pytest.raises(ValueError, match="VARIANT/MODE"):
            split_score_key(bad)
    with pytest.raises(ValueError, match="mixed|either"):
        legacy_scores({"Demo": [[1.0]], "TestJitter/argmax": [[0.5]]}, deterministic=True)
    # a file written before every variant was evaluated, with --sample: its one mode was "sampled"
    cfg = {k: v for k, v in vars(BCExperimentConfig(task="MoveToCorner", deterministic=False, seeds=1,
                                                     eval_modes=["sampled"])).items()
           if k not in ("variants", "eval_modes")}
    old = BCResult.from_json({"config": cfg, "scores": {"Demo": [[1.0, 0.0]], "TestJitter": [[0.5, 0.5]]}})
    assert list(old.scores) == ["Demo/sampled", "TestJitter/sampled"]
    assert old.config["variants"] == ["Demo", "TestJitter"] and old.config["eval_modes"] == ["sampled"]
    assert old.headline() == {"Demo": {"mean": 0.5, "std": 0.0, "seeds": 1},
                              "TestJitter": {"mean": 0.5, "std": 0.0, "seeds": 1}}
    assert (old.variants, old.modes) == (["Demo", "TestJitter"], ["sampled"])
    with pytest.raises(KeyError, match="Demo/argmax"):
        old.seed_means("Demo/argmax")


def test_bc_table_lists_every_variant_and_mode(tmp_path, capsys):
    from mint_rl.experiments.magical_bc import BCResult, merge_results

    cfg = vars(BCExperimentConfig(task="MoveToCorner", agent="cnn", precision="bf16", seeds=1,
                                  variants=["Demo", "TestJitter", "TestColour"]))
    scores = {"Demo/argmax": [[1.0, 1.0]], "Demo/sampled": [[0.5, 0.0]], "TestJitter/argmax": [[0.75, 0.25]],
              "TestJitter/sampled": [[0.0, 0.0]], "TestColour/argmax": [[0.2, 0.4]], "TestColour/sampled": [[0.1, 0.1]]}
    new = tmp_path / "new"
    new.mkdir()
    (new / "results.json").write_text(json.dumps({"config": {**cfg, "variants": list(cfg["variants"]),
                                                             "eval_modes": ["argmax", "sampled"]},
                                                  "scores": scores, "seconds": 60.0, "policies": []}))
    legacy = _write_result(tmp_path / "legacy", 0, [0.25], demos="human", human_dir=str(tmp_path))
    assert _script("bc_table").main([str(new), str(legacy), "--variants"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| MoveToCorner")]
    assert rows[0] == "| MoveToCorner | cnn, bf16 | expert (n=10) | 1 | 1.000 ± 0.000 | 0.500 ± 0.000 | 1.0 min |"
    assert "| task | agent | demos | seeds | mode | Demo | TestJitter | TestColour |" in out
    assert "| MoveToCorner | cnn, bf16 | expert (n=10) | 1 | sampled | 0.250 ± 0.000 | 0.000 ± 0.000 | 0.100 ± 0.000 |" in out
    assert "| MoveToCorner | cnn, bf16 | human (n=10) | 1 | argmax | 0.250 ± 0.000 | 0.250 ± 0.000 | - |" in out
    assert not any("human (n=10) | 1 | sampled" in line for line in rows)  # the legacy run has one mode
    # runs of one experiment that evaluated different variants do not merge into one row
    a = BCResult.from_json(json.loads((new / "results.json").read_text()))
    b = BCResult(config={**a.config, "first_seed": 1}, scores={k: v for k, v in a.scores.items() if "Colour" not in k},
                 seed_ids=[1])
    with pytest.raises(ValueError, match="different variants/modes"):
        merge_results([a, b])
    with pytest.raises(ValueError, match=r"the scores of 2 seeds \(\[0, 1\]\) under every key"):
        BCResult.from_json({"config": {**a.config, "seeds": 2}, "scores": a.scores})


def test_bc_table_grid_puts_variants_in_magicals_order_with_both_modes_per_cell(tmp_path, capsys):
    from mint_rl.envs.registry import ALL_VARIANTS, TASK_VARIANTS
    from mint_rl.experiments.magical_bc import BCResult

    # every task's variants appear in ALL_VARIANTS, in the same relative order
    for task, variants in TASK_VARIANTS.items():
        assert [v for v in ALL_VARIANTS if v in variants] == list(variants), task
    region = BCResult(config=vars(BCExperimentConfig(task="MoveToRegion", seeds=2)),
                      scores={"Demo/argmax": [[1.0], [0.0]], "Demo/sampled": [[0.5], [0.5]],
                              "TestAll/argmax": [[0.25], [0.25]], "TestAll/sampled": [[0.0], [0.5]],
                              "TestLayout/argmax": [[0.0], [1.0]], "TestLayout/sampled": [[1.0], [1.0]]},
                      seed_ids=[0, 1])
    line = BCResult(config=vars(BCExperimentConfig(task="MakeLine", seeds=1)),
                    scores={"Demo/argmax": [[0.5]], "TestCountPlus/argmax": [[0.0, 1.0]]}, seed_ids=[0])
    table = _script("bc_table")
    assert table.ordered_variants([region, line]) == ["Demo", "TestLayout", "TestCountPlus", "TestAll"]
    rows = table.grid_table([region, line]).splitlines()
    assert rows[0] == "| task | agent | demos | seeds | Demo | TestLayout | TestCountPlus | TestAll |"
    assert rows[2] == ("| MoveToRegion | mint | expert (n=10) | 2 | 0.500 ± 0.500 (0.500) | 0.500 ± 0.500 (1.000) | - "
                       "| 0.250 ± 0.000 (0.250) |")
    assert rows[3] == ("| MakeLine | mint | expert (n=10) | 1 | 0.500 ± 0.000 [argmax only] | - "
                       "| 0.500 ± 0.000 [argmax only] | - |")


def test_bc_table_plots_scores_per_variant_and_names_the_detector(tmp_path, capsys):
    cfg = vars(BCExperimentConfig(task="MoveToCorner", seeds=2, variants=["Demo", "TestJitter", "TestColour"],
                                  detector="runs/transporter-magical/detector.safetensors"))
    scores = {"Demo/argmax": [[1.0, 1.0], [0.5, 0.5]], "TestJitter/argmax": [[0.75, 0.25], [0.5, 0.5]],
              "TestColour/argmax": [[0.0, 0.0], [0.5, 0.5]]}
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"config": {**cfg, "variants": list(cfg["variants"]),
                                                             "eval_modes": ["argmax"]},
                                                  "scores": scores, "seconds": 60.0, "policies": []}))
    table = _script("bc_table")
    assert table.detector_label("runs/transporter-magical/detector.safetensors") == "transporter-magical"
    assert table.detector_label("out/other.safetensors") == "other"
    assert table.detector_label("video-structure-magical") == "video-structure-magical"
    plot = tmp_path / "variants.png"
    assert table.main([str(run), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "| MoveToCorner | mint, detector=transporter-magical | expert (n=10) | 2 | 0.750 ± 0.250 | 0.500 ± 0.000 |" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = table.variant_scores([table.load(run)] * 2, "argmax")
    (first, second) = rows  # the same label twice is kept apart
    assert second == first + " #2"
    assert rows[first] == {"Demo": (0.75, 0.25), "TestJitter": (0.5, 0.0), "TestColour": (0.25, 0.25)}
    assert table.main([str(run), "--plot", str(plot), "--plot-mode", "sampled"]) == 2
    assert "no run evaluated in sampled mode" in capsys.readouterr().err
    from mint_rl.viz import plot_variant_scores

    with pytest.raises(ValueError, match=r"mean in \[0, 1\]"):
        plot_variant_scores({"a": {"Demo": (1.5, 0.0)}}, tmp_path / "bad.png")


def test_appearance_copies_permute_every_frame_of_an_episode_alike():
    from imitation.data.types import Trajectory

    from mint_rl.data.augment import AppearanceAugment
    from mint_rl.experiments.magical_bc import with_appearance_copies

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 6, 7, 12), dtype=np.uint8)  # 4 stacked RGB frames, as -LoRes4A
    tr = Trajectory(obs=frames, acts=np.arange(4), infos=[{"eval_score": 1.0}] * 4, terminal=True)
    pure = AppearanceAugment(brightness=0.0, contrast=0.0)  # a channel permutation and nothing else
    out = with_appearance_copies([tr], 6, seed=3, config=pure)
    assert len(out) == 7 and out[0] is tr
    orders = set()
    for copy in out[1:]:
        np.testing.assert_array_equal(copy.acts, tr.acts)
        assert copy.infos == tr.infos and copy.terminal and copy.obs.dtype == np.uint8
        # one permutation for the whole episode and every stacked frame in it
        found = [perm for perm in itertools.permutations(range(3))
                 if all(np.array_equal(copy.obs[..., 3 * k:3 * k + 3], frames[..., [3 * k + c for c in perm]])
                        for k in range(4))]
        assert len(found) == 1, "not one channel order for every frame and stacked frame"
        orders.add(found[0])
    assert len(orders) >= 3  # the draws differ between copies
    again = with_appearance_copies([tr], 6, seed=3, config=pure)
    assert all(np.array_equal(a.obs, b.obs) for a, b in zip(out, again))  # seeded
    lit = with_appearance_copies([tr], 1, seed=3)[1].obs  # default: brightness and contrast vary too
    assert lit.dtype == np.uint8 and not any(np.array_equal(lit, frames[..., [3 * (c // 3) + p for c in range(12)
                                                                             for p in [perm[c % 3]]]])
                                             for perm in itertools.permutations(range(3)))
    with pytest.raises(ValueError, match=r"expected \(T, H, W, 3n\) uint8 frames"):
        with_appearance_copies([Trajectory(obs=frames[..., :4], acts=tr.acts, infos=None, terminal=True)], 1, 0)


def test_demo_augment_adds_copies_through_the_detector(tiny_detector, capsys):
    from mint_rl.experiments.magical_bc import build_demos, shared_settings

    cfg = BCExperimentConfig(task="MoveToRegion", n_demos=1, seeds=1, detector=str(tiny_detector), demo_augment=2)
    from mint_rl.wrappers.encoder import load_detector

    demos = build_demos(cfg, load_detector(cfg.detector), progress=False)
    assert len(demos) == 3
    plain = build_demos(BCExperimentConfig(task="MoveToRegion", n_demos=1, seeds=1, detector=str(tiny_detector)),
                        load_detector(cfg.detector), progress=False)[0]
    np.testing.assert_allclose(demos[0].obs, plain.obs, atol=1e-4)  # the demo itself, as the wrapper sees it
    for copy in demos[1:]:
        np.testing.assert_array_equal(copy.acts, plain.acts)
        assert copy.obs.shape == plain.obs.shape and copy.obs.dtype == np.float32
    assert not np.array_equal(demos[1].obs, demos[0].obs)  # other colours and lighting: other keypoints
    assert "demo_augment" not in shared_settings({**vars(cfg), "demo_augment": 0})
    assert shared_settings(vars(cfg))["demo_augment"] == 2
    with pytest.raises(ValueError, match="demo_augment: expected a number of copies >= 0"):
        BCExperimentConfig(task="MoveToRegion", demo_augment=-1)
    with pytest.raises(ValueError, match="agent='state' learns from the simulator state"):
        BCExperimentConfig(task="MoveToRegion", agent="state", demo_augment=1)
    assert _script().main(["MoveToRegion", "--agent", "state", "--demo-augment", "1"]) == 2
    assert "demo_augment" in capsys.readouterr().err
