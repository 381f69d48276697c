"""The cohort as arrays: images, identities, labels, masks and text boxes stay aligned."""

from pathlib import Path

import numpy as np
import pytest

from updp_napari.cohort.dataset import load_cohort_images
from updp_napari.core.errors import InputError

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def test_sample_cohort_loads_aligned_at_the_asked_size():
    data = load_cohort_images(SAMPLE, size=64)
    assert data.images.shape == (24, 64, 64) and data.images.dtype == np.float32
    assert 0.0 <= data.images.min() and data.images.max() <= 1.0
    assert data.patients[:3] == ["p0000"] * 3 and len(set(data.patients)) == 8
    # Every labelled finding has its mask, and no mask lies where no finding is.
    for j, label in enumerate(data.label_names):
        has_mask = data.label_mask(label).reshape(len(data), -1).any(1)
        assert np.array_equal(has_mask, data.labels[:, j].astype(bool)), label
    assert data.text_boxes.any(axis=(1, 2)).sum() >= 1
    sub = data.subset([3, 4])
    assert sub.studies == data.studies[3:5] and np.array_equal(sub.masks, data.masks[3:5])


def test_images_of_one_patient_look_more_alike_than_those_of_others():
    data = load_cohort_images(SAMPLE, size=64)
    x = data.images.reshape(len(data), -1)
    x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    sim = x @ x.T / x.shape[1]
    p = np.array(data.patients)
    same = (p[:, None] == p[None]) & ~np.eye(len(p), dtype=bool)
    assert sim[same].mean() > sim[p[:, None] != p[None]].mean() + 0.1


def test_a_folder_that_is_no_cohort_is_named(tmp_path):
    with pytest.raises(Exception, match="ground truth"):
        load_cohort_images(tmp_path)
    with pytest.raises(InputError, match="no such cohort"):
        load_cohort_images(tmp_path / "missing")
