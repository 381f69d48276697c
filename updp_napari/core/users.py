"""Who is at the keyboard: the session's user name, and the one check every name of a person
recorded beside a decision or a finding passes (reviewers, auditors)."""

from __future__ import annotations

import getpass
import unicodedata

from .errors import InputError, UpdpError


def current_user(role: str = "reviewer") -> str:
    """The user name of this session; an error asking for a ``role`` name when there is none."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        raise UpdpError(f"cannot tell the user name of this session; give a {role} name") from None


def current_user_or_none() -> str | None:
    """The user name of this session, or None (for a form to fill in)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def check_person(name, role: str = "reviewer") -> str:
    """``name`` stripped: 1 to 100 characters on one line, else an InputError naming the role."""
    name = str(name or "").strip()
    # No control or format characters: a name is printed in lists and logs as it is, and an
    # escape sequence in it would rewrite the terminal (or hide what follows it).
    if not name or len(name) > 100 or any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise InputError(f"{role} must be a name of 1 to 100 characters on one line, without "
                         "control characters")
    return name
