"""Finding labels from report text: mentions, negation, uncertainty and normal statements.

A rule-based labeller in the manner of NegBio and the CheXpert labeller, for the findings the
product knows (:data:`~updp_napari.core.vocabulary.FINDINGS`). Standard library only.

How a report is read:

1. **Sections.** A report is cut at its headings (``FINDINGS:``, ``IMPRESSION:``, …). What
   stands under a heading that is not a description of the images (indication, history,
   reason for the examination, comparison, technique) is not labelled: "History of
   pneumothorax" there is a question, not a finding. Text before any heading is labelled.
2. **Sentences and clauses.** Sentences end at ``.``, ``!``, ``?`` (not inside ``1.5 cm`` or
   after ``vs.``), at a blank line and before a numbered item; a negation or uncertainty cue
   reaches to the end of its clause, which ends at ``;``, ``:`` and at words that turn the
   sentence (``but``, ``however``, ``although``, ``except``, ``other than``, ``which``,
   ``whereas``, ``there is``, …).
3. **Mentions** of each finding come from the lexicons below (:data:`LEXICON`). A few
   phrases are no mention although they hold a mention's words (``pericardial effusion``,
   ``mass effect``, ``vertebral collapse``).
4. **Cues** around a mention decide its label: a negation cue before it in its clause
   (``no``, ``without``, ``negative for``, ``free of``, ``clear of``, ``resolution of``,
   ``rather than``, …) or just after it (``is not seen``, ``has resolved``, ``unlikely``)
   makes it negative; an uncertainty cue (``possible``, ``may represent``, ``cannot
   exclude``, ``questionable``, ``suggestive of``, ``suspicious for``, ``versus``, ``less
   likely``, ``?``, …) uncertain. The nearest cue before the mention wins, if it is near
   enough (14 words for a negation, which runs down a list; 8 for an uncertainty cue; 3 for
   a bare ``not``); a cue right after the mention wins over it (no comma between, unless
   the comma joins a list of mentions). Phrases that look like negation but are not (``no
   change in``, ``no interval increase``, ``not significantly changed``) are cues too,
   leaving the mention positive. A negation a few words before an evidential cue negates:
   "no focal opacity to suggest pneumonia". ``likely``, ``probable``, ``favoring``,
   ``consistent with``, ``compatible with`` are no cues: the radiologist commits to the
   finding, so the mention is positive (on the certainty scale of Panicek and Hricak, 2016,
   "probably" is about 75 %, "possibly" 50 %, "unlikely" under 10 %).
5. **Signs** are mentions that are uncertain unless a cue says otherwise: a sign with
   several causes names the finding as one of them. An airspace opacity (consolidation, or
   atelectasis, edema, blood), a nodular opacity or density (a nodule, or a vessel end-on, a
   nipple, a healing rib), a blunted costophrenic angle (fluid, or scarring and pleural
   thickening), fluid in a fissure (pleural fluid, or edema), a prominent cardiac
   silhouette.
6. **Normal statements** are mentions with a fixed label: "heart size is normal", "normal
   cardiomediastinal silhouette", "the heart, mediastinum and pulmonary vascularity are within
   normal limits", "heart size at the upper limits of normal" (negative for cardiomegaly);
   "the costophrenic angles are sharp" (negative for effusion); "the lungs are clear"
   (negative for consolidation). "Borderline" is a degree, as "mild" is: "borderline
   cardiomegaly", "the heart is borderline enlarged" are positive (the Indiana indexers
   write "Cardiomegaly/borderline").
7. **A report's label** per finding: positive when any mention is, else uncertain when any
   is, else negative when any is, else None (not mentioned) — as the CheXpert labeller.

Decisions a user may not share, all here to change:

- *effusion* means pleural effusion (hydrothorax, pleural fluid, layering or subpulmonic
  fluid, fluid in the costophrenic angle); a pericardial or joint effusion is not one.
- *consolidation* takes consolidation, airspace disease, infiltrate and pneumonia: on a
  radiograph all four name airspace filling; an *interstitial* infiltrate is not one, and an
  airspace opacity is a sign (above).
- *nodule* takes nodules, micronodules and coin lesions; a **granuloma is not a nodule**
  here: it is a healed, usually calcified lesion the radiologist has already characterised,
  and the Indiana indexers file it apart (MeSH "Calcified Granuloma", "Granuloma"): counted
  as a nodule, it makes the nodule precision against MeSH "Nodule" fall from 0.91 to 0.22
  on the development half. A calcified nodule stays a nodule.
- *mass* takes masses, mass-like opacities and tumours; masses outside the chest (thyroid,
  breast, abdomen), mass effect and body mass are not.
- *atelectasis* takes atelectasis, atelectatic change, volume loss and lobar or lung
  collapse; "low lung volumes" is not volume loss, vertebral collapse is no collapse here.

The measurement against the Indiana University reports' MeSH terms is
:func:`evaluate_against_mesh` over :func:`read_openi`; its mapping is :data:`MESH_FINDINGS`.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import InputError, UpdpError
from ..core.files import decode_report, tree_files
from ..core.vocabulary import FINDINGS

POSITIVE = "positive"
NEGATIVE = "negative"
UNCERTAIN = "uncertain"
LABELS: tuple[str, ...] = (POSITIVE, NEGATIVE, UNCERTAIN)

#: What ``uncertain`` becomes under each policy of :func:`apply_uncertain` (``ignore``: as
#: if the finding were not mentioned).
UNCERTAIN_POLICIES: dict[str, str | None] = {"positive": POSITIVE, "negative": NEGATIVE,
                                             "ignore": None}

_FLAGS = re.IGNORECASE


# =========================================================================== sections

# Sections whose text does not describe the images: not labelled.
_SKIPPED_SECTIONS = (
    "indication", "indications", "clinical indication", "clinical indications", "history",
    "clinical history", "medical history", "clinical information", "clinical info",
    "clinical data", "clinical details", "clinical notes", "clinical question",
    "reason for exam", "reason for examination", "reason for study", "reason for request",
    "reason", "comparison", "comparisons", "prior", "priors", "technique", "procedure",
    "exam", "examination", "type of examination", "study", "request",
)
# Sections that do: labelled (text before any heading is too).
_KEPT_SECTIONS = (
    "findings", "finding", "impression", "impressions", "conclusion", "conclusions",
    "summary", "opinion", "interpretation", "result", "results", "report", "diagnosis",
    "assessment", "addendum", "comment", "comments", "discussion",
)
_HEADING = re.compile(
    r"(?:^|(?<=[.\n]))[ \t]*(?P<name>"
    + "|".join(sorted((re.escape(s).replace(r"\ ", r"[ \t]+")
                       for s in _SKIPPED_SECTIONS + _KEPT_SECTIONS), key=len, reverse=True))
    + r")[ \t]*:", re.IGNORECASE | re.MULTILINE)


_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _section_regions(text: str) -> list[tuple[int, int]]:
    """The parts of ``text`` that are labelled: everything but the skipped sections (their
    headings left out too). A skipped section ends at the next heading or blank line: a
    paragraph after "Comparison: none." with no heading of its own is read."""
    regions: list[tuple[int, int]] = []
    pos = 0
    headings = list(_HEADING.finditer(text)) + [None]
    for m, following in zip(headings, headings[1:]):
        if m.start() > pos:
            regions.append((pos, m.start()))
        name = " ".join(m.group("name").lower().split())
        end = following.start() if following is not None else len(text)
        if name in _SKIPPED_SECTIONS:
            blank = _BLANK_LINE.search(text, m.end(), end)
            pos = blank.end() if blank else end
        else:
            regions.append((m.end(), end))
            pos = end
    if pos < len(text):
        regions.append((pos, len(text)))
    return [(s, e) for s, e in regions if e > s]


# =========================================================================== sentences, clauses

# A sentence ends at . ! ? before white space or the end (not after an abbreviation), at a
# blank line, before a numbered or bulleted item on a new line, and at a line break before
# a capital unless the line ends mid-phrase (a comma, "and", "of", …: a wrapped line).
_ABBREVIATIONS = r"(?<!\bvs)(?<!\bdr)(?<!\be\.g)(?<!\bi\.e)(?<!\bapprox)(?<!\bst)"
_SENTENCE_END = re.compile(
    _ABBREVIATIONS + r"(?<=\S)[.!?]+(?=\s|$)|\n[ \t]*\n|"
    r"\n(?=[ \t]*(?:\d{1,2}[.)]|[-*\u2022])\s)|[ \t]*\n(?=[ \t]*[A-Z])")
_MID_PHRASE = re.compile(r"(?:[,;(/-]|\b(?:and|or|of|the|a|an|with|without|no|not|to|in|for|at|"
                         r"on|by|from|versus|vs))\s*\Z", re.IGNORECASE)

# Where a negation or uncertainty cue's reach ends inside a sentence.
_CLAUSE_END = re.compile(
    r"[;:]|\s--?\s|\b(?:but|however|although|though|except|excepting|whereas|while|yet|"
    r"nevertheless|nonetheless|aside\s+from|apart\s+from|other\s+than|besides|which|"
    r"with\s+the\s+exception\s+of|there\s+(?:is|are|was|were|has\s+been|have\s+been)|"
    r"and\s+there|otherwise|now|since)\b",
    _FLAGS)


# =========================================================================== lexicon

# Words that may stand between a subject (the heart) and what is said of it (enlarged,
# normal): verbs of being and seeming, degree, time.
_FILLER = (r"(?:is|are|was|were|be|been|appears?|appearing|remains?|seems?|looks?|has|have|"
           r"had|become|becomes|continues?|to|again|still|also|overall|now|stable|stably|"
           r"persistently|otherwise|unchanged|size|in|at|the|a|an|near|within|of|and|"
           r"mildly|mild|moderately|moderate|markedly|marked|severely|severe|massively|"
           r"slightly|slight|minimally|minimal|significantly|somewhat|globally|diffusely|"
           r"considerably|substantially|greatly|very|grossly|likely|probably|xxxx|heart|"
           r"cardiac|silhouette|contours?)")
# ... and, in a normal statement, the other parts it is said of: "the heart, mediastinum
# and pulmonary vascularity are within normal limits".
_NORMAL_FILLER = (r"(?:,?\s+(?:" + _FILLER + r"|mediastin\w*|upper|vascularity|vasculature|"
                  r"pulmonary|hil\w+|lungs?|configuration|shape))")
_HEART = (r"(?:heart(?:\s+(?:size|silhouette|shadow|contours?))?|"
          r"cardiac\s+(?:size|silhouette|shadow|contours?|outline|diameter)(?:\s+size)?|"
          r"cardio[-\s]?mediastinal\s+(?:silhouette|contours?|shadow|size)|"
          r"cardiopericardial\s+silhouette|cardiac\s+and\s+mediastinal\s+"
          r"(?:silhouettes?|contours?))")
_ENLARGED = r"(?:enlarged|enlarging|enlargement|large|larger|increased(?:\s+in\s+size)?|big)"
_NORMAL_SIZE = (r"(?:normal(?:\s+in\s+size)?|within\s+normal\s+limits|unremarkable|"
                r"upper\s+limits?\s+(?:of\s+)?normal|upper\s+normal|top\s+(?:limits\s+of\s+)?"
                r"normal|normal\s+size|of\s+normal\s+size|normal\s+appearance|"
                r"not\s+(?:\w+\s+)?enlarged|normal(?:-|\s+)sized)")
# A word in a gap of a phrase, but no negation: "the lungs are not clear" is no normal
# statement.
_W = r"(?:(?!(?:no|not|without)\b)\w+\s+)"
# "costophrenic" names nothing but the angle (sulcus, recess), whatever noun follows (the
# de-identification of the Indiana reports took "angle" for a name and wrote XXXX).
_ANGLE = r"costophrenic(?:\s+(?:angles?|sulc[iu]s?|recess(?:es)?|regions?))?"


@dataclass(frozen=True)
class _Pattern:
    """One way of mentioning a finding. ``fixed``: the label the phrase itself carries (a
    normal statement), cues around it then left unread. ``affirmed``: the label when no cue
    decides (uncertain for a phrase that only hedges the finding). Inside the pattern, a
    group ``neg`` or ``unc`` that took part makes the mention negative or uncertain."""

    regex: re.Pattern
    fixed: str | None = None
    affirmed: str = POSITIVE


def _p(pattern: str, fixed: str | None = None, affirmed: str = POSITIVE) -> _Pattern:
    return _Pattern(re.compile(r"\b(?:" + pattern + r")\b", _FLAGS), fixed, affirmed)


#: Per finding, the phrases that mention it.
LEXICON: dict[str, tuple[_Pattern, ...]] = {
    "cardiomegaly": (
        _p(r"cardiomegal(?:y|ic)"),
        _p(r"(?:cardiac|heart)\s+enlargement|enlargement\s+of\s+(?:the\s+)?" + _W + r"?"
           r"(?:heart|cardiac\s+(?:silhouette|shadow|size|contours?)|cardiomediastinal\s+"
           r"silhouette)"),
        _p(r"(?:enlarged|enlarging|large)\s+(?:heart|cardiac\s+(?:silhouette|shadow|contours?|"
           r"size)|cardiomediastinal\s+silhouette|cardio\s+mediastinal\s+silhouette)"),
        _p(r"(?:increased|increase\s+in)\s+(?:the\s+)?(?:heart|cardiac)\s+size"),
        # "the heart is (not) (mildly) enlarged", "heart size is borderline enlarged"
        _p(_HEART + r"(?:\s+(?:(?P<neg>not|no\s+longer)|(?P<unc>possibly|"
           r"questionably|perhaps|may\s+be|might\s+be|could\s+be|slightly\s+prominent|"
           r"prominent)|borderline|" + _FILLER + r")){0,10}?\s+" + _ENLARGED),
        # "borderline" is a degree (MeSH indexes it "Cardiomegaly/borderline"): positive
        _p(_HEART + r"(?:\s+" + _FILLER + r"){0,10}?\s+borderline(?:\s+in\s+size)?|"
           r"borderline\s+" + _W + r"?(?:heart|cardiac|cardiomediastinal)(?:\s+size)?"),
        # prominent: a large heart, or a normal one on a shallow breath or an AP view
        _p(_HEART + r"(?:\s+" + _FILLER + r"){0,10}?\s+prominent(?:\s+in\s+size)?|"
           r"prominen(?:t|ce\s+of\s+the)\s+(?:heart|cardiac\s+silhouette)",
           affirmed=UNCERTAIN),
        # normal statements
        _p(_HEART + _NORMAL_FILLER + r"{0,8}?\s+" + _NORMAL_SIZE, NEGATIVE),
        _p(r"(?:normal|unremarkable)(?:[-\s]+sized?)?\s+(?:size\s+(?:and\s+\w+\s+)?(?:of\s+)?"
           r"(?:the\s+)?)?(?:heart|cardiac|cardiomediastinal|cardio\s+mediastinal)", NEGATIVE),
    ),
    "effusion": (
        _p(r"(?:pleural\s+)?effusions?|hydrothorax|hydropneumothorax|pleural\s+fluid|"
           r"(?:loculated|layering|subpulmonic)\s+fluid"),
        _p(r"fluid\s+(?:in|within|along|tracking\s+(?:in|into|along))\s+(?:the\s+)?"
           + _W + r"{0,2}?(?:costophrenic|pleural)"),
        # fluid in a fissure: pleural fluid, or the fissure thickened by edema
        _p(r"fluid\s+(?:in|within|along|tracking\s+(?:in|into|along))\s+(?:the\s+)?"
           + _W + r"{0,2}?fissures?|fissural\s+fluid", affirmed=UNCERTAIN),
        # blunting: a sign with more causes than fluid (scarring, pleural thickening)
        _p(r"blunt(?:ed|ing)?\s+(?:of\s+)?(?:the\s+|both\s+)?" + _W + r"{0,3}?" + _ANGLE + "|"
           + _ANGLE + r"\s+" + _W + r"{0,3}?(?P<neg>not\s+|no\s+longer\s+)?blunt(?:ed|ing)?|"
           r"costophrenic\s+(?:angle\s+)?blunting", affirmed=UNCERTAIN),
        _p(_ANGLE + r"\s+(?:(?:are|is|remain|remains|appear|appears|now)\s+)?" + _W + r"?"
           r"(?:sharp|clear|preserved|normal|well[-\s]defined)|sharp\s+" + _ANGLE, NEGATIVE),
    ),
    "nodule": (
        _p(r"(?:micro)?nodules?|coin\s+lesions?"),
        # an opacity shaped like a nodule: a nodule, or a granuloma, a vessel end-on, a
        # nipple, a healing rib fracture
        _p(r"nodular\s+" + _W + r"?(?:opacit(?:y|ies)|densit(?:y|ies)|lesions?|foc(?:us|i)|"
           r"shadows?|areas?|opacification)|nodule[-\s]like\s+(?:opacit(?:y|ies)|"
           r"densit(?:y|ies))", affirmed=UNCERTAIN),
    ),
    "mass": (
        _p(r"mass(?:es)?|mass[-\s]?like|tumou?rs?"),
    ),
    "consolidation": (
        _p(r"consolidat(?:ion|ions|ive|ed)|air[-\s]?space\s+(?:disease|process(?:es)?|"
           r"consolidation|filling|infiltrates?)|alveolar\s+(?:infiltrates?|consolidation|"
           r"process|disease)|infiltrat(?:e|es|ion|ive\s+opacit(?:y|ies))|"
           r"(?:broncho)?pneumonias?|air\s+bronchograms?"),
        # an opacity in the airspaces: consolidation, or atelectasis, edema, blood
        _p(r"(?:air[-\s]?space|alveolar)\s+(?:opacit(?:y|ies)|opacification|densit(?:y|ies))",
           affirmed=UNCERTAIN),
        _p(r"(?:the\s+)?lungs?(?:\s+fields)?\s+(?:(?:are|is|remain|appear)\s+)?" + _W + r"?"
           r"clear(?!\s+of)|clear\s+lungs?", NEGATIVE),
    ),
    "pneumothorax": (
        _p(r"pneumothora(?:x|ces|xes)|hydropneumothorax|ptx|pleural\s+air(?:\s+collections?)?|"
           r"air\s+in\s+the\s+pleural\s+space"),
    ),
    "atelectasis": (
        _p(r"atelecta(?:sis|ses|tic)|volume\s+loss|loss\s+of\s+" + _W + r"?volume|"
           r"(?:lobar|lobe|lung|segmental|subsegmental|complete|partial)\s+collapse|"
           r"collapse\s+of\s+(?:the\s+)?" + _W + r"{0,3}?(?:lobe|lung|segment)|"
           r"collapsed\s+" + _W + r"?(?:lobe|lung)"),
    ),
}

#: Phrases that hold a mention's words but mention no such finding: they remove the mentions
#: they overlap.
NOT_MENTIONS: dict[str, tuple[re.Pattern, ...]] = {
    "effusion": (re.compile(r"\b(?:pericardial|joint|knee|shoulder|synovial|elbow|ear)\s+"
                            r"(?:\w+\s+)?effusions?\b", _FLAGS),),
    # the body's mass, and masses outside the chest a chest radiograph may mention
    "mass": (re.compile(r"\bmass\s+effect|\b(?:body|muscle|bone|fat)\s+mass|\bmass\s+index|"
                        r"\b(?:thyroid|breast|neck|abdominal|pelvic|renal|kidney|hepatic|liver|"
                        r"adrenal|pancreatic|uterine|ovarian)\s+(?:\w+\s+)?mass", _FLAGS),),
    "consolidation": (re.compile(r"\binterstitial\s+(?:\w+\s+)?infiltrat\w*|\binfiltrative\s+"
                                 r"(?:lung\s+)?(?:process|disease)", _FLAGS),),
    "atelectasis": (re.compile(r"\b(?:vertebral|vertebra|spine|spinal|compression)\s+"
                               r"(?:body\s+)?collapse", _FLAGS),),
}


# =========================================================================== cues

_NEG, _UNC, _PSEUDO = NEGATIVE, UNCERTAIN, POSITIVE
_PRE, _POST, _BOTH = "pre", "post", "both"


_EXCLUDE = (r"(?:entirely\s+|completely\s+|totally\s+|definitely\s+|fully\s+)?"
            r"(?:exclude|excluded|rule\s+out|ruled\s+out)")
_NOT_EXCLUDED = r"(?:cannot|can\s+not|can't|could\s+not|not|difficult\s+to)\s+(?:be\s+)?" + _EXCLUDE

# (kind, direction, evidential, patterns). Direction: the cue reads forward (pre: "no
# effusion"), backward (post: "effusion is not seen") or both ("effusion versus
# atelectasis"). Evidential uncertainty cues ("suggest", "suspicious for") are negated by a
# negation just before them: "no opacity to suggest pneumonia".
_CUES: tuple[tuple[str, str, bool, tuple[str, ...]], ...] = (
    (_PSEUDO, _PRE, False, (
        r"no\s+(?:(?:significant|interval|appreciable|substantial|definite|real|further|"
        r"marked|major|acute|other)\s+){0,4}(?:change|increase|decrease|worsening|improvement|"
        r"progression|enlargement|growth)(?:\s+(?:in|of))?",
        r"not\s+(?:significantly\s+|substantially\s+)?(?:changed|increased|decreased|"
        r"improved|worsened)",
        r"without\s+(?:(?:significant|interval|appreciable)\s+){0,4}(?:change|progression)",
        r"not\s+only", r"gram[-\s]negative",
    )),
    (_NEG, _PRE, False, (
        r"no", r"not", r"without", r"negative\s+for", r"free\s+of", r"clear\s+of",
        r"absence\s+of", r"resolved", r"(?:interval\s+)?(?:resolution|clearing)\s+of",
        r"rather\s+than",
        r"instead\s+of", r"nor", r"neither", r"ruled\s+out", r"no\s+longer", r"cleared",
        r"removal\s+of", r"disappearance\s+of", r"excludes?", r"never",
    )),
    (_NEG, _PRE, False, (
        r"(?:does|do|did)\s+not\s+(?:look|appear|seem)(?:\s+to\s+be|\s+like)?",
        r"not\s+(?:representing|consistent\s+with|compatible\s+with|suggestive\s+of|"
        r"typical\s+(?:of|for))",
    )),
    (_UNC, _PRE, False, (
        r"possible", r"possibly", r"maybe", r"perhaps", r"questionabl[ey]",
        r"question(?:\s+of)?",
        r"may(?:\s+\w+)?\s+(?:represent|reflect|be|indicate|relate|correspond|include|"
        r"have|denote)",
        r"could(?:\s+\w+)?\s+(?:represent|reflect|be|indicate|include)",
        r"might(?:\s+\w+)?\s+(?:represent|reflect|be|indicate)",
        _NOT_EXCLUDED,
        r"differential(?:\s+diagnos[ie]s)?(?:\s+\w+)?\s+(?:includes?|of|considerations?)",
        r"equivocal", r"indeterminate", r"consider(?:ed)?", r"rule\s+out", r"r/o",
        r"evaluat(?:e|ion)\s+for", r"uncertain", r"unclear\s+(?:if|whether)", r"either",
        r"not\s+(?:definitely|clearly|certainly)",
    )),
    (_UNC, _PRE, True, (
        r"suspicious\s+(?:for|of)", r"suspicion\s+(?:for|of)", r"suspect(?:ed|s)?",
        r"concern(?:ing)?\s+(?:for|of)", r"worrisome\s+(?:for|of)", r"suggestive\s+of",
        r"suggest(?:s|ing|ed)?", r"suggestion\s+of", r"to\s+indicate",
    )),
    (_UNC, _BOTH, False, (
        r"versus", r"vs\.?", r"\?", r"less\s+likely",
    )),
    (_NEG, _POST, False, (
        r"(?:(?:is|are|was|were)\s+)?(?:not|no\s+longer)\s+(?:\w+[-\s]+){0,2}?(?:seen|identified|"
        r"present|evident|appreciated|visuali[sz]ed|demonstrated|noted|detected|apparent|"
        r"visible|shown|discerned|observed|recognized)",
        r"(?:(?:has|have)\s+(?:\w+\s+)?)?(?:resolved|cleared|disappeared)",
        r"(?:(?:is|are)\s+)?absent", r"unlikely", r"(?:(?:is|are)\s+)?excluded",
    )),
    (_UNC, _POST, False, (
        r"(?:(?:is|are)\s+)?" + _NOT_EXCLUDED,
        r"(?:is|are)\s+(?:\w+\s+)?(?:possible|questioned|suspected|questionable|"
        r"a\s+consideration|considered|in\s+the\s+differential)",
        r"(?:may|could|might)\s+be\s+present", r"suspected", r"questioned",
    )),
)


@dataclass(frozen=True)
class _Cue:
    start: int
    end: int
    kind: str  # NEGATIVE, UNCERTAIN, or POSITIVE (a pseudo-negation)
    pre: bool  # reads forward
    post: bool  # reads backward
    evidential: bool = False


def _cue_regex(patterns: Iterable[str]) -> re.Pattern:
    """Whole words only ("no" not in "nodule"); a question mark anywhere ("effusion?")."""
    return re.compile("|".join(p if p == r"\?" else rf"(?<![\w/])(?:{p})(?![\w/])"
                               for p in patterns), _FLAGS)


_CUE_REGEXES = tuple((kind, direction, evidential, _cue_regex(patterns))
                     for kind, direction, evidential, patterns in _CUES)


def _find_cues(text: str, start: int, end: int,
               mentions: Iterable[tuple[int, int]] = ()) -> list[_Cue]:
    """Cues in ``text[start:end]``, overlaps resolved: the longest wins, then the one listed
    first (pseudo-negations before negations before uncertainty). One phrase listed both as
    a cue before and after a mention ("cannot be excluded") reads both ways. A cue never
    overlaps a mention: "no" of "nodule" cannot be one, "borderline" of "borderline heart
    size" is the mention's own, and "no enlargement of" before "enlargement of the heart"
    leaves the cue "no"."""
    in_mention = _Marks(start, end)
    for s, e in mentions:
        in_mention.mark(s, e)
    spans: dict[tuple[int, int, str], list] = {}
    for order, (kind, direction, evidential, regex) in enumerate(_CUE_REGEXES):
        for m in regex.finditer(text, start, end):
            if m.end() == m.start() or in_mention.any(m.start(), m.end()):
                continue
            entry = spans.setdefault((m.start(), m.end(), kind), [order, False, False, False])
            entry[1] |= direction in (_PRE, _BOTH)
            entry[2] |= direction in (_POST, _BOTH)
            entry[3] |= evidential
    found = sorted(spans.items(), key=lambda x: (-(x[0][1] - x[0][0]), x[1][0], x[0][0]))
    taken: list[_Cue] = []
    marks = _Marks(start, end)
    for (s, e, kind), (_order, pre, post, evidential) in found:
        if not marks.any(s, e):
            marks.mark(s, e)
            taken.append(_Cue(s, e, kind, pre, post, evidential))
    return sorted(taken, key=lambda c: c.start)


class _Marks:
    """Which characters of ``text[start:end]`` are taken: overlaps found in linear time."""

    def __init__(self, start: int, end: int):
        self.start = start
        self.taken = bytearray(max(0, end - start))

    def any(self, s: int, e: int) -> bool:
        return any(self.taken[s - self.start:e - self.start])

    def mark(self, s: int, e: int) -> None:
        self.taken[s - self.start:e - self.start] = b"\x01" * (e - s)


# =========================================================================== results

@dataclass(frozen=True)
class Mention:
    """One mention of a finding: where it is (offsets into the text as given), its label,
    and the cue that decided it (``cue``: offsets, or None when nothing did; ``rule``: what
    decided it: ``affirmed``, ``negation``, ``uncertainty``, ``pseudo-negation``,
    ``normal statement``, ``stated``)."""

    finding: str
    start: int
    end: int
    label: str
    rule: str
    cue: tuple[int, int] | None = None

    def as_json(self, text: str | None = None) -> dict:
        out = {"finding": self.finding, "start": self.start, "end": self.end,
               "label": self.label, "rule": self.rule,
               "cue": list(self.cue) if self.cue else None}
        if text is not None:
            out["text"] = text[self.start:self.end]
            out["cue_text"] = text[self.cue[0]:self.cue[1]] if self.cue else None
        return out


class ReportLabels(dict):
    """``{finding: "positive" | "negative" | "uncertain" | None}`` for every finding in
    :data:`FINDINGS`, with the evidence: ``mentions`` (every :class:`Mention`, in text
    order) and :meth:`evidence` (those of one finding)."""

    def __init__(self, labels: Mapping[str, str | None], mentions: Iterable[Mention] = ()):
        super().__init__(labels)
        self.mentions: tuple[Mention, ...] = tuple(mentions)

    def evidence(self, finding: str) -> tuple[Mention, ...]:
        """The mentions of ``finding``; those that gave the report's label first."""
        ms = [m for m in self.mentions if m.finding == finding]
        return tuple(sorted(ms, key=lambda m: (m.label != self.get(finding), m.start)))

    def positives(self, uncertain: str | None = None) -> set[str]:
        """The findings labelled positive, after ``uncertain`` (see :func:`apply_uncertain`)."""
        labels = apply_uncertain(self, uncertain)
        return {f for f, label in labels.items() if label == POSITIVE}

    def as_json(self, text: str | None = None, uncertain: str | None = None) -> dict:
        """The labels (after ``uncertain``) and the mentions; ``text`` given, each mention's
        words and its cue's are included."""
        return {"labels": dict(apply_uncertain(self, uncertain)),
                "mentions": [m.as_json(text) for m in self.mentions]}


def apply_uncertain(labels: Mapping[str, str | None], policy: str | None) -> dict[str, str | None]:
    """``labels`` with ``uncertain`` made ``positive``, ``negative``, or None (``ignore``:
    as if not mentioned) — the U-Ones, U-Zeros and U-Ignore policies of CheXpert. ``policy``
    None keeps it."""
    if policy is None:
        return dict(labels)
    if policy not in UNCERTAIN_POLICIES:
        raise UpdpError(f"uncertain policy must be one of {', '.join(UNCERTAIN_POLICIES)}, "
                        f"not {policy!r}")
    target = UNCERTAIN_POLICIES[policy]
    return {f: (target if label == UNCERTAIN else label) for f, label in labels.items()}


# =========================================================================== the labeller

_WORD = re.compile(r"\w+")


def _words(text: str, start: int, end: int, limit: int = 64) -> int:
    """The number of words in ``text[start:end]``, counted up to ``limit + 1`` (a reach is
    at most ``limit``: a long gap costs no more than a short one)."""
    n = 0
    for _ in _WORD.finditer(text, start, end):
        n += 1
        if n > limit:
            break
    return n


# A negation cue reaches at most so many words; an uncertainty cue fewer (it hedges the
# phrase it stands before, not a whole list); a cue after a mention follows within so many.
_PRE_REACH = {_NEG: 14, _UNC: 8, _PSEUDO: 8}
# ... but a bare "not" negates the phrase right after it ("this is not pneumonia"), not the
# rest of the clause.
_SHORT_REACH = {"not": 3}
# A differential diagnosis is a list of what a finding may be: its cue hedges the whole list
# ("differential considerations include epicardial fat, pericardial mass, pleural mass").
_LIST_CUE = re.compile(r"differential\b", _FLAGS)
_POST_REACH = 6
# "no opacity to suggest": a negation at most so many words before an evidential cue.
_NEG_BEFORE_UNC = 8


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out, pos = [], start
    for m in _SENTENCE_END.finditer(text, start, end):
        if m.group(0).endswith("\n") and "\n" not in m.group(0)[:-1] and _MID_PHRASE.search(
                text, max(pos, m.start() - 20), m.start()):
            continue  # a wrapped line
        if m.end() > pos:
            out.append((pos, m.end()))
            pos = m.end()
    if pos < end:
        out.append((pos, end))
    return [(s, e) for s, e in out if text[s:e].strip()]


def _clauses(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out, pos = [], start
    for m in _CLAUSE_END.finditer(text, start, end):
        out.append((pos, m.start()))
        pos = m.start() if m.group(0)[:1].isalpha() else m.end()
    out.append((pos, end))
    return [(s, e) for s, e in out if e > s]


def _mentions_in(text: str, start: int, end: int) -> list[tuple[str, int, int, _Pattern, re.Match]]:
    """Mentions of every finding in ``text[start:end]``: per finding, overlapping matches
    resolved to the longest; the phrases of :data:`NOT_MENTIONS` removed."""
    found = []
    for finding in FINDINGS:
        matches = [(m.start(), m.end(), pattern, m) for pattern in LEXICON[finding]
                   for m in pattern.regex.finditer(text, start, end)]
        vetoes = [(m.start(), m.end()) for regex in NOT_MENTIONS.get(finding, ())
                  for m in regex.finditer(text, start, end)]
        matches.sort(key=lambda x: (-(x[1] - x[0]), x[0]))
        vetoed, taken = _Marks(start, end), _Marks(start, end)
        for vs, ve in vetoes:
            vetoed.mark(vs, ve)
        kept: list[tuple[int, int, _Pattern, re.Match]] = []
        for s, e, pattern, m in matches:
            if not vetoed.any(s, e) and not taken.any(s, e):
                taken.mark(s, e)
                kept.append((s, e, pattern, m))
        found += [(finding, s, e, pattern, m) for s, e, pattern, m in kept]
    return sorted(found, key=lambda x: (x[1], x[0]))


def _decide(text: str, finding: str, start: int, end: int, pattern: _Pattern, match: re.Match,
            clause: tuple[int, int], cues: list[_Cue], cue_starts: list[int],
            spans: list[tuple[int, int]]) -> Mention:
    for group, label in (("neg", NEGATIVE), ("unc", UNCERTAIN)):
        if group in match.re.groupindex and match.start(group) >= 0:
            return Mention(finding, start, end, label, "stated", match.span(group))
    if pattern.fixed is not None:
        return Mention(finding, start, end, pattern.fixed, "normal statement"
                       if pattern.fixed == NEGATIVE else "stated")
    c_start, c_end = clause
    # A cue right after the mention: "pneumothorax is not seen", "effusion versus scarring".
    i = bisect.bisect_left(cue_starts, end)
    if i < len(cues) and cues[i].start < c_end and cues[i].post and _reaches_back(
            text, end, cues[i], spans):
        return _cued(finding, start, end, pattern, cues[i].kind, cues[i])
    # The nearest cue before it in its clause (cues do not overlap: sorted by start, they
    # are by end too).
    i = bisect.bisect_left(cue_starts, start) - 1
    while i >= 0 and cues[i].start >= c_start and not cues[i].pre:
        i -= 1
    if i < 0 or cues[i].start < c_start:
        return Mention(finding, start, end, pattern.affirmed, "affirmed")
    cue = cues[i]
    words = text[cue.start:cue.end]
    reach = _PRE_REACH[_NEG] if _LIST_CUE.match(words) else \
        _SHORT_REACH.get(words.lower(), _PRE_REACH[cue.kind])
    if _words(text, cue.end, start) > reach:
        return Mention(finding, start, end, pattern.affirmed, "affirmed")
    kind = cue.kind
    if kind == _UNC and cue.evidential:
        # "no opacity to suggest pneumonia", "without findings suspicious for"
        j = i - 1
        while j >= 0 and cues[j].start >= c_start and cues[j].kind != _NEG:
            j -= 1
        if (j >= 0 and cues[j].start >= c_start
                and _words(text, cues[j].end, cue.start) <= _NEG_BEFORE_UNC):
            cue, kind = cues[j], _NEG
    return _cued(finding, start, end, pattern, kind, cue)


_CONJUNCTION = re.compile(r",|/|\b(?:and|or|nor|plus|as\s+well\s+as)\b", _FLAGS)
# At most so many other mentions between a mention and a cue after it ("effusion,
# consolidation, atelectasis or pneumothorax is not seen").
_LIST_REACH = 8


def _reaches_back(text: str, end: int, cue: _Cue, spans: list[tuple[int, int]]) -> bool:
    """Whether a cue after a mention ending at ``end`` is about it: close, no comma between,
    and any other mention on the way joined to it by a conjunction ("consolidation,
    atelectasis and effusion have cleared"; not "cardiomegaly with infiltrates versus
    atelectasis"). ``spans``: the sentence's mentions, sorted."""
    pos = end
    i = bisect.bisect_left(spans, (end, end))
    for s, e in spans[i:i + _LIST_REACH + 1]:
        if s >= cue.start:
            break
        gap = text[pos:s]
        if (not _CONJUNCTION.search(gap)
                or _words(_CONJUNCTION.sub(" ", gap[:200]), 0, len(gap)) > 3 or len(gap) > 200):
            return False
        pos = max(pos, e)
    else:
        if i + _LIST_REACH + 1 < len(spans) and spans[i + _LIST_REACH + 1][0] < cue.start:
            return False
    return (_words(text, pos, cue.start, _POST_REACH) <= _POST_REACH
            and "," not in text[pos:cue.start])


def _cued(finding: str, start: int, end: int, pattern: _Pattern, kind: str,
          cue: _Cue) -> Mention:
    """A mention decided by ``cue``; a pseudo-negation leaves the phrase's own label."""
    label = pattern.affirmed if kind == _PSEUDO else kind
    return Mention(finding, start, end, label, _rule(kind), (cue.start, cue.end))


def _rule(kind: str) -> str:
    return {_NEG: "negation", _UNC: "uncertainty", _PSEUDO: "pseudo-negation"}[kind]


def report_mentions(text: str) -> list[Mention]:
    """Every mention of a finding in ``text``, labelled, in text order."""
    mentions: list[Mention] = []
    for r_start, r_end in _section_regions(text):
        for s_start, s_end in _sentences(text, r_start, r_end):
            found = _mentions_in(text, s_start, s_end)
            if not found:
                continue
            spans = sorted((s, e) for _, s, e, _, _ in found)
            cues = _find_cues(text, s_start, s_end, spans)
            cue_starts = [c.start for c in cues]
            clauses = _clauses(text, s_start, s_end)
            clause_starts = [cs for cs, _ in clauses]
            for finding, start, end, pattern, match in found:
                k = bisect.bisect_right(clause_starts, start) - 1
                clause = clauses[k] if k >= 0 and start < clauses[k][1] else (s_start, s_end)
                mentions.append(_decide(text, finding, start, end, pattern, match, clause,
                                        cues, cue_starts, spans))
    return mentions


_RANK = {POSITIVE: 3, UNCERTAIN: 2, NEGATIVE: 1}


def label_report(text: str) -> ReportLabels:
    """The label of every finding in report ``text``: ``{finding: "positive" | "negative" |
    "uncertain" | None}`` (None: not mentioned), a :class:`ReportLabels` whose
    ``mentions`` and ``evidence(finding)`` give the spans that decided it."""
    if not isinstance(text, str):
        raise UpdpError(f"label_report takes text (str), not {type(text).__name__}")
    mentions = report_mentions(text)
    labels: dict[str, str | None] = dict.fromkeys(FINDINGS)
    for m in mentions:
        current = labels[m.finding]
        if current is None or _RANK[m.label] > _RANK[current]:
            labels[m.finding] = m.label
    return ReportLabels(labels, mentions)


def label_reports(reports: Mapping[str, str] | Iterable[tuple[str, str]],
                  progress: Callable[[int, int], None] | None = None) -> dict[str, ReportLabels]:
    """:func:`label_report` over many: ``{id: text}`` or ``(id, text)`` pairs in, ``{id:
    ReportLabels}`` out, in the same order. ``progress(done, total)`` is called as it goes."""
    items = list(reports.items() if isinstance(reports, Mapping) else reports)
    out: dict[str, ReportLabels] = {}
    for i, (report_id, text) in enumerate(items, 1):
        out[report_id] = label_report(text)
        if progress is not None and (i == len(items) or i % 50 == 0):
            progress(i, len(items))
    return out


# =========================================================================== reading inputs

def read_report_inputs(path: str | os.PathLike,
                       follow_symlinks: bool = False) -> tuple[list[tuple[str, str]],
                                                                list[tuple[str, str]]]:
    """The reports at ``path`` as ``(id, text)`` pairs, and ``(id, reason)`` for those that
    could not be read.

    ``path`` is a folder (every ``*.txt`` below it, recursively; the id is the path relative
    to the folder; symbolic links are skipped unless ``follow_symlinks``) or a ``.jsonl`` file
    (one ``{"id": ..., "text": ...}`` a line; a line that is no such object is skipped, its id
    ``line N``). Reasons never quote report text. A path that is neither raises InputError.
    """
    path = Path(path)
    if path.is_dir():
        items, skipped = [], []
        unreadable: list[tuple[Path, str]] = []
        files = tree_files(path, follow_symlinks=follow_symlinks, unreadable=unreadable)
        skipped += [(folder.relative_to(path).as_posix() or ".", why) for folder, why in unreadable]
        for file in files:
            rel = file.relative_to(path).as_posix()
            is_txt = file.name.lower().endswith(".txt")
            if file.is_symlink() and not follow_symlinks and (is_txt or file.is_dir()):
                skipped.append((rel, "symbolic link, not followed"))
                continue
            if not is_txt:
                continue
            if not file.is_file():
                skipped.append((rel, "not a regular file"))
                continue
            try:
                items.append((rel, decode_report(file.read_bytes(), rel)))
            except OSError as err:
                skipped.append((rel, f"cannot read ({err.strerror or type(err).__name__})"))
            except InputError as err:
                skipped.append((rel, str(err).split(": ", 1)[-1]))
        return items, skipped
    if path.is_file() and path.name.lower().endswith(".jsonl"):
        return _read_jsonl(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    raise InputError(f"{path}: not a folder of *.txt reports nor a .jsonl corpus")


def _read_jsonl(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or type(err).__name__})") from None
    items, skipped, seen = [], [], set()
    # JSON lines end at "\n" alone: a text may hold U+2028 or NEL unescaped.
    for n, line in enumerate(decode_report(raw, str(path)).split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            skipped.append((f"line {n}", "not JSON (or nested too deep, or a number too long)"))
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            skipped.append((f"line {n}", 'not an object with a "text" string'))
            continue
        report_id = record.get("id", f"line {n}")
        report_id = str(report_id) if isinstance(report_id, (str, int)) else f"line {n}"
        if report_id in seen:
            skipped.append((f"line {n}", f"id {report_id!r} seen before"))
            continue
        seen.add(report_id)
        items.append((report_id, record["text"]))
    return items, skipped


# =========================================================================== MeSH evaluation

#: How the Indiana University reports' MeSH "major" terms map to the findings: per finding,
#: ``(descriptor, qualifier)`` pairs; a term counts when its first part is the descriptor
#: and, where a qualifier is given, one of its later parts is that qualifier
#: ("Cardiac Shadow/enlarged/mild"), or, for ``!qualifier``, none is. Every degree (mild,
#: borderline, small, …) counts. The mapping follows the lexicon's decisions: no
#: "Costophrenic Angle/blunted" (a sign), no "Calcified Granuloma" or "Granuloma", no
#: "Opacity" or "Density" however qualified, no interstitial "Infiltrate".
MESH_FINDINGS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "cardiomegaly": (("Cardiomegaly", None), ("Cardiac Shadow", "enlarged"),
                     ("Cardiac Shadow", "borderline")),
    "effusion": (("Pleural Effusion", None), ("Hydropneumothorax", None)),
    "nodule": (("Nodule", None),),
    "mass": (("Mass", None),),
    "consolidation": (("Consolidation", None), ("Airspace Disease", None),
                      ("Infiltrate", "!interstitial"), ("Pneumonia", None)),
    "pneumothorax": (("Pneumothorax", None), ("Hydropneumothorax", None)),
    "atelectasis": (("Pulmonary Atelectasis", None), ("Volume Loss", None)),
}
#: The MeSH term of a report nobody indexed: left out of the measurement.
MESH_NOT_INDEXED = "No Indexing"
OPENI_SECTIONS = ("COMPARISON", "INDICATION", "FINDINGS", "IMPRESSION")


def mesh_findings(terms: Iterable[str],
                  mapping: Mapping[str, Iterable[tuple[str, str | None]]] | None = None
                  ) -> set[str]:
    """The findings that MeSH ``terms`` ("Pleural Effusion/left/small", …) name, by
    ``mapping`` (default :data:`MESH_FINDINGS`)."""
    mapping = MESH_FINDINGS if mapping is None else mapping
    found = set()
    for term in terms:
        parts = [p.strip().lower() for p in term.split("/")]
        for finding, rules in mapping.items():
            for descriptor, qualifier in rules:
                if parts[0] != descriptor.lower():
                    continue
                if (qualifier is None
                        or (qualifier.startswith("!") and qualifier[1:].lower() not in parts)
                        or qualifier.lower() in parts[1:]):
                    found.add(finding)
    return found


@dataclass(frozen=True)
class OpenIReport:
    """One Indiana University (OpenI) report: its number, its text ("LABEL: text" lines:
    comparison, indication, findings, impression, the empty left out) and its MeSH major
    terms."""

    id: str
    text: str
    mesh: tuple[str, ...] = field(default=())

    @property
    def half(self) -> str:
        """``development`` for an odd report number, ``test`` for an even one."""
        digits = re.sub(r"\D", "", self.id)
        return "development" if digits and int(digits) % 2 else "test"


def parse_openi(report_id: str, data: bytes) -> OpenIReport:
    """One OpenI report (its XML bytes) as a radiology report reads: "LABEL: text" lines of
    its sections, empty ones left out, whitespace folded; with its MeSH major terms."""
    root = ET.fromstring(data)
    lines = []
    for node in root.iter("AbstractText"):
        label = (node.get("Label") or "").strip().upper()
        body = " ".join("".join(node.itertext()).split())
        if label in OPENI_SECTIONS and body:
            lines.append(f"{label}: {body}")
    mesh = tuple((m.text or "").strip() for m in root.iter("major") if (m.text or "").strip())
    return OpenIReport(report_id, "\n".join(lines), mesh)


def read_openi(path: str | os.PathLike) -> list[OpenIReport]:
    """The Indiana University chest X-ray reports with their MeSH major terms, from
    ``NLMCXR_reports.tgz`` (as in the torchxrayvision wheel) or the folder it unpacks to
    (``ecgen-radiology/<n>.xml``), in report-number order. Raises InputError when there are
    none or one cannot be parsed."""
    path = Path(path)
    reports = []
    try:
        if path.is_dir():
            for file in sorted(path.rglob("*.xml")):
                reports.append(parse_openi(file.stem, file.read_bytes()))
        elif path.is_file():
            with tarfile.open(path) as archive:
                for member in archive:
                    if member.isfile() and member.name.endswith(".xml"):
                        data = archive.extractfile(member)
                        if data is not None:
                            reports.append(parse_openi(Path(member.name).stem, data.read()))
        else:
            raise InputError(f"{path}: no such file or folder")
    except (tarfile.TarError, OSError) as err:
        raise InputError(f"{path}: cannot read the OpenI reports ({err})") from None
    except ET.ParseError as err:
        raise InputError(f"{path}: an OpenI report is not well-formed XML ({err})") from None
    if not reports:
        raise InputError(f"{path}: no OpenI reports (ecgen-radiology/*.xml) found")
    return sorted(reports, key=lambda r: (len(r.id), r.id))


def precision_recall_f1(tp: int, fp: int, fn: int) -> dict:
    """Counts, precision, recall and F1 from true positives, false positives and false
    negatives (0 where undefined)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"gold": tp + fn, "predicted": tp + fp, "tp": tp, "fp": fp, "fn": fn,
            "precision": precision, "recall": recall, "f1": f1}


def evaluate_against_mesh(reports: Iterable[OpenIReport | tuple[str, str, Iterable[str]]],
                          uncertain: str = "negative",
                          mapping: Mapping[str, Iterable[tuple[str, str | None]]] | None = None,
                          progress: Callable[[int, int], None] | None = None,
                          errors: int = 0) -> dict:
    """Per-finding precision, recall and F1 of the labeller against MeSH major terms.

    ``reports``: :class:`OpenIReport` or ``(id, text, terms)``. A report whose terms say
    "No Indexing", or that has no text, is left out. Gold: the findings :func:`mesh_findings`
    gives (``mapping``, default :data:`MESH_FINDINGS`). Predicted: the findings labelled
    positive, ``uncertain`` first made ``negative`` (the default: the Indiana indexers left
    hedged findings out) or ``positive`` (``ignore`` is as ``negative`` here); negated and
    unmentioned findings alike are predicted absent. ``errors``: up to so many report ids per
    finding and kind of mistake (``fp``, ``fn``) are listed under ``"errors"``, for reading.
    """
    items = _indexed(reports)
    labelled = [(r, label_report(r.text)) for r in _counting(items, progress)]
    return _score(labelled, uncertain, mapping, errors)


def _indexed(reports: Iterable[OpenIReport | tuple[str, str, Iterable[str]]]) -> list[OpenIReport]:
    items = [r if isinstance(r, OpenIReport) else OpenIReport(r[0], r[1], tuple(r[2]))
             for r in reports]
    return [r for r in items if r.text.strip() and MESH_NOT_INDEXED not in r.mesh]


def _counting(items: list, progress: Callable[[int, int], None] | None) -> Iterable:
    for i, item in enumerate(items, 1):
        yield item
        if progress is not None and (i == len(items) or i % 100 == 0):
            progress(i, len(items))


def _score(labelled: list[tuple[OpenIReport, ReportLabels]], uncertain: str,
           mapping: Mapping[str, Iterable[tuple[str, str | None]]] | None = None,
           errors: int = 0) -> dict:
    if uncertain not in UNCERTAIN_POLICIES:
        raise UpdpError(f"uncertain policy must be one of {', '.join(UNCERTAIN_POLICIES)}, "
                        f"not {uncertain!r}")
    counts = {f: [0, 0, 0] for f in FINDINGS}
    examples: dict[str, dict[str, list[str]]] = {f: {"fp": [], "fn": []} for f in FINDINGS}
    for report, labels in labelled:
        gold = mesh_findings(report.mesh, mapping)
        predicted = labels.positives(uncertain)
        for f in FINDINGS:
            if f in gold and f in predicted:
                counts[f][0] += 1
            elif f in predicted or f in gold:
                kind = "fp" if f in predicted else "fn"
                counts[f][1 if kind == "fp" else 2] += 1
                if len(examples[f][kind]) < errors:
                    examples[f][kind].append(report.id)
    result = {"reports": len(labelled), "uncertain": uncertain,
              "findings": {f: precision_recall_f1(*counts[f]) for f in FINDINGS},
              "micro": precision_recall_f1(*(sum(c[k] for c in counts.values()) for k in range(3)))}
    if errors:
        result["errors"] = examples
    return result


def evaluate_openi_halves(reports: Iterable[OpenIReport],
                          policies: Iterable[str] = ("negative", "positive"),
                          progress: Callable[[int, int], None] | None = None) -> dict:
    """:func:`evaluate_against_mesh` on the development half (odd report numbers), the test
    half (even) and all of them, under each ``uncertain`` policy: ``{policy: {half:
    result}}``. Each report is labelled once; ``progress(done, total)`` follows that."""
    items = _indexed(reports)
    labelled = [(r, label_report(r.text)) for r in _counting(items, progress)]
    halves = {"development": [x for x in labelled if x[0].half == "development"],
              "test": [x for x in labelled if x[0].half == "test"], "all": labelled}
    return {policy: {name: _score(part, policy) for name, part in halves.items()}
            for policy in policies}


def format_mesh_result(results: Mapping[str, Mapping[str, dict]]) -> list[str]:
    """Text lines for :func:`evaluate_openi_halves`' result: one table per policy and half."""
    lines = []
    for policy, halves in results.items():
        for name, result in halves.items():
            title = f"{name} half" if name != "all" else "all reports"
            lines.append(f"{title}: {result['reports']} indexed reports, uncertain counted "
                         f"{policy}")
            lines.append(f"  {'finding':14s} {'gold':>5s} {'pred':>5s} {'precision':>9s} "
                         f"{'recall':>7s} {'f1':>6s}")
            rows = list(result["findings"].items()) + [("(micro)", result["micro"])]
            for finding, m in rows:
                lines.append(f"  {finding:14s} {m['gold']:5d} {m['predicted']:5d} "
                             f"{m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:6.3f}")
    return lines


_SHORT = {POSITIVE: "pos", NEGATIVE: "neg", UNCERTAIN: "unc", None: "."}


def format_label_table(results: Mapping[str, Mapping[str, str | None]],
                       uncertain: str | None = None) -> list[str]:
    """Text lines: one row per report (its id, then pos / neg / unc / . per finding, after
    the ``uncertain`` policy), and a count per finding and label."""
    width = max([len("report")] + [len(i) for i in results])
    lines = [f"{'report':{width}s}  " + "  ".join(FINDINGS)]
    counts = {f: dict.fromkeys(_SHORT, 0) for f in FINDINGS}
    for report_id, labels in results.items():
        labels = apply_uncertain(labels, uncertain)
        cells = []
        for f in FINDINGS:
            counts[f][labels.get(f)] += 1
            cells.append(f"{_SHORT[labels.get(f)]:{len(f)}s}")
        lines.append(f"{report_id:{width}s}  " + "  ".join(cells).rstrip())
    lines.append(f"{len(results)} report{'s' if len(results) != 1 else ''} labelled"
                 + (f" (uncertain counted {uncertain})" if uncertain else "") + ":")
    for f in FINDINGS:
        c = counts[f]
        lines.append(f"  {f:14s} positive {c[POSITIVE]:4d}  uncertain {c[UNCERTAIN]:4d}  "
                     f"negative {c[NEGATIVE]:4d}  not mentioned {c[None]:4d}")
    return lines
