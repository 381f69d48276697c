"""``updp``: the command line. Each subcommand is a thin layer over a Python function.

One module per group of commands registers its subcommands (``register(subparsers)``) beside
their handlers; ``_common`` holds the options several commands share. A new command goes into
the module of its group (or a new module listed in :data:`GROUPS`); ``updp --help`` lists the
commands by group with the module each one lives in.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..core.errors import UpdpError
from . import audit, bench, cohort, dicom, lab, models, plugins, report, workspace
from ._common import one_line

#: The command groups in the order ``updp --help`` lists them: (title, module).
GROUPS = (
    ("synthetic data", cohort),
    ("reports", report),
    ("DICOM", dicom),
    ("image models", models),
    ("review workspace", workspace),
    ("privacy audit", audit),
    ("evaluation lab", lab),
    ("benchmarks", bench),
    ("plugins", plugins),
)
#: Columns of the grouped command list.
HELP_WIDTH = 88


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="updp", usage="%(prog)s [-h] [--version] COMMAND ...",
        description="UPDP Review: utility-preserving de-identification of chest X-ray studies.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"updp-napari {__version__}")
    # The commands are listed by group in the epilog, not in argparse's one flat list.
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", prog="updp",
                                       help=argparse.SUPPRESS)
    listing = []
    for title, module in GROUPS:
        before = set(subparsers.choices)
        module.register(subparsers)
        names = [name for name in subparsers.choices if name not in before]
        listing.append((title, module.__name__.rpartition(".")[2], names))
    parser.epilog = _grouped_commands(listing, _summaries(subparsers)) + \
        "\n\nRun `updp COMMAND --help` for the options of one command."
    return parser


def _summaries(subparsers) -> dict[str, str]:
    # argparse keeps the help= of each add_parser as a pseudo-action of the subparsers.
    return {action.dest: action.help for action in subparsers._choices_actions}


def _grouped_commands(listing, summaries: dict[str, str]) -> str:
    import textwrap

    width = max(len(name) for _, _, names in listing for name in names) + 2
    lines = ["commands, by group (the code of each group is in updp_napari/cli/MODULE.py):"]
    for title, module, names in listing:
        lines.append(f"\n  {title} ({module}.py):")
        for name in names:
            text = textwrap.wrap(summaries[name], HELP_WIDTH - 4 - width)
            lines.append(f"    {name:<{width}}{text[0]}")
            lines += [" " * (4 + width) + more for more in text[1:]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and hasattr(stream, "reconfigure"):
            # A name that is no valid text (a lone surrogate from a file name or a corpus
            # id) is written as an escape, never a crash half-way through the output.
            stream.reconfigure(errors="backslashreplace")
    try:
        return int(args.func(args) or 0)
    except UpdpError as exc:
        print(f"updp {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except OverflowError:  # a number past what SQLite or numpy holds ("--sample 10**20")
        print(f"updp {args.command}: error: a number given is too large", file=sys.stderr)
        return 2
    except OSError as exc:  # the output itself cannot be written (a full disk, /dev/full)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"updp {args.command}: error: {one_line(where)}{exc.strerror or type(exc).__name__}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"updp {args.command}: interrupted", file=sys.stderr)
        return 130


__all__ = ["build_parser", "main"]
