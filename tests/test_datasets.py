"""Clip directory round trip, window datasets, split by video, user video folders, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mint_rl.data import (
    Clip,
    VideoWindowDataset,
    clevrer_like_preset,
    clips_from_arrays,
    generate_clip,
    load_clip_dir,
    load_video_folder,
    read_video,
    save_clip,
    split_by_video,
)
from mint_rl.viz import write_video


def ramp_clip(t: int = 6, h: int = 8, w: int = 10, name: str = "ramp") -> Clip:
    """Frame t is filled with value 10 t; the mask holds one object in the left half."""
    frames = (np.arange(t)[:, None, None, None] * 10 + np.zeros((t, h, w, 3))).astype(np.uint8)
    masks = np.zeros((t, h, w), np.int32)
    masks[:, :, : w // 2] = 3
    return Clip(frames, masks, name=name)


def test_windows_are_consecutive_frames_with_aligned_masks():
    ds = VideoWindowDataset([ramp_clip(6), ramp_clip(4, name="b")], window=3, stride=1)
    assert len(ds) == 4 + 2
    item = ds[1]
    assert item["clip"] == 0 and item["t0"] == 1
    assert item["frames"].shape == (3, 3, 8, 10) and item["frames"].dtype == torch.uint8
    assert item["frames"][:, 0, 0, 0].tolist() == [10, 20, 30]
    assert item["masks"].dtype == torch.int64 and item["masks"].shape == (3, 8, 10)
    assert ds[5]["clip"] == 1 and ds[5]["t0"] == 1
    strided = VideoWindowDataset([ramp_clip(7)], window=2, stride=3, frame_step=2)
    assert [strided[i]["t0"] for i in range(len(strided))] == [0, 3]
    assert strided[1]["frames"][:, 0, 0, 0].tolist() == [30, 50]


def test_resize_keeps_masks_aligned_with_frames():
    clip = generate_clip(clevrer_like_preset("small", num_frames=3, noise_std=0.0), 1)
    ds = VideoWindowDataset([clip], window=3, resize=(48, 80))
    item = ds[0]
    assert item["frames"].shape == (3, 3, 48, 80) and item["masks"].shape == (3, 48, 80)
    assert set(item["masks"].unique().tolist()) <= set(np.unique(clip.masks).tolist())
    # downsampling by exactly 2: the nearest-exact mask pixel (2i+1, 2j+1)... must equal the original
    # at one of the 2x2 source pixels
    src = torch.from_numpy(clip.masks).long()
    blocks = src.reshape(3, 48, 2, 80, 2)
    hit = (blocks == item["masks"][:, :, None, :, None]).any(dim=(2, 4))
    assert bool(hit.all())


def test_clips_without_masks_yield_frames_only():
    ds = VideoWindowDataset(clips_from_arrays([np.zeros((3, 4, 4, 3), np.uint8)]), window=3)
    assert "masks" not in ds[0] and len(ds) == 1


def test_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="window"):
        VideoWindowDataset([ramp_clip()], window=0)
    with pytest.raises(ValueError, match="frames"):
        VideoWindowDataset([ramp_clip(2)], window=3)
    with pytest.raises(TypeError, match="Clip"):
        VideoWindowDataset([np.zeros((3, 4, 4, 3), np.uint8)])
    with pytest.raises(ValueError, match="shape"):
        Clip(np.zeros((3, 4, 4, 3), np.uint8), np.zeros((3, 4, 5), np.int32))


def test_split_by_video_never_overlaps_and_is_deterministic():
    clips = [ramp_clip(name=f"c{i}") for i in range(10)]
    train, test = split_by_video(clips, 0.2, seed=3)
    names_train, names_test = {c.name for c in train}, {c.name for c in test}
    assert len(test) == 2 and len(train) == 8 and not names_train & names_test
    assert names_train | names_test == {c.name for c in clips}
    again = split_by_video(clips, 0.2, seed=3)[1]
    assert [c.name for c in again] == [c.name for c in test]
    assert [c.name for c in split_by_video(clips, 0.2, seed=4)[1]] != [c.name for c in test]
    assert len(split_by_video(clips[:2], 0.01)[1]) == 1  # a positive fraction holds out >= 1
    with pytest.raises(ValueError, match="held_out_fraction"):
        split_by_video(clips, 1.0)


def test_clip_dir_round_trip(tmp_path):
    clip = generate_clip(clevrer_like_preset("small", num_frames=5), 2)
    save_clip(clip, tmp_path)
    save_clip(ramp_clip(name="zz"), tmp_path)
    loaded = load_clip_dir(tmp_path)
    assert [c.name for c in loaded] == [clip.name, "zz"]
    back = loaded[0]
    np.testing.assert_array_equal(back.frames, clip.frames)
    np.testing.assert_array_equal(back.masks, clip.masks)
    assert back.objects == clip.objects and back.fps == clip.fps
    for key, value in clip.tracks.items():
        np.testing.assert_array_equal(back.tracks[key], value)
    meta = json.loads((tmp_path / f"{clip.name}.json").read_text())
    assert meta["version"] == 1 and meta["has_masks"]


def test_clip_dir_mp4_frames(tmp_path):
    clip = generate_clip(clevrer_like_preset("small", num_frames=6), 4)
    save_clip(clip, tmp_path, frames_format="mp4")
    assert (tmp_path / f"{clip.name}.mp4").exists()
    [back] = load_clip_dir(tmp_path)
    assert back.frames.shape == clip.frames.shape
    np.testing.assert_array_equal(back.masks, clip.masks)
    err = np.abs(back.frames.astype(int) - clip.frames.astype(int)).mean()
    assert err < 6, err  # lossy but close
    with pytest.raises(ValueError, match="frames_format"):
        save_clip(clip, tmp_path, frames_format="png")


def test_clip_dir_npy_frames_memory_mapped(tmp_path):
    clip = generate_clip(clevrer_like_preset("small", num_frames=6), 5)
    save_clip(clip, tmp_path, frames_format="npy")
    [back] = load_clip_dir(tmp_path, mmap=True)
    assert isinstance(back.frames, np.memmap)
    np.testing.assert_array_equal(back.frames, clip.frames)
    np.testing.assert_array_equal(back.masks, clip.masks)
    item = VideoWindowDataset([back], window=3)[2]
    np.testing.assert_array_equal(item["frames"].permute(0, 2, 3, 1).numpy(), clip.frames[2:5])


def test_clip_dir_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_clip_dir(tmp_path)
    save_clip(ramp_clip(name="x"), tmp_path)
    meta = json.loads((tmp_path / "x.json").read_text())
    meta["version"] = 99
    (tmp_path / "x.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="version"):
        load_clip_dir(tmp_path)


def test_video_folder(tmp_path):
    frames = ramp_clip(5, 16, 24).frames * 5
    write_video(frames, tmp_path / "a.gif", fps=5)
    write_video(frames, tmp_path / "b.mp4", fps=5)
    (tmp_path / "notes.txt").write_text("not a video")
    clips = load_video_folder(tmp_path)
    assert [c.name for c in clips] == ["a", "b"]
    np.testing.assert_array_equal(clips[0].frames, frames)  # GIF of grey levels is lossless
    assert clips[1].frames.shape == (5, 16, 24, 3)
    assert np.abs(clips[1].frames.astype(int) - frames.astype(int)).mean() < 4
    assert clips[0].masks is None


def test_make_clevrer_like_cli(tmp_path, capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "scripts" / "make_clevrer_like.py"
    spec = importlib.util.spec_from_file_location("make_clevrer_like", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    summary = mod.main(["--preset", "small", "--videos", "2", "--frames", "4", "--seed", "7",
                        "--out", str(tmp_path)])
    assert summary["videos"] == 2
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["videos"] == 2
    clips = load_clip_dir(tmp_path)
    assert [len(c) for c in clips] == [4, 4]
    info = json.loads((tmp_path / "dataset.json").read_text())
    assert info["seeds"] == [7, 8] and info["version"] == 1
    np.testing.assert_array_equal(clips[0].frames, generate_clip(clevrer_like_preset("small", num_frames=4), 7).frames)


def test_video_without_imageio_ffmpeg_says_what_is_missing(tmp_path, monkeypatch):
    import importlib.util

    frames = ramp_clip(2, 8, 8).frames
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "imageio_ffmpeg" else real_find_spec(name, *a))
    with pytest.raises(ImportError, match="imageio-ffmpeg"):
        write_video(frames, tmp_path / "a.mp4", fps=5)
    (tmp_path / "b.mp4").write_bytes(b"")
    with pytest.raises(ImportError, match="to read b.mp4: expected the imageio-ffmpeg package"):
        read_video(tmp_path / "b.mp4")
    write_video(frames, tmp_path / "c.gif", fps=5)  # GIF needs no ffmpeg
    assert read_video(tmp_path / "c.gif")[0].shape == (2, 8, 8, 3)


# ------------------------------------------------------------------ clip files that must fail loudly


def _saved(tmp_path, **kwargs):
    _, meta = save_clip(ramp_clip(name="c"), tmp_path, **kwargs)
    return meta


@pytest.mark.parametrize("damage,message", [
    (lambda meta: meta.write_text('{"format": "mint_rl.clip", "vers'), r"c\.json: expected clip metadata in JSON"),
    (lambda meta: meta.write_bytes(b"\xff\xfe\x00garbage"), r"c\.json: expected clip metadata in JSON"),
    (lambda meta: meta.write_text("[1, 2]"), r"c\.json: expected a JSON object, got list"),
    (lambda meta: meta.with_suffix(".npz").unlink(), r"c\.npz: expected the clip's arrays next to its \.json"),
    (lambda meta: meta.with_suffix(".npz").write_bytes(meta.with_suffix(".npz").read_bytes()[:100]),
     r"c\.npz: corrupted or truncated clip arrays"),
    (lambda meta: meta.with_suffix(".npz").write_bytes(b"not a zip file at all"), r"c\.npz: corrupted or truncated"),
])
def test_corrupt_or_missing_clip_files_raise_clip_format_error(tmp_path, damage, message):
    from mint_rl.data.io import ClipFormatError, load_clip

    meta = _saved(tmp_path)
    damage(meta)
    with pytest.raises(ClipFormatError, match=message):
        load_clip(meta)


def test_clip_with_missing_entries_raises_clip_format_error(tmp_path):
    from mint_rl.data.io import ClipFormatError, load_clip

    meta_path = _saved(tmp_path)
    npz = meta_path.with_suffix(".npz")
    meta = json.loads(meta_path.read_text())
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    # a metadata entry missing
    broken = {k: v for k, v in meta.items() if k != "num_frames"}
    meta_path.write_text(json.dumps(broken))
    with pytest.raises(ClipFormatError, match=r"c\.json: expected the entries .* missing \['num_frames'\]"):
        load_clip(meta_path)
    meta_path.write_text(json.dumps({**meta, "height": "8"}))
    with pytest.raises(ClipFormatError, match=r"c\.json: expected non-negative integers .* got \{'height': '8'\}"):
        load_clip(meta_path)
    meta_path.write_text(json.dumps(meta))
    # the masks the metadata announces are missing
    np.savez_compressed(npz, frames=arrays["frames"])
    with pytest.raises(ClipFormatError, match=r"c\.npz: expected 'masks' \(the metadata says has_masks\), got only \['frames'\]"):
        load_clip(meta_path)
    # no frames at all
    np.savez_compressed(npz, masks=arrays["masks"])
    with pytest.raises(ClipFormatError, match=r"c\.json: expected frames in the npz or a 'frames_file', got neither"):
        load_clip(meta_path)
    # a listed track missing
    meta_path.write_text(json.dumps({**meta, "tracks": ["pixel_xy"]}))
    np.savez_compressed(npz, **arrays)
    with pytest.raises(ClipFormatError, match=r"c\.npz: expected the tracks \['pixel_xy'\].*missing \['track_pixel_xy'\]"):
        load_clip(meta_path)
    # frames that disagree with the metadata
    meta_path.write_text(json.dumps({**meta, "num_frames": 7}))
    with pytest.raises(ClipFormatError, match=r"c\.json: expected uint8 frames of shape \(7, 8, 10, 3\) .* got uint8 \(6, 8, 10, 3\)"):
        load_clip(meta_path)
    meta_path.write_text(json.dumps(meta))
    np.savez_compressed(npz, **{**arrays, "masks": arrays["masks"][:, :4]})
    with pytest.raises(ClipFormatError, match=r"c\.npz: Clip\.masks: expected shape \(6, 8, 10\), got \(6, 4, 10\)"):
        load_clip(meta_path)
    assert issubclass(ClipFormatError, ValueError)
    with pytest.raises(FileNotFoundError, match="clip metadata: expected an existing file"):
        load_clip(tmp_path / "nothing.json")


def test_clip_dir_with_a_missing_frames_file_or_npz_raises(tmp_path):
    from mint_rl.data.io import ClipFormatError, clip_files, load_clip

    meta = _saved(tmp_path / "npy", frames_format="npy")
    (meta.parent / "c.frames.npy").unlink()
    with pytest.raises(ClipFormatError, match=r"c\.json: expected its frames file .*c\.frames\.npy, the file does not exist"):
        load_clip(meta)
    other = _saved(tmp_path / "pair")
    save_clip(ramp_clip(name="d"), other.parent)
    (other.parent / "d.npz").unlink()
    with pytest.raises(ClipFormatError, match=r"d\.npz: expected the arrays of clip .*d\.json, the file does not exist"):
        load_clip_dir(other.parent)
    # a folder of videos with a JSON note is no clip directory: no clips, no error
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "notes.json").write_text("{}")
    assert clip_files(tmp_path / "videos") == []


def _show_clip():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "scripts" / "show_clip.py"
    spec = importlib.util.spec_from_file_location("show_clip_errors", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_show_clip_refuses_a_bad_index_and_clips_missing_keys(tmp_path, capsys):
    script = _show_clip()
    save_clip(ramp_clip(name="a"), tmp_path / "clips")
    save_clip(ramp_clip(name="b"), tmp_path / "clips")
    common = ["--clip-dir", str(tmp_path / "clips"), "--out", str(tmp_path / "out")]
    for index in ("2", "-1"):
        with pytest.raises(SystemExit) as exit_info:
            script.main([*common, "--index", index])
        assert exit_info.value.code == 2
        assert f"--index: expected 0..1 (2 clips in {tmp_path / 'clips'}), got {index}" in capsys.readouterr().err
    with np.load(tmp_path / "clips" / "b.npz") as z:
        np.savez_compressed(tmp_path / "clips" / "b.npz", masks=z["masks"])  # frames gone
    with pytest.raises(SystemExit):
        script.main([*common, "--index", "1"])
    err = capsys.readouterr().err
    assert "b.json: expected frames in the npz or a 'frames_file', got neither" in err
    np.savez(tmp_path / "kp.npz", points=np.zeros((6, 2, 2)))
    with pytest.raises(SystemExit):
        script.main([*common, "--keypoints", str(tmp_path / "kp.npz")])
    assert "expected an entry 'keypoints' (T, K, 2), got ['points']" in capsys.readouterr().err
    np.savez(tmp_path / "kp.npz", keypoints=np.zeros((5, 2, 2)))
    with pytest.raises(SystemExit):
        script.main([*common, "--keypoints", str(tmp_path / "kp.npz")])
    assert "expected keypoints of shape (6, K, 2), got (5, 2, 2)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([*common, "--png-frames", "0", "6"])
    assert "--png-frames: expected frame numbers in 0..5, got [6]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written
