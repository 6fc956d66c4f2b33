"""mint_rl: MINT (Maximum Information keypoiNTs) keypoints for RL and imitation learning."""

__version__ = "0.1.0"

from mint_rl._ext import has_extension  # noqa: E402
from mint_rl.envs.registry import register_gymnasium_ids as _register_magical_ids  # noqa: E402

_register_magical_ids()  # gymnasium ids "magical/<id>"; lazy: MAGICAL is imported on make()

__all__ = ["__version__", "has_extension"]
