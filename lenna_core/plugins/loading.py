"""Build the pluggy plugin manager: entry points of group ``lenna``, each loaded in isolation."""

from __future__ import annotations

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


def load_plugins(
    extra: dict[str, ModuleType | object] | None = None, *, use_entry_points: bool = True
) -> LoadedPlugins:
    """Create a fresh plugin manager, load every ``lenna`` entry point and register ``extra``.

    ``extra`` maps a plugin name to a module or object with ``@hookimpl`` functions (tests
    register fakes this way). A failing entry point becomes a one-line warning and a
    :class:`BrokenPlugin`; with ``LENNA_STRICT_PLUGINS=1`` it raises PluginError instead.
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
            try:
                module = ep.load()
                pm.register(module, name=f"{origin.distribution}:{ep.name}")
            except Exception as exc:  # noqa: BLE001 - any plugin failure is isolated
                reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
                message = (
                    f"plugin '{ep.name}' from {origin.distribution} {origin.version} "
                    f"failed to load: {reason}"
                )
                if strict:
                    raise PluginError(message) from None
                print(f"warning: {message} (LENNA_STRICT_PLUGINS=1 makes this fatal)",
                      file=sys.stderr)
                loaded.broken.append(
                    BrokenPlugin(ep.name, origin.distribution, origin.version, reason)
                )
                continue
            loaded.origins[f"{origin.distribution}:{ep.name}"] = origin
    for name, plugin in (extra or {}).items():
        pm.register(plugin, name=name)
        loaded.origins[name] = PluginOrigin(name, "local")
    return loaded
