"""The cohort's population group: drawn per patient by the site's mix, in the ground truth and
in EthnicGroup (0010,2160), shifting anatomy inside the ranges g1 covers; removed on sharing."""

from dataclasses import fields

import numpy as np
import pydicom

from updp_napari.cohort import anatomy
from updp_napari.cohort.identities import GROUPS, make_sites
from updp_napari.deid.header import DEFAULT_OPTIONS, HeaderDeidentifier, parse_options


def test_group_in_ground_truth_and_header(wide_cohort):
    root, records = wide_cohort
    by_patient = {}
    for r in records:
        group = r["demographics"]["group"]
        assert group in GROUPS
        assert by_patient.setdefault(r["patient"], group) == group  # one group per patient
        assert pydicom.dcmread(root / r["image"], stop_before_pixels=True).EthnicGroup == group
    assert set(by_patient.values()) == set(GROUPS)


def test_the_mix_differs_by_site(wide_cohort):
    _, records = wide_cohort
    share = {}
    for r in records:
        n, g2 = share.get(r["site"], (0, 0))
        share[r["site"]] = (n + 1, g2 + (r["demographics"]["group"] == "g2"))
    fractions = {site: g2 / n for site, (n, g2) in share.items()}
    assert max(fractions.values()) - min(fractions.values()) > 0.3, fractions
    profiles = {s.code: s.group2_fraction for s in make_sites(5, np.random.default_rng(0))}
    assert len(set(profiles.values())) == 5


def test_g2_shifts_anatomy_within_g1_ranges():
    rng = np.random.default_rng(3)
    g1 = [anatomy.draw_traits(rng, "F" if k % 2 else "M", 75.0, 1.7) for k in range(400)]
    g2 = [anatomy.group_traits(t, "g2") for t in g1]
    assert all(anatomy.group_traits(t, "g1") == t for t in g1[:5])
    names = [f.name for f in fields(anatomy.AnatomyTraits)]
    for name in names:
        a = np.array([getattr(t, name) for t in g1], dtype=float)
        b = np.array([getattr(t, name) for t in g2], dtype=float)
        if name not in anatomy.TRAIT_RANGES:
            assert np.array_equal(a, b), name  # traits the groups share are left as drawn
            continue
        lo, hi = anatomy.TRAIT_RANGES[name]
        assert a.min() >= lo - 1e-6 and a.max() <= hi + 1e-6, name
        assert b.min() >= lo - 1e-6 and b.max() <= hi + 1e-6, name
    mean = {name: (np.mean([getattr(t, name) for t in g1]), np.mean([getattr(t, name) for t in g2]))
            for name in ("lung_half_width", "diaphragm_v", "heart_rx", "heart_bulge", "soft_tissue",
                         "body_half_width")}
    assert mean["lung_half_width"][1] < mean["lung_half_width"][0] - 0.01
    assert mean["diaphragm_v"][1] < mean["diaphragm_v"][0] - 0.01
    assert mean["heart_rx"][1] > mean["heart_rx"][0] + 0.005
    assert mean["heart_bulge"][1] > mean["heart_bulge"][0] + 0.03
    assert mean["soft_tissue"][1] > mean["soft_tissue"][0] + 0.05
    assert mean["body_half_width"][1] > mean["body_half_width"][0] + 0.01


def test_the_group_never_leaves_with_the_shared_header(wide_cohort):
    root, records = wide_cohort
    for options in (DEFAULT_OPTIONS, parse_options("default,retain-device-identity"), ()):
        ds = pydicom.dcmread(root / records[0]["image"])
        result = HeaderDeidentifier(bytes(range(32)), options).apply(ds, "patient")
        assert "EthnicGroup" not in ds and result.actions["EthnicGroup"] == "X"
        assert "PatientSex" in ds or not options
