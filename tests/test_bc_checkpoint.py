"""Resumable behaviour cloning: a run split by a checkpoint equals the uninterrupted run."""

from __future__ import annotations

import pytest
import torch
from toy_keypoint_env import ToyKeypointEnv, expert_trajectories

from mint_rl.policies import train_bc
from mint_rl.policies.bc_checkpoint import BC_CHECKPOINT_FORMAT, load_bc_checkpoint

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def demos():
    return expert_trajectories(12, seed=0)


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _train(demos, **kwargs):
    env = ToyKeypointEnv()
    base = dict(batch_size=16, seed=2, device="cpu", progress_bar=False)
    return train_bc(demos, env.observation_space, env.action_space, **{**base, **kwargs})


def test_resumed_run_equals_uninterrupted_run(demos, tmp_path):
    ckpt = tmp_path / "seed2.pt"
    straight = _train(demos, epochs=4)
    _train(demos, epochs=2, checkpoint=ckpt)  # "interrupted" after 2 epochs
    state = load_bc_checkpoint(ckpt)
    assert state["format"] == BC_CHECKPOINT_FORMAT and state["epoch"] == 2 and state["train_seconds"] > 0
    resumed = _train(demos, epochs=4, checkpoint=ckpt, resume=True)
    assert _same(resumed, straight)
    assert load_bc_checkpoint(ckpt)["epoch"] == 4
    # with keypoint noise (its own generator) too
    noisy = _train(demos, epochs=3, keypoint_noise=0.05)
    _train(demos, epochs=1, keypoint_noise=0.05, checkpoint=tmp_path / "n.pt")
    assert _same(_train(demos, epochs=3, keypoint_noise=0.05, checkpoint=tmp_path / "n.pt", resume=True), noisy)
    assert not _same(noisy, _train(demos, epochs=3))


def test_checkpoint_every_and_finished_run(demos, tmp_path):
    ckpt = tmp_path / "c.pt"
    _train(demos, epochs=5, checkpoint=ckpt, checkpoint_every=2)
    assert load_bc_checkpoint(ckpt)["epoch"] == 5  # the last epoch is always written
    again = _train(demos, epochs=5, checkpoint=ckpt, resume=True)  # nothing left to train
    assert _same(again, _train(demos, epochs=5))
    # without resume the file is overwritten by a fresh run
    _train(demos, epochs=1, checkpoint=ckpt)
    assert load_bc_checkpoint(ckpt)["epoch"] == 1


def test_resume_refuses_another_run_and_bad_files(demos, tmp_path):
    ckpt = tmp_path / "c.pt"
    _train(demos, epochs=2, checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"different BC run \(learning_rate: checkpoint 0.001, this run 0.01\)"):
        _train(demos, epochs=3, checkpoint=ckpt, resume=True, learning_rate=1e-2)
    with pytest.raises(ValueError, match="seed"):
        _train(demos, epochs=3, checkpoint=ckpt, resume=True, seed=3)
    with pytest.raises(ValueError, match="demos_sha256"):
        _train(demos[:-1], epochs=3, checkpoint=ckpt, resume=True)
    with pytest.raises(ValueError, match="holds 2 epochs, more than epochs=1"):
        _train(demos, epochs=1, checkpoint=ckpt, resume=True)
    with pytest.raises(ValueError, match="resume=True needs a checkpoint"):
        _train(demos, epochs=1, resume=True)
    with pytest.raises(ValueError, match="checkpoint_every must be >= 1"):
        _train(demos, epochs=1, checkpoint=ckpt, checkpoint_every=0)
    junk = tmp_path / "junk.pt"
    torch.save({"format": "something else"}, junk)
    with pytest.raises(ValueError, match="expected a BC checkpoint of format"):
        load_bc_checkpoint(junk)
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable BC checkpoint"):
        load_bc_checkpoint(junk)
    with pytest.raises(FileNotFoundError):
        load_bc_checkpoint(tmp_path / "missing.pt")


def test_resumed_logs_continue_the_tensorboard_curve(demos, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs, ckpt = tmp_path / "logs", tmp_path / "c.pt"
    _train(demos, epochs=2, checkpoint=ckpt, log_dir=str(logs))
    saved = load_bc_checkpoint(ckpt)["tensorboard_step"]
    _train(demos, epochs=4, checkpoint=ckpt, resume=True, log_dir=str(logs))
    steps = []
    for events in sorted(logs.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        steps += [e.step for e in acc.Scalars("bc/neglogp")]
    assert saved > 0 and sorted(steps) == list(range(len(steps)))  # one curve, no step written twice
    assert (logs / "progress.until-epoch2.csv").exists() and (logs / "progress.csv").exists()


def test_checkpoint_with_non_finite_policy_tensors_is_refused(demos, tmp_path):
    from mint_rl.checkpoint import CheckpointError

    ckpt = tmp_path / "c.pt"
    _train(demos, epochs=1, checkpoint=ckpt)
    state = torch.load(ckpt, weights_only=True)
    name = next(k for k, v in state["policy"].items() if v.is_floating_point())
    state["policy"][name] = state["policy"][name].clone()
    state["policy"][name].view(-1)[0] = float("nan")
    torch.save(state, ckpt)
    expected = rf"{ckpt}: tensor '{name}' holds 1 non-finite value\(s\) \(NaN or inf\) of \d+; refusing to load it"
    with pytest.raises(CheckpointError, match=expected):
        load_bc_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match=expected):  # resuming refuses it too
        _train(demos, epochs=2, checkpoint=ckpt, resume=True)
    state["policy"] = [1, 2]
    torch.save(state, ckpt)
    with pytest.raises(ValueError, match=rf"{ckpt}: expected the policy's tensors under 'policy', got list"):
        load_bc_checkpoint(ckpt)
