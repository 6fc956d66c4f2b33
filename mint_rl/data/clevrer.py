"""Reader for the real CLEVRER dataset: ``video_XXXXX.mp4`` + derender proposals JSON.

Layout read here (the files of the CLEVRER release; videos may sit in sub-folders such as
``video_00000-01000/``):

- ``video_XXXXX.mp4``: 128 frames of 480x320 RGB;
- ``proposal_XXXXX.json`` (``derender_proposals``): ``{"frames": [{"frame_index": i,
  "objects": [{"mask": {"size": [320, 480], "counts": "<COCO RLE>"}, "color": ..,
  "material": .., "shape": .., "score": ..}, ...]}, ...]}``.

Object identity across frames: proposals are per-frame detections, so an object is identified
by its ``(color, material, shape)`` triple, unique within a CLEVRER scene; objects missing
those keys get per-frame ids (then tracking metrics are meaningless, detection ones still hold).
Where two masks overlap the later object in the list wins.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mint_rl.data.clip import Clip
from mint_rl.data.io import read_video

_INDEX = re.compile(r"(\d+)")


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """Decode one COCO run-length encoding to an ``(H, W)`` bool mask (pycocotools).

    Accepts compressed (``counts`` as str/bytes) and uncompressed (``counts`` as a list of
    column-major run lengths, starting with zeros) encodings.

    Example:
        >>> decode_rle({"size": [4, 5], "counts": [9, 2, 2, 2, 5]}).astype(int)
        array([[0, 0, 0, 0, 0],
               [0, 0, 1, 1, 0],
               [0, 0, 1, 1, 0],
               [0, 0, 0, 0, 0]])
    """
    import pycocotools.mask as mask_utils

    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"rle: expected a dict with 'size' and 'counts', got {rle!r:.80}")
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        if sum(counts) != h * w:
            raise ValueError(f"rle counts: expected run lengths summing to {h * w}, got {sum(counts)}")
        rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    elif isinstance(counts, str):
        rle = {"size": [h, w], "counts": counts.encode("ascii")}
    with warnings.catch_warnings():  # pycocotools vs numpy 2 `copy=` deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


def object_key(obj: dict[str, Any]) -> tuple[str, str, str] | None:
    """The ``(color, material, shape)`` identity of a proposal object, or None if incomplete."""
    try:
        return (str(obj["color"]), str(obj["material"]), str(obj["shape"]))
    except KeyError:
        return None


def proposals_to_masks(
    proposals: dict[str, Any], num_frames: int, height: int, width: int
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Instance-id masks ``(T, H, W)`` int32 and the object list from a proposals dict.

    Example:
        >>> p = {"frames": [{"frame_index": 1, "objects": [{"color": "red", "material": "metal",
        ...      "shape": "cube", "mask": {"size": [4, 5], "counts": [9, 2, 2, 2, 5]}}]}]}
        >>> masks, objects = proposals_to_masks(p, 2, 4, 5)
        >>> int(masks[0].sum()), int(masks[1].sum()), objects[0]["shape"]
        (0, 4, 'cube')
    """
    frames = proposals.get("frames")
    if not isinstance(frames, list):
        raise ValueError("proposals: expected a 'frames' list")
    masks = np.zeros((num_frames, height, width), np.int32)
    ids: dict[Any, int] = {}
    objects: list[dict[str, Any]] = []
    for pos, frame in enumerate(frames):
        t = int(frame.get("frame_index", pos))
        if not 0 <= t < num_frames:
            continue
        for j, obj in enumerate(frame.get("objects", [])):
            m = decode_rle(obj["mask"])
            if m.shape != (height, width):
                raise ValueError(f"frame {t} object {j}: expected a {height}x{width} mask, got {m.shape}")
            key = object_key(obj) or ("frame", t, j)
            if key not in ids:
                ids[key] = len(ids) + 1
                objects.append({"id": ids[key], **{k: obj[k] for k in ("color", "material", "shape") if k in obj}})
            masks[t][m] = ids[key]
    return masks, objects


def _index_of(path: Path) -> int | None:
    found = _INDEX.findall(path.stem)
    return int(found[-1]) if found else None


def load_clevrer_video(video_path: str | Path, proposal_path: str | Path | None) -> Clip:
    """One CLEVRER video with masks from its proposals file (None: no masks)."""
    frames, fps = read_video(video_path)
    masks, objects = None, []
    if proposal_path is not None:
        proposals = json.loads(Path(proposal_path).read_text())
        masks, objects = proposals_to_masks(proposals, *frames.shape[:3])
    return Clip(frames=frames, masks=masks, name=Path(video_path).stem, fps=fps, objects=objects)


def load_clevrer(
    video_dir: str | Path,
    proposals_dir: str | Path | None,
    indices: Sequence[int] | None = None,
    limit: int | None = None,
) -> list[Clip]:
    """CLEVRER clips (video index order) from ``video_dir`` (searched recursively).

    Args:
        video_dir: folder holding ``video_XXXXX.mp4`` files.
        proposals_dir: folder holding ``proposal_XXXXX.json``; ``None`` reads videos only.
        indices: video indices to read (default: all found).
        limit: read at most this many videos.

    Raises:
        FileNotFoundError: no video, or a requested proposals file is missing.
    """
    videos = {_index_of(p): p for p in Path(video_dir).rglob("video_*.mp4")}
    videos.pop(None, None)
    if not videos:
        raise FileNotFoundError(f"{video_dir}: expected video_XXXXX.mp4 files, found none")
    proposals: dict[int | None, Path] = {}
    if proposals_dir is not None:
        proposals = {_index_of(p): p for p in Path(proposals_dir).rglob("*.json")}
    wanted = sorted(videos) if indices is None else list(indices)
    clips = []
    for idx in wanted[:limit]:
        if idx not in videos:
            raise FileNotFoundError(f"video index {idx}: expected video_{idx:05d}.mp4 in {video_dir}")
        prop = None
        if proposals_dir is not None:
            if idx not in proposals:
                raise FileNotFoundError(f"video index {idx}: expected proposal_{idx:05d}.json in {proposals_dir}")
            prop = proposals[idx]
        clips.append(load_clevrer_video(videos[idx], prop))
    return clips
