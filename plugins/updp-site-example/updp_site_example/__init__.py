"""A site plugin: the example hospital's staff and patient badge numbers.

The hospital writes badge numbers as three groups of letters and digits joined by dots
with a site prefix, ``NFX.K7Q.PL`` — a shape no general rule would call an identifier.
The report de-identifier finds this function through the ``updp_napari.detectors``
entry point and merges what it yields with its own findings.
"""

import re

BADGE = re.compile(r"\bNFX\.[A-Z0-9]{3}\.[A-Z]{2}\b")


def detect_badge_ids(text):
    """Yield ``(start, end, category, confidence)`` for every badge number in ``text``."""
    for m in BADGE.finditer(text):
        yield m.start(), m.end(), "ID", 1.0
