"""The registry: plugin classes by kind and name, with availability and helpful errors.

Every call into a plugin that the registry makes is isolated: a hook that raises or returns
something other than well-formed plugin classes, or a name that another plugin took first,
makes its plugin broken (a one-line warning and a row in ``lenna plugins``, or PluginError with
``LENNA_STRICT_PLUGINS=1``) while every other plugin keeps working.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import re
from collections.abc import Mapping
from types import FunctionType, ModuleType
from typing import Any

import attrs

from lenna_core.errors import LennaError, PluginError, error_line
from lenna_core.plugins.calls import remember_origin
from lenna_core.plugins.hookspecs import KIND_HOOKS
from lenna_core.plugins.interfaces import Backend, Estimator, Featurizer, Source, optional
from lenna_core.plugins.loading import (
    PLUGIN_FAILURES,
    LoadedPlugins,
    PluginOrigin,
    load_plugins,
)

_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_PROTOCOLS = {"source": Source, "backend": Backend, "featurizer": Featurizer,
              "estimator": Estimator}


@attrs.frozen
class PluginInfo:
    """One row of ``lenna plugins``; a broken row's reason says what failed."""

    kind: str
    name: str
    distribution: str
    version: str
    available: bool
    reason: str | None
    broken: bool = False
    cls: type | None = attrs.field(default=None, eq=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "distribution": self.distribution,
                "version": self.version, "available": self.available, "reason": self.reason,
                "broken": self.broken}


class _Unusable(Exception):
    """What makes a plugin's classes unusable; its message becomes the plugin's reason."""


def _short(value: object) -> str:
    """``repr(value)``, on one line and at most 60 characters."""
    text = (repr(value).splitlines() or [""])[0]
    return text if len(text) <= 60 else text[:57] + "..."


def _methods(protocol: type) -> list[str]:
    """The public methods a Protocol declares."""
    return [member for member, value in vars(protocol).items() if not member.startswith("_")
            and isinstance(value, FunctionType | classmethod | staticmethod)]


def _check_class(kind: str, cls: object) -> None:
    """Raise _Unusable unless ``cls`` is a class with a lowercase-kebab ``name``, the members
    its kind's Protocol requires and well-typed ``requires``, ``extra`` and
    ``unavailable_reason``; nothing is called or imported."""
    if not isinstance(cls, type):
        raise _Unusable(f"{KIND_HOOKS[kind]}() returned {_short(cls)}, not a class")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise _Unusable(f"{kind} class {cls.__qualname__} needs a lowercase-kebab 'name' "
                        f"attribute, got {_short(name)}")
    protocol = _PROTOCOLS[kind]
    missing = [m for m in protocol.__annotations__ if not hasattr(cls, m)]
    missing += [m for m in _methods(protocol) if not callable(getattr(cls, m, None))]
    if missing:
        raise _Unusable(f"{kind} '{name}' lacks {', '.join(missing)} "
                        f"(see lenna_core.api.{protocol.__name__})")
    requires = optional(cls, "requires")
    if not isinstance(requires, tuple | list) or not all(
            isinstance(module, str) and module for module in requires):
        raise _Unusable(f"{kind} '{name}' has 'requires' {_short(requires)}; it must be a "
                        "tuple of import names")
    extra = optional(cls, "extra")
    if extra is not None and not isinstance(extra, str):
        raise _Unusable(f"{kind} '{name}' has 'extra' {_short(extra)}; it must be a string "
                        "or None")
    if not callable(optional(cls, "unavailable_reason")):
        raise _Unusable(f"{kind} '{name}' has 'unavailable_reason' "
                        f"{_short(optional(cls, 'unavailable_reason'))}; it must be a method")


def unavailable_reason(cls: type) -> str | None:
    """Why a plugin class cannot be used here, checked without importing any framework."""
    missing = [m for m in optional(cls, "requires") if importlib.util.find_spec(m) is None]
    if missing:
        extra = optional(cls, "extra")
        hint = f": pip install 'lenna[{extra}]'" if extra else ""
        return f"missing {', '.join(missing)}{hint}"
    return optional(cls, "unavailable_reason")()


class Registry:
    """All plugin classes found, keyed by kind then name.

    Each plugin's hooks are called one by one, in registration order (the bundled plugins
    first); a plugin whose hook raises, returns malformed classes or a name already taken is
    reported broken and contributes no class at all. With ``LENNA_STRICT_PLUGINS=1`` every
    availability check also runs here, so that a failing one fails every command.
    """

    def __init__(self, loaded: LoadedPlugins) -> None:
        self.loaded = loaded
        self._entries: dict[str, dict[str, tuple[type, PluginOrigin]]] = {k: {} for k in KIND_HOOKS}
        for key, origin in list(loaded.origins.items()):
            try:
                classes = self._classes(key)
                self._check_names(classes, origin)
            except _Unusable as exc:
                loaded.mark_broken(key, str(exc), "failed to register")
                continue
            except PLUGIN_FAILURES as exc:
                loaded.mark_broken(key, f"its classes raised {error_line(exc)}",
                                   "failed to register")
                continue
            for kind, cls in classes:
                self._entries[kind][cls.name] = (cls, origin)
                remember_origin(kind, cls, origin)
        if loaded.strict:
            self.rows()  # runs every availability check: with strict plugins a failing one is fatal

    def _classes(self, key: str) -> list[tuple[str, type]]:
        """Call each hook of the plugin ``key`` and check every class it returns."""
        found = []
        for kind, hook_name in KIND_HOOKS.items():
            for impl in getattr(self.loaded.manager.hook, hook_name).get_hookimpls():
                if impl.plugin_name != key:
                    continue
                try:
                    returned = impl.function()
                except PLUGIN_FAILURES as exc:
                    raise _Unusable(f"{hook_name}() raised {error_line(exc)}") from None
                if returned is None:
                    continue
                if not isinstance(returned, list | tuple):
                    raise _Unusable(f"{hook_name}() returned {type(returned).__name__} "
                                    f"{_short(returned)}, not a list of classes")
                for cls in returned:
                    _check_class(kind, cls)
                    found.append((kind, cls))
        return found

    def _check_names(self, classes: list[tuple[str, type]], origin: PluginOrigin) -> None:
        """Raise _Unusable when one of ``classes`` takes a name already registered."""
        taken = {(kind, name): other for kind, entries in self._entries.items()
                 for name, (_, other) in entries.items()}
        for kind, cls in classes:
            other = taken.get((kind, cls.name))
            if other is origin:
                raise _Unusable(f"{kind} name '{cls.name}' is returned twice by its hooks")
            if other is not None:
                raise _Unusable(
                    f"{kind} name '{cls.name}' is registered twice: by {other.distribution} "
                    f"{other.version} and by {origin.distribution} {origin.version}; "
                    "uninstall one of them"
                )
            taken[kind, cls.name] = origin

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def get(self, kind: str, name: str) -> type:
        """The class registered as ``name``; PluginError lists the names and the closest one."""
        try:
            return self._entries[kind][name][0]
        except KeyError:
            pass
        available = self.names(kind)
        close = difflib.get_close_matches(name, available, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise PluginError(
            f"unknown {kind} '{name}'; available: {', '.join(available) or 'none'}{hint}"
        )

    def _described(self, kind: str, name: str) -> str:
        origin = self._entries[kind][name][1]
        return f"{kind} '{name}' from {origin.distribution} {origin.version}"

    def _availability(self, kind: str, name: str) -> tuple[str | None, bool]:
        """Why the plugin cannot be used here (or None), and whether that is because its
        availability check itself failed, which makes the plugin broken."""
        try:
            reason = unavailable_reason(self._entries[kind][name][0])
        except PLUGIN_FAILURES as exc:
            return f"failed its availability check: {error_line(exc)}", True
        if reason is not None and not isinstance(reason, str):
            return (f"failed its availability check: unavailable_reason() returned "
                    f"{_short(reason)}, not a string or None"), True
        return reason, False

    def get_available(self, kind: str, name: str) -> type:
        """Like :meth:`get`, and also refuse a plugin whose prerequisites are missing or whose
        availability check fails."""
        cls = self.get(kind, name)
        reason, broken = self._availability(kind, name)
        if broken:
            raise PluginError(f"{self._described(kind, name)} {reason}")
        if reason:
            raise PluginError(f"{kind} '{name}' is unavailable: {reason}")
        return cls

    def create(self, kind: str, name: str, options: Mapping[str, Any] | None = None) -> Any:
        """The available plugin ``name`` of ``kind``, made with ``options``; a bad option is a
        LennaError that lists the valid ones, any other failure of the constructor a
        PluginError naming the plugin's distribution."""
        cls = self.get_available(kind, name)
        options = dict(options or {})
        try:
            parameters = inspect.signature(cls).parameters
        except (TypeError, ValueError) as exc:
            raise PluginError(f"{self._described(kind, name)} has no readable constructor "
                              f"signature: {error_line(exc)}") from None
        accepted = [p for p in parameters if p not in ("self", "args", "kwargs")]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise LennaError(f"{kind} {name} has no option {', '.join(unknown)}; "
                             f"it takes {', '.join(accepted) or 'no options'}")
        try:
            return cls(**options)
        except LennaError:
            raise
        except (TypeError, ValueError) as exc:
            raise LennaError(f"bad option for {kind} {name}: {exc}") from None
        except PLUGIN_FAILURES as exc:
            raise PluginError(f"{self._described(kind, name)} failed to start: "
                              f"{error_line(exc)}") from None

    def rows(self) -> list[PluginInfo]:
        """One row per plugin class and per broken plugin. A class whose availability check
        fails is a broken row, or PluginError with ``LENNA_STRICT_PLUGINS=1``."""
        rows = []
        for kind, entries in self._entries.items():
            for name, (cls, origin) in sorted(entries.items()):
                reason, broken = self._availability(kind, name)
                if broken and self.loaded.strict:
                    raise PluginError(f"{self._described(kind, name)} {reason}")
                rows.append(PluginInfo(kind, name, origin.distribution, origin.version,
                                       reason is None, reason, broken, cls))
        for broken_plugin in self.loaded.broken:
            rows.append(PluginInfo("plugin", broken_plugin.name, broken_plugin.distribution,
                                   broken_plugin.version, False,
                                   f"{broken_plugin.failure}: {broken_plugin.reason}", True))
        return rows


def make_registry(extra: dict[str, ModuleType | object] | None = None,
                  *, use_entry_points: bool = True) -> Registry:
    """Load the plugins afresh and index them (the factory every command calls)."""
    return Registry(load_plugins(extra, use_entry_points=use_entry_points))
