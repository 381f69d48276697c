"""Procedural chest radiograph anatomy: who the patient is, and how one study sees them.

The picture is built as a map of X-ray attenuation (soft tissue, air in the lungs, heart
and mediastinum, bone, metal) in an *anatomy frame* ``(u, v)``: ``u`` runs from the
image's left (the patient's right in a PA view) to its right, ``v`` from head to feet,
both about -1…1. A study places that frame on the detector with its own shift, rotation
and scale, so positioning varies between studies while the anatomy stays the patient's.

Identity lives in :class:`AnatomyTraits`, drawn once per patient: habitus, lung and heart
shape, rib geometry, spine curvature, clavicles, lung markings and devices. That is where
identity sits in real chest radiographs too — global geometry, not fine texture.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw

# Soft edge width (anatomy units) used for every smooth boundary.
_EDGE = 0.012


def smoothstep(x: np.ndarray | float) -> np.ndarray:
    """0 below -1, 1 above +1, a smooth ramp between (distances in units of the edge)."""
    t = np.clip((np.asarray(x, dtype=np.float32) + 1.0) * 0.5, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def inside(distance: np.ndarray, edge: float = _EDGE) -> np.ndarray:
    """Soft membership from a signed distance (positive inside)."""
    return smoothstep(distance / edge)


def _rounded(record) -> dict:
    """A dataclass as a dict, floats to four places (for the ground-truth file)."""
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(record).items()}


@dataclass
class AnatomyTraits:
    """A patient's stable anatomy (identity traits), the same in every study."""

    body_half_width: float
    neck_half_width: float
    shoulder_v: float
    soft_tissue: float
    lung_half_width: float
    apex_v: float
    diaphragm_v: float
    dome_height: float
    right_dome_raise: float
    mediastinum_half_width: float
    heart_u: float
    heart_v: float
    heart_rx: float
    heart_ry: float
    heart_tilt: float
    heart_bulge: float
    aortic_knob_u: float
    aortic_knob_v: float
    aortic_knob_r: float
    trachea_shift: float
    spine_width: float
    scoliosis_amp: float
    scoliosis_phase: float
    vertebra_height: float
    rib_first_v: float
    rib_spacing: float
    rib_arch: float
    rib_droop: float
    rib_thickness: float
    clavicle_v: float
    clavicle_tilt: float
    clavicle_length: float
    breast: float  # 0 for none
    chronic_cardiomegaly: bool
    pacemaker: bool
    sternal_wires: int
    clips: int
    clip_u: float
    clip_v: float
    markings_seed: int

    def as_dict(self) -> dict:
        return _rounded(self)


def draw_traits(rng: np.random.Generator, sex: str, weight_kg: float, height_m: float
                ) -> AnatomyTraits:
    bmi = weight_kg / (height_m * height_m)
    habitus = float(np.clip((bmi - 26.0) / 10.0, -0.6, 1.2))
    u = rng.uniform
    return AnatomyTraits(
        body_half_width=0.84 + 0.08 * habitus + u(-0.02, 0.02),
        neck_half_width=u(0.2, 0.28),
        shoulder_v=u(-0.84, -0.74),
        soft_tissue=1.0 + 0.35 * habitus,
        lung_half_width=u(*TRAIT_RANGES["lung_half_width"]),
        apex_v=u(*TRAIT_RANGES["apex_v"]),
        diaphragm_v=u(*TRAIT_RANGES["diaphragm_v"]),
        dome_height=u(0.07, 0.16),
        right_dome_raise=u(0.015, 0.08),
        mediastinum_half_width=u(0.09, 0.14),
        heart_u=u(0.08, 0.16),
        heart_v=u(0.18, 0.28),
        heart_rx=u(*TRAIT_RANGES["heart_rx"]),
        heart_ry=u(0.19, 0.25),
        heart_tilt=u(*TRAIT_RANGES["heart_tilt"]),
        heart_bulge=u(*TRAIT_RANGES["heart_bulge"]),
        aortic_knob_u=u(0.1, 0.17),
        aortic_knob_v=u(-0.38, -0.28),
        aortic_knob_r=u(0.035, 0.07),
        trachea_shift=u(-0.025, 0.025),
        spine_width=u(0.075, 0.105),
        scoliosis_amp=float(rng.choice([0.0, u(0.01, 0.03), u(0.03, 0.08)], p=[0.4, 0.4, 0.2])),
        scoliosis_phase=u(0, 2 * np.pi),
        vertebra_height=u(0.075, 0.1),
        rib_first_v=u(-0.84, -0.76),
        rib_spacing=u(0.1, 0.135),
        rib_arch=u(0.04, 0.1),
        rib_droop=u(0.24, 0.42),
        rib_thickness=u(0.026, 0.04),
        clavicle_v=u(-0.7, -0.6),
        clavicle_tilt=u(-0.1, 0.06),
        clavicle_length=u(0.4, 0.52),
        breast=u(0.5, 1.0) if sex == "F" else 0.0,
        chronic_cardiomegaly=bool(rng.random() < 0.15),
        pacemaker=bool(rng.random() < 0.12),
        sternal_wires=int(rng.integers(4, 7)) if rng.random() < 0.1 else 0,
        clips=int(rng.integers(3, 7)) if rng.random() < 0.1 else 0,
        clip_u=u(-0.5, 0.5),
        clip_v=u(-0.4, 0.1),
        markings_seed=int(rng.integers(2**31)),
    )


#: The range ``draw_traits`` covers, for the traits population groups change.
TRAIT_RANGES: dict[str, tuple[float, float]] = {
    "lung_half_width": (0.6, 0.76), "diaphragm_v": (0.36, 0.52), "apex_v": (-0.8, -0.66),
    "heart_rx": (0.27, 0.34), "heart_bulge": (0.0, 0.35), "heart_tilt": (-0.35, 0.1),
    # habitus -0.6…1.2 (see draw_traits)
    "body_half_width": (0.84 - 0.08 * 0.6 - 0.02, 0.84 + 0.08 * 1.2 + 0.02),
    "soft_tissue": (1.0 - 0.35 * 0.6, 1.0 + 0.35 * 1.2),
}
# How population group g2 differs from g1. A shape trait's draw, a quantile q of its range,
# is bent towards one end (q ** 2 pulls it low, 1 - (1 - q) ** 2 high), so g2 covers the same
# range as g1 (the shipped models saw all of it) with another distribution: smaller lungs
# (narrower, a higher diaphragm, a lower apex), a broader, more bulging and more tilted heart.
# Habitus (body width, soft-tissue density) moves up by a step that fades to none at the
# range's top (an image denser than any in the range would be a new kind of image).
_GROUP_BENDS: dict[str, dict[str, str]] = {
    "g2": {"lung_half_width": "low", "diaphragm_v": "low", "apex_v": "high",
           "heart_rx": "high", "heart_bulge": "high", "heart_tilt": "low"},
}
_GROUP_BEND_POWER = 2.0
_GROUP_HABITUS: dict[str, dict[str, float]] = {"g2": {"body_half_width": 0.04, "soft_tissue": 0.15}}


def group_traits(traits: AnatomyTraits, group: str) -> AnatomyTraits:
    """The traits of a patient of population ``group`` drawn as ``traits`` (g1's unchanged):
    the same random draws mapped to the group's distributions, inside the ranges g1 covers."""
    changes = {}
    for name, end in _GROUP_BENDS.get(group, {}).items():
        lo, hi = TRAIT_RANGES[name]
        q = float(np.clip((getattr(traits, name) - lo) / (hi - lo), 0.0, 1.0))
        q = q ** _GROUP_BEND_POWER if end == "low" else 1.0 - (1.0 - q) ** _GROUP_BEND_POWER
        changes[name] = lo + q * (hi - lo)
    for name, shift in _GROUP_HABITUS.get(group, {}).items():
        lo, hi = TRAIT_RANGES[name]
        value = getattr(traits, name)
        # The step fades towards the range's top, where few patients of either group lie.
        changes[name] = value + shift * float(np.clip((hi - value) / (hi - lo), 0.0, 1.0))
    return replace(traits, **changes) if changes else traits


@dataclass
class Acquisition:
    """How one study sees the patient: positioning, inspiration, exposure, noise."""

    shift_u: float
    shift_v: float
    rotation: float  # radians
    scale: float
    inspiration: float  # moves the diaphragm; + is a deeper breath
    exposure: float
    noise: float
    gastric_bubble: float
    view: str

    def as_dict(self) -> dict:
        return _rounded(self)


def draw_acquisition(rng: np.random.Generator, view: str) -> Acquisition:
    portable = view == "AP"
    return Acquisition(
        shift_u=rng.uniform(-0.04, 0.04),
        shift_v=rng.uniform(-0.04, 0.04),
        rotation=float(np.deg2rad(rng.uniform(-2.5, 2.5))),
        scale=rng.uniform(0.95, 1.04),
        inspiration=rng.uniform(-0.06, 0.04) - (0.04 if portable else 0.0),
        exposure=rng.uniform(0.88, 1.12),
        noise=rng.uniform(0.8, 1.25),
        gastric_bubble=rng.uniform(0.3, 1.0),
        view=view,
    )


@dataclass
class Frame:
    """Maps between the detector's pixels and the anatomy frame for one study."""

    size: int
    acq: Acquisition
    u: np.ndarray = field(init=False, repr=False)
    v: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.size
        c = (np.arange(s, dtype=np.float32) + 0.5) / s * 2.0 - 1.0
        x, y = np.meshgrid(c, c)
        x = x - self.acq.shift_u
        y = y - self.acq.shift_v
        cos, sin = np.cos(self.acq.rotation), np.sin(self.acq.rotation)
        self.u = ((x * cos + y * sin) / self.acq.scale).astype(np.float32)
        self.v = ((-x * sin + y * cos) / self.acq.scale).astype(np.float32)

    def to_pixels(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Anatomy coordinates to (column, row) pixel coordinates."""
        cos, sin = np.cos(self.acq.rotation), np.sin(self.acq.rotation)
        su, sv = np.asarray(u) * self.acq.scale, np.asarray(v) * self.acq.scale
        x = su * cos - sv * sin + self.acq.shift_u
        y = su * sin + sv * cos + self.acq.shift_v
        return (x + 1.0) * self.size / 2.0 - 0.5, (y + 1.0) * self.size / 2.0 - 0.5

    def units_to_pixels(self, length: float) -> float:
        return length * self.acq.scale * self.size / 2.0


class Canvas:
    """Rasterises thin structures (vessels, wires, leads) in pixel space via PIL."""

    def __init__(self, frame: Frame):
        self.frame = frame
        self.image = Image.new("F", (frame.size, frame.size), 0.0)
        self.draw = ImageDraw.Draw(self.image)

    def polyline(self, u, v, width: float, value: float) -> None:
        cols, rows = self.frame.to_pixels(np.asarray(u), np.asarray(v))
        w = max(1, int(round(self.frame.units_to_pixels(width))))
        self.draw.line(list(zip(cols.tolist(), rows.tolist())), fill=float(value), width=w)

    def ellipse(self, u: float, v: float, ru: float, rv: float, value: float, outline=False) -> None:
        (c,), (r,) = self.frame.to_pixels(np.array([u]), np.array([v]))
        pu, pv = self.frame.units_to_pixels(ru), self.frame.units_to_pixels(rv)
        box = [c - pu, r - pv, c + pu, r + pv]
        if outline:
            self.draw.ellipse(box, outline=float(value), width=max(1, int(round(pu * 0.35))))
        else:
            self.draw.ellipse(box, fill=float(value))

    def array(self) -> np.ndarray:
        return np.asarray(self.image, dtype=np.float32)


class Chest:
    """One study's geometry: the patient's traits placed by the acquisition."""

    def __init__(self, traits: AnatomyTraits, acq: Acquisition, size: int, heart_scale: float = 1.0):
        self.t = traits
        self.acq = acq
        self.frame = Frame(size, acq)
        self.heart_scale = heart_scale * (1.08 if acq.view == "AP" else 1.0)
        self.u, self.v = self.frame.u, self.frame.v

    # --- geometry shared with the pathology module -------------------------------------
    def lung_geometry(self, side: int) -> tuple[float, float, float, float]:
        """(centre, half width, apex, diaphragm level) of one lung in ``a = side * u``."""
        t = self.t
        medial = t.mediastinum_half_width
        centre = (medial + t.lung_half_width) / 2.0
        half = (t.lung_half_width - medial) / 2.0
        dia = t.diaphragm_v + self.acq.inspiration - (t.right_dome_raise if side < 0 else 0.0)
        return centre, half, t.apex_v, dia

    def diaphragm(self, side: int, a: np.ndarray) -> np.ndarray:
        centre, half, _, dia = self.lung_geometry(side)
        return dia - self.t.dome_height * (1.0 - np.clip(((a - centre) / half) ** 2, 0, 1.5))

    def lung_membership(self, side: int, u=None, v=None, shrink: float = 0.0,
                        edge: float = _EDGE) -> np.ndarray:
        """Soft mask of one lung field; ``shrink`` pulls the apex and lateral wall inwards."""
        u = self.u if u is None else u
        v = self.v if v is None else v
        a = side * np.asarray(u, dtype=np.float32)
        v = np.asarray(v, dtype=np.float32)
        centre, half, apex, _ = self.lung_geometry(side)
        apex = apex + shrink
        mid = apex + 0.4
        # Above `mid` the lung narrows to a rounded apex.
        taper = np.sqrt(np.clip(1.0 - ((mid - v) / (mid - apex)) ** 2, 0.0, 1.0))
        width = np.where(v < mid, half * taper, half)
        lateral = centre + width - shrink - a
        medial = a - (centre - width)
        lower = self.diaphragm(side, a) - v
        upper = v - apex
        d = np.minimum(np.minimum(lateral, medial), np.minimum(lower, upper))
        return inside(d, edge)

    def lungs(self) -> np.ndarray:
        return np.maximum(self.lung_membership(-1), self.lung_membership(+1))

    def heart_profile(self) -> np.ndarray:
        """Heart thickness 0…1 (the silhouette is where it is above 0.5 of its rim)."""
        t = self.t
        du = self.u - t.heart_u
        dv = self.v - t.heart_v
        cos, sin = np.cos(t.heart_tilt), np.sin(t.heart_tilt)
        pu = du * cos + dv * sin
        pv = -du * sin + dv * cos
        rx = t.heart_rx * self.heart_scale * (1.0 + t.heart_bulge * 0.25 * (pu > 0))
        ry = t.heart_ry * self.heart_scale
        r2 = (pu / rx) ** 2 + (pv / ry) ** 2
        return np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)) * inside(1.0 - np.sqrt(r2), 0.03)

    def body_profile(self) -> np.ndarray:
        t = self.t
        v = self.v
        flare = smoothstep((v - t.shoulder_v) / 0.08)
        width = t.neck_half_width + (t.body_half_width - t.neck_half_width) * flare
        width = width * (1.0 - 0.05 * np.clip(v - 0.4, 0, 1))
        ratio = np.clip(1.0 - (self.u / width) ** 2, 0.0, 1.0)
        return np.sqrt(ratio) * inside(width - np.abs(self.u), 0.02)

    # --- rendering ---------------------------------------------------------------------
    def _spine_centre(self, v: np.ndarray) -> np.ndarray:
        t = self.t
        return t.scoliosis_amp * np.sin(np.pi * 0.9 * (v + 1.0) + t.scoliosis_phase)

    def bones(self) -> np.ndarray:
        t, u, v = self.t, self.u, self.v
        out = np.zeros_like(u)
        # Spine: a column of vertebral bodies with lucent discs between them.
        du = u - self._spine_centre(v)
        column = inside(t.spine_width - np.abs(du), 0.01)
        phase = np.mod(v / t.vertebra_height, 1.0)
        body = 0.75 + 0.25 * inside(0.42 - np.abs(phase - 0.5), 0.05)
        pedicles = np.exp(-((np.abs(du) - t.spine_width * 0.6) / 0.015) ** 2) * 0.25
        out += 0.26 * column * body + pedicles * column
        # Ribs: posterior arcs from the spine, anterior arcs fainter and sloping medially.
        spacing = t.rib_spacing * (1.0 + 0.5 * self.acq.inspiration)
        for side in (-1, 1):
            a = side * u
            lateral_end = t.lung_half_width + 0.06
            for i in range(10):
                v0 = t.rib_first_v + i * spacing
                s = np.clip((a - 0.05) / (lateral_end - 0.05), 0.0, 1.0)
                centre = v0 - t.rib_arch * np.sin(np.pi * s) + t.rib_droop * s * s
                span = inside(a - 0.05, 0.01) * inside(lateral_end - a, 0.03)
                d = np.abs(v - centre)
                half = t.rib_thickness * 0.5
                band = inside(half - d, 0.006)
                cortex = np.exp(-((d - half) / 0.005) ** 2)
                out += span * (0.1 * band + 0.08 * cortex)
                # The anterior arc of the same rib, seen through the lung.
                v_lat = v0 + t.rib_droop
                s2 = np.clip((lateral_end - a) / (lateral_end - 0.22), 0.0, 1.0)
                centre2 = v_lat + 0.05 * s2 + 0.28 * s2 * s2 - 0.18
                span2 = inside(a - 0.22, 0.04) * inside(lateral_end - a, 0.03)
                d2 = np.abs(v - centre2)
                out += span2 * 0.045 * inside(half * 0.9 - d2, 0.008)
            # Clavicle: an S-shaped strut from the sternum to the shoulder.
            s = np.clip((a - 0.06) / t.clavicle_length, 0.0, 1.0)
            centre = t.clavicle_v - (0.08 + t.clavicle_tilt) * s + 0.025 * np.sin(2 * np.pi * s)
            span = inside(a - 0.06, 0.01) * inside(0.06 + t.clavicle_length - a, 0.01)
            d = np.abs(v - centre)
            out += span * (0.3 * inside(0.022 - d, 0.006) + 0.1 * np.exp(-((d - 0.022) / 0.005) ** 2))
        return out

    def markings(self, canvas: Canvas) -> None:
        """Lung markings: vessel trees branching from each hilum (a patient trait)."""
        rng = np.random.default_rng(self.t.markings_seed)
        for side in (-1, 1):
            hilum_u, hilum_v = side * (self.t.mediastinum_half_width + 0.07), self.t.heart_v - 0.32
            # Angles from straight up (0) through lateral (pi/2) to straight down (pi).
            for angle in np.linspace(0.25, 2.9, 12) + rng.normal(0, 0.12, 12):
                self._branch(canvas, rng, side, hilum_u, hilum_v, angle, 0.02, 0.1, depth=0)

    def _branch(self, canvas, rng, side, u0, v0, angle, width, value, depth) -> None:
        length = rng.uniform(0.1, 0.22) * (0.85 ** depth)
        steps = 4
        us, vs = [u0], [v0]
        for _ in range(steps):
            angle += rng.normal(0, 0.18)
            us.append(us[-1] + side * np.sin(angle) * length / steps)
            vs.append(vs[-1] - np.cos(angle) * length / steps)
        canvas.polyline(us, vs, width, value)
        if depth < 3 and width > 0.006:
            for turn in (-1, 1):
                self._branch(canvas, rng, side, us[-1], vs[-1], angle + turn * rng.uniform(0.25, 0.6),
                             width * 0.7, value * 0.85, depth + 1)

    def devices(self, canvas: Canvas) -> None:
        t = self.t
        rng = np.random.default_rng(t.markings_seed + 1)
        if t.pacemaker:
            gu, gv = 0.42, -0.58
            canvas.ellipse(gu, gv, 0.075, 0.05, 3.0)
            # Lead: over the clavicle into the right heart.
            lu = np.array([gu - 0.05, 0.2, 0.05, -0.02, 0.02, t.heart_u - 0.06])
            lv = np.array([gv, -0.66, -0.55, -0.2, 0.05, t.heart_v + 0.08])
            canvas.polyline(lu, lv, 0.009, 2.5)
        for k in range(t.sternal_wires):
            v = -0.42 + k * 0.09
            canvas.ellipse(0.0, v, 0.028, 0.016, 2.0, outline=True)
        for _ in range(t.clips):
            cu = t.clip_u + rng.normal(0, 0.05)
            cv = t.clip_v + rng.normal(0, 0.05)
            ang = rng.uniform(0, np.pi)
            du, dv = 0.025 * np.cos(ang), 0.025 * np.sin(ang)
            canvas.polyline([cu - du, cu, cu + dv], [cv - dv, cv + 0.012, cv - du], 0.007, 2.5)

    def attenuation(self, extra: np.ndarray | None = None, vessel_clear: np.ndarray | None = None,
                    lung_air: np.ndarray | None = None) -> np.ndarray:
        """The study's attenuation map; ``extra`` adds pathology density."""
        t, u, v = self.t, self.u, self.v
        body = self.body_profile()
        lungs = self.lungs()
        heart = self.heart_profile()
        density = body * (0.7 * t.soft_tissue + 0.2)

        # Mediastinum with the aortic knob; the trachea and main bronchi are air.
        med_width = t.mediastinum_half_width * (1.0 + 0.3 * np.clip(v + 0.3, 0, 1))
        mediastinum = inside(med_width - np.abs(u - 0.01), 0.02) * inside(t.heart_v - v, 0.05)
        mediastinum *= inside(v + 0.95, 0.05)
        knob = np.clip(1.0 - ((u - t.aortic_knob_u) ** 2 + (v - t.aortic_knob_v) ** 2)
                       / t.aortic_knob_r ** 2, 0, 1)
        tu = t.trachea_shift * (v + 1.0)
        trachea = inside(0.032 - np.abs(u - tu), 0.008) * inside(-0.32 - v, 0.02) * inside(v + 1.0, 0.02)
        bronchi = np.zeros_like(u)
        for side in (-1, 1):
            s = np.clip((v + 0.32) / 0.16, 0, 1)
            centre = tu + side * 0.15 * s
            bronchi += inside(0.022 - np.abs(u - centre), 0.006) * inside(v + 0.32, 0.01) \
                * inside(-0.16 - v, 0.01)
        density += 0.3 * mediastinum + 0.3 * np.sqrt(knob) + 0.6 * heart
        density -= 0.18 * trachea + 0.12 * bronchi

        # Air in the lungs: deepest centrally, less where the heart lies in front.
        air = lungs * (0.78 - 0.12 * np.abs(v)) * (1.0 - 0.8 * np.clip(heart * 1.6, 0, 1))
        if lung_air is not None:
            air = air + lung_air
        density -= air * body.clip(0.3, 1.0)

        # Abdomen under the diaphragm; the gastric bubble under the left dome.
        below = np.maximum(inside(v - self.diaphragm(-1, -u), 0.015) * (u < 0),
                           inside(v - self.diaphragm(1, u), 0.015) * (u >= 0))
        density += 0.12 * below * body
        centre, half, _, _ = self.lung_geometry(1)
        gv = float(self.diaphragm(1, np.float32(centre))) + 0.07
        r = 0.06 * self.acq.gastric_bubble
        bubble = np.clip(1.0 - ((u - centre - 0.05) / (1.6 * r)) ** 2 - ((v - gv) / r) ** 2, 0, 1)
        density -= 0.3 * np.sqrt(bubble)

        # Breast shadows over the lower lateral lungs.
        if t.breast > 0:
            for side in (-1, 1):
                du = (u - side * 0.47) / 0.3
                dv = (v - 0.3) / 0.22
                density += 0.12 * t.breast * np.sqrt(np.clip(1 - du * du - dv * dv, 0, 1))

        density += self.bones()

        canvas = Canvas(self.frame)
        self.markings(canvas)
        vessels = canvas.array()
        if vessel_clear is not None:
            vessels = vessels * (1.0 - vessel_clear)
        density += vessels * lungs
        hardware = Canvas(self.frame)
        self.devices(hardware)
        density += hardware.array()
        if extra is not None:
            density += extra
        return np.clip(density, 0.0, None)
