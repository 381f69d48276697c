"""Who is at the keyboard: the session's user name, and the one check every name of a person
recorded beside a decision or a finding passes (reviewers, auditors)."""

from __future__ import annotations

import getpass

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
    if not name or len(name) > 100 or any(c in name for c in "\r\n\t"):
        raise InputError(f"{role} must be a name of 1 to 100 characters on one line")
    return name
