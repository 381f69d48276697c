"""Burned-in annotations: patient text and side markers written into the pixels.

Real radiographs often carry the patient's name, ID, date and hospital in a corner, put
there by the modality or a secondary-capture step, and a lead side marker. Their
BurnedInAnnotation header is sometimes wrong, which is why the pipeline scans anyway.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .model import Study

_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _phi_lines(study: Study, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(category, text) lines for the annotation block, in the site's habits."""
    p = study.patient.person
    name = str(rng.choice([p.dicom_name, f"{p.last.upper()}, {p.first.upper()}",
                           f"{p.first} {p.last}"]))
    date = str(rng.choice([study.date.strftime("%Y-%m-%d"), study.date.strftime("%m/%d/%Y"),
                           study.date.strftime("%d-%b-%Y").upper()]))
    lines = [("NAME", name), ("MRN", f"ID: {study.patient.mrn}"), ("DATE", date),
             ("INSTITUTION", study.site.short_name)]
    keep = rng.random(len(lines)) < np.array([0.95, 0.8, 0.7, 0.5])
    keep[0] = True
    return [line for line, k in zip(lines, keep) if k]


def burn_in(display: np.ndarray, study: Study, rng: np.random.Generator, with_phi: bool
            ) -> list[dict]:
    """Write annotations into ``display`` (0…1, in place); return their boxes.

    Each box is ``{"box": [x0, y0, x1, y1], "text", "category", "phi"}`` in pixels,
    ``x`` the column; the box covers the drawn glyphs.
    """
    size = display.shape[0]
    scale = size / 256.0
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    boxes: list[dict] = []
    corners = list(rng.permutation(_CORNERS))
    margin = int(round(rng.uniform(6, 12) * scale))

    def block(lines: list[tuple[str, str]], corner: str, font_px: int, phi: bool) -> None:
        font = _font(font_px)
        gap = max(1, font_px // 4)
        heights = [draw.textbbox((0, 0), text, font=font)[3] for _, text in lines]
        total = sum(heights) + gap * (len(lines) - 1)
        y = margin if corner.startswith("top") else size - margin - total
        for (category, text), h in zip(lines, heights):
            width = draw.textlength(text, font=font)
            x = margin if corner.endswith("left") else size - margin - width
            draw.text((x, y), text, fill=255, font=font)
            x0, y0, x1, y1 = draw.textbbox((x, y), text, font=font)
            boxes.append({"box": [int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))],
                          "text": text, "category": category, "phi": phi})
            y += h + gap

    if with_phi:
        font_px = int(round(rng.uniform(9, 15) * scale))
        block(_phi_lines(study, rng), corners.pop(), font_px, phi=True)
    if rng.random() < 0.6:
        marker = "L" if rng.random() < 0.7 else "R"
        block([("MARKER", marker)], corners.pop(), int(round(rng.uniform(14, 20) * scale)), phi=False)
    if not boxes:
        return boxes

    alpha = np.asarray(mask, dtype=np.float32) / 255.0
    style = rng.choice(["white", "gray", "boxed"], p=[0.5, 0.3, 0.2])
    if style == "boxed":
        # Light text on a dark plate, as some secondary-capture overlays draw it.
        for b in boxes:
            x0, y0, x1, y1 = b["box"]
            display[max(0, y0 - 1):y1 + 1, max(0, x0 - 1):x1 + 1] = 0.05
        level = 0.95
    else:
        level = 1.0 if style == "white" else float(rng.uniform(0.55, 0.8))
    display[:] = display * (1.0 - alpha) + level * alpha
    return boxes
