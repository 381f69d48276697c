"""Boxes of burned-in text in image pixels: the one convention the whole package uses.

A :class:`Box` ``(x0, y0, x1, y1)`` is **half-open**: it covers the columns
``x0 <= x < x1`` and the rows ``y0 <= y < y1``, exactly ``image[y0:y1, x0:x1]``. Its width
is ``x1 - x0``, its height ``y1 - y0``; a box with ``x1 <= x0`` or ``y1 <= y0`` covers
nothing. Tesseract's words (``left, top, left + width, top + height``), Pillow's
``textbbox``, the OCR fill (``deid.pixels``), the ``text_boxes`` artifact the pipeline
writes and the mask the review reads back all use it, so the text the pipeline filled,
the text mask the filter regenerates and the outline the dock draws are the same pixels.

In JSON (the ``text_boxes`` artifact, audit findings) a box is the list
``[x0, y0, x1, y1]`` of whole numbers: :meth:`Box.from_json` and :meth:`Box.as_json`.
:func:`boxes_mask` is the one place a box becomes pixels.

Drawing: napari puts the centre of pixel ``(row, col)`` at the data coordinate
``(row, col)``, so the pixel spans ``row - 0.5 .. row + 0.5``. The rectangle that encloses
exactly the pixels of a box therefore runs from ``(y0 - 0.5, x0 - 0.5)`` to
``(y1 - 0.5, x1 - 0.5)`` (:meth:`Box.corners`): its sides lie on the outer edges of the
box's first and last rows and columns, and the pixel centres inside it are exactly the
pixels :func:`boxes_mask` sets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from .errors import InputError

_FORM = "a box is four whole numbers [x0, y0, x1, y1] (image pixels, x1 and y1 excluded)"


class Box(NamedTuple):
    """Half-open pixel box: columns ``x0 <= x < x1``, rows ``y0 <= y < y1``."""

    x0: int
    y0: int
    x1: int
    y1: int

    # -- reading and writing --------------------------------------------------------------

    @classmethod
    def from_json(cls, value) -> Box:
        """The box of a JSON ``[x0, y0, x1, y1]`` list (whole numbers; ``2.0`` is 2).

        Raises :class:`~updp_napari.core.errors.InputError` for anything else. The box is
        not checked against an image: see :meth:`check`.
        """
        if isinstance(value, (str, bytes, dict)):
            raise InputError(f"{_FORM}, not {type(value).__name__}")
        try:
            values = list(value)
        except TypeError:
            raise InputError(f"{_FORM}, not {type(value).__name__}") from None
        if len(values) != 4:
            raise InputError(f"{_FORM}, not {len(values)} values")
        out = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(v) or v != int(v):
                raise InputError(f"{_FORM}, not {values!r}")
            out.append(int(v))
        return cls(*out)

    def as_json(self) -> list[int]:
        """``[x0, y0, x1, y1]`` as plain ints (what artifacts store)."""
        return [int(self.x0), int(self.y0), int(self.x1), int(self.y1)]

    # -- measures -------------------------------------------------------------------------

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def area(self) -> int:
        """How many pixels the box covers (before any clipping)."""
        return self.width * self.height

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    # -- validation -----------------------------------------------------------------------

    def valid(self, shape: tuple[int, ...] | None = None) -> bool:
        """Non-empty, not before the origin and, with ``shape`` (rows, cols, …), inside it."""
        try:
            self.check(shape)
        except InputError:
            return False
        return True

    def check(self, shape: tuple[int, ...] | None = None) -> Box:
        """The box itself when it is non-empty, starts at 0 or later and, with ``shape``
        (rows, cols, …), ends inside the image; else :class:`InputError`."""
        x0, y0, x1, y1 = self
        if x0 < 0 or y0 < 0 or x1 <= x0 or y1 <= y0:
            raise InputError(f"a box needs 0 <= x0 < x1 and 0 <= y0 < y1, not {x0},{y0},{x1},{y1}")
        if shape is not None and (x1 > shape[1] or y1 > shape[0]):
            raise InputError(f"the box {x0},{y0},{x1},{y1} lies outside the "
                             f"{shape[1]}x{shape[0]} image")
        return self

    # -- geometry -------------------------------------------------------------------------

    def clipped(self, shape: tuple[int, ...]) -> Box:
        """The part of the box inside an image of ``shape`` (rows, cols, …); a box wholly
        outside becomes an empty one (``x0 == x1`` or ``y0 == y1``)."""
        rows, cols = int(shape[0]), int(shape[1])
        x0 = min(max(self.x0, 0), cols)
        y0 = min(max(self.y0, 0), rows)
        return Box(x0, y0, min(max(self.x1, x0), cols), min(max(self.y1, y0), rows))

    def padded(self, pad: int, shape: tuple[int, ...] | None = None) -> Box:
        """The box grown by ``pad`` pixels on every side, clipped to ``shape`` when given."""
        pad = int(pad)
        box = Box(self.x0 - pad, self.y0 - pad, self.x1 + pad, self.y1 + pad)
        return box if shape is None else box.clipped(shape)

    def slices(self, shape: tuple[int, ...]) -> tuple[slice, slice]:
        """``(rows, cols)`` slices of the box's pixels in an image of ``shape``:
        ``image[box.slices(image.shape)]`` (clipped, so never wrapping around)."""
        x0, y0, x1, y1 = self.clipped(shape)
        return slice(y0, y1), slice(x0, x1)

    def corners(self) -> np.ndarray:
        """The napari rectangle ``[[row0, col0], [row1, col1]]`` whose outline encloses
        exactly the box's pixels (napari pixel centres are at whole coordinates; see the
        module's docstring)."""
        return np.array([[self.y0 - 0.5, self.x0 - 0.5], [self.y1 - 0.5, self.x1 - 0.5]], float)


def boxes_from_json(items) -> list[Box]:
    """The boxes of a ``text_boxes`` artifact: a list of ``{"box": [x0, y0, x1, y1], …}``
    (None or empty: no boxes)."""
    if not items:
        return []
    if not isinstance(items, list):
        raise InputError(f"text boxes are a list of {{'box': [x0, y0, x1, y1]}}, not "
                         f"{type(items).__name__}")
    out = []
    for item in items:
        if not isinstance(item, dict) or "box" not in item:
            raise InputError("text boxes are a list of {'box': [x0, y0, x1, y1]}: an item has "
                             "no 'box'")
        out.append(Box.from_json(item["box"]))
    return out


def boxes_mask(boxes: Iterable, shape: tuple[int, ...]) -> np.ndarray:
    """bool ``[rows, cols]`` mask of the pixels any of ``boxes`` covers (each a :class:`Box`
    or four numbers ``x0, y0, x1, y1``), half-open and clipped to ``shape``."""
    out = np.zeros(tuple(int(n) for n in shape[:2]), bool)
    for box in boxes:
        out[Box(*(int(v) for v in box)).slices(out.shape)] = True
    return out
