"""The one place where MAGICAL and pymunk are made importable: Python 3.11/3.12 shims and headless rendering.

MAGICAL (``magical-il``) pins old libraries: pymunk 5.6 looks up ``collections.Sequence`` and
friends, which Python 3.10 removed, and imports ``imp``, which Python 3.12 removed; MAGICAL's
renderer opens a pyglet window, which needs a display unless pyglet runs headless on EGL.
:func:`import_pymunk` applies the two shims; :func:`import_magical` does that, then sets up
headless pyglet, before ``magical``/``pyglet`` are imported, and registers MAGICAL's old-gym ids.
Everything in mint_rl that touches pymunk or MAGICAL goes through them.

Headless mode is on by default; set the environment variable ``MINT_RL_HEADLESS=0`` before the
first MAGICAL environment is made to use a normal display instead (e.g. to watch an episode).

Rendering is the larger half of a MAGICAL step, so :func:`import_magical` also turns off two
costs that do not change a pixel (:func:`fast_rendering_defaults`): pyglet's check of
``glGetError`` after every GL call (its ``debug_gl`` option; MAGICAL draws with hundreds of
immediate-mode calls per frame) and Mesa llvmpipe's rasteriser threads (``LP_NUM_THREADS=0``:
a 96x96 frame is too small to share out, and the BC workers already use every core). On the
2-core machine a 25-env MoveToCorner step went from 6.8 to 5.9 ms per frame with the first, and
two such processes side by side from 4.1-4.9 to 3.1-4.4 ms per frame with both (noisy shared
host); the frames are byte-identical. Setting ``PYGLET_DEBUG_GL`` or ``LP_NUM_THREADS`` in the
environment keeps your value.
"""

from __future__ import annotations

import collections
import collections.abc
import contextlib
import ctypes
import ctypes.util
import io
import os
import sys
import warnings
from types import ModuleType

__all__ = ["import_magical", "import_pymunk", "headless_enabled", "fast_rendering_defaults", "HEADLESS_ENV_VAR"]

#: Environment variable switching headless (EGL) rendering; "0"/"false"/"no" turn it off.
HEADLESS_ENV_VAR = "MINT_RL_HEADLESS"

_SHIM_NAMES = ("Sequence", "Mapping", "MutableMapping", "Iterable", "Callable")
_EGL_SONAMES = ("libEGL.so.1", "libEGL.so")


def headless_enabled() -> bool:
    """Whether MAGICAL renders headless (EGL), as set by ``MINT_RL_HEADLESS`` (default on).

    Example:
        >>> isinstance(headless_enabled(), bool)
        True
    """
    value = os.environ.get(HEADLESS_ENV_VAR, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def _apply_collections_shim() -> None:
    for name in _SHIM_NAMES:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


def _apply_imp_shim() -> None:
    """Python 3.12 removed ``imp``, which pymunk 5.6 imports to look up ``imp.is_frozen``; give it
    a stand-in module with that one function (from ``_imp``) when ``imp`` does not exist."""
    if sys.modules.get("imp") is not None:
        return
    try:
        import imp  # noqa: F401  (Python <= 3.11: the real module)
    except ModuleNotFoundError:
        import _imp

        stand_in = ModuleType("imp", "stand-in for the removed imp module (mint_rl, for pymunk 5.6)")
        stand_in.is_frozen = _imp.is_frozen  # type: ignore[attr-defined]
        sys.modules["imp"] = stand_in


def import_pymunk() -> ModuleType:
    """Import pymunk 5.6 (MAGICAL's physics, also the CLEVRER-like generator's) on Python 3.11
    and 3.12: shims applied, its import banner and ``imp`` deprecation warning kept quiet.

    Example:
        >>> import_pymunk().version.startswith("5.")
        True
    """
    _apply_collections_shim()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings("ignore", message=".*imp module is deprecated.*", category=DeprecationWarning)
        _apply_imp_shim()
        import pymunk
    return pymunk


def _check_egl() -> None:
    """Raise a clear error when the EGL library that headless pyglet needs is missing."""
    errors = []
    for soname in _EGL_SONAMES:
        try:
            ctypes.CDLL(soname)
            return
        except OSError as exc:  # pragma: no cover - depends on the machine
            errors.append(f"{soname}: {exc}")
    found = ctypes.util.find_library("EGL")  # pragma: no cover
    raise RuntimeError(  # pragma: no cover
        "Headless MAGICAL rendering needs the system library libEGL (EGL, e.g. Mesa's "
        "libegl1 / libegl-mesa0 packages on Debian/Ubuntu), which could not be loaded "
        f"({'; '.join(errors)}; find_library('EGL') -> {found!r}). Install it, or set "
        f"{HEADLESS_ENV_VAR}=0 to render on a display (X server or Xvfb)."
    )


def _configure_pyglet_headless() -> None:
    if "pyglet" in sys.modules:
        import pyglet

        if not pyglet.options.get("headless", False) and "pyglet.window" in sys.modules:
            raise RuntimeError(
                "pyglet was already imported with a window backend before MAGICAL was set up "
                "headless; import mint_rl.envs (or make the MAGICAL env) before using pyglet, or "
                f"set {HEADLESS_ENV_VAR}=0 to use the display."
            )
        pyglet.options["headless"] = True
    else:
        os.environ.setdefault("PYGLET_HEADLESS", "True")
        import pyglet

        pyglet.options["headless"] = True


def fast_rendering_defaults() -> dict[str, object]:
    """pyglet without per-call GL error checks and Mesa llvmpipe without rasteriser threads,
    unless the environment sets ``PYGLET_DEBUG_GL`` / ``LP_NUM_THREADS`` (see the module docstring).

    Call before ``pyglet.gl`` is imported and the first GL context is made (``import_magical``
    does). Returns what is in effect.

    Example:
        >>> sorted(fast_rendering_defaults())
        ['LP_NUM_THREADS', 'debug_gl']
    """
    import pyglet

    if "PYGLET_DEBUG_GL" not in os.environ and "pyglet.gl" not in sys.modules:
        pyglet.options["debug_gl"] = False
    os.environ.setdefault("LP_NUM_THREADS", "0")
    return {"debug_gl": pyglet.options["debug_gl"], "LP_NUM_THREADS": os.environ["LP_NUM_THREADS"]}


def import_magical() -> ModuleType:
    """Import ``magical`` ready for use on Python 3.11 and 3.12, headless by default, ids registered.

    Returns:
        The ``magical`` module, after ``magical.register_envs()``.

    Raises:
        RuntimeError: headless mode is on and libEGL cannot be loaded (the message names it).

    Example:
        >>> magical = import_magical()
        >>> "MoveToCorner-Demo-v0" in magical.ALL_REGISTERED_ENVS
        True
    """
    if "magical" in sys.modules and getattr(import_magical, "_done", False):
        return sys.modules["magical"]
    import_pymunk()
    if headless_enabled():
        _check_egl()
        _configure_pyglet_headless()
    fast_rendering_defaults()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        import magical
        import magical.base_env  # noqa: F401  (the physics side of MAGICAL; pymunk is already imported)

    magical.register_envs()
    import_magical._done = True  # type: ignore[attr-defined]
    return magical
