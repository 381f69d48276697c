"""Progress for long work: a bar on a terminal, sparse lines in a log, nothing when quiet."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Call with ``(done, total)``; works as the ``progress`` callback of long functions."""

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool = True):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self._last_line = -1.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        elapsed = time.monotonic() - self.start
        if self.tty:
            width = 30
            filled = int(width * done / total)
            bar = "#" * filled + "-" * (width - filled)
            eta = elapsed / done * (total - done) if done else 0.0
            self.stream.write(f"\r{self.label} [{bar}] {done}/{total}  {elapsed:5.1f}s"
                              f"  eta {eta:5.1f}s")
            if done >= total:
                self.stream.write("\n")
            self.stream.flush()
        elif done >= total or elapsed - self._last_line >= 10.0:
            # Logs get a line every ten seconds and one at the end, not a flood.
            self._last_line = elapsed
            self.stream.write(f"{self.label}: {done}/{total} ({elapsed:.1f}s)\n")
            self.stream.flush()
