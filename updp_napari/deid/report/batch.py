"""A folder of reports de-identified into another (``updp deid-report --in DIR --out DIR``):
every ``*.txt`` below the source, written owner-only under the same relative path, with the
identifiers in its folder and file names replaced (``deid.paths``). A report that cannot be
read or de-identified is skipped with its reason; the others go on. Symbolic links are refused
unless followed on purpose.
"""

from __future__ import annotations

import contextlib
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
    # (source path relative to the input, output path relative to OUT) where they differ:
    # names carrying identifiers. It names the originals: kept out of OUT (``write_record``).
    renamed: list[tuple[Path, str]] = field(default_factory=list)
    outputs: list[tuple[Path, str]] = field(default_factory=list)  # every report written

    @property
    def written(self) -> int:
        return self.reports - len(self.skipped)

    def summary(self) -> str:
        text = f"de-identified {self.written} of {self.reports} reports into {self.out}"
        if self.renamed:
            text += f" ({len(self.renamed)} renamed: identifiers in their names)"
        return text

    def write_record(self, path: str | os.PathLike) -> None:
        """One JSON line per report (source, output or the reason it was skipped), owner-only:
        it names the original files, so it never goes into OUT."""
        from ...core.files import private_folder, write_text_atomic

        lines = [{"file": str(rel), "status": "ok", "output": out} for rel, out in self.outputs]
        lines += [{"file": str(rel), "status": "skipped", "reason": reason}
                  for rel, reason in self.skipped]
        private_folder(Path(path).parent)
        write_text_atomic(path, "".join(json.dumps(line, sort_keys=True) + "\n"
                                        for line in lines), private=True)


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
                      follow_symlinks: bool = False,
                      progress: Callable[[int, int], None] | None = None) -> BatchResult:
    """De-identify every ``*.txt`` under ``source`` into ``out`` with ``deidentifier`` (a
    ``ReportDeidentifier``), in ``mode`` with ``key`` (surrogates). ``header``: identifiers
    searched in every report; ``use_header_beside``: each report's own, from the DICOM
    file in its folder. ``write_json``: also the spans found, as ``NAME.json`` beside.
    Identifiers in folder and file names are replaced by stand-ins keyed on ``key`` (on a
    key of this run alone without one), with the header's values where it is known."""
    import secrets

    from ...core.files import check_apart, private_folder, tree_files, write_text_atomic
    from ...ingest import read_report
    from ..paths import PathCleaner

    src, dst = Path(source), Path(out)
    if not src.is_dir():
        raise UpdpError(f"{src}: not a folder")
    # Links to folders are listed too, to be refused by name, whatever they hold.
    unreadable: list[tuple[Path, str]] = []
    files = [p for p in tree_files(src, follow_symlinks, unreadable)
             if p.name.lower().endswith(".txt") or (p.is_symlink() and p.is_dir())]
    if not files and not unreadable:
        raise UpdpError(f"{src}: no *.txt reports in this folder")
    check_apart(src, dst)
    private_folder(dst)
    result = BatchResult(dst, len(files) + len(unreadable))
    # What could not be listed is lost to this run: said so, never passed over.
    result.skipped += [(folder.relative_to(src), f"{folder}: {why}") for folder, why in unreadable]
    name_key = key or secrets.token_bytes(32)
    used: set[str] = set()
    for n, path in enumerate(files, 1):
        rel = path.relative_to(src)
        written: list[Path] = []
        try:
            if path.is_symlink() and not follow_symlinks:
                # Its target may lie anywhere ("passwd.txt -> /etc/passwd"): not followed.
                raise UpdpError(f"{path}: a symbolic link, not followed (--follow-symlinks)")
            text = read_report(path)
            this_header = header_beside(path) if use_header_beside else header
            redacted = deidentifier.deidentify(text, this_header, mode=mode, key=key)
            out_rel = _unique(PathCleaner(name_key, _header_values(name_key, this_header))
                              .clean(rel.as_posix()), used)
            target = dst / out_rel
            private_folder(target.parent)
            written.append(target)
            write_text_atomic(target, redacted.text, private=True)
            if write_json:
                written.append(target.with_suffix(".json"))
                write_text_atomic(written[-1], json.dumps(
                    redacted.as_json(text), ensure_ascii=False, indent=2) + "\n", private=True)
            if out_rel != rel.as_posix():
                result.renamed.append((rel, out_rel))
            result.outputs.append((rel, out_rel))
            written = []
        except UpdpError as exc:
            result.skipped.append((rel, str(exc)))
        except OSError as exc:  # an output could not be written (a full disk)
            result.skipped.append((rel, f"{path}: could not be written "
                                        f"({exc.strerror or type(exc).__name__})"))
        except Exception as exc:  # one report only, never the batch; no value quoted
            result.skipped.append((rel, f"{path}: could not be de-identified "
                                        f"({type(exc).__name__})"))
        # A report that failed half-way leaves nothing: its text without its spans is no
        # finished output, and only what is listed as written may be taken as done.
        for leftover in written:
            with contextlib.suppress(OSError):
                leftover.unlink()
        if progress is not None:
            progress(n, len(files))
    return result


def _header_values(key: bytes, header) -> list[tuple[str, str]]:
    """The header's names, IDs and dates, each with a keyed stand-in, for file names."""
    if header is None:
        return []
    from ...core.keys import keyed_digest

    def stand_in(prefix: str, value: str) -> str:
        return prefix + keyed_digest(key, "path-header", value.casefold()).hex()[:8]

    values = [(part, stand_in("N", part)) for parts in header.names for part in parts
              if len(part) >= 2]
    values += [(value, stand_in("I", value)) for value in header.ids]
    values += [(value, stand_in("D", value)) for value in header.dates]
    return values


def _unique(rel: str, used: set[str]) -> str:
    """``rel``, or ``rel`` with ``~2``, ``~3`` … before its suffix when taken in this batch
    (two names that differed only in an identifier)."""
    candidate, n = rel, 1
    while candidate.casefold() in used:
        n += 1
        stem, dot, ext = rel.rpartition(".")
        candidate = f"{stem}~{n}.{ext}" if dot else f"{rel}~{n}"
    used.add(candidate.casefold())
    return candidate
