"""The pluggy hook specifications of LENNA (project name ``lenna``).

Each hook takes no arguments and returns a list of plugin classes. Every class carries
``name: ClassVar[str]`` in lowercase-kebab form; that name is what the CLI accepts.
New hook arguments may only ever be added (pluggy's opt-in rule), never removed.
"""

from __future__ import annotations

import pluggy

PROJECT = "lenna"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def lenna_register_sources() -> list[type]:
    """Return architecture source classes (see :class:`lenna_core.api.Source`)."""


@hookspec
def lenna_register_backends() -> list[type]:
    """Return hardware backend classes (see :class:`lenna_core.api.Backend`)."""


@hookspec
def lenna_register_featurizers() -> list[type]:
    """Return feature extractor classes (see :class:`lenna_core.api.Featurizer`)."""


@hookspec
def lenna_register_estimators() -> list[type]:
    """Return latency estimator classes (see :class:`lenna_core.api.Estimator`)."""


#: Plugin kind -> the hook that registers it.
KIND_HOOKS = {
    "source": "lenna_register_sources",
    "backend": "lenna_register_backends",
    "featurizer": "lenna_register_featurizers",
    "estimator": "lenna_register_estimators",
}
