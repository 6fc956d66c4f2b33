"""The one place where MAGICAL is made importable: Python 3.11 shim and headless rendering.

MAGICAL (``magical-il``) pins old libraries: pymunk 5.6 looks up ``collections.Sequence`` and
friends, which Python 3.10 removed, and its renderer opens a pyglet window, which needs a display
unless pyglet runs headless on EGL. :func:`import_magical` fixes both, in this order, before
``magical``/``pymunk``/``pyglet`` are imported, then registers MAGICAL's old-gym ids. Everything
in :mod:`mint_rl.envs` that touches MAGICAL goes through it.

Headless mode is on by default; set the environment variable ``MINT_RL_HEADLESS=0`` before the
first MAGICAL environment is made to use a normal display instead (e.g. to watch an episode).
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

__all__ = ["import_magical", "headless_enabled", "HEADLESS_ENV_VAR"]

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


def import_magical() -> ModuleType:
    """Import ``magical`` ready for use on Python 3.11, headless by default, ids registered.

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
    _apply_collections_shim()
    if headless_enabled():
        _check_egl()
        _configure_pyglet_headless()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        # pymunk 5.6 imports the deprecated `imp` module (harmless on 3.11) and prints a
        # "Loading chipmunk ..." line on import; keep both out of the user's output
        warnings.filterwarnings("ignore", message=".*imp module is deprecated.*", category=DeprecationWarning)
        import magical
        import magical.base_env  # noqa: F401  (imports pymunk now, under this filter)

    magical.register_envs()
    import_magical._done = True  # type: ignore[attr-defined]
    return magical
