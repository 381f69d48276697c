"""Findings drawn into a study: extra density, cleared lung markings, and pixel masks.

Each finding is placed in the study's anatomy (a lung, a zone) and rendered in the same
anatomy frame as the chest, so its mask lines up with the image by construction. The
report describes the same :class:`~.model.Finding` records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .anatomy import Chest, inside
from .model import LABELS, Finding

# About 5 cm of chest per 0.25 anatomy units (a 40 cm chest spans about 2 units).
CM = 0.05

_ZONES = {"upper": (-0.55, -0.2), "middle": (-0.2, 0.1), "lower": (0.1, 0.45)}
_PREVALENCE = {  # chance per abnormal study
    "cardiomegaly": 0.18, "effusion": 0.3, "nodule": 0.2, "mass": 0.1,
    "consolidation": 0.25, "pneumothorax": 0.12, "atelectasis": 0.22,
}


def side_name(side: int) -> str:
    """The patient's side for an image side (image left is the patient's right in a PA view)."""
    return "right" if side < 0 else "left"


@dataclass
class Pathology:
    extra: np.ndarray
    vessel_clear: np.ndarray
    lung_air: np.ndarray
    findings: list[Finding] = field(default_factory=list)
    masks: dict[str, np.ndarray] = field(default_factory=dict)

    def add_mask(self, label: str, region: np.ndarray) -> None:
        mask = region > 0.5
        if label in self.masks:
            mask = mask | self.masks[label]
        self.masks[label] = mask


def choose_labels(rng: np.random.Generator, chronic_cardiomegaly: bool) -> list[str]:
    labels: set[str] = {"cardiomegaly"} if chronic_cardiomegaly else set()
    if rng.random() > 0.35:
        names = list(_PREVALENCE)
        p = np.array([_PREVALENCE[n] for n in names])
        count = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
        labels.update(str(n) for n in rng.choice(names, size=count, replace=False, p=p / p.sum()))
    return [label for label in LABELS if label in labels]


def _point_in_lung(chest: Chest, rng: np.random.Generator, side: int, zone: str,
                   margin: float) -> tuple[float, float]:
    centre, half, _, _ = chest.lung_geometry(side)
    lo, hi = _ZONES[zone]
    for _ in range(200):
        a = rng.uniform(centre - half * 0.8, centre + half * 0.8)
        v = rng.uniform(lo, hi)
        probe = chest.lung_membership(side, np.float32(side * a), np.float32(v), shrink=margin)
        if float(probe) > 0.99:
            return side * a, v
    return side * centre, (lo + hi) / 2.0


def build(chest: Chest, labels: list[str], rng: np.random.Generator) -> Pathology:
    """Render the study's findings in ``chest``'s frame (an enlarged heart goes into ``chest``)."""
    u, v = chest.u, chest.v
    zeros = np.zeros_like(u)
    path = Pathology(extra=zeros.copy(), vessel_clear=zeros.copy(), lung_air=zeros.copy())
    lungs = {side: chest.lung_membership(side) for side in (-1, 1)}

    for label in labels:
        side = int(rng.choice([-1, 1]))
        if label == "cardiomegaly":
            scale = float(rng.uniform(1.22, 1.42))
            severity = "moderate" if scale > 1.32 else "mild"
            chest.heart_scale *= scale  # the chest is drawn with the enlarged heart
            path.add_mask(label, chest.heart_profile() * 4.0)
            path.findings.append(Finding(label, "", "", severity=severity))
        elif label == "effusion":
            severity = str(rng.choice(["small", "moderate", "large"], p=[0.5, 0.35, 0.15]))
            sides = [-1, 1] if rng.random() < 0.2 else [side]
            for s in sides:
                centre, half, apex, dia = chest.lung_geometry(s)
                height = {"small": 0.1, "moderate": 0.22, "large": 0.38}[severity]
                a = s * u
                lateral = np.clip((a - (centre - half)) / (2 * half), 0, 1)
                level = dia - height - 0.12 * lateral ** 2  # the meniscus climbs laterally
                region = inside(v - level, 0.02) * lungs[s]
                path.extra += 0.55 * region
                path.vessel_clear = np.maximum(path.vessel_clear, region)
                path.add_mask(label, region)
            path.findings.append(Finding(label, "bilateral" if len(sides) == 2 else side_name(side),
                                         "basilar", severity=severity))
        elif label in ("nodule", "mass"):
            size_cm = float(rng.uniform(0.6, 2.8) if label == "nodule" else rng.uniform(3.2, 6.5))
            zone = str(rng.choice(list(_ZONES)))
            radius = size_cm / 2 * CM
            cu, cv = _point_in_lung(chest, rng, side, zone, radius * 0.8)
            angle = np.arctan2(v - cv, u - cu)
            lobulation = 1.0
            if label == "mass":
                lobulation += 0.12 * np.sin(3 * angle + rng.uniform(0, 6)) + \
                    0.08 * np.sin(5 * angle + rng.uniform(0, 6))
            r = np.sqrt((u - cu) ** 2 + (v - cv) ** 2) / (radius * lobulation)
            body = np.sqrt(np.clip(1 - r * r, 0, 1))
            path.extra += (0.3 if label == "nodule" else 0.42) * body * inside(1 - r, 0.15)
            path.add_mask(label, inside(1 - r, 0.05))
            path.findings.append(Finding(label, side_name(side), zone, size_cm=round(size_cm, 1)))
        elif label == "consolidation":
            zone = str(rng.choice(list(_ZONES), p=[0.25, 0.3, 0.45]))
            cu, cv = _point_in_lung(chest, rng, side, zone, 0.05)
            blob = zeros.copy()
            for _ in range(int(rng.integers(4, 8))):
                bu, bv = cu + rng.normal(0, 0.06), cv + rng.normal(0, 0.05)
                s2 = rng.uniform(0.04, 0.08) ** 2
                blob += np.exp(-((u - bu) ** 2 + (v - bv) ** 2) / (2 * s2))
            region = inside(blob - 0.6, 0.25) * lungs[side]
            # Air bronchograms: lucent branches inside the opacity.
            bronchi = zeros.copy()
            for _ in range(3):
                ang = rng.uniform(0, np.pi)
                d = np.abs((u - cu) * np.sin(ang) - (v - cv) * np.cos(ang))
                along = np.abs((u - cu) * np.cos(ang) + (v - cv) * np.sin(ang))
                bronchi += inside(0.008 - d, 0.004) * inside(0.12 - along, 0.02)
            path.extra += region * (0.38 - 0.15 * np.clip(bronchi, 0, 1))
            path.vessel_clear = np.maximum(path.vessel_clear, region * 0.7)
            path.add_mask(label, region)
            path.findings.append(Finding(label, side_name(side), zone))
        elif label == "pneumothorax":
            severity = str(rng.choice(["small", "moderate", "large"], p=[0.5, 0.35, 0.15]))
            gap = {"small": 0.05, "moderate": 0.1, "large": 0.17}[severity]
            _, _, apex, dia = chest.lung_geometry(side)
            cut = apex + (dia - apex) * (0.5 if severity == "small" else 0.8)
            collapsed = chest.lung_membership(side, shrink=gap, edge=0.008)
            above = inside(cut - v, 0.05)
            region = lungs[side] * (1.0 - collapsed) * above
            pleural_line = 4 * collapsed * (1 - collapsed) * lungs[side] * above
            path.vessel_clear = np.maximum(path.vessel_clear, region)
            path.lung_air += 0.1 * region
            path.extra += 0.12 * pleural_line
            path.add_mask(label, region)
            path.findings.append(Finding(label, side_name(side), "apical", size_cm=round(gap / CM, 1),
                                         severity=severity))
        elif label == "atelectasis":
            sides = [-1, 1] if rng.random() < 0.25 else [side]
            for s in sides:
                centre, half, _, _ = chest.lung_geometry(s)
                au = rng.uniform(centre - 0.4 * half, centre + 0.4 * half)
                av = float(chest.diaphragm(s, np.float32(au))) - rng.uniform(0.07, 0.15)
                ang = rng.uniform(-0.25, 0.25)
                a = s * u
                d = np.abs(-(a - au) * np.sin(ang) + (v - av) * np.cos(ang))
                along = np.abs((a - au) * np.cos(ang) + (v - av) * np.sin(ang))
                band = inside(rng.uniform(0.012, 0.024) - d, 0.006) * \
                    inside(rng.uniform(0.09, 0.16) - along, 0.02) * lungs[s]
                path.extra += 0.35 * band
                path.add_mask(label, band)
            path.findings.append(Finding(label, "bilateral" if len(sides) == 2 else side_name(side),
                                         "basilar"))
    return path

