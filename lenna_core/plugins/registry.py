"""The registry: plugin classes by kind and name, with availability and helpful errors."""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import re
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import attrs

from lenna_core.errors import LennaError, PluginError
from lenna_core.plugins.hookspecs import KIND_HOOKS
from lenna_core.plugins.interfaces import optional
from lenna_core.plugins.loading import LoadedPlugins, PluginOrigin, load_plugins

_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@attrs.frozen
class PluginInfo:
    """One row of ``lenna plugins``."""

    kind: str
    name: str
    distribution: str
    version: str
    available: bool
    reason: str | None
    cls: type | None = attrs.field(default=None, eq=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "distribution": self.distribution,
                "version": self.version, "available": self.available, "reason": self.reason}


def unavailable_reason(cls: type) -> str | None:
    """Why a plugin class cannot be used here, checked without importing any framework."""
    missing = [m for m in optional(cls, "requires") if importlib.util.find_spec(m) is None]
    if missing:
        extra = optional(cls, "extra")
        hint = f": pip install 'lenna[{extra}]'" if extra else ""
        return f"missing {', '.join(missing)}{hint}"
    return optional(cls, "unavailable_reason")()


class Registry:
    """All plugin classes found, keyed by kind then name."""

    def __init__(self, loaded: LoadedPlugins) -> None:
        self.loaded = loaded
        self._entries: dict[str, dict[str, tuple[type, PluginOrigin]]] = {k: {} for k in KIND_HOOKS}
        for kind, hook_name in KIND_HOOKS.items():
            hook = getattr(loaded.manager.hook, hook_name)
            for impl in hook.get_hookimpls():
                origin = loaded.origins.get(impl.plugin_name, PluginOrigin(impl.plugin_name, "?"))
                for cls in impl.function() or ():
                    self._add(kind, cls, origin)

    def _add(self, kind: str, cls: type, origin: PluginOrigin) -> None:
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(
                f"{kind} class {cls.__qualname__} from {origin.distribution} needs a "
                f"lowercase-kebab 'name' attribute, got {name!r}"
            )
        if name in self._entries[kind]:
            other = self._entries[kind][name][1]
            raise PluginError(
                f"{kind} name '{name}' is registered twice: by {other.distribution} "
                f"{other.version} and by {origin.distribution} {origin.version}; "
                "uninstall one of them"
            )
        self._entries[kind][name] = (cls, origin)

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

    def get_available(self, kind: str, name: str) -> type:
        """Like :meth:`get`, and also refuse a plugin whose prerequisites are missing."""
        cls = self.get(kind, name)
        reason = unavailable_reason(cls)
        if reason:
            raise PluginError(f"{kind} '{name}' is unavailable: {reason}")
        return cls

    def create(self, kind: str, name: str, options: Mapping[str, Any] | None = None) -> Any:
        """The available plugin ``name`` of ``kind``, made with ``options``; a bad option is a
        LennaError that lists the valid ones."""
        cls = self.get_available(kind, name)
        options = dict(options or {})
        accepted = [p for p in inspect.signature(cls).parameters
                    if p not in ("self", "args", "kwargs")]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise LennaError(f"{kind} {name} has no option {', '.join(unknown)}; "
                             f"it takes {', '.join(accepted) or 'no options'}")
        try:
            return cls(**options)
        except (TypeError, ValueError) as exc:
            raise LennaError(f"bad option for {kind} {name}: {exc}") from None

    def rows(self) -> list[PluginInfo]:
        rows = []
        for kind, entries in self._entries.items():
            for name, (cls, origin) in sorted(entries.items()):
                reason = unavailable_reason(cls)
                rows.append(PluginInfo(kind, name, origin.distribution, origin.version,
                                       reason is None, reason, cls))
        for broken in self.loaded.broken:
            rows.append(PluginInfo("plugin", broken.name, broken.distribution, broken.version,
                                   False, f"failed to load: {broken.reason}"))
        return rows


def make_registry(extra: dict[str, ModuleType | object] | None = None,
                  *, use_entry_points: bool = True) -> Registry:
    """Load the plugins afresh and index them (the factory every command calls)."""
    return Registry(load_plugins(extra, use_entry_points=use_entry_points))

