"""Build the pluggy plugin manager: entry points of group ``lenna``, each loaded in isolation."""

from __future__ import annotations

import difflib
import os
import sys
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

import attrs
import pluggy

from lenna_core.errors import PluginError, error_line
from lenna_core.plugins import hookspecs

ENTRY_POINT_GROUP = "lenna"
#: What plugin code may raise that LENNA isolates: anything but KeyboardInterrupt.
PLUGIN_FAILURES = (Exception, SystemExit)
#: The distribution of the bundled plugins, registered first so that no other takes their names.
CORE_DISTRIBUTION = "lenna"


@attrs.frozen
class PluginOrigin:
    """Where a registered plugin module came from: its entry point name and distribution."""

    name: str
    distribution: str
    version: str


@attrs.frozen
class BrokenPlugin:
    """A plugin that failed to load or to register its classes, shown by ``lenna plugins``."""

    name: str
    distribution: str
    version: str
    reason: str
    failure: str = "failed to load"

    def message(self) -> str:
        """The one line naming the plugin, its distribution and what went wrong."""
        return (f"plugin '{self.name}' from {self.distribution} {self.version} "
                f"{self.failure}: {self.reason}")


def strict_plugins() -> bool:
    """Whether ``LENNA_STRICT_PLUGINS`` makes a broken plugin fatal."""
    return os.environ.get("LENNA_STRICT_PLUGINS", "") not in ("", "0")


@attrs.define
class LoadedPlugins:
    """The plugin manager together with the origins of its plugins and the broken ones.

    ``origins`` maps each registered plugin's key to its origin, in registration order.
    """

    manager: pluggy.PluginManager
    origins: dict[str, PluginOrigin] = attrs.field(factory=dict)
    broken: list[BrokenPlugin] = attrs.field(factory=list)
    strict: bool = False

    def report(self, broken: BrokenPlugin) -> None:
        """Keep ``broken`` for ``lenna plugins`` after a one-line warning; with strict plugins,
        raise PluginError instead."""
        if self.strict:
            raise PluginError(broken.message())
        print(f"warning: {broken.message()} (LENNA_STRICT_PLUGINS=1 makes this fatal)",
              file=sys.stderr)
        self.broken.append(broken)

    def mark_broken(self, key: str, reason: str, failure: str) -> None:
        """Unregister the plugin ``key`` and report it as broken."""
        origin = self.origins.pop(key)
        self.manager.unregister(name=key)
        self.report(BrokenPlugin(origin.name, origin.distribution, origin.version, reason,
                                 failure))


def _origin(ep: EntryPoint) -> PluginOrigin:
    dist = ep.dist
    if dist is None:
        return PluginOrigin(ep.name, "unknown", "?")
    return PluginOrigin(ep.name, dist.metadata["Name"] or dist.name, dist.version)


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
    except PLUGIN_FAILURES as exc:
        return error_line(exc)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        reason = _unknown_hooks(pm, plugin)
        pm.unregister(plugin)
        return reason
    return None


def _record(loaded: LoadedPlugins, key: str, origin: PluginOrigin, reason: str | None) -> None:
    """Keep the origin of a registered plugin, or report one that failed as broken."""
    if reason is None:
        loaded.origins[key] = origin
    else:
        loaded.report(BrokenPlugin(origin.name, origin.distribution, origin.version, reason))


def _entry_points() -> list[tuple[EntryPoint, PluginOrigin]]:
    """The ``lenna`` entry points with their origins, the bundled distribution's first, the
    others in the order Python finds them."""
    found = [(ep, _origin(ep)) for ep in entry_points(group=ENTRY_POINT_GROUP)]
    return sorted(found, key=lambda pair: pair[1].distribution != CORE_DISTRIBUTION)


def load_plugins(
    extra: dict[str, ModuleType | object] | None = None, *, use_entry_points: bool = True
) -> LoadedPlugins:
    """Create a fresh plugin manager, load every ``lenna`` entry point and register ``extra``.

    ``extra`` maps a plugin name to a module or object with ``@hookimpl`` functions (tests
    register fakes this way). A plugin that fails to load or implements a hook LENNA does not
    have becomes a one-line warning and a :class:`BrokenPlugin`; with
    ``LENNA_STRICT_PLUGINS=1`` it raises PluginError instead. Hooks are not called here: the
    registry calls them, each plugin's in isolation.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    loaded = LoadedPlugins(pm, strict=strict_plugins())
    if use_entry_points:
        seen: set[tuple[str, str]] = set()
        for ep, origin in _entry_points():
            if (origin.distribution, ep.name) in seen:
                continue  # the same distribution visible twice on sys.path
            seen.add((origin.distribution, ep.name))
            key = f"{origin.distribution}:{ep.name}"
            try:
                module = ep.load()
            except PLUGIN_FAILURES as exc:
                reason = error_line(exc)
            else:
                reason = _register(pm, module, key)
            _record(loaded, key, origin, reason)
    for name, plugin in (extra or {}).items():
        _record(loaded, name, PluginOrigin(name, name, "local"), _register(pm, plugin, name))
    return loaded
