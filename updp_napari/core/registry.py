"""Optional backends found through entry points, never imported by name.

A backend is a small separate distribution (see ``plugins/README.md``) that declares an
entry point in one of the groups below. The core lists what is installed without importing
it, and imports a backend only when it is asked for, so a broken or heavy plugin never
slows down or breaks ``import updp_napari``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

from .errors import UpdpError

#: Entry-point groups the core knows and loads, and what an object registered there must be.
#: A group is listed here only once some part of the core loads what it holds.
GROUPS: dict[str, str] = {
    "updp_napari.detectors": "report PHI detectors (callables or classes yielding spans)",
    "updp_napari.executors": "where updp run prepares its cases (factory(workers=N) returning "
                             "an object with map(preparer, tasks, ahead); see "
                             "updp_napari.executors)",
}


class PluginError(UpdpError):
    """A plugin is unknown, or could not be loaded."""


@dataclass(frozen=True)
class PluginInfo:
    group: str
    name: str
    value: str  # "module:attribute"
    distribution: str  # the installed distribution that declares it, "" if unknown


def _check_group(group: str) -> None:
    if group not in GROUPS:
        known = ", ".join(sorted(GROUPS))
        raise PluginError(f"unknown plugin group {group!r}; known groups: {known}")


def discover(group: str) -> dict[str, PluginInfo]:
    """The plugins installed for ``group``, by name, without importing any of them."""
    _check_group(group)
    found: dict[str, PluginInfo] = {}
    for ep in metadata.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        found.setdefault(ep.name, PluginInfo(group, ep.name, ep.value,
                                              dist.name if dist is not None else ""))
    return dict(sorted(found.items()))


def load(group: str, name: str) -> Any:
    """Import and return the object registered as ``name`` in ``group``."""
    _check_group(group)
    for ep in metadata.entry_points(group=group):
        if ep.name == name:
            try:
                return ep.load()
            except Exception as exc:  # a plugin's own bug must read as a message
                raise PluginError(f"plugin {name!r} ({group}, {ep.value}) failed to load: "
                                  f"{type(exc).__name__}: {exc}") from exc
    installed = ", ".join(discover(group)) or "none installed"
    raise PluginError(f"no plugin {name!r} in {group} ({installed})")
