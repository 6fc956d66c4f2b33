"""mint_rl.experiments.work_queue: evaluation shared out between the workers of one BC run."""

import json

import pytest
import torch

from mint_rl.experiments.magical_bc import (
    BCExperimentConfig,
    evaluate_variant,
    run_bc_experiment,
    sampling_seed,
    seed_stem,
)
from mint_rl.experiments.work_queue import WorkQueue, run_bc_worker

COMMON = dict(task="MoveToCorner", agent="state", n_demos=2, epochs=2, eval_episodes=2,
              variants=["Demo", "TestJitter"])


def _cfg(first: int, seeds: int) -> BCExperimentConfig:
    return BCExperimentConfig(first_seed=first, seeds=seeds, **COMMON)


def _quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Seeds 0 and 1 trained and evaluated in one process, the way ``--jobs 1`` runs them."""
    with torch.random.fork_rng():
        result = run_bc_experiment(_cfg(0, 2), tmp_path_factory.mktemp("ref"), progress=False, log=_quiet)
    return result


def test_a_worker_evaluates_another_workers_seed_to_the_one_process_scores(tmp_path, reference):
    queue = WorkQueue.new(tmp_path, 0, 2)
    # worker B trains seed 1 and leaves (as if it were busy elsewhere); worker A trains seed 0,
    # evaluates it, then claims seed 1's variants too and writes its seed file
    b = run_bc_worker(_cfg(1, 1), queue, progress=False, log=_quiet, train_only=True)
    assert b.trained == [1] and b.evaluated == [] and not (tmp_path / "seeds").exists()
    a = run_bc_worker(_cfg(0, 1), queue, progress=False, log=_quiet)
    assert a.trained == [0] and a.assembled == [0, 1]
    assert a.evaluated == [(0, "Demo"), (0, "TestJitter"), (1, "Demo"), (1, "TestJitter")]
    # the run read back from its seed files is the one-process run, sampled scores included
    result = run_bc_experiment(_cfg(0, 2), tmp_path, progress=False, log=_quiet, resume=True)
    assert result.reused_seeds == [0, 1]
    assert result.scores == reference.scores
    assert set(result.scores) == {"Demo/argmax", "Demo/sampled", "TestJitter/argmax", "TestJitter/sampled"}
    record = json.loads((tmp_path / "seeds" / "MoveToCorner-state-seed1.json").read_text())
    part_seconds = sum(json.loads((tmp_path / "parts" / "MoveToCorner-state-seed1" / f"{v}.json").read_text())
                       ["seconds"] for v in ("Demo", "TestJitter"))
    marker = json.loads((tmp_path / "parts" / "MoveToCorner-state-seed1" / "trained.json").read_text())
    assert record["seconds"] == pytest.approx(marker["seconds"] + part_seconds)
    assert record["policy_sha256"] == marker["policy_sha256"] and record["threads"] == marker["threads"]
    # nothing left to claim: a second pass does nothing; the claims go with release()
    again = run_bc_worker(_cfg(0, 1), queue, progress=False, log=_quiet)
    assert again.trained == [] and again.evaluated == []
    assert queue.release() == 4 and not list(tmp_path.glob("parts/*/*.claim"))


def test_fresh_runs_ignore_earlier_markers_and_resumed_runs_reuse_them(tmp_path):
    first = WorkQueue.new(tmp_path, 0, 1)
    run_bc_worker(_cfg(0, 1), first, progress=False, log=_quiet)
    seed_file = tmp_path / "seeds" / "MoveToCorner-state-seed0.json"
    scores = json.loads(seed_file.read_text())["scores"]
    # a fresh run (new token, no resume) trains and evaluates again
    fresh = run_bc_worker(_cfg(0, 1), WorkQueue.new(tmp_path, 0, 1), progress=False, log=_quiet)
    assert fresh.trained == [0] and len(fresh.evaluated) == 2
    # interrupted after training and one variant: resuming evaluates only the missing variant
    seed_file.unlink()
    (tmp_path / "parts" / "MoveToCorner-state-seed0" / "TestJitter.json").unlink()
    resumed = run_bc_worker(_cfg(0, 1), WorkQueue.new(tmp_path, 0, 1), resume=True, progress=False, log=_quiet)
    assert resumed.trained == [] and resumed.evaluated == [(0, "TestJitter")] and resumed.assembled == [0]
    assert json.loads(seed_file.read_text())["scores"] == scores
    # parts of another setting do not count: other epochs train and evaluate anew
    other = BCExperimentConfig(first_seed=0, seeds=1, **{**COMMON, "epochs": 3})
    seed_file.unlink()
    redo = run_bc_worker(other, WorkQueue.new(tmp_path, 0, 1), resume=True, progress=False, log=_quiet)
    assert redo.trained == [0] and len(redo.evaluated) == 2


def test_claims_are_exclusive_and_specs_are_checked(tmp_path):
    queue = WorkQueue.new(tmp_path, 3, 2)
    assert WorkQueue.parse(queue.spec, tmp_path) == queue
    assert queue.claim(seed_stem(_cfg(3, 1), 3), "Demo") is True
    assert queue.claim(seed_stem(_cfg(3, 1), 3), "Demo") is False
    assert WorkQueue(tmp_path, "other", 3, 2).claim(seed_stem(_cfg(3, 1), 3), "Demo") is True  # another run
    assert queue.release() == 1
    for bad in ("abc:0", "abc:x:2", "a-b:0:2", "abc:0:0", "abc:-1:2"):
        with pytest.raises(ValueError, match="expected TOKEN:FIRST:COUNT"):
            WorkQueue.parse(bad, tmp_path)
    with pytest.raises(ValueError, match=r"worker seeds \[0\] are not all among the run's seeds \[3, 4\]"):
        run_bc_worker(_cfg(0, 1), queue, progress=False, log=_quiet)


def test_a_variant_scores_the_same_whatever_ran_before(tmp_path, reference):
    """Sampled actions use torch's generator seeded per (seed, variant, mode), restored after."""
    from mint_rl.policies.serialization import load_policy

    cfg = _cfg(0, 1)
    policy = load_policy(reference.policy_paths[0])
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = evaluate_variant(policy, cfg, 0, "TestJitter")
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is left as it was
    torch.rand(1000)
    b = evaluate_variant(policy, cfg, 0, "TestJitter")
    assert a == b == {k: reference.scores[k][0] for k in ("TestJitter/argmax", "TestJitter/sampled")}
    assert sampling_seed(cfg, 0, "TestJitter", "sampled") != sampling_seed(cfg, 0, "TestJitter", "argmax")
    assert sampling_seed(cfg, 0, "Demo", "sampled") != sampling_seed(cfg, 1, "Demo", "sampled")
