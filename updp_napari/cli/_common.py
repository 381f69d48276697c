"""What the command modules share: how a command is registered, the options several
commands take (spelled the same everywhere), and the helpers their handlers use.

Spellings: ``-q/--quiet`` turns progress off; ``--json`` is a flag that prints the result
as JSON; ``--json-out FILE`` writes it to a file; ``--filter-model DIR`` chooses the
generative filter; ``--threads N`` the torch CPU threads.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

from ..core.errors import UpdpError

Handler = Callable[[argparse.Namespace], int]

COHORT_HELP = "a cohort folder made by updp make-cohort"


def command(subparsers, name: str, handler: Handler, summary: str,
            description: str) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` run by ``handler``; ``summary`` is its line in
    ``updp --help``, ``description`` the text of ``updp NAME --help``."""
    parser = subparsers.add_parser(name, help=summary, description=description)
    parser.set_defaults(func=handler)
    return parser


# -- options ---------------------------------------------------------------------------------

def seed(value: str) -> int:
    """An argparse type: a random seed (a whole number, 0 or more, as numpy takes)."""
    return _number(value, int, "a whole number", lambda n: 0 <= n < 2 ** 63,
                   "a seed is 0 or more, under 2**63")


def non_negative(value: str) -> float:
    """An argparse type: a finite number, 0 or more."""
    return _number(value, float, "a number", lambda n: math.isfinite(n) and n >= 0,
                   "expected a finite number, 0 or more")


def _number(value: str, convert, kind: str, ok, rule: str):
    try:
        number = convert(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {kind}: {value!r}") from None
    if not ok(number):
        raise argparse.ArgumentTypeError(f"{rule} (got {value})")
    return number


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def add_json(parser: argparse.ArgumentParser, help: str = "print the result as JSON") -> None:
    """``--json``: a flag, print JSON instead of text."""
    parser.add_argument("--json", action="store_true", help=help)


def add_json_out(parser: argparse.ArgumentParser, help: str, old_json: bool = False) -> None:
    """``--json-out FILE``: also write the result to FILE. ``old_json``: the command took
    ``--json FILE`` before; that spelling still works for one release, hidden from help."""
    parser.add_argument("--json-out", metavar="FILE", help=help)
    if old_json:
        parser.add_argument("--json", dest="json_out", metavar="FILE", help=argparse.SUPPRESS)


def add_filter_model(parser: argparse.ArgumentParser, help: str, old_model: bool = False) -> None:
    """``--filter-model DIR``. ``old_model``: the command called it ``--model`` before; that
    spelling still works for one release, hidden from help."""
    parser.add_argument("--filter-model", type=Path, metavar="DIR", help=help)
    if old_model:
        parser.add_argument("--model", dest="filter_model", type=Path, metavar="DIR",
                            help=argparse.SUPPRESS)


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def add_cohort(parser: argparse.ArgumentParser, help: str = COHORT_HELP) -> None:
    parser.add_argument("cohort", type=Path, help=help)


# -- helpers for the handlers ----------------------------------------------------------------

def progress(args: argparse.Namespace, label: str):
    """The progress display of a command (nothing with ``--quiet``)."""
    from ..core.progress import Progress

    return Progress(label, enabled=not args.quiet)


def stage_progress(args: argparse.Namespace, label: str) -> Callable[[str, int, int], None]:
    """A ``(stage, done, total)`` progress callback: one display per stage."""
    bars: dict = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = progress(args, f"{label} {stage}")
        bars[stage](done, total)

    return report


def set_torch_threads(threads: int | None) -> None:
    """Let torch use ``threads`` CPU threads (at least one); None leaves torch's choice."""
    if threads is None:
        return
    import torch

    torch.set_num_threads(max(1, threads))


def print_json(data, **options) -> None:
    print(json.dumps(data, indent=2, **options))


def check_output_file(path: str | Path | None, what: str = "the JSON file") -> None:
    """Refuse a file to be written (``--json-out``, a record) that could not be, before the
    work that fills it: a folder of that name, or a file where a folder of its path is."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise UpdpError(f"{path}: is a folder; give {what}'s name")
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise UpdpError(f"{folder}: is not a folder, so {what} cannot go there")
            break


def write_json_out(path: str | Path, data, private: bool = False) -> None:
    """Write ``data`` as JSON to ``path`` (``--json-out``), atomically."""
    from ..core.files import write_text_atomic

    write_text_atomic(Path(path), json.dumps(data, indent=2) + "\n", private=private)


def warn(message: str) -> None:
    print(one_line(message), file=sys.stderr)


_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7f) if c != 0x09} | \
    {0x0a: "\\n", 0x0d: "\\r"}


def one_line(message: str) -> str:
    """``message`` on one line: control characters (a newline in a file's name) written as
    escapes, so no name can split a message or forge another line."""
    return message.translate(_CONTROLS)


def open_key(key_file: str | Path | None = None, workspace: str | Path | None = None) -> bytes:
    """The secret key in ``key_file``, or ``workspace``'s (its folder made owner-only); a
    key that does not exist yet is created, owner-only, and the user is told."""
    from ..core.keys import KEY_FILE, load_or_create_key, workspace_key

    path = Path(workspace) / KEY_FILE if workspace is not None else Path(key_file)
    existed = path.exists()
    key = workspace_key(workspace, create=True) if workspace is not None else load_or_create_key(path)
    if not existed:
        warn(f"created key file {path} (owner-only); keep it secret")
    return key
