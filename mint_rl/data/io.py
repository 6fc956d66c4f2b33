"""Reading and writing clips: mint_rl's clip directory format and folders of ordinary videos.

Clip directory format (``CLIP_FORMAT_VERSION`` = 1), one pair of files per clip:

- ``<name>.npz`` (compressed): ``frames (T, H, W, 3) uint8`` unless the frames live in a
  separate ``frames_file`` (``<name>.frames.npy``, uncompressed and memory-mappable, or
  ``<name>.mp4``, lossy), optionally ``masks (T, H, W)`` (uint8 when ids fit, else int32),
  and each track as ``track_<key>``;
- ``<name>.json``: ``{"format": "mint_rl.clip", "version": 1, "name", "fps", "num_frames",
  "height", "width", "has_masks", "objects": [...], "tracks": [keys], "frames_file": null |
  "<name>.frames.npy" | "<name>.mp4"}``;
- optionally ``dataset.json`` describing how the directory was made (generator config, seeds).

Reading a clip whose files are corrupt, truncated, missing or incomplete raises one error type,
:class:`ClipFormatError` (a ``ValueError``), whose message names the file.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from mint_rl.data.clip import Clip
from mint_rl.video import FFMPEG_SUFFIXES, read_video, require_ffmpeg, to_rgb_uint8, write_video

CLIP_FORMAT_VERSION = 1
FRAMES_FORMATS: tuple[str, ...] = ("npz", "npy", "mp4")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".gif", ".mov", ".mkv", ".webm")


def save_clip(clip: Clip, directory: str | Path, frames_format: str = "npz") -> tuple[Path, Path]:
    """Write ``clip`` as ``<name>.npz`` + ``<name>.json`` under ``directory`` (created).

    ``frames_format``: ``"npz"`` stores the frames losslessly in the npz (about 35 MB for a
    128-frame 480x320 clip: sensor noise compresses badly; slow to write); ``"npy"`` writes them
    uncompressed to ``<name>.frames.npy`` (59 MB, fast, memory-mapped by ``load_clip(mmap=True)``,
    the choice for large datasets); ``"mp4"`` writes ``<name>.mp4`` (H.264, lossy like real
    CLEVRER, about 3 MB). Masks and tracks always go to the npz.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> npz, meta = save_clip(Clip(np.zeros((2, 4, 4, 3), np.uint8), name="a"), d)
        >>> load_clip(meta).frames.shape
        (2, 4, 4, 3)
    """
    if not isinstance(clip, Clip):
        raise TypeError(f"clip: expected Clip, got {type(clip).__name__}")
    if not clip.name or "/" in clip.name:
        raise ValueError(f"clip.name: expected a non-empty file stem, got {clip.name!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if frames_format not in FRAMES_FORMATS:
        raise ValueError(f"frames_format: expected one of {FRAMES_FORMATS}, got {frames_format!r}")
    arrays: dict[str, np.ndarray] = {}
    frames_file = None
    if frames_format == "npz":
        arrays["frames"] = clip.frames
    elif frames_format == "npy":
        frames_file = f"{clip.name}.frames.npy"
        np.save(directory / frames_file, np.ascontiguousarray(clip.frames))
    else:
        frames_file = f"{clip.name}.mp4"
        write_video(clip.frames, directory / frames_file, fps=clip.fps)
    if clip.masks is not None:
        small = clip.masks.size == 0 or int(clip.masks.max()) < 256
        arrays["masks"] = clip.masks.astype(np.uint8 if small else np.int32)
    for key, value in clip.tracks.items():
        arrays[f"track_{key}"] = np.asarray(value)
    npz_path = directory / f"{clip.name}.npz"
    json_path = directory / f"{clip.name}.json"
    np.savez_compressed(npz_path, **arrays)
    meta = {
        "format": "mint_rl.clip", "version": CLIP_FORMAT_VERSION, "name": clip.name,
        "fps": float(clip.fps), "num_frames": len(clip), "height": clip.height,
        "width": clip.width, "has_masks": clip.masks is not None, "objects": clip.objects,
        "tracks": sorted(clip.tracks), "frames_file": frames_file,
    }
    json_path.write_text(json.dumps(meta, indent=1))
    return npz_path, json_path


class ClipFormatError(ValueError):
    """A clip file exists but cannot be read: corrupt or truncated JSON/npz/npy, a missing
    ``.npz`` or frames file, missing entries, or contents that disagree with the metadata.
    The message names the file."""


#: Metadata entries every clip ``.json`` must hold (:func:`save_clip` writes them all).
_REQUIRED_META = ("format", "version", "name", "fps", "num_frames", "height", "width")
_NPZ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError)


def _read_meta(json_path: Path) -> dict[str, Any]:
    """The checked metadata of a clip's ``.json`` (format, version and required entries)."""
    if not json_path.is_file():
        raise FileNotFoundError(f"clip metadata: expected an existing file, got {json_path}")
    try:
        meta = json.loads(json_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClipFormatError(f"{json_path}: expected clip metadata in JSON, got unreadable text "
                              f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(meta, dict):
        raise ClipFormatError(f"{json_path}: expected a JSON object, got {type(meta).__name__}")
    if meta.get("format") != "mint_rl.clip":
        raise ClipFormatError(f"{json_path}: expected format 'mint_rl.clip', got {meta.get('format')!r}")
    if meta.get("version") != CLIP_FORMAT_VERSION:
        raise ClipFormatError(f"{json_path}: expected version {CLIP_FORMAT_VERSION}, got {meta.get('version')!r}")
    missing = [k for k in _REQUIRED_META if k not in meta]
    if missing:
        raise ClipFormatError(f"{json_path}: expected the entries {list(_REQUIRED_META)}, missing {missing}")
    sizes = ("num_frames", "height", "width")
    bad = {k: meta[k] for k in sizes if isinstance(meta[k], bool) or not isinstance(meta[k], int) or meta[k] < 0}
    if bad:
        raise ClipFormatError(f"{json_path}: expected non-negative integers for {list(sizes)}, got {bad}")
    return meta


def _read_npz(npz_path: Path) -> dict[str, np.ndarray]:
    """Every array of a clip's ``.npz`` (read and CRC-checked now, no pickles)."""
    if not npz_path.is_file():
        raise ClipFormatError(f"{npz_path}: expected the clip's arrays next to its .json, the file does not exist")
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except _NPZ_ERRORS as exc:
        raise ClipFormatError(f"{npz_path}: corrupted or truncated clip arrays ({type(exc).__name__}: {exc})") from exc


def _read_frames_file(json_path: Path, meta: dict[str, Any], mmap: bool) -> np.ndarray:
    """The frames of a clip stored in ``meta["frames_file"]`` (``.npy`` or a video)."""
    frames_file = meta.get("frames_file")
    if not frames_file:
        raise ClipFormatError(f"{json_path}: expected frames in the npz or a 'frames_file', got neither")
    path = json_path.parent / str(frames_file)
    if not path.is_file():
        raise ClipFormatError(f"{json_path}: expected its frames file {path}, the file does not exist")
    try:
        if path.suffix == ".npy":
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        frames, _ = read_video(path)
    except (OSError, ValueError, EOFError, RuntimeError) as exc:
        raise ClipFormatError(f"{path}: corrupted or truncated frames ({type(exc).__name__}: {exc})") from exc
    return frames[: meta["num_frames"], : meta["height"], : meta["width"]]  # mp4 pads odd sizes


def load_clip(json_path: str | Path, mmap: bool = False) -> Clip:
    """Read one clip from its ``.json`` metadata file (the ``.npz`` lies next to it).

    Everything is checked against the metadata: the frames' shape ``(num_frames, height,
    width, 3)`` uint8, the masks when ``has_masks``, every listed track.

    Args:
        mmap: memory-map frames stored as ``.frames.npy`` (read-only; windows are read on access).

    Raises:
        FileNotFoundError: no ``.json`` at ``json_path``.
        ClipFormatError: (a ``ValueError``) anything else wrong with the clip's files; the
            message names the file.
    """
    json_path = Path(json_path)
    meta = _read_meta(json_path)
    npz_path = json_path.with_suffix(".npz")
    arrays = _read_npz(npz_path)
    frames = arrays["frames"] if "frames" in arrays else _read_frames_file(json_path, meta, mmap)
    masks = arrays.get("masks")
    tracks = {k[len("track_"):]: v for k, v in arrays.items() if k.startswith("track_")}
    if meta.get("has_masks") and masks is None:
        raise ClipFormatError(f"{npz_path}: expected 'masks' (the metadata says has_masks), got only {sorted(arrays)}")
    missing = sorted(set(meta.get("tracks", [])) - set(tracks))
    if missing:
        raise ClipFormatError(f"{npz_path}: expected the tracks {meta.get('tracks')} of the metadata, "
                              f"missing {['track_' + k for k in missing]}")
    want = (meta["num_frames"], meta["height"], meta["width"], 3)
    if tuple(frames.shape) != tuple(want) or frames.dtype != np.uint8:
        raise ClipFormatError(f"{json_path}: expected uint8 frames of shape {want} (from the metadata), "
                              f"got {frames.dtype} {tuple(frames.shape)}")
    try:
        return Clip(frames=frames, masks=masks, name=meta["name"], fps=meta["fps"],
                    objects=meta.get("objects", []), tracks=tracks)
    except (TypeError, ValueError) as exc:
        raise ClipFormatError(f"{npz_path}: {exc}") from exc


def clip_files(directory: str | Path) -> list[Path]:
    """The clip metadata files of a clip directory, sorted by name.

    A folder is a clip directory when it holds ``dataset.json`` or at least one
    ``<name>.json`` + ``<name>.npz`` pair; there every other ``*.json`` is a clip too, and one
    whose ``.npz`` is missing is an error. Any other folder (e.g. a user's videos with a JSON
    note) has no clip files: ``[]``.

    Raises:
        FileNotFoundError: ``directory`` is not a folder.
        ClipFormatError: a clip directory with a ``<name>.json`` whose ``<name>.npz`` is missing.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"clip directory: expected an existing folder, got {directory}")
    metas = sorted(p for p in directory.glob("*.json") if p.name != "dataset.json")
    complete = [p for p in metas if p.with_suffix(".npz").exists()]
    if complete or (directory / "dataset.json").is_file():
        orphans = [p for p in metas if p not in complete]
        if orphans:
            raise ClipFormatError(f"{orphans[0].with_suffix('.npz')}: expected the arrays of clip {orphans[0]}, "
                                  f"the file does not exist ({len(orphans)} clip(s) of {directory} lack their .npz)")
    return complete


def load_clip_dir(directory: str | Path, limit: int | None = None, mmap: bool = False) -> list[Clip]:
    """All clips of a directory written by :func:`save_clip` (e.g. ``scripts/make_clevrer_like.py``).

    Masks keep their stored dtype (uint8 for fewer than 256 ids). ``mmap=True`` memory-maps
    frames stored as ``.npy`` (see :func:`save_clip`), so large datasets need little RAM.

    Raises:
        FileNotFoundError: not a folder, or no clip in it.
        ClipFormatError: a clip that cannot be read (:func:`load_clip`), or a ``.json`` without its ``.npz``.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> for i in range(3): _ = save_clip(Clip(np.zeros((2, 4, 4, 3), np.uint8), name=f"c{i}"), d)
        >>> [c.name for c in load_clip_dir(d)]
        ['c0', 'c1', 'c2']
    """
    files = clip_files(directory)
    if not files:
        raise FileNotFoundError(f"{directory}: expected <name>.json + <name>.npz clip files, found none")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit: expected None or an integer >= 1, got {limit!r}")
    return [load_clip(p, mmap=mmap) for p in files[:limit]]


def write_dataset_info(directory: str | Path, info: dict[str, Any]) -> Path:
    """Write ``dataset.json`` (with the format version) describing a clip directory."""
    path = Path(directory) / "dataset.json"
    path.write_text(json.dumps({"format": "mint_rl.clip_dir", "version": CLIP_FORMAT_VERSION, **info},
                               indent=1))
    return path


def load_video_folder(
    directory: str | Path, extensions: Iterable[str] = VIDEO_EXTENSIONS, max_frames: int | None = None
) -> list[Clip]:
    """Every video file of ``directory`` (sorted by name) as a mask-less :class:`Clip`."""
    directory = Path(directory)
    exts = {e.lower() for e in extensions}
    paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in exts) if directory.is_dir() else []
    if not paths:
        raise FileNotFoundError(f"{directory}: expected video files with extensions {sorted(exts)}, found none")
    clips = []
    for p in paths:
        frames, fps = read_video(p, max_frames)
        clips.append(Clip(frames=frames, name=p.stem, fps=fps))
    return clips


def clips_from_arrays(arrays: Sequence[np.ndarray], prefix: str = "clip") -> list[Clip]:
    """Wrap ``(T, H, W, 3)`` uint8 arrays (e.g. MAGICAL rollouts) as clips named ``prefix_00000``...

    Example:
        >>> [c.name for c in clips_from_arrays([np.zeros((2, 4, 4, 3), np.uint8)] * 2)]
        ['clip_00000', 'clip_00001']
    """
    return [Clip(frames=np.asarray(a), name=f"{prefix}_{i:05d}") for i, a in enumerate(arrays)]
