"""The committed sample cohort is what `updp make-cohort` makes with its recorded seed (headers,
reports and masks byte for byte; pixels up to the rounding of one grey level)."""

import json

import numpy as np
import pydicom
from PIL import Image

from updp_napari._sample_data import sample_cohort_path
from updp_napari.cohort.generate import make_cohort, read_ground_truth


def test_sample_cohort_matches_the_generator(tmp_path):
    sample = sample_cohort_path()
    info = json.loads((sample / "cohort.json").read_text())
    assert 20 <= info["studies"] <= 30
    fresh = tmp_path / "fresh"
    make_cohort(fresh, patients=info["patients"], studies=info["studies_per_patient"],
                seed=info["seed"], size=info["size"], sites=len(info["sites"]))
    assert json.loads((fresh / "cohort.json").read_text()) == info
    shipped, made = read_ground_truth(sample), read_ground_truth(fresh)
    assert shipped == made
    for r in made:
        assert (sample / r["report"]).read_bytes() == (fresh / r["report"]).read_bytes()
        a, b = pydicom.dcmread(sample / r["image"]), pydicom.dcmread(fresh / r["image"])
        assert a.file_meta == b.file_meta
        assert [e.tag for e in a] == [e.tag for e in b]
        assert all(e.value == b[e.tag].value for e in a if e.keyword != "PixelData")
        # Pixels are float arithmetic rounded to integers: another numpy or CPU may round a
        # value sitting on .5 the other way, and nothing more.
        pa, pb = a.pixel_array.astype(np.int64), b.pixel_array.astype(np.int64)
        assert np.abs(pa - pb).max() <= 1 and (pa != pb).mean() < 0.005
        for mask in r["masks"].values():
            assert np.array_equal(np.asarray(Image.open(sample / mask)),
                                  np.asarray(Image.open(fresh / mask)))


def test_sample_cohort_covers_every_finding_and_site():
    records = read_ground_truth(sample_cohort_path())
    positives = {label for r in records for label, v in r["labels"].items() if v}
    assert len(positives) >= 5
    assert len({r["site"] for r in records}) == 3
    assert any(r["burned_in_phi"] for r in records)
