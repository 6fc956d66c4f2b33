"""mint_rl.data: video clips (CLEVRER-like generator, real CLEVRER, user videos) and datasets.

Every source yields :class:`Clip` objects (frames ``(T, H, W, 3)`` uint8, optional instance
masks ``(T, H, W)``); :class:`VideoWindowDataset` turns clips into training windows.
"""

from mint_rl.data.clevrer import decode_rle, load_clevrer, load_clevrer_video
from mint_rl.data.clip import Clip
from mint_rl.data.datasets import VideoWindowDataset, split_by_video
from mint_rl.data.io import (
    ClipFormatError,
    clips_from_arrays,
    load_clip,
    load_clip_dir,
    load_video_folder,
    read_video,
    save_clip,
)
from mint_rl.data.synthetic import (
    CLEVRER_LIKE_PRESETS,
    ClevrerLikeConfig,
    clevrer_like_preset,
    generate_clip,
)

__all__ = [
    "CLEVRER_LIKE_PRESETS",
    "ClipFormatError",
    "ClevrerLikeConfig",
    "Clip",
    "VideoWindowDataset",
    "clevrer_like_preset",
    "clips_from_arrays",
    "decode_rle",
    "generate_clip",
    "load_clevrer",
    "load_clevrer_video",
    "load_clip",
    "load_clip_dir",
    "load_video_folder",
    "read_video",
    "save_clip",
    "split_by_video",
]
