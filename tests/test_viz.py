"""Drawing helpers: keypoint colours and faint inactive ones, outlines, videos, plots."""

from __future__ import annotations

import numpy as np
import pytest

from mint_rl.viz import (
    colorize_mask,
    draw_keypoints,
    draw_mask_outlines,
    mask_outlines,
    palette,
    plot_counts,
    write_video,
)


def test_active_keypoints_are_coloured_and_inactive_faint():
    frame = np.full((41, 41, 3), 128, np.uint8)
    kp = np.array([[-0.5, 0.0], [0.5, 0.0]])  # pixels (10, 20) and (30, 20)
    out = draw_keypoints(frame, kp, np.array([0.9, 0.1]), radius=4)
    colours = palette(2)
    np.testing.assert_array_equal(out[20, 10], colours[0])  # active: solid colour of keypoint 0
    faint = np.abs(out[20, 33].astype(int) - 128).max()  # on the ring of the inactive one
    assert 0 < faint < np.abs(colours[1].astype(int) - 128).max()
    np.testing.assert_array_equal(frame, 128)  # input untouched
    same = draw_keypoints(frame, np.array([[10.0, 20.0], [30.0, 20.0]]), np.array([True, False]),
                          radius=4, pixel=True)
    np.testing.assert_array_equal(same, out)


def test_draw_keypoints_bad_input():
    with pytest.raises(ValueError, match="frame"):
        draw_keypoints(np.zeros((4, 4), np.uint8), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="keypoints"):
        draw_keypoints(np.zeros((4, 4, 3), np.uint8), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="status"):
        draw_keypoints(np.zeros((4, 4, 3), np.uint8), np.zeros((2, 2)), np.ones(3))


def test_outlines_follow_masks():
    m = np.zeros((8, 8), int)
    m[2:6, 2:6] = 1
    edge = mask_outlines(m)
    assert edge.sum() == 12 and not edge[3:5, 3:5].any()
    out = draw_mask_outlines(np.zeros((8, 8, 3), np.uint8), m)
    assert (out[edge] > 0).any(axis=-1).all() and not out[~edge].any()
    assert colorize_mask(m)[0, 0].tolist() == [0, 0, 0] and colorize_mask(m)[3, 3].any()


def test_palette_distinct():
    p = palette(25)
    assert len({tuple(c) for c in p}) == 25


def test_write_video_and_plot(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (4, 10, 12, 3), dtype=np.uint8)
    assert write_video(frames, tmp_path / "v.gif", fps=5).stat().st_size > 0
    assert write_video(frames, tmp_path / "v.mp4", fps=5).stat().st_size > 0
    with pytest.raises(ValueError, match="suffix"):
        write_video(frames, tmp_path / "v.png")
    png = plot_counts(np.array([3, 4, 4]), np.array([3, 3, 4]), tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    two = plot_counts({"a": np.array([3, 4, 4]), "b": np.array([1, 1, 2])}, np.array([3, 3, 4]), tmp_path / "c2.png")
    assert two.read_bytes()[:4] == b"\x89PNG" and two.read_bytes() != png.read_bytes()
    with pytest.raises(ValueError, match="expected 3 frames of active counts for 'b', got 2"):
        plot_counts({"a": np.array([3, 4, 4]), "b": np.array([1, 1])}, np.array([3, 3, 4]), tmp_path / "c3.png")


def test_show_clip_cli_with_keypoints(tmp_path, capsys):
    import importlib.util
    import json
    import pathlib

    from mint_rl.data import clevrer_like_preset, generate_clip, save_clip

    clip = generate_clip(clevrer_like_preset("small", num_frames=5), 0)
    save_clip(clip, tmp_path / "clips")
    kp = np.zeros((5, 3, 2), np.float32)  # image centre, floor or object
    np.savez(tmp_path / "kp.npz", keypoints=kp, status=np.ones((5, 3)))
    path = pathlib.Path(__file__).parents[1] / "scripts" / "show_clip.py"
    spec = importlib.util.spec_from_file_location("show_clip", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    summary = mod.main(["--clip-dir", str(tmp_path / "clips"), "--keypoints", str(tmp_path / "kp.npz"),
                        "--gif", "--png-frames", "0", "4", "--png-scale", "0.5", "--out", str(tmp_path / "out")])
    assert pathlib.Path(summary["video"]).stat().st_size > 0
    assert set(summary["metrics"]) == {"dop", "top", "uak", "rak"}
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["frames"] == 5
    import imageio.v2 as imageio

    png = imageio.imread(summary["png"])
    assert png.shape == (48 * 2 + 4, 80 * 2 + 4, 3)
