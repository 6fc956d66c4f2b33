"""Tests of checkpoint I/O: MintDetector.save_pretrained / from_pretrained and bad files."""

import json
import os
import pathlib
import pickle

import pytest
import torch
from safetensors.torch import save_file

from mint_rl import pretrained
from mint_rl.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mint_rl.models import DetectorConfig, MintDetector


@pytest.fixture()
def trained_model():
    torch.manual_seed(0)
    model = MintDetector(DetectorConfig.for_image(32, 40, num_keypoints=3, gamma=2.5))
    model.train()
    model(torch.randint(0, 256, (4, 3, 32, 40), dtype=torch.uint8))  # moves BatchNorm running stats
    return model.eval()


def _assert_same(a: MintDetector, b: MintDetector) -> None:
    assert a.config == b.config
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    x = torch.randint(0, 256, (2, 3, 32, 40), dtype=torch.uint8)
    with torch.no_grad():
        oa, ob = a(x), b(x)
    assert torch.equal(oa.keypoints, ob.keypoints) and torch.equal(oa.status, ob.status)


@pytest.mark.parametrize("name", ["detector.safetensors", "detector_dir"])
def test_round_trip(tmp_path, trained_model, name):
    path = trained_model.save_pretrained(tmp_path / name, extra={"step": 7})
    loaded = MintDetector.from_pretrained(path)
    assert not loaded.training
    _assert_same(trained_model, loaded)
    ckpt = load_checkpoint(path)
    assert ckpt.extra == {"step": 7} and ckpt.format_version == 1
    assert ckpt.config == trained_model.config.to_dict()
    if path.is_dir():
        meta = json.loads((path / "config.json").read_text())
        assert meta["config"]["num_keypoints"] == 3 and meta["format"] == "mint_rl.MintDetector"
    # atomic writes leave no temporary files behind
    folder = path if path.is_dir() else path.parent
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    # files get the mode a plain open() gives (mkstemp's 0600 would hide them from other users)
    umask = os.umask(0)
    os.umask(umask)
    written = [p for p in folder.iterdir() if p.is_file()] if path.is_dir() else [path]
    assert written and all(p.stat().st_mode & 0o777 == 0o666 & ~umask for p in written)
    # matching requests are accepted
    MintDetector.from_pretrained(str(path), num_keypoints=3, in_channels=3, image_size=(32, 40))


def test_mismatch_with_requested_model_is_rejected(tmp_path, trained_model):
    path = trained_model.save_pretrained(tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="num_keypoints=3 but num_keypoints=25 was requested"):
        MintDetector.from_pretrained(path, num_keypoints=25)
    with pytest.raises(ValueError, match="in_channels=3 but in_channels=12 was requested"):
        MintDetector.from_pretrained(path, in_channels=12)
    with pytest.raises(ValueError, match=r"image_size.*\(32, 40\).*\(96, 96\)"):
        MintDetector.from_pretrained(path, image_size=(96, 96))


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        MintDetector.from_pretrained(tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError):
        MintDetector.from_pretrained(str(tmp_path / "missing_dir"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        MintDetector.from_pretrained(tmp_path / "empty")
    with pytest.raises(ValueError, match="unknown pretrained detector 'atari'; known names: 'magical', 'magical-recolour', 'clevrer-like', 'clevrer-like-economical'"):
        MintDetector.from_pretrained("atari")


@pytest.mark.parametrize("name", pretrained.known_names())
def test_registered_but_unshipped_weights_give_clear_error(name):
    if name in pretrained.available_names():
        model = MintDetector.from_pretrained(name)
        assert isinstance(model, MintDetector)
    else:
        with pytest.raises(FileNotFoundError, match="not shipped yet"):
            MintDetector.from_pretrained(name)


def test_truncated_and_corrupt_files_are_rejected(tmp_path, trained_model):
    path = trained_model.save_pretrained(tmp_path / "good.safetensors")
    data = path.read_bytes()
    cases = {
        "truncated_data.safetensors": data[: len(data) - 100],
        "truncated_header.safetensors": data[:50],
        "tiny.safetensors": b"abc",
        "garbage.safetensors": bytes(range(256)) * 10,
        "empty.safetensors": b"",
    }
    for fname, blob in cases.items():
        bad = tmp_path / fname
        bad.write_bytes(blob)
        with pytest.raises(CheckpointError):
            MintDetector.from_pretrained(bad)
    # a corrupt JSON header of the right length
    n = int.from_bytes(data[:8], "little")
    broken = data[:8] + b"{" * n + data[8 + n :]
    (tmp_path / "badjson.safetensors").write_bytes(broken)
    with pytest.raises(CheckpointError, match="corrupt safetensors header"):
        MintDetector.from_pretrained(tmp_path / "badjson.safetensors")


def test_foreign_and_inconsistent_checkpoints_are_rejected(tmp_path, trained_model):
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError, match="not a mint_rl checkpoint"):
        MintDetector.from_pretrained(plain)
    other = save_checkpoint(tmp_path / "other.safetensors", {"w": torch.zeros(2)}, format="something.else", config={})
    with pytest.raises(CheckpointError, match="expected a checkpoint of format 'mint_rl.MintDetector'"):
        MintDetector.from_pretrained(other)
    # the config says K=5 but the weights are for K=3
    cfg = trained_model.config.replace(num_keypoints=5).to_dict()
    liar = save_checkpoint(tmp_path / "liar.safetensors", trained_model.state_dict(), format="mint_rl.MintDetector", config=cfg)
    with pytest.raises(CheckpointError, match="has shape"):
        MintDetector.from_pretrained(liar)
    partial = dict(trained_model.state_dict())
    partial.pop("encoder.0.weight")
    cut = save_checkpoint(tmp_path / "cut.safetensors", partial, format="mint_rl.MintDetector", config=trained_model.config.to_dict())
    with pytest.raises(CheckpointError, match="missing"):
        MintDetector.from_pretrained(cut)
    bad_cfg = save_checkpoint(tmp_path / "badcfg.safetensors", trained_model.state_dict(), format="mint_rl.MintDetector",
                              config={"num_keypoints": 3, "wings": 2})
    with pytest.raises(CheckpointError, match="invalid detector config"):
        MintDetector.from_pretrained(bad_cfg)


def test_future_format_version_is_rejected(tmp_path, trained_model):
    path = trained_model.save_pretrained(tmp_path / "d")
    meta = json.loads((path / "config.json").read_text())
    meta["format_version"] = 99
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format version 99 is not supported"):
        MintDetector.from_pretrained(path)


class _Evil:
    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_pickles_are_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(CheckpointError):
        MintDetector.from_pretrained(evil)
    evil_pt = tmp_path / "evil.pt"
    torch.save({"x": _Evil(marker)}, evil_pt)
    with pytest.raises(CheckpointError):
        MintDetector.from_pretrained(evil_pt)
    assert not marker.exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_detector_checkpoint_with_non_finite_weights_is_refused(tmp_path, trained_model, bad):
    state = trained_model.state_dict()
    name = next(k for k in state if k.endswith("weight") and state[k].is_floating_point())
    with torch.no_grad():
        dict(trained_model.named_parameters())[name].view(-1)[3] = bad
    path = trained_model.save_pretrained(tmp_path / "diverged.safetensors")
    with pytest.raises(CheckpointError, match=rf"diverged\.safetensors: tensor '{name}' holds 1 non-finite"):
        MintDetector.from_pretrained(path)


def test_policy_file_with_non_finite_weights_is_refused(tmp_path):
    import gymnasium as gym
    import numpy as np

    from mint_rl.policies import MintGraphPolicy
    from mint_rl.policies.serialization import load_policy

    space = gym.spaces.Box(-1.0, 1.0, (2, 3, 3), np.float32)
    policy = MintGraphPolicy(space, gym.spaces.Discrete(4), lambda _: 1e-3)
    path = policy.save(tmp_path / "ok.safetensors")
    assert isinstance(load_policy(path), MintGraphPolicy)
    name, param = next(iter(policy.action_net.named_parameters()))
    with torch.no_grad():
        param.view(-1)[0] = float("nan")
    path = policy.save(tmp_path / "nan.safetensors")
    with pytest.raises(CheckpointError, match=rf"nan\.safetensors: tensor 'action_net\.{name}' holds 1 non-finite"):
        load_policy(path)
