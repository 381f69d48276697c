"""``updp plugins``: the optional backends installed through entry points."""

from __future__ import annotations

import argparse

from ._common import command


def register(subparsers) -> None:
    command(subparsers, "plugins", _cmd_plugins,
            "list installed plugins (report PHI detectors, executors of updp run)",
            "List the optional backends installed through entry points, by group, without "
            "importing them.")


def _cmd_plugins(args: argparse.Namespace) -> int:
    from ..core.registry import GROUPS, discover

    for group, purpose in GROUPS.items():
        found = discover(group)
        print(f"{group}  ({purpose})")
        for name, info in found.items():
            dist = f"  [{info.distribution}]" if info.distribution else ""
            print(f"  {name} = {info.value}{dist}")
        if not found:
            print("  (none installed)")
    return 0
