"""core.boxes: the one half-open box convention, its mask and how the dock draws it."""

import numpy as np
import pytest

from updp_napari.core.boxes import Box, boxes_from_json, boxes_mask
from updp_napari.core.errors import InputError


def test_a_box_is_half_open_like_numpy_slicing():
    box = Box(2, 1, 5, 3)
    assert (box.width, box.height, box.area, box.empty) == (3, 2, 6, False)
    mask = boxes_mask([box], (6, 8))
    expected = np.zeros((6, 8), bool)
    expected[1:3, 2:5] = True
    assert np.array_equal(mask, expected)
    assert mask.sum() == box.area
    # the last column and row named are not covered
    assert not mask[:, 5].any() and not mask[3, :].any()
    assert Box(4, 4, 4, 9).empty and not boxes_mask([Box(4, 4, 4, 9)], (10, 10)).any()
    # a Box is a tuple: unpacking and comparing with plain tuples work
    x0, y0, x1, y1 = box
    assert (x0, y0, x1, y1) == (2, 1, 5, 3) and box == (2, 1, 5, 3)


def test_the_mask_takes_plain_tuples_unions_boxes_and_clips():
    mask = boxes_mask([(0, 0, 2, 2), Box(1, 1, 3, 3), (-5, 8, 3, 50)], (10, 10))
    assert mask.shape == (10, 10) and mask.dtype == bool
    assert mask[:3, :3].sum() == 7  # two 2x2 boxes sharing one pixel
    assert mask[8:, :3].all() and mask[8:].sum() == 6  # the part inside the image only
    assert not boxes_mask([], (4, 5)).any() and boxes_mask([], (4, 5)).shape == (4, 5)
    # wholly outside: nothing, and never a wrap-around from negative indices
    assert not boxes_mask([(-4, -4, -1, -1), (20, 20, 30, 30)], (10, 10)).any()
    # an image with channels: the mask is of its rows and columns
    assert boxes_mask([(0, 0, 1, 1)], (4, 5, 3)).shape == (4, 5)


def test_clipping_and_padding():
    assert Box(-3, 2, 12, 20).clipped((10, 8)) == Box(0, 2, 8, 10)
    assert Box(20, 20, 30, 30).clipped((10, 10)).empty
    assert Box(-5, -5, -1, -1).clipped((10, 10)).empty
    assert Box(3, 4, 6, 7).padded(2) == Box(1, 2, 8, 9)
    assert Box(1, 1, 6, 7).padded(2, (8, 7)) == Box(0, 0, 7, 8)
    image = np.zeros((8, 7))
    image[Box(1, 1, 6, 7).padded(2, image.shape).slices(image.shape)] = 1
    assert image.all()
    assert Box(-2, -2, 3, 3).slices((10, 10)) == (slice(0, 3), slice(0, 3))


def test_validation():
    assert Box(0, 0, 1, 1).check((1, 1)) == Box(0, 0, 1, 1)
    assert Box(0, 0, 8, 4).valid((4, 8)) and not Box(0, 0, 9, 4).valid((4, 8))
    with pytest.raises(InputError, match="0 <= x0 < x1"):
        Box(5, 5, 2, 9).check()
    with pytest.raises(InputError, match="0 <= x0 < x1"):
        Box(-1, 0, 2, 2).check()
    with pytest.raises(InputError, match="outside the 8x4 image"):
        Box(0, 0, 9, 4).check((4, 8))


def test_json_round_trip():
    box = Box.from_json([3, 4, 10, 12])
    assert box == Box(3, 4, 10, 12) and type(box.x0) is int
    assert box.as_json() == [3, 4, 10, 12]
    assert all(type(v) is int for v in Box(*np.array([1, 2, 3, 4])).as_json())
    assert Box.from_json(Box(1, 2, 3, 4).as_json()) == Box(1, 2, 3, 4)
    assert Box.from_json([1.0, 2, np.int64(3), 4]) == Box(1, 2, 3, 4)
    for bad in ([1, 2, 3], [1, 2, 3, 4.5], "1,2,3,4", [1, 2, None, 4], [True, 0, 1, 1],
                [1, 2, float("nan"), 4], 7, {"box": [1, 2, 3, 4]}):
        with pytest.raises(InputError, match="four whole numbers"):
            Box.from_json(bad)
    records = [{"box": [0, 0, 9, 4], "reason": "ocr"}, {"box": [1, 1, 2, 2], "reason": "x"}]
    assert boxes_from_json(records) == [Box(0, 0, 9, 4), Box(1, 1, 2, 2)]
    assert boxes_from_json(None) == [] and boxes_from_json([]) == []
    with pytest.raises(InputError, match="no 'box'"):
        boxes_from_json([{"reason": "ocr"}])


BOXES = [Box(3, 2, 9, 5), Box(0, 10, 1, 11), Box(12, 0, 16, 16), Box(5, 5, 6, 7)]


def test_drawn_corners_enclose_exactly_the_masked_pixel_centres():
    # napari: the centre of pixel (row, col) is at (row, col); a pixel spans ±0.5 around it
    shape = (16, 16)
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    for box in BOXES:
        (r0, c0), (r1, c1) = box.corners()
        inside = (rows > r0) & (rows < r1) & (cols > c0) & (cols < c1)
        assert np.array_equal(inside, boxes_mask([box], shape)), box
        # the outline runs along pixel edges (half-integers), never through a pixel
        assert all(v % 1 == 0.5 for v in (r0, c0, r1, c1))
        assert (r1 - r0, c1 - c0) == (box.height, box.width)


def test_napari_rasterises_the_drawn_rectangles_to_the_mask():
    layers = pytest.importorskip("napari.layers")
    shape = (16, 16)
    drawn = layers.Shapes()
    drawn.add_rectangles([box.corners() for box in BOXES])
    assert np.array_equal(drawn.to_masks(shape).any(axis=0), boxes_mask(BOXES, shape))
    # the old, one pixel larger outline did not
    old = layers.Shapes()
    old.add_rectangles([np.array([[y0 - 0.5, x0 - 0.5], [y1 + 0.5, x1 + 0.5]])
                        for x0, y0, x1, y1 in BOXES])
    assert old.to_masks(shape).any(axis=0).sum() > boxes_mask(BOXES, shape).sum()
