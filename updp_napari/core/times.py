"""The one rule for times of day, shared by the header and the report de-identifiers.

Dates move by whole days (``keys.date_shift_days``), so the time of day is kept, but only to
the hour: an exact timestamp is itself a look-up key into the hospital's systems. Because every
time keeps its hour, times keep their order and a report's time agrees with its header's.
Each side parses and writes its own format; this module only says what survives.
"""

from __future__ import annotations

import datetime as dt


def time_to_hour(t: dt.time) -> dt.time:
    """``t`` with minutes, seconds and fractions zeroed (the hour and time zone kept)."""
    return t.replace(minute=0, second=0, microsecond=0)
