"""mint_rl: MINT (Maximum Information keypoiNTs) keypoints for RL and imitation learning."""

__version__ = "0.1.0"

from mint_rl._ext import has_extension  # noqa: E402

__all__ = ["__version__", "has_extension"]
