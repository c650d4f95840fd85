"""Calls into a plugin while it is in use: what a plugin method raises becomes one PluginError
naming the plugin, its distribution and the method.

``with plugin_call(featurizer, "featurize"): values = featurizer.featurize(workload)`` lets a
LennaError the plugin raised pass as it is (its message is meant for the user), and so
``KeyboardInterrupt``, ``MemoryError`` and the OS errors that are the host's limits
(``HOST_LIMITS``; the CLI names those); anything else, ``SystemExit`` included, becomes
:class:`PluginFailed`: ``featurizer 'x' from dist 1.0 failed in featurize: RuntimeError:
first line``. The block should hold the plugin call and what checks its result, no other
core code; an ``except LennaError`` that skips bad input belongs inside it, where a
PluginFailed cannot reach it.
"""

from __future__ import annotations

from types import MethodType, TracebackType

from lenna_core.errors import LennaError, PluginError, error_line
from lenna_core.host_limits import HOST_LIMITS
from lenna_core.plugins.loading import PLUGIN_FAILURES, PluginOrigin

_ORIGINS: dict[int, tuple[type, str, PluginOrigin]] = {}
"""id of each registered plugin class -> the class, its kind and where it came from."""


class PluginFailed(PluginError):
    """A plugin method raised ``error``, which is not a LennaError."""

    def __init__(self, message: str, error: BaseException) -> None:
        super().__init__(message)
        self.error = error


def remember_origin(kind: str, cls: type, origin: PluginOrigin) -> None:
    """Record the kind and origin of a registered class, for the messages of its failures."""
    _ORIGINS[id(cls)] = (cls, kind, origin)


def describe(plugin: object) -> str:
    """``KIND 'NAME' from DIST VERSION`` for a registered plugin class, one of its instances or
    a method bound to either; ``plugin 'NAME'`` for any other."""
    if isinstance(plugin, MethodType):
        plugin = plugin.__self__
    cls = plugin if isinstance(plugin, type) else type(plugin)
    try:
        name = getattr(cls, "name", None)
    except PLUGIN_FAILURES:
        name = None
    name = name if isinstance(name, str) else cls.__qualname__
    entry = _ORIGINS.get(id(cls))
    if entry is None or entry[0] is not cls:
        return f"plugin '{name}'"
    _, kind, origin = entry
    return f"{kind} '{name}' from {origin.distribution} {origin.version}"


def _passes(error: BaseException) -> bool:
    """Whether ``error`` leaves a plugin call as it is."""
    return (not isinstance(error, PLUGIN_FAILURES) or isinstance(error, LennaError | MemoryError)
            or (isinstance(error, OSError) and error.errno in HOST_LIMITS))


class plugin_call:  # noqa: N801 - a context manager, named like contextlib.suppress
    """``with plugin_call(plugin, "method"):`` turns a failure of the plugin's code inside the
    block into :class:`PluginFailed` (see the module's docstring). Its cost is that of a
    ``with`` statement, so it may wrap each call of a loop."""

    __slots__ = ("plugin", "method")

    def __init__(self, plugin: object, method: str) -> None:
        self.plugin = plugin
        self.method = method

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> bool:
        if error is None or _passes(error):
            return False
        raise PluginFailed(f"{describe(self.plugin)} failed in {self.method}: {error_line(error)}",
                           error) from error
