"""Reading studies: a DICOM image ready for display, its header, and the report beside it.

Every failure is an :class:`~updp_napari.core.errors.InputError` that names the file and
says what is wrong, without quoting any header value or report text.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core.errors import InputError
from .core.files import decode_report, input_file
from .core.vocabulary import FINDINGS

REPORT_NAME = "report.txt"
DICOM_SUFFIXES = (".dcm", ".dicom")


@dataclass
class LoadedImage:
    path: Path
    pixels: np.ndarray  # display orientation: bright is dense, whatever the photometric
    contrast_limits: tuple[float, float]
    photometric: str
    header: dict[str, str] = field(repr=False, default_factory=dict)


def flatten_header(ds, prefix: str = "") -> dict[str, str]:
    """Every element as ``path -> text``, nested items as ``Seq[i].Keyword``.

    Private and unknown elements use their tag, ``(gggg,eeee)``. Pixel data and other
    bulk binary values are left out.
    """
    out: dict[str, str] = {}
    for elem in ds:
        if elem.tag == 0x7FE00010:
            continue
        name = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
        key = f"{prefix}{name}"
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                out.update(flatten_header(item, f"{key}[{i}]."))
        elif elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
            continue
        elif elem.VM > 1:
            out[key] = "\\".join(str(v) for v in elem.value)
        else:
            out[key] = "" if elem.value is None else str(elem.value)
    return out


def quiet_pydicom() -> None:
    """Keep pydicom from printing a file's values: its checks of value formats warn with the
    value itself (an invalid UID's digits, a name's bytes) on stderr and in the log. The
    product validates what it needs itself and reports without values."""
    import logging
    import warnings

    from pydicom import config

    config.settings.reading_validation_mode = config.IGNORE
    config.settings.writing_validation_mode = config.IGNORE
    # Some of its warnings come whatever the mode ("Unknown encoding '<the value>'"): none
    # of its warnings reach stderr, and its log keeps the fact, not the words.
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
    logger = logging.getLogger("pydicom")
    if not any(isinstance(f, _ValueFree) for f in logger.filters):
        logger.addFilter(_ValueFree())


class _ValueFree:
    """A logging filter that replaces a record's words by a value-free note."""

    def filter(self, record) -> bool:
        record.msg = "pydicom reported a problem with a value of the file (words withheld)"
        record.args = ()
        return True


def read_dataset(path: str | os.PathLike, **options):
    """``pydicom.dcmread(path, **options)``, with every way a damaged file fails (a corrupt
    deflate stream, sequences nested past the recursion limit, a wrong length field) turned
    into an InputError naming the file and the kind of damage, never a value from it."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = input_file(path)
    quiet_pydicom()
    try:
        ds = pydicom.dcmread(path, **options)
    except InvalidDicomError:
        raise InputError(f"{path}: not a DICOM file (no DICOM preamble or header found)") from None
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # pydicom's errors quote bytes of the file: never pass them on
        raise InputError(f"{path}: DICOM file is damaged or truncated "
                         f"({type(exc).__name__})") from None
    if (why := overrun(ds, path.stat().st_size)) is not None:
        raise InputError(f"{path}: {why}")
    return ds


def overrun(ds, size: int) -> str | None:
    """Why ``ds`` (just read, from a file of ``size`` bytes) is only part of its file: the
    first top-level element whose stated length runs past the end of the file, named; None
    when none does. pydicom stops quietly at the end of a truncated file: a sequence cut short is read as
    the items that were there, and what it read is then only part of the file. The pixel
    data is left to the checks that know its expected size (``deid.dicom.check_complete``),
    whose message says how much of it is there."""
    from pydicom.dataelem import RawDataElement

    for tag in ds.keys():
        if tag == 0x7FE00010:
            continue
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.length != 0xFFFFFFFF and \
                raw.value_tell is not None and raw.value_tell + raw.length > size:
            return (f"DICOM file is damaged or truncated (element ({tag.group:04X},"
                    f"{tag.element:04X}) runs past the end of the file)")
    return None


def read_dicom(path: str | os.PathLike, with_header: bool = True) -> LoadedImage:
    """Read one radiograph for display. Raises InputError for anything unusable."""
    path = Path(path)
    ds = read_dataset(path)
    if "PixelData" not in ds:
        raise InputError(f"{path}: DICOM file has no pixel data (truncated, or not an image)")
    try:
        pixels = ds.pixel_array
    except (ValueError, NotImplementedError, RuntimeError) as exc:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        if syntax is not None and syntax.is_compressed:
            raise InputError(f"{path}: pixel data is compressed ({syntax.name}) and no installed "
                             f"decoder can read it") from None
        raise InputError(f"{path}: pixel data is truncated or malformed "
                         f"({type(exc).__name__})") from None
    if pixels.ndim != 2:
        raise InputError(f"{path}: expected one grayscale frame, found pixel array of shape "
                         f"{pixels.shape}")

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    values = pixels.astype(np.float32) * slope + intercept
    bits = int(ds.get("BitsStored", 16) or 16)
    top = float((1 << bits) - 1) * slope + intercept
    limits = _window(ds)
    if photometric == "MONOCHROME1":
        # Stored bright-is-low: flip so every image reads the same way on screen.
        values = top + intercept - values
        if limits is not None:
            limits = (top + intercept - limits[1], top + intercept - limits[0])
    if limits is None or limits[1] <= limits[0]:
        low, high = np.percentile(values, [0.5, 99.5])
        limits = (float(low), float(max(high, low + 1.0)))
    header = flatten_header(ds) if with_header else {}
    return LoadedImage(path=path, pixels=values, contrast_limits=limits,
                       photometric=photometric, header=header)


def _window(ds) -> tuple[float, float] | None:
    """The default VOI window as (low, high), or None when absent or unreadable."""
    def first(value):
        # Multi-valued windows list alternatives; the first is the default.
        return value[0] if isinstance(value, Sequence) and not isinstance(value, str) else value

    try:
        centre, width = ds.get("WindowCenter"), ds.get("WindowWidth")
        if centre is None or width is None:
            return None
        centre, width = float(first(centre)), float(first(width))
    except (TypeError, ValueError, IndexError):
        return None
    return centre - width / 2.0, centre + width / 2.0


#: A finding's mask beside its image: ``mask_<finding>.png``.
MASK_PREFIX = "mask_"


def display_image(path: str | os.PathLike) -> np.ndarray:
    """One DICOM radiograph as float32 0…1 under its default window, bright is dense."""
    loaded = read_dicom(path, with_header=False)
    low, high = loaded.contrast_limits
    return np.clip((loaded.pixels - low) / (high - low), 0.0, 1.0).astype(np.float32)


def read_mask(path: str | os.PathLike, shape: tuple[int, ...]) -> np.ndarray:
    """A finding's mask (a PNG beside the image, non-zero inside) as bool, the image's shape."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            mask = np.asarray(im.convert("L")) > 0
    except (OSError, UnidentifiedImageError):
        raise InputError(f"{path}: mask is not a readable PNG image") from None
    if mask.shape != shape:
        raise InputError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                         f"{shape[1]}x{shape[0]}")
    return mask


def label_image(masks: dict[str, np.ndarray], shape) -> np.ndarray:
    """The findings' masks as one label image: label ``i + 1`` where ``FINDINGS[i]`` lies,
    0 for background; later findings win where masks overlap."""
    out = np.zeros(shape, dtype=np.uint8)
    for i, label in enumerate(FINDINGS, start=1):
        if label in masks:
            out[masks[label]] = i
    return out


def read_report(path: str | os.PathLike) -> str:
    """A report's text, whatever common encoding it was saved in."""
    path = Path(path)
    try:
        # A pipe or a device named *.txt would block the read, or never end it.
        if not stat.S_ISREG(path.stat().st_mode):
            raise InputError(f"{path}: not a regular file")
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read report ({exc.strerror or type(exc).__name__})") from None
    return decode_report(raw, str(path))


def study_folders(root: str | os.PathLike) -> list[Path]:
    """Folders under ``root`` (itself included) that hold a DICOM image, sorted."""
    root = Path(root)
    found = []
    for folder, _dirs, files in os.walk(root):
        if any(f.lower().endswith(DICOM_SUFFIXES) for f in files):
            found.append(Path(folder))
    return sorted(found)
