"""Loader for the compiled extension ``mint_rl._C`` (csrc/).

Only this module imports ``mint_rl._C``; everything else asks :func:`load_extension`, which
returns ``None`` (and warns once) when the package was installed without the extension.
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Optional

_EXT: Optional[ModuleType] = None
_TRIED = False
_WARNED = False


def load_extension(warn: bool = True) -> Optional[ModuleType]:
    """Return the compiled extension module, or ``None`` when it is not built.

    Args:
        warn: warn (once per process) when the extension is missing.
    """
    global _EXT, _TRIED, _WARNED
    if not _TRIED:
        _TRIED = True
        try:
            import torch  # noqa: F401  (the extension links against libtorch)

            from mint_rl import _C  # type: ignore[attr-defined]

            _EXT = _C
        except ImportError as exc:  # pragma: no cover - depends on the install
            _EXT = None
            _missing_reason[0] = str(exc)
    if _EXT is None and warn and not _WARNED:
        _WARNED = True
        warnings.warn(
            "mint_rl: the compiled extension mint_rl._C is not available "
            f"({_missing_reason[0]}); using the slower pure-torch entropy. Rebuild with "
            "`pip install --no-build-isolation --no-deps -e .` after installing torch.",
            RuntimeWarning,
            stacklevel=3,
        )
    return _EXT


_missing_reason = [""]


def has_extension() -> bool:
    """Whether the compiled extension ``mint_rl._C`` is importable."""
    return load_extension(warn=False) is not None


def has_cuda_kernels() -> bool:
    """Whether the compiled extension was built with its CUDA kernels."""
    ext = load_extension(warn=False)
    return bool(ext is not None and getattr(ext, "with_cuda", lambda: False)())
