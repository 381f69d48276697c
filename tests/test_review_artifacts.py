"""Case artifacts: what the pipeline writes is what the review reads back."""

import numpy as np
import pytest

from updp_napari.core.errors import UpdpError
from updp_napari.review.artifacts import CaseArtifacts, put_array, put_json, put_text
from updp_napari.review.store import ReviewStore


def test_artifacts_round_trip_and_the_reviewer_mask_wins(tmp_path):
    with ReviewStore.open(tmp_path / "ws", create=True) as store:
        case = store.add_case("1.2.3.4")
        image = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
        put_array(store, case, "original", image, {"source": "test"})
        mask = np.zeros((64, 64), np.uint8)
        mask[10:20, 10:20] = 3
        put_array(store, case, "preserve_mask", mask)
        put_json(store, case, "text_boxes", [{"box": [0, 0, 9, 4], "reason": "ocr"}])
        put_text(store, case, "report", "Héllo\n")
        art = CaseArtifacts(store, case)
        assert np.array_equal(art.array("original"), image)
        assert art.signature("original") == {"source": "test"}
        assert art.text("report") == "Héllo\n" and not art.has("synthetic")
        # half-open, as the pipeline filled it: columns 0..8, rows 0..3
        assert art.text_mask((64, 64)).sum() == 9 * 4 and art.text_mask().shape == (64, 64)
        assert art.text_boxes() == [(0, 0, 9, 4)]
        assert np.array_equal(art.mask(), mask)
        edited = np.zeros_like(mask)
        store.record_mask_edit(case, "ann", store.put_array(edited))
        assert not art.mask().any()
        bad = store.put_artifact(b"\xff\xfe", suffix=".json")
        store.set_artifact(case, "scores", bad)
        with pytest.raises(UpdpError, match="scores is not valid JSON"):
            art.json("scores")
