"""Burned-in text: OCR finds it, the fill covers it, everything else stays as it was.

The tests that run Tesseract are skipped, with the reason, where it is not installed;
`make test` installs it (Debian package tesseract-ocr), so they run in CI. The tests of
the missing-Tesseract error and of identifier matching need no Tesseract and always run.
"""

import io

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont

from updp_napari.core.errors import UpdpError
from updp_napari.deid import pixels as px
from updp_napari.ingest import flatten_header

requires_tesseract = pytest.mark.skipif(
    not px.tesseract_available(),
    reason="tesseract is not installed (Debian package tesseract-ocr; `make test` installs it)")


def _covered(mask: np.ndarray, box) -> float:
    x0, y0, x1, y1 = box
    return float(mask[y0:y1, x0:x1].mean())


def _filled_mask(shape, boxes) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for record in boxes:
        x0, y0, x1, y1 = record["box"]
        mask[y0:y1, x0:x1] = True
    return mask


@pytest.fixture(scope="module")
def cleaned(cohort, records):
    """clean_burned_in on every study of the shared cohort that has anything burned in,
    with the identifiers of its own header: (record, stored pixels, result)."""
    if not px.tesseract_available():
        pytest.skip("tesseract is not installed (Debian package tesseract-ocr)")
    out = []
    for r in records:
        if not r["burned_in"]:
            continue
        ds = pydicom.dcmread(cohort / r["image"])
        stored = ds.pixel_array
        before = stored.copy()
        result = px.clean_burned_in(stored, px.identifiers_from_header(flatten_header(ds)),
                                    monochrome1=r["photometric"] == "MONOCHROME1")
        assert np.array_equal(stored, before), "the input array was modified"
        out.append((r, ds, stored, result))
    return out


# ------------------------------------------------------------------ without Tesseract


def test_missing_tesseract_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(px.OCR_ENGINE_VARIABLE, "program")  # the library is not asked
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no tesseract on PATH
    assert not px.tesseract_available()
    image = np.zeros((64, 64), dtype=np.uint16)
    for call in (lambda: px.ocr_words(image), lambda: px.clean_burned_in(image, ["DOE"])):
        with pytest.raises(UpdpError, match=r"tesseract not found: install the Debian package "
                                            r"tesseract-ocr"):
            call()


def test_a_renamed_program_is_missing_too(monkeypatch):
    monkeypatch.setenv(px.OCR_ENGINE_VARIABLE, "program")
    monkeypatch.setattr(px, "TESSERACT_COMMAND", "tesseract-that-is-not-there")
    assert not px.tesseract_available()
    with pytest.raises(UpdpError, match="tesseract not found"):
        px.ocr_words(np.zeros((32, 32), dtype=np.uint16))


def test_identifier_matching_tolerates_ocr_errors_not_random_words():
    tokens = px.identifier_tokens(["NAKAGAWA-REID^FRANCES^W", "MV5260076X", "20211204",
                                   "Riverside General Hospital"])
    hits = ["NAKAGAWA-REID*FRANCES*", "frances", "Nakagaw<", "ID:MV5260076X", "MV5280076X",
            "2021-12-04", "12/04/2021", "04-DEC-2021", "RIVERSIDE", "RlVERSIDE"]
    for text in hits:
        assert px.matches_identifier(text, tokens), text
    misses = ["ID:", "L", "R", "ore", "Pre", "ay", "wit", "2019-05-01", "MV1234567Q", "LUNG",
              "Hos"]
    for text in misses:
        assert not px.matches_identifier(text, tokens), text
    # Short, unsure words must match exactly.
    assert px.matches_identifier("WAX", px.identifier_tokens(["WAX"]), fuzzy=False)
    assert not px.matches_identifier("WAXY", px.identifier_tokens(["WAX"]), fuzzy=False)


def test_identifiers_from_a_flattened_header():
    header = {"PatientName": "DOE^JANE^Q", "PatientID": "12-345-678", "StudyDate": "20200102",
              "OtherPatientIDsSequence[0].PatientID": "999-88-7777", "Modality": "DX",
              "InstitutionName": "Lakeshore Community Hospital", "BodyPartExamined": "CHEST"}
    found = px.identifiers_from_header(header)
    assert {"DOE", "JANE", "12-345-678", "20200102", "999-88-7777",
            "Lakeshore Community Hospital"} <= set(found)
    assert "DX" not in found and "CHEST" not in found


# ------------------------------------------------------------------ with Tesseract


@requires_tesseract
def test_ocr_words_reads_print_on_a_small_12_bit_image():
    rng = np.random.default_rng(3)
    display = np.clip(rng.normal(0.3, 0.03, (256, 256)), 0, 1)
    canvas = Image.new("L", (256, 256), 0)
    ImageDraw.Draw(canvas).text((20, 200), "SAMPLE 4711", fill=255,
                                font=ImageFont.load_default(size=14))
    alpha = np.asarray(canvas, dtype=np.float64) / 255.0
    stored = np.round((display * (1 - alpha) + alpha) * 4095).astype(np.uint16)

    tokens = px.identifier_tokens(["SAMPLE", "4711"])
    words = px.ocr_words(stored)
    found = [w for w in words if px.matches_identifier(w.text, tokens)]
    assert found, "the printed words were not read"
    for w in found:
        x0, y0, x1, y1 = w.box
        assert 15 <= x0 < x1 <= 140 and 190 <= y0 < y1 <= 225  # where they were drawn
        assert 0.0 <= w.confidence <= 100.0

    # The same picture stored MONOCHROME1 (inverted) reads the same.
    inverted = px.ocr_words((4095 - stored).astype(np.uint16), monochrome1=True)
    assert [w for w in inverted if px.matches_identifier(w.text, tokens)]
    assert px.ocr_words(np.full((64, 64), 7, dtype=np.uint16)) == []
    with pytest.raises(ValueError):
        px.ocr_words(np.zeros((2, 8, 8), dtype=np.uint16))


@requires_tesseract
@pytest.mark.slow
def test_burned_in_phi_is_covered(cleaned):
    coverage = []
    for r, _ds, stored, result in cleaned:
        filled = _filled_mask(stored.shape, result.boxes)
        coverage += [_covered(filled, b["box"]) for b in r["burned_in"] if b["phi"]]
    assert len(coverage) >= 15, "the cohort should hold a handful of studies with PHI text"
    recall = np.mean([c >= 0.9 for c in coverage])
    assert recall >= 0.8, f"only {recall:.0%} of the PHI lines are 90 % covered"
    assert np.mean(coverage) >= 0.9 and min(coverage) >= 0.5


@requires_tesseract
@pytest.mark.slow
def test_only_the_filled_boxes_change(cleaned):
    for r, _ds, stored, result in cleaned:
        out = result.pixels
        assert out.dtype == stored.dtype and out.shape == stored.shape
        filled = _filled_mask(stored.shape, result.boxes)
        assert np.array_equal(out[~filled], stored[~filled]), r["study_id"]
        black = stored.max() if r["photometric"] == "MONOCHROME1" else stored.min()
        assert np.all(out[filled] == black), r["study_id"]
        for record in result.boxes:
            # Boxes and reasons only: never the text read (it is PHI).
            assert set(record) == {"box", "reason"}
            assert record["reason"] in ("ocr", "header-match", "layout")
            assert all(isinstance(v, int) for v in record["box"])


@requires_tesseract
@pytest.mark.slow
def test_lung_field_and_side_markers_are_left_alone(cohort, cleaned):
    for r, _ds, stored, result in cleaned:
        filled = _filled_mask(stored.shape, result.boxes)
        rows, cols = stored.shape
        # The annotation block: the rectangle of the burned-in PHI lines and a margin; along
        # the lines, a line's height more (a fill grown to a proposed block is widened by
        # that much at either end, where the glyph lines lose letters).
        block = np.zeros(stored.shape, dtype=bool)
        phi = [b["box"] for b in r["burned_in"] if b["phi"]]
        if phi:
            margin = 6
            along = margin + max(b[3] - b[1] for b in phi)
            block[max(0, min(b[1] for b in phi) - margin): max(b[3] for b in phi) + margin,
                  max(0, min(b[0] for b in phi) - along): max(b[2] for b in phi) + along] = True
        beyond = filled & ~block
        assert not beyond[rows // 4: 3 * rows // 4, cols // 4: 3 * cols // 4].any(), r["study_id"]
        # Pathology is only ever touched where the annotation block lies over it.
        for mask_path in r["masks"].values():
            lesion = np.asarray(Image.open(cohort / mask_path)) > 0
            assert not (lesion & filled & ~block).any(), (r["study_id"], mask_path)
        # A lone L/R lead marker is not PHI: it stays, and an image with nothing else
        # burned in comes back untouched.
        for b in r["burned_in"]:
            if b["category"] == "MARKER":
                assert _covered(filled, b["box"]) < 0.5, r["study_id"]
        if not r["burned_in_phi"]:
            assert result.boxes == [] and np.array_equal(result.pixels, stored), r["study_id"]


@requires_tesseract
@pytest.mark.slow
def test_ocr_of_the_cleaned_image_no_longer_reads_name_or_id(cleaned):
    checked = 0
    for r, ds, stored, result in cleaned:
        if not r["burned_in_phi"]:
            continue
        mono1 = r["photometric"] == "MONOCHROME1"
        tokens = px.identifier_tokens([ds.PatientName.family_name, str(ds.PatientID)])
        before = [w for w in px.ocr_words(stored, monochrome1=mono1)
                  if px.matches_identifier(w.text, tokens)]
        after = [w for w in px.ocr_words(result.pixels, monochrome1=mono1)
                 if px.matches_identifier(w.text, tokens)]
        checked += bool(before)
        assert not after, f"{r['study_id']}: name or ID still readable after cleaning"
    assert checked >= 5, "OCR should read the name or ID in most originals"


@requires_tesseract
def test_images_without_text_come_back_unchanged(cohort, records):
    plain = [r for r in records if not r["burned_in"]][:3]
    for r in plain:
        ds = pydicom.dcmread(cohort / r["image"])
        stored = ds.pixel_array
        result = px.clean_burned_in(stored, px.identifiers_from_header(flatten_header(ds)),
                                    monochrome1=r["photometric"] == "MONOCHROME1")
        assert result.boxes == [], r["study_id"]
        assert np.array_equal(result.pixels, stored) and result.pixels is not stored


def test_unread_lines_set_flush_with_a_filled_line_join_its_block(monkeypatch):
    # Three annotation lines, left-aligned, 8 px high, 3 px apart; OCR read the top one
    # only. A fourth chain of glyph-like blobs below is offset: anatomy, not print.
    lines = [(20, 200, 120, 208), (20, 211, 90, 219), (21, 222, 140, 230), (60, 233, 150, 241)]
    words = [px.OcrWord("Doe^Jane", (20, 200, 118, 208), 91.0)]
    monkeypatch.setattr(px, "_read", lambda pixels, monochrome1, search: (words, lines, [], None))
    image = np.full((256, 256), 500, dtype=np.uint16)
    result = px.clean_burned_in(image, ["Doe", "Jane"])
    filled = _filled_mask(image.shape, result.boxes)
    for box in lines[:3]:
        assert _covered(filled, box) == 1.0, box
    assert _covered(filled, lines[3]) < 0.5


def test_the_glyph_lines_of_a_proposed_block_join_a_line_filled_in_it(monkeypatch):
    # The region search proposed two blocks. OCR matched the name on the top line of the
    # first; the two glyph lines under it were read as nothing, and are set neither flush
    # with it nor a line apart (print over busy anatomy, letters lost at the ends): the
    # block says they are one annotation, and they are filled with it. A taller chain in
    # the block (print run into anatomy) does not join; nor does the other block.
    name, under = (20, 200, 120, 208), [(44, 212, 100, 220), (40, 224, 130, 232)]
    chain = (10, 160, 60, 198)
    words = [px.OcrWord("Doe^Jane", (20, 200, 118, 208), 91.0)]
    annotation, elsewhere = (8, 196, 142, 236), (150, 20, 240, 40)
    lines = [name, *under, chain, (160, 26, 230, 34)]
    state = {"blocks": [annotation, elsewhere]}
    monkeypatch.setattr(px, "_read",
                        lambda pixels, monochrome1, search: (words, lines, state["blocks"], None))
    image = np.full((256, 256), 500, dtype=np.uint16)
    filled = _filled_mask(image.shape, px.clean_burned_in(image, ["Doe", "Jane"]).boxes)
    for box in (name, *under):
        assert _covered(filled, box) == 1.0, box
    assert _covered(filled, elsewhere) == 0.0 and not filled[:196].any()
    # Without the block (the full search proposes none) the lines under it stay.
    state["blocks"] = []
    filled = _filled_mask(image.shape, px.clean_burned_in(image, ["Doe", "Jane"]).boxes)
    assert _covered(filled, name) == 1.0 and _covered(filled, under[1]) < 0.5
    # Nor does a block too tall to be an annotation of a few lines join them.
    state["blocks"] = [(8, 100, 142, 236)]
    filled = _filled_mask(image.shape, px.clean_burned_in(image, ["Doe", "Jane"]).boxes)
    assert _covered(filled, under[1]) < 0.5


def test_a_block_overlapping_one_with_a_fill_is_the_rest_of_its_annotation(monkeypatch):
    # The proposal split one annotation in two blocks that overlap: OCR matched only the
    # last line, in the lower block; the lines of the upper block are filled too. A third
    # block that overlaps the upper one only (a chain) stays: one step, no further.
    top, middle, last = (180, 200, 240, 207), (190, 212, 240, 219), (180, 224, 230, 231)
    words = [px.OcrWord("DOE", (180, 224, 230, 231), 90.0)]
    upper, lower, chained = (170, 195, 250, 222), (170, 221, 250, 236), (120, 150, 200, 198)
    lines = [top, middle, last, (130, 170, 175, 177)]
    monkeypatch.setattr(px, "_read", lambda pixels, monochrome1, search:
                        (words, lines, [upper, lower, chained], None))
    image = np.full((256, 256), 500, dtype=np.uint16)
    filled = _filled_mask(image.shape, px.clean_burned_in(image, ["Doe"]).boxes)
    for box in (top, middle, last):
        assert _covered(filled, box) == 1.0, box
    assert _covered(filled, (130, 170, 175, 177)) == 0.0


def test_three_rows_of_print_set_flush_are_filled_though_nothing_read_matched(monkeypatch):
    # An annotation of three rows, left-aligned, 8 px high, 3 px apart: OCR read letters on
    # it, none matching the header nor read with confidence. Its layout is an annotation's:
    # filled (reason layout). Two such rows, or three on which nothing was read, stay.
    rows = [(20, 200, 120, 208), (20, 211, 90, 219), (20, 222, 140, 230)]
    state = {"lines": rows, "words": [px.OcrWord("-ELLA*SH", (20, 199, 70, 209), 30.0)]}
    monkeypatch.setattr(px, "_read", lambda pixels, monochrome1, search:
                        (state["words"], state["lines"], [], None))
    image = np.full((256, 256), 500, dtype=np.uint16)
    result = px.clean_burned_in(image, ["Doe", "Jane"])
    filled = _filled_mask(image.shape, result.boxes)
    assert all(_covered(filled, box) == 1.0 for box in rows)
    assert {b["reason"] for b in result.boxes} == {"layout"}
    state["lines"] = rows[:2]
    assert px.clean_burned_in(image, ["Doe", "Jane"]).boxes == []
    state["lines"], state["words"] = rows, []
    assert px.clean_burned_in(image, ["Doe", "Jane"]).boxes == []


def test_three_rows_of_words_read_flush_in_proposed_blocks_are_filled(monkeypatch):
    # Print fading into bright anatomy: the glyph search found it on no row, OCR read bits of
    # three rows set flush right at x=246 in the proposed blocks, none matching the header.
    # The layout is an annotation's: filled. Two rows, rows whose right and left edges
    # differ, or words outside the proposed blocks, stay.
    words = [px.OcrWord("Laum", (190, 215, 225, 229), 75.0), px.OcrWord("en", (228, 218, 246, 227), 71.0),
             px.OcrWord("~921", (225, 228, 246, 236), 0.0), px.OcrWord("Sala", (175, 237, 219, 249), 20.0),
             px.OcrWord("GH", (232, 239, 246, 247), 97.0)]
    blocks = [(181, 213, 250, 230), (220, 217, 256, 238), (170, 236, 254, 250)]
    state = {"words": words, "blocks": blocks}
    monkeypatch.setattr(px, "_read", lambda pixels, monochrome1, search:
                        (state["words"], [], state["blocks"], None))
    image = np.full((256, 256), 500, dtype=np.uint16)
    result = px.clean_burned_in(image, ["Doe", "Jane"])
    filled = _filled_mask(image.shape, result.boxes)
    for box in ((192, 218, 246, 224), (200, 228, 246, 235), (183, 240, 246, 246)):
        assert _covered(filled, box) == 1.0, box
    assert "header-match" not in {b["reason"] for b in result.boxes}
    state["words"] = words[:3]
    assert px.clean_burned_in(image, ["Doe", "Jane"]).boxes == []
    state["words"] = words[:2] + [px.OcrWord("~921", (205, 228, 236, 236), 0.0)] + words[3:]
    assert px.clean_burned_in(image, ["Doe", "Jane"]).boxes == []
    state["words"], state["blocks"] = words, blocks[:2]
    assert px.clean_burned_in(image, ["Doe", "Jane"]).boxes == []


def test_a_word_matched_is_filled_on_its_own_row_not_clipped_to_the_next(monkeypatch):
    # Tesseract drew the matched name's box from its own row (11–23) down into the next row,
    # where a glyph line was found (30–39). The fill keeps the name's row: only glyph lines
    # of the word's own row (their middle inside its box) narrow it.
    words = [px.OcrWord("Holloway", (192, 9, 248, 34), 96.0)]
    monkeypatch.setattr(px, "_read", lambda pixels, monochrome1, search:
                        (words, [(197, 30, 248, 39)], [], None))
    image = np.full((256, 256), 500, dtype=np.uint16)
    filled = _filled_mask(image.shape, px.clean_burned_in(image, ["Holloway"]).boxes)
    assert _covered(filled, (192, 11, 248, 23)) == 1.0


def _strokes_with(marks, shape=(256, 256)):
    """Stroke strengths: 1.0 on each (x0, y0, x1, y1) rectangle, 0 elsewhere."""
    bright = np.zeros(shape, dtype=np.float32)
    for x0, y0, x1, y1 in marks:
        bright[y0:y1, x0:x1] = 1.0
    return px._Strokes(bright, np.zeros(shape, dtype=np.float32), 1.0)


def test_a_fill_is_carried_along_its_row_where_strokes_or_words_go_on(monkeypatch):
    # OCR matched the name at the start of a line whose glyph search stopped at x=70 (print
    # over bright anatomy); strokes of letters go on along the row to x=100. The fill
    # follows them, and not a rib that crosses the row from above to below at x=130, nor
    # strokes more than four print heights on.
    line = (20, 200, 70, 208)
    letters = [(x, 201, x + 2, 207) for x in range(72, 100, 5)]
    rib = (130, 150, 133, 256)
    far = [(x, 201, x + 2, 207) for x in range(140, 160, 5)]
    words = [px.OcrWord("DOE", (20, 200, 60, 208), 90.0)]
    strokes = _strokes_with(letters + [rib] + far)
    state = {"words": words, "strokes": strokes}
    monkeypatch.setattr(px, "_read", lambda pixels, monochrome1, search:
                        (state["words"], [line], [], state["strokes"]))
    image = np.full((256, 256), 500, dtype=np.uint16)
    filled = _filled_mask(image.shape, px.clean_burned_in(image, ["Doe"]).boxes)
    assert _covered(filled, (20, 200, 99, 208)) == 1.0
    assert _covered(filled, (128, 200, 160, 208)) == 0.0
    # Without strokes, a word read on the row (any confidence) carries it the same way.
    state["strokes"] = _strokes_with([])
    state["words"] = words + [px.OcrWord("TERHEN", (80, 199, 110, 209), 39.0)]
    filled = _filled_mask(image.shape, px.clean_burned_in(image, ["Doe"]).boxes)
    assert _covered(filled, (20, 200, 110, 208)) == 1.0
    state["words"] = words
    filled = _filled_mask(image.shape, px.clean_burned_in(image, ["Doe"]).boxes)
    assert _covered(filled, (75, 200, 110, 208)) == 0.0


def test_a_fill_carried_along_its_row_stays_out_of_the_lung_field(monkeypatch):
    # The same print on a row of the image's central square: the matched line is filled,
    # and carried on along its strokes only up to the square (carrying is a guess).
    line = (10, 120, 50, 128)
    strokes = _strokes_with([(x, 121, x + 2, 127) for x in range(52, 90, 5)])
    monkeypatch.setattr(px, "_read", lambda pixels, monochrome1, search: (
        [px.OcrWord("DOE", (10, 120, 48, 128), 90.0)], [line], [], strokes))
    image = np.full((256, 256), 500, dtype=np.uint16)
    filled = _filled_mask(image.shape, px.clean_burned_in(image, ["Doe"]).boxes)
    assert _covered(filled, line) == 1.0 and filled[120:128, 52:60].all()
    assert not filled[:, 64:192].any()


def _fading_print(background_right: int, *, from_right: bool = False):
    """A 256 px 12-bit picture whose bottom rows are dark at the image's edge and, from x=60
    (from the right: up to x=196), ``background_right``; print of grey 3000 on rows 200–208
    from x=20 to 100 (mirrored from the right), seen only where the background is dark."""
    rng = np.random.default_rng(5)
    image = np.full((256, 256), 500.0) + rng.normal(0, 15, (256, 256))
    image[190:220, 60:] = background_right + rng.normal(0, 15, (30, 196))
    for x in range(20, 100, 5):
        image[200:208, x:x + 2] = 3000
    if from_right:
        image = image[:, ::-1]
    return np.clip(np.round(image), 0, 4095).astype(np.uint16)


@pytest.mark.parametrize("from_right", [False, True])
def test_a_fill_is_carried_on_where_the_background_is_as_bright_as_the_print(monkeypatch,
                                                                             from_right):
    # OCR read the name where the print stands on the dark edge (x 20–58); from x=60 the
    # background is as bright as the print, which goes on there unseen to x=100. The fill
    # is carried on through it towards the middle (six print heights at most, never up to
    # the middle column), and only on the print's own rows.
    def flip(box):
        return (256 - box[2], box[1], 256 - box[0], box[3]) if from_right else box

    line = flip((20, 200, 58, 208))
    image = _fading_print(3000, from_right=from_right)
    strokes = px._strokes(px._display(image, False))
    monkeypatch.setattr(px, "_read", lambda pixels, monochrome1, search: (
        [px.OcrWord("DOE", flip((20, 200, 56, 208)), 90.0)], [line], [], strokes))
    filled = _filled_mask(image.shape, px.clean_burned_in(image, ["Doe"]).boxes)
    assert _covered(filled, flip((20, 200, 100, 208))) == 1.0
    assert not filled[:, 110:146].any()
    assert not filled[:190].any() and not filled[222:].any()
    # Where the background beside the print is darker than the print, nothing hides there:
    # the fill ends with the strokes seen.
    image = _fading_print(1200, from_right=from_right)
    strokes = px._strokes(px._display(image, False))
    filled = _filled_mask(image.shape, px.clean_burned_in(image, ["Doe"]).boxes)
    assert _covered(filled, line) == 1.0
    assert _covered(filled, flip((115, 198, 125, 210))) == 0.0


def test_a_fill_set_in_the_outer_quarter_is_carried_to_the_edge_through_print_turned_over(
        monkeypatch):
    # Print of grey 2000 from x=150 to 232 on rows 200–208: dark on the bright background up
    # to x=200 (where the glyph search found it), unseen on background of its own grey up to
    # x=225, light on the dark border after. The fill goes on to the border's print (the line
    # stands in the image's outer quarter), but not over a side marker standing taller than
    # the print on its row beyond it.
    rng = np.random.default_rng(7)
    image = np.full((256, 256), 600.0) + rng.normal(0, 15, (256, 256))
    image[190:220, :200] = 3000
    image[190:220, 200:225] = 2000
    image[190:220, 225:] = 800
    image[190:220] += rng.normal(0, 15, (30, 256))
    for x in range(150, 232, 5):
        image[200:208, x:x + 2] = 2000
    line = (150, 200, 198, 208)

    def read(pixels, monochrome1, search):
        return ([px.OcrWord("DOE", (150, 200, 190, 208), 90.0)], [line], [],
                px._strokes(px._display(pixels, False)))

    monkeypatch.setattr(px, "_read", read)
    stored = np.clip(np.round(image), 0, 4095).astype(np.uint16)
    filled = _filled_mask(stored.shape, px.clean_burned_in(stored, ["Doe"]).boxes)
    assert _covered(filled, (150, 200, 232, 208)) == 1.0
    marked = image.copy()
    marked[192:218, 240:243] = 3800  # a letter taller than the print, bright on the border
    stored = np.clip(np.round(marked), 0, 4095).astype(np.uint16)
    filled = _filled_mask(stored.shape, px.clean_burned_in(stored, ["Doe"]).boxes)
    assert _covered(filled, (150, 200, 232, 208)) == 1.0 and not filled[:, 240:243].any()


# ------------------------------------------------------------------ the region search


def _print_over_noise(lines, *, bold=False, seed=3):
    """A 256 px 12-bit picture: a bright smooth blob (the chest) under noise, with white print
    at the given (x, y, text, font size); returns it and the boxes of the print."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:256, 0:256] / 256.0
    display = (0.25 + 0.35 * np.exp(-((xx - 0.5) ** 2 + (yy - 0.45) ** 2) / 0.08)
               + rng.normal(0, 0.03, (256, 256)))
    canvas = Image.new("L", (256, 256), 0)
    draw = ImageDraw.Draw(canvas)
    boxes = []
    for x, y, text, size in lines:
        font = ImageFont.load_default(size=size)
        width = 1 if bold else 0  # bold: the letters run into each other
        draw.text((x, y), text, fill=255, font=font, stroke_width=width, stroke_fill=255)
        boxes.append(draw.textbbox((x, y), text, font=font, stroke_width=width))
    alpha = np.asarray(canvas, dtype=np.float64) / 255.0
    stored = np.round(np.clip(display * (1 - alpha) + 0.95 * alpha, 0, 1) * 4095)
    return stored.astype(np.uint16), boxes


def _inside(box, blocks) -> bool:
    return any(b[0] <= box[0] and b[1] <= box[1] and box[2] <= b[2] and box[3] <= b[3]
               for b in blocks)


def test_the_proposal_finds_print_in_a_corner_over_noise():
    stored, boxes = _print_over_noise([(150, 220, "DOE^JANE", 12), (150, 234, "12-345-678", 12),
                                       (8, 8, "ST MARY HOSP", 12)])
    blocks = px.propose_text_regions(stored)
    assert blocks is not None
    for box in boxes:
        assert _inside(box, blocks), box
    # Two blocks (the corners), a small part of the picture: the blob and the noise are not
    # proposed.
    covered = np.zeros(stored.shape, dtype=bool)
    for x0, y0, x1, y1 in blocks:
        covered[y0:y1, x0:x1] = True
    assert len(blocks) == 2 and covered.mean() < 0.1
    # Inverted storage proposes the same; a flat picture nothing.
    assert px.propose_text_regions(4095 - stored, monochrome1=True) == blocks
    assert px.propose_text_regions(np.full((64, 64), 9, dtype=np.uint16)) == []


def test_the_proposal_finds_bold_print_the_glyph_lines_miss():
    # Bold print whose letters touch: too few separate glyphs for a line of glyphs, but a
    # run of strokes shaped like print.
    stored, [box] = _print_over_noise([(8, 8, "MM 12 2021", 11)], bold=True)
    strokes = px._strokes(px._display(stored, False))
    _layers, lines = px._text_layers(strokes)
    found = [line for line in lines if px._intersection(line, box)]
    assert sum(px._area(line) for line in found) < 0.5 * px._area(box)
    assert _inside(box, px.propose_text_regions(stored))


def test_a_picture_full_of_print_falls_back_to_reading_it_whole(monkeypatch):
    # A page of print (a scanned form): more blocks, or more of the picture, than a proposal
    # is trusted with. The region search then reads the whole picture, view by view, as the
    # full search does: never less.
    page = [(6 + 128 * (k % 2), 4 + 12 * (k // 2), f"LINE {k:02d} TEXT", 10) for k in range(40)]
    stored, _boxes = _print_over_noise(page)
    assert px.propose_text_regions(stored) is None
    pictures = []

    def tesseract(exe, picture):
        pictures.append(picture.size)
        return "level\n"

    monkeypatch.setattr(px, "_tesseract_path", lambda: "tesseract")
    monkeypatch.setattr(px, "_run_tesseract", tesseract)
    px.clean_burned_in(stored, ["DOE"], search="regions")
    whole = sorted(pictures)
    pictures.clear()
    px.clean_burned_in(stored, ["DOE"], search="full")
    assert whole == sorted(pictures) and len(whole) >= 2
    assert all(size == (4 * 256 + 2 * px._MARGIN,) * 2 for size in whole)
    # A picture with a little print is read as crops: one mosaic of the text layers' crops,
    # and one per polarity of top-hat crops where print candidates are (Tesseract
    # thresholds each picture as a whole: grey top-hats and black-on-white layers apart).
    pictures.clear()
    small, _ = _print_over_noise([(150, 220, "DOE^JANE", 12)])
    strokes = px._strokes(px._display(small, False))
    proposal = px._propose(strokes, px._text_layers(strokes)[1], small.shape)
    px.clean_burned_in(small, ["DOE"], search="regions")
    expected = 1 + bool(proposal.bright_print) + bool(proposal.dark_print)
    assert len(pictures) == expected >= 2 and all(h < 4 * 256 for _w, h in pictures)


def test_the_engine_is_chosen_by_a_variable_and_a_missing_one_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(px.OCR_ENGINE_VARIABLE, "sometimes")
    with pytest.raises(UpdpError, match="must be auto, program or library"):
        px.ocr_words(np.zeros((32, 32), dtype=np.uint16))
    monkeypatch.setenv(px.OCR_ENGINE_VARIABLE, "library")
    monkeypatch.setattr(px, "_tessdata", lambda: None)  # no tesserocr, or no English model
    assert not px.tesseract_available()
    with pytest.raises(UpdpError, match="install the Python package tesserocr"):
        px.ocr_words(np.ones((32, 32), dtype=np.uint16))
    monkeypatch.setenv(px.OCR_ENGINE_VARIABLE, "auto")  # auto falls back to the program
    if px.shutil.which(px.TESSERACT_COMMAND):
        assert px.ocr_engine() == "program"


def _engines() -> list[str]:
    engines = []
    for name in ("library", "program"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(px.OCR_ENGINE_VARIABLE, name)
            if px.tesseract_available():
                engines.append(name)
    return engines


def test_the_library_and_the_program_read_the_same_print(monkeypatch):
    if len(_engines()) < 2:
        pytest.skip("the Tesseract library (tesserocr) or program is not installed")
    stored, _ = _print_over_noise([(8, 6, "DOE^JANE 4417", 14), (150, 228, "MRN 55821", 12)])
    read = {}
    for name in ("library", "program"):
        monkeypatch.setenv(px.OCR_ENGINE_VARIABLE, name)
        assert px.ocr_engine() == name
        read[name] = px.clean_burned_in(stored, ["DOE", "JANE", "4417", "55821"]).boxes
    assert read["library"] and read["program"]
    filled = {name: _filled_mask(stored.shape, boxes) for name, boxes in read.items()}
    # Different builds of Tesseract may cut a word differently; both cover the same print.
    assert (filled["library"] & filled["program"]).sum() >= 0.9 * filled["program"].sum()


def test_the_library_reads_a_picture_as_the_program_reads_its_png(monkeypatch, cohort, records):
    """The program is given PNGs that state no resolution; the library is given the picture
    itself and told the resolution Tesseract assumes then: the same words in the same boxes."""
    if "library" not in _engines():
        pytest.skip("the Tesseract library (tesserocr) is not installed")
    monkeypatch.setenv(px.OCR_ENGINE_VARIABLE, "library")
    pictures = []
    read = px._run_tesseract

    def keep(exe, picture):
        pictures.append(picture)
        return read(exe, picture)

    monkeypatch.setattr(px, "_run_tesseract", keep)
    for r in [r for r in records if r["burned_in"]][:6]:
        ds = pydicom.dcmread(cohort / r["image"])
        px.ocr_words(ds.pixel_array, monochrome1=r["photometric"] == "MONOCHROME1", search="regions")
    assert len(pictures) >= 4
    for picture in pictures:
        as_png = Image.open(io.BytesIO(px._png_bytes(picture)))
        assert px._library_tsv(picture) == px._library_tsv(as_png)


def test_library_readers_serve_threads_at_once_and_never_cross_a_fork(monkeypatch):
    if "library" not in _engines():
        pytest.skip("the Tesseract library (tesserocr) is not installed")
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv(px.OCR_ENGINE_VARIABLE, "library")
    images = [_print_over_noise([(8, 6 + 20 * k, f"CASE {k}{k}71", 14)])[0] for k in range(4)]
    alone = [px.ocr_words(image) for image in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(px.ocr_words, images))
    assert [[w.text for w in ws] for ws in together] == [[w.text for w in ws] for ws in alone]
    readers = px._READERS
    assert readers._idle  # kept for the next image
    kept = list(readers._idle)
    monkeypatch.setattr(readers, "_pid", -1)  # as if this were a child made by fork
    assert [w.text for w in px.ocr_words(images[0])] == [w.text for w in alone[0]]
    assert not set(map(id, readers._idle)) & set(map(id, kept))


def test_an_unknown_search_is_refused():
    with pytest.raises(ValueError, match="search must be one of regions, full"):
        px.clean_burned_in(np.zeros((8, 8), dtype=np.uint16), search="corners")


@requires_tesseract
def test_the_region_search_reads_print_in_a_corner():
    stored, _boxes = _print_over_noise([(150, 220, "SAMPLE 4711", 14)])
    tokens = px.identifier_tokens(["SAMPLE", "4711"])
    words = px.ocr_words(stored, search="regions")
    found = [w for w in words if px.matches_identifier(w.text, tokens)]
    assert found, "the printed words were not read"
    for w in found:
        x0, y0, x1, y1 = w.box
        assert 145 <= x0 < x1 <= 256 and 215 <= y0 < y1 <= 245  # where they were drawn


@requires_tesseract
@pytest.mark.slow
def test_region_and_full_search_fill_the_same_phi(cleaned):
    """Every PHI line the full search covers (90 %), the region search covers too; the
    cleaner's default is the region search (the ``cleaned`` fixture)."""
    checked = 0
    for r, ds, stored, result in cleaned:
        mono1 = r["photometric"] == "MONOCHROME1"
        full = px.clean_burned_in(stored, px.identifiers_from_header(flatten_header(ds)),
                                  monochrome1=mono1, search="full")
        regions = _filled_mask(stored.shape, result.boxes)
        whole = _filled_mask(stored.shape, full.boxes)
        for b in r["burned_in"]:
            if b["phi"] and _covered(whole, b["box"]) >= 0.9:
                checked += 1
                assert _covered(regions, b["box"]) >= 0.9, (r["study_id"], b["category"])
            if b["category"] == "MARKER":
                assert _covered(regions, b["box"]) == 0.0, r["study_id"]
    assert checked >= 15


@requires_tesseract
@pytest.mark.slow
def test_bench_ocr_compares_the_searches(tmp_path):
    from updp_napari.bench import run_benchmark

    result = run_benchmark("ocr", studies=6, size=128, repeat=1, seed=90210)
    assert result["benchmark"] == "ocr" and result["studies"] == 6 and result["seed"] == 90210
    for mode in ("regions", "full"):
        assert result[mode]["median_seconds_per_image"] > 0
        assert 0.0 <= (result[mode]["covered"] or 0.0) <= 1.0
        assert result[mode]["markers"] >= result[mode]["markers_touched"] == 0
        # What the fills cost the rest of the image, and what the gate still reads.
        assert 0.0 <= result[mode]["background_filled"] < 0.2
        assert result[mode]["leaks"] == len(result[mode]["leaked_studies"])
    assert result["speed_ratio"] > 0 and isinstance(result["lines_lost_to_regions"], list)
    assert result["reference"] in ("full", "full_program") and result["speed_ratio_to_reference"] > 0
    assert isinstance(result["meets_target"], bool)
    assert result["engine"] == px.ocr_engine()
    if result["engine"] == "library" and px.shutil.which(px.TESSERACT_COMMAND):
        # The full search as the program reads it is timed too.
        assert result["full_program"]["median_seconds_per_image"] > 0
        assert 0.0 <= (result["full_program"]["covered"] or 0.0) <= 1.0
        assert result["speed_ratio_to_program_full"] > 0


def test_deid_dicom_passes_the_search_on(monkeypatch, cohort, records, tmp_path):
    from updp_napari.deid.dicom import DicomDeidentifier

    seen = []

    def clean(pixels, identifiers=(), *, monochrome1=False, search="regions", **_):
        seen.append(search)
        return px.BurnedInResult(pixels=np.asarray(pixels).copy(), boxes=[])

    monkeypatch.setattr(px, "tesseract_available", lambda: True)
    monkeypatch.setattr(px, "clean_burned_in", clean)
    r = records[0]
    for search in ("full", "regions"):
        deid = DicomDeidentifier(bytes(32), ocr_search=search)
        record = deid.deidentify_file(cohort / r["image"], tmp_path / search / "x.dcm", "x.dcm")
        assert record.status == "ok" and seen[-1] == search
    # The default: the region search, which covered more PHI lines than the full one.
    assert DicomDeidentifier(bytes(32)).ocr_search == "regions"
    with pytest.raises(UpdpError, match="ocr_search must be regions or full"):
        DicomDeidentifier(bytes(32), ocr_search="corners")


@requires_tesseract
@pytest.mark.slow
def test_the_score_counts_what_the_gate_still_reads_and_what_the_fills_cost(monkeypatch, cohort):
    from updp_napari.evaluate import pixels as scoring

    images = [i for i in scoring.load_images(cohort) if any(b["phi"] for b in i["burned_in"])]
    assert len(images) >= 5
    # Cleaned by the full search (the score's default, the reference) and by the region
    # search (the cleaner's default): the gate's OCR reads no identifier on a PHI line, and
    # the fills take a small share of the other pixels (the region search a little more: it
    # fills the glyph lines of an annotation's block, and widens them; both carry fills
    # along their rows and fill stacks of print: 5.4 % and 6.1 % of the other pixels here).
    cleaned = scoring.score_images(images, leak_scan=True)
    assert cleaned["search"] == "full"
    assert cleaned["leaks"] == [] and 0.0 < cleaned["background_filled"] < 0.06
    regions = scoring.score_images(images, px.DEFAULT_SEARCH, leak_scan=True)
    assert regions["leaks"] == [] and 0.0 < regions["background_filled"] < 0.07
    # Not cleaned at all: the gate reads the names and IDs, and nothing else is filled.
    monkeypatch.setattr(px, "clean_burned_in", lambda pixels, *a, **k: px.BurnedInResult(
        pixels=np.asarray(pixels).copy(), boxes=[]))
    untouched = scoring.score_images(images, leak_scan=True)
    assert len(untouched["leaks"]) >= len(images) // 2
    assert set(untouched["leaks"]) <= {i["study_id"] for i in images}
    assert untouched["background_filled"] == 0.0 and untouched["covered"] == 0.0
    # Without the scan there is no leak count (it is not measured).
    assert "leaks" not in scoring.score_images(images[:1])
