"""Real-CLEVRER reader: COCO RLE decoding and a tiny mp4 + proposals JSON in a temp dir."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mint_rl.data.clevrer import decode_rle, load_clevrer, proposals_to_masks
from mint_rl.viz import write_video


def hand_rle(mask: np.ndarray) -> list[int]:
    """Column-major run lengths starting with a zero run (the COCO convention), by hand."""
    flat = mask.T.ravel().astype(int)
    runs, current, n = [], 0, 0
    for v in flat:
        if v == current:
            n += 1
        else:
            runs.append(n)
            current, n = v, 1
    runs.append(n)
    return runs


def compress(runs: list[int], h: int, w: int) -> str:
    import pycocotools.mask as mask_utils

    return mask_utils.frPyObjects({"size": [h, w], "counts": runs}, h, w)["counts"].decode("ascii")


def test_rle_matches_hand_encoded_mask():
    mask = np.zeros((4, 5), bool)
    mask[1:3, 2:4] = True
    assert hand_rle(mask) == [9, 2, 2, 2, 5]
    np.testing.assert_array_equal(decode_rle({"size": [4, 5], "counts": [9, 2, 2, 2, 5]}), mask)
    np.testing.assert_array_equal(decode_rle({"size": [4, 5], "counts": compress([9, 2, 2, 2, 5], 4, 5)}), mask)


def test_rle_random_masks_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(5):
        mask = rng.random((7, 11)) < 0.4
        runs = hand_rle(mask)
        np.testing.assert_array_equal(decode_rle({"size": [7, 11], "counts": compress(runs, 7, 11)}), mask)


def test_rle_bad_input():
    with pytest.raises(ValueError, match="size"):
        decode_rle({"counts": [1]})
    with pytest.raises(ValueError, match="summing"):
        decode_rle({"size": [2, 2], "counts": [1, 1]})


def _obj(color, shape, mask):
    h, w = mask.shape
    return {"color": color, "material": "rubber", "shape": shape,
            "mask": {"size": [h, w], "counts": compress(hand_rle(mask), h, w)}}


def test_tiny_clevrer_folder(tmp_path):
    t, h, w = 3, 16, 24
    frames = np.full((t, h, w, 3), 90, np.uint8)
    a = np.zeros((h, w), bool)
    a[2:6, 3:8] = True
    b = np.zeros((h, w), bool)
    b[8:14, 12:20] = True
    video_dir = tmp_path / "videos" / "video_00000-01000"
    video_dir.mkdir(parents=True)
    write_video(frames, video_dir / "video_00007.mp4", fps=25)
    prop_dir = tmp_path / "derender_proposals"
    prop_dir.mkdir()
    proposals = {"video_index": 7, "frames": [
        {"frame_index": 0, "objects": [_obj("red", "cube", a), _obj("blue", "sphere", b)]},
        {"frame_index": 1, "objects": [_obj("blue", "sphere", b)]},  # the red cube left
        {"frame_index": 2, "objects": [_obj("blue", "sphere", b), _obj("red", "cube", a)]},
    ]}
    (prop_dir / "proposal_00007.json").write_text(json.dumps(proposals))
    [clip] = load_clevrer(tmp_path / "videos", prop_dir)
    assert clip.name == "video_00007" and clip.frames.shape == (t, h, w, 3)
    assert clip.masks.shape == (t, h, w)
    red, blue = 1, 2  # ids by first appearance, the same object keeps its id
    assert [o["color"] for o in clip.objects] == ["red", "blue"]
    np.testing.assert_array_equal(clip.masks[0] == red, a)
    np.testing.assert_array_equal(clip.masks[2] == red, a)
    assert not (clip.masks[1] == red).any()
    np.testing.assert_array_equal(clip.masks[1] == blue, b)
    write_video(frames, video_dir / "video_00008.mp4", fps=25)  # a video without proposals
    with pytest.raises(FileNotFoundError, match="proposal_00008"):
        load_clevrer(tmp_path / "videos", prop_dir, indices=[7, 8])
    only_video = load_clevrer(tmp_path / "videos", None)
    assert [c.name for c in only_video] == ["video_00007", "video_00008"]
    assert only_video[0].masks is None


def test_proposal_mask_of_wrong_size_raises():
    m = np.ones((4, 4), bool)
    with pytest.raises(ValueError, match="mask"):
        proposals_to_masks({"frames": [{"objects": [_obj("red", "cube", m)]}]}, 1, 5, 5)
