"""A folder of reports de-identified into another (``updp deid-report --in DIR --out DIR``):
every ``*.txt`` below the source, written owner-only under the same relative path. A report
that cannot be read or de-identified is skipped with its reason; the others go on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...core.errors import UpdpError


@dataclass
class BatchResult:
    """What :func:`deidentify_folder` did: how many reports it found, where it wrote them,
    and the ones it skipped (path relative to the source, reason)."""

    out: Path
    reports: int
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.reports - len(self.skipped)

    def summary(self) -> str:
        return f"de-identified {self.written} of {self.reports} reports into {self.out}"


def header_beside(report: Path):
    """The identifiers of the one DICOM file in a report's folder (its study's image)."""
    from .header_values import read_header

    images = sorted(report.parent.glob("*.dcm"))
    if len(images) != 1:
        raise UpdpError(f"{report.parent}: the header comes from the one *.dcm beside the "
                        f"report, found {len(images)}")
    return read_header(images[0])


def deidentify_folder(source: str | os.PathLike, out: str | os.PathLike, deidentifier, *,
                      mode: str = "tag", key: bytes | None = None, header=None,
                      use_header_beside: bool = False, write_json: bool = False,
                      progress: Callable[[int, int], None] | None = None) -> BatchResult:
    """De-identify every ``*.txt`` under ``source`` into ``out`` with ``deidentifier`` (a
    ``ReportDeidentifier``), in ``mode`` with ``key`` (surrogates). ``header``: identifiers
    searched in every report; ``use_header_beside``: each report's own, from the DICOM
    file in its folder. ``write_json``: also the spans found, as ``NAME.json`` beside."""
    from ...core.files import private_folder, write_text_atomic
    from ...ingest import read_report

    src, dst = Path(source), Path(out)
    if not src.is_dir():
        raise UpdpError(f"{src}: not a folder")
    files = sorted(p for p in src.rglob("*.txt") if p.is_file())
    if not files:
        raise UpdpError(f"{src}: no *.txt reports in this folder")
    private_folder(dst)
    result = BatchResult(dst, len(files))
    for n, path in enumerate(files, 1):
        rel = path.relative_to(src)
        try:
            if path.is_symlink():
                # Its target may lie anywhere ("passwd.txt -> /etc/passwd"): never followed.
                raise UpdpError(f"{path}: a symbolic link, not followed")
            text = read_report(path)
            this_header = header_beside(path) if use_header_beside else header
            redacted = deidentifier.deidentify(text, this_header, mode=mode, key=key)
            target = dst / rel
            private_folder(target.parent)
            write_text_atomic(target, redacted.text, private=True)
            if write_json:
                write_text_atomic(target.with_suffix(".json"), json.dumps(
                    redacted.as_json(text), ensure_ascii=False, indent=2) + "\n", private=True)
        except UpdpError as exc:
            result.skipped.append((rel, str(exc)))
        if progress is not None:
            progress(n, len(files))
    return result
