"""The product's shared vocabularies: the findings it keeps and the PHI categories it names.

Standard library only. The pipeline, the review and audit docks, the reader and the
synthetic cohort all take these lists from here, so a finding or a category is added in
one place.
"""

from __future__ import annotations

import re

#: The findings whose regions the pipeline preserves and the scorers classify, in a fixed
#: order: the label vector of every study, and label ``i + 1`` in a preserved-region image.
FINDINGS: tuple[str, ...] = (
    "cardiomegaly",
    "effusion",
    "nodule",
    "mass",
    "consolidation",
    "pneumothorax",
    "atelectasis",
)

#: The highest label of a preserved-region image (0 is background).
MAX_FINDING_LABEL = len(FINDINGS)

#: Every PHI category a report span can carry: what the detectors emit and the synthetic
#: cohort's ground truth uses.
PHI_CATEGORIES: tuple[str, ...] = (
    "NAME", "DATE", "TIME", "AGE", "MRN", "ACCESSION", "ID", "SSN", "PHONE", "FAX", "PAGER",
    "EMAIL", "URL", "IP", "ZIP", "ADDRESS", "CITY", "STATE", "INSTITUTION",
)

#: The categories a reviewer picks from when adding a redaction by hand: the common ones,
#: and OTHER for anything else identifying.
REVIEWER_CATEGORIES: tuple[str, ...] = (
    "OTHER", "NAME", "DATE", "ID", "ADDRESS", "INSTITUTION", "PHONE", "AGE")

#: The categories an auditor records a finding under.
AUDIT_CATEGORIES: tuple[str, ...] = (
    "NAME", "DATE", "MRN", "ACCESSION", "ID", "PHONE", "ADDRESS", "INSTITUTION", "AGE", "OTHER")

#: The months, as a date names them.
MONTHS: tuple[str, ...] = ("January", "February", "March", "April", "May", "June", "July", "August",
                           "September", "October", "November", "December")

#: Every category a span of the review workspace may carry.
ALL_PHI_CATEGORIES: tuple[str, ...] = PHI_CATEGORIES + ("OTHER",)

# Han ideographs, kana and hangul: scripts written without spaces between words, where two
# characters make a whole given name (太郎, 花子). Their names are searched as runs of
# characters, not as whole words.
UNSPACED_SCRIPT = re.compile("[\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
                             "\uac00-\ud7af\uf900-\ufaff]")
