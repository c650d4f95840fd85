"""Build the pluggy plugin manager: entry points of group ``lenna``, each loaded in isolation."""

from __future__ import annotations

import difflib
import os
import sys
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

import attrs
import pluggy

from lenna_core.errors import PluginError
from lenna_core.plugins import hookspecs

ENTRY_POINT_GROUP = "lenna"


@attrs.frozen
class PluginOrigin:
    """Where a registered plugin module came from."""

    distribution: str
    version: str


@attrs.frozen
class BrokenPlugin:
    """An entry point that failed to load, shown by ``lenna plugins``."""

    name: str
    distribution: str
    version: str
    reason: str


@attrs.define
class LoadedPlugins:
    """The plugin manager together with the origins of its plugins and the broken ones."""

    manager: pluggy.PluginManager
    origins: dict[str, PluginOrigin] = attrs.field(factory=dict)
    broken: list[BrokenPlugin] = attrs.field(factory=list)


def _origin(ep: EntryPoint) -> PluginOrigin:
    dist = ep.dist
    if dist is None:
        return PluginOrigin("unknown", "?")
    return PluginOrigin(dist.metadata["Name"] or dist.name, dist.version)


def _first_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> str:
    """The one-line reason naming the hooks of ``plugin`` that LENNA does not have."""
    known = list(hookspecs.KIND_HOOKS.values())
    names = []
    for caller in pm.get_hookcallers(plugin) or ():
        if caller.has_spec() or all(impl.optionalhook for impl in caller.get_hookimpls()
                                    if impl.plugin is plugin):
            continue
        close = difflib.get_close_matches(caller.name, known, n=1)
        names.append(f"'{caller.name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    return f"unknown hook{'s' if len(names) > 1 else ''} {', '.join(sorted(names))}"


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> str | None:
    """Register ``plugin``; return why it cannot be used, or None. A hook LENNA does not have
    (a misspelt name, which pluggy would ignore) makes the whole plugin unusable."""
    try:
        pm.register(plugin, name=name)
    except Exception as exc:  # noqa: BLE001 - any plugin failure is isolated
        return _first_line(exc)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        reason = _unknown_hooks(pm, plugin)
        pm.unregister(plugin)
        return reason
    return None


def _record(loaded: LoadedPlugins, name: str, key: str, origin: PluginOrigin,
            reason: str | None, strict: bool) -> None:
    """Keep the origin of a registered plugin, or report one that failed as broken."""
    if reason is None:
        loaded.origins[key] = origin
        return
    message = (f"plugin '{name}' from {origin.distribution} {origin.version} "
               f"failed to load: {reason}")
    if strict:
        raise PluginError(message)
    print(f"warning: {message} (LENNA_STRICT_PLUGINS=1 makes this fatal)", file=sys.stderr)
    loaded.broken.append(BrokenPlugin(name, origin.distribution, origin.version, reason))


def load_plugins(
    extra: dict[str, ModuleType | object] | None = None, *, use_entry_points: bool = True
) -> LoadedPlugins:
    """Create a fresh plugin manager, load every ``lenna`` entry point and register ``extra``.

    ``extra`` maps a plugin name to a module or object with ``@hookimpl`` functions (tests
    register fakes this way). A plugin that fails to load or implements a hook LENNA does not
    have becomes a one-line warning and a :class:`BrokenPlugin`; with
    ``LENNA_STRICT_PLUGINS=1`` it raises PluginError instead.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    loaded = LoadedPlugins(pm)
    strict = os.environ.get("LENNA_STRICT_PLUGINS", "") not in ("", "0")
    if use_entry_points:
        seen: set[tuple[str, str]] = set()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            origin = _origin(ep)
            if (origin.distribution, ep.name) in seen:
                continue  # the same distribution visible twice on sys.path
            seen.add((origin.distribution, ep.name))
            key = f"{origin.distribution}:{ep.name}"
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - any plugin failure is isolated
                reason = _first_line(exc)
            else:
                reason = _register(pm, module, key)
            _record(loaded, ep.name, key, origin, reason, strict)
    for name, plugin in (extra or {}).items():
        _record(loaded, name, name, PluginOrigin(name, "local"), _register(pm, plugin, name),
                strict)
    return loaded
