"""Concepts outside the face oval: ears, hair, neck, upper body and background.

Two ways, one result type (a label map over the image, face pixels left unlabelled):

* :func:`outside_face_labels` (geometry): every person pixel (SelfieSegmentation) is placed
  by its position in the eye-normalised face frame: ear bands beside the contour, hair above,
  neck below the chin, upper body further down. Used when only landmarks and a person map
  are known (68-point input) and as the fall-back for grey images.
* :func:`evidence_outside_labels` (image evidence, the default of :class:`~.segment.Segmenter`):
  a skin colour model seeded from the face's own skin separates skin from cloth and hair.
  The neck is skin continuing below the jaw, bounded by the shoulder line (pose model, when
  given) or by a maximum neck length and width; ears are skin attached to the face contour
  in the ear band; hair is the rest of the person around the head, and below the chin only
  where it has the colour of the hair above and joins it; clothing and shoulders are
  ``upper_body``. See docs/segmentation.md for the rules and their limits.

Work is done on a grid of every ``step``-th pixel (the person map is itself a 256 x 144
model output; grid sampling and mask helpers in :mod:`.gridmasks`); the full-resolution person
mask then picks, per pixel, between the person label and the background label of its cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import cv2
import numpy as np

from . import gridmasks as gm
from .colour import Evidence, colour_evidence, face_skin, fit_colour
from .mesh_topology import eye_frame, mesh_topology

UNLABELLED = -1


@dataclass(frozen=True)
class OutsideFaceRules:
    """Bands of the eye-normalised frame (unit: inter-ocular distance, IOD) and thresholds
    of the off-face concepts."""

    ear_top_v: float = -0.25  # ears span from about the brows ...
    ear_bottom_v: float = 0.8  # ... to below the nose
    ear_width: float = 0.55  # how far past the face contour an ear reaches
    tragus_width: float = 0.12
    helix_bottom_v: float = 0.1
    lobe_top_v: float = 0.5
    hairline_width: float = 0.22
    hairline_center_half_width: float = 0.45
    crown_half_width: float = 0.8
    neck_half_width: float = 0.75
    neck_length: float = 1.2  # below the chin
    throat_half_width: float = 0.3
    above_head_half_width: float = 1.3
    person_threshold: float = 0.5
    # --- image evidence
    skin_distance: float = 3.0  # skin = chroma within this Mahalanobis radius of the face's skin
    skin_chroma_floor: float = 3.0  # least spread (Cr/Cb units) of the skin model
    skin_min_luma: float = 0.3  # skin may be this much darker than the face (shadow under the chin) ...
    skin_max_luma: float = 1.7  # ... or this much brighter
    grey_chroma: float = 2.0  # image chroma spread below this: no colour evidence (geometry only)
    neck_max_half_width: float = 0.9  # skin neck: at most this far from the midline
    neck_max_length: float = 1.6  # ... and this far below the chin (without a shoulder line)
    shoulder_margin: float = 0.15  # the neck stops this far above the shoulder line
    hair_colour_distance: float = 2.5  # hair below the ears: within this radius of the hair colour ...
    long_hair_min_u: float = 0.45  # ... and beside the neck, not in front of the throat
    min_neck: float = 0.02  # neck pieces smaller than this (IOD^2) are dropped
    min_ear: float = 0.03  # ear pieces smaller than this (IOD^2; an ear shows about 0.05-0.2) are dropped


@dataclass(frozen=True)
class PosePoints:
    """Body landmarks of the pose model in pixels (x, y), NaN when not seen."""

    left_shoulder: np.ndarray  # subject's left
    right_shoulder: np.ndarray
    left_ear: np.ndarray
    right_ear: np.ndarray


@dataclass
class FaceFrame:
    """The eye-normalised frame sampled on a grid of every ``step``-th pixel."""

    step: int
    shape: tuple[int, int]  # grid shape
    u: np.ndarray
    v: np.ndarray
    lateral: np.ndarray  # |u| minus the face half-width at that height (> 0: beside the face)
    v_top: float
    v_chin: float
    iod: float
    origin: np.ndarray
    axes: np.ndarray
    face: np.ndarray  # face oval on the grid
    dist_out: np.ndarray  # distance to the face (IOD), 0 inside

    @cached_property
    def a(self) -> np.ndarray:  # cached: read by most rules of a face
        return np.abs(self.u)

    @cached_property
    def left(self) -> np.ndarray:
        return self.u >= 0

    def to_uv(self, xy: np.ndarray) -> np.ndarray:
        return (np.asarray(xy, dtype=np.float64) - self.origin) @ self.axes.T / self.iod


def grid_step(image_size: tuple[int, int], iod: float, cells_per_iod: float = 20.0, max_cells: int = 640) -> int:
    """Grid step (pixels) of the off-face work: about ``cells_per_iod`` cells per inter-ocular
    distance, so the result does not depend on the image's resolution, and at most
    ``max_cells`` cells along the long side of the image."""
    return max(1, int(round(iod / cells_per_iod)), -(-max(image_size) // max_cells))


def face_frame(
    landmarks: np.ndarray, image_size: tuple[int, int], face_full: np.ndarray, step: int | None = None
) -> FaceFrame:
    h, w = image_size
    topo = mesh_topology()
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    origin, axes, iod = eye_frame(pts)
    iod = max(iod, 1e-6)
    step = step or grid_step(image_size, iod)
    # centre of each step x step block; pixel i's centre is at coordinate i (landmark convention)
    gy = (np.arange(0, h, step, dtype=np.float32) + (step - 1) / 2 - origin[1])[:, None]
    gx = (np.arange(0, w, step, dtype=np.float32) + (step - 1) / 2 - origin[0])[None, :]
    u = (gx * axes[0, 0] + gy * axes[0, 1]) / iod
    v = (gx * axes[1, 0] + gy * axes[1, 1]) / iod
    left = u >= 0
    oval_uv = (pts[list(topo.face_oval)] - origin) @ axes.T / iod
    halves = []  # the face's half-width at each cell's height, on the cell's side (whole grid per side:
    for sel in (oval_uv[:, 0] >= 0, oval_uv[:, 0] < 0):  # cheaper than gathering and scattering half of it)
        side_pts = oval_uv[sel]
        order = np.argsort(side_pts[:, 1])
        halves.append(np.interp(v, side_pts[order, 1], np.abs(side_pts[order, 0])))
    half = np.where(left, halves[0], halves[1]).astype(u.dtype)
    face = gm.face_cells(face_full, step, u.shape)
    dist_out = cv2.distanceTransform((~face).astype(np.uint8), cv2.DIST_L2, 3) * (step / iod)
    return FaceFrame(step, u.shape, u, v, np.abs(u) - half, float(oval_uv[:, 1].min()), float(oval_uv[:, 1].max()),
                     iod, origin, axes, face, dist_out)  # fmt: skip


@dataclass(frozen=True)
class _Side:
    """A leaf code that depends on the side: ``left`` where u >= 0, else ``right``."""

    left: int
    right: int


class _Codes(dict):
    """Leaf id -> code; ``side(base)``: ``left_<base>`` on the subject's left, else ``right_<base>``."""

    def side(self, base: str) -> _Side:
        return _Side(int(self[f"left_{base}"]), int(self[f"right_{base}"]))


@lru_cache(maxsize=8)
def _codes(leaf_ids: tuple[str, ...]) -> _Codes:
    return _Codes({k: np.int16(i) for i, k in enumerate(leaf_ids)})


def _background(fr: FaceFrame, rules: OutsideFaceRules, code: _Codes) -> np.ndarray:
    above = (fr.v < fr.v_top) & (fr.a < rules.above_head_half_width)
    upper = _Side(int(code["background_left"]), int(code["background_right"]))
    lower = _Side(int(code["background_lower_left"]), int(code["background_lower_right"]))
    return _compose(fr, [(above, code["background_above_head"]), (fr.v < fr.v_chin, upper), (None, lower)])


def _ear_leaves(fr: FaceFrame, ear: np.ndarray, rules: OutsideFaceRules, code: _Codes) -> list:
    """(condition, code) pairs splitting an ear mask into tragus, helix, lobe and concha."""
    v = fr.v
    tragus = ear & (fr.dist_out < rules.tragus_width) & (v > rules.helix_bottom_v) & (v < rules.lobe_top_v)
    return [
        (tragus, code.side("tragus")),
        (ear & (v < rules.helix_bottom_v), code.side("helix")),
        (ear & (v > rules.lobe_top_v), code.side("earlobe")),
        (ear, code.side("concha")),
    ]


def _hair_leaves(fr: FaceFrame, hair: np.ndarray, rules: OutsideFaceRules, code: _Codes) -> list:
    v, a = fr.v, fr.a
    hairline = hair & (fr.dist_out < rules.hairline_width) & (v < rules.ear_top_v)
    return [
        (hairline & (a < rules.hairline_center_half_width), code["hairline_center"]),
        (hairline, code.side("hairline")),
        (hair & (a < rules.crown_half_width) & (v < rules.ear_top_v), code["crown_hair"]),
        (hair, code.side("side_hair")),
    ]


def _neck_leaves(fr: FaceFrame, neck: np.ndarray, rules: OutsideFaceRules, code: _Codes) -> list:
    return [(neck & (fr.a < rules.throat_half_width), code["throat"]), (neck, code.side("neck"))]


def _compose(fr: FaceFrame, pairs: list) -> np.ndarray:
    """Per cell, the code of the first pair whose condition holds; the last pair's condition is
    ``None`` (the default). The pair index is chosen once and looked up with the cell's side in a
    small (pairs x 2) table, instead of building a left/right choice array per pair."""
    if pairs[-1][0] is not None:
        raise ValueError("the last pair must be the default (condition None)")
    table = np.array([[k.right, k.left] if isinstance(k, _Side) else [k, k] for _, k in pairs], np.uint8)  # codes < 256
    kind = np.select(
        [c for c, _ in pairs[:-1]], np.arange(len(pairs) - 1, dtype=np.uint8), default=np.uint8(len(pairs) - 1)
    )
    return table.ravel()[kind.astype(np.intp) * 2 + fr.left.view(np.uint8)]


def _finish(person_code, bg, fr: FaceFrame, person, face_full, rules, image_size, also_person=None) -> np.ndarray:
    """Full-resolution labels: the person code where the person map (or ``also_person``, cells)
    says person, else the background code; face pixels unlabelled. Byte grids (leaf codes < 256)
    upsampled one by one and combined with OpenCV's masked copies: the fewest full-size passes."""
    h, w = image_size
    if also_person is not None and also_person.any():  # such cells are person whatever the map says:
        bg = np.where(also_person, person_code, bg)  # give them the person code as "background" too
    out = gm.upsample(bg.astype(np.uint8, copy=False), fr.step, (h, w))
    if person is not None:
        p = np.asarray(person)
        mask = cv2.compare(p, rules.person_threshold, cv2.CMP_GE) if p.dtype == np.float32 else \
            (p >= rules.person_threshold).view(np.uint8)  # fmt: skip
        cv2.copyTo(gm.upsample(person_code.astype(np.uint8, copy=False), fr.step, (h, w)), mask, out)
    labels = out.astype(np.int16)
    cv2.copyTo(_unlabelled(labels.shape), face_full.view(np.uint8), labels)
    return labels


def _unlabelled(shape: tuple[int, int]) -> np.ndarray:
    return np.full(shape, UNLABELLED, np.int16)


def outside_face_labels(
    landmarks: np.ndarray,
    image_size: tuple[int, int],
    person: np.ndarray | None,
    face_full: np.ndarray,
    leaf_ids: tuple[str, ...],
    rules: OutsideFaceRules = OutsideFaceRules(),
) -> np.ndarray:
    """Hair, ears, neck, upper body and background by position alone (full image).

    The bands are evaluated once as if each cell were person and once as if it were
    background; the full-resolution person mask then picks between the two.
    """
    fr = face_frame(landmarks, image_size, face_full)
    code = _codes(tuple(leaf_ids))
    v, a = fr.v, fr.a
    ear_band = (v >= rules.ear_top_v) & (v <= rules.ear_bottom_v)
    ear = ear_band & (fr.lateral < rules.ear_width)
    beside_jaw = (v > rules.ear_bottom_v) & (v < fr.v_chin) & (fr.lateral > 0.15)
    hair = ~ear & ((v < rules.ear_top_v) | ear_band | beside_jaw)
    neck = (a < rules.neck_half_width) & (v < fr.v_chin + rules.neck_length)
    pairs = (
        _ear_leaves(fr, ear, rules, code) + _hair_leaves(fr, hair, rules, code) + _neck_leaves(fr, neck, rules, code)
    )
    person_code = _compose(fr, pairs + [(None, code["upper_body"])])
    return _finish(person_code, _background(fr, rules, code), fr, person, face_full, rules, image_size)


# ------------------------------------------------------------------ image evidence
def _shoulder_v(fr: FaceFrame, pose: PosePoints | None) -> np.ndarray | None:
    """Per grid cell, the v of the shoulder line at its u (None without two seen shoulders)."""
    if pose is None:
        return None
    pts = np.array([pose.left_shoulder, pose.right_shoulder], dtype=np.float64)
    if not np.isfinite(pts).all():
        return None
    uv = fr.to_uv(pts)
    if abs(uv[0, 0] - uv[1, 0]) < 0.3:  # shoulders not spread (side view): no usable line
        return None
    slope = (uv[0, 1] - uv[1, 1]) / (uv[0, 0] - uv[1, 0])
    return uv[1, 1] + slope * (fr.u - uv[1, 0])


def evidence_outside_labels(
    rgb: np.ndarray,
    landmarks: np.ndarray,
    person: np.ndarray,
    face_full: np.ndarray,
    face_labels: np.ndarray,
    leaf_ids: tuple[str, ...],
    rules: OutsideFaceRules = OutsideFaceRules(),
    pose: PosePoints | None = None,
) -> tuple[np.ndarray, dict]:
    """Off-face concepts from image evidence (see the module doc). Returns the label map and
    a small report (``mode`` = ``evidence`` or ``geometry`` for a grey image, the skin model)."""
    h, w = rgb.shape[:2]
    fr = face_frame(landmarks, (h, w), face_full)
    grid = cv2.cvtColor(gm.to_grid(np.ascontiguousarray(rgb), fr.step, fr.shape), cv2.COLOR_RGB2YCrCb)
    skin = face_skin(rgb, landmarks, grid, face_labels, leaf_ids, rules)
    if skin is None:
        return outside_face_labels(landmarks, (h, w), person, face_full, leaf_ids, rules), {"mode": "geometry"}
    code = _codes(tuple(leaf_ids))
    ev = colour_evidence(fr, grid, person, skin, rules)
    shoulder = _shoulder_v(fr, pose)
    neck = _neck(fr, ev, rules, shoulder)
    ear = _ears(fr, ev, rules, pose, neck)
    gm.drop_small(neck, rules.min_neck / ev.cell**2)
    gm.drop_small(ear, rules.min_ear / ev.cell**2)
    hair = _hair(fr, ev, rules, ear, neck)

    pairs = (
        _ear_leaves(fr, ear, rules, code) + _neck_leaves(fr, neck, rules, code) + _hair_leaves(fr, hair, rules, code)
    )
    person_code = _compose(fr, pairs + [(None, code["upper_body"])])
    out = _finish(person_code, _background(fr, rules, code), fr, person, face_full, rules, (h, w), also_person=ear)
    report = {
        "mode": "evidence",
        "skin_mean_crcb": [round(float(x), 1) for x in skin.mean],
        "shoulders": shoulder is not None,
    }
    return out, report


def _neck(fr: FaceFrame, ev: Evidence, rules: OutsideFaceRules, shoulder: np.ndarray | None) -> np.ndarray:
    """Skin continuing below the jaw, above the shoulder line."""
    v, a = fr.v, fr.a
    ring = gm.ring(fr.face, max(1, int(round(0.05 / ev.cell))))
    limit = v < (shoulder - rules.shoulder_margin if shoulder is not None else fr.v_chin + rules.neck_max_length)
    neck_zone = (v > rules.ear_bottom_v) & (a < rules.neck_max_half_width) & limit & ~fr.face
    neck = gm.attached(ev.is_skin & neck_zone, ring & neck_zone)
    neck = gm.smooth(neck, ev.r_smooth) & neck_zone & ev.pgrid
    return gm.fill_holes(neck | fr.face) & neck_zone & ev.pgrid  # shadow under the chin, enclosed by face and neck


def _ears(
    fr: FaceFrame, ev: Evidence, rules: OutsideFaceRules, pose: PosePoints | None, neck: np.ndarray
) -> np.ndarray:
    """Skin pieces attached to the face contour in the ear band (closed first: a thin ear beside
    the contour is often broken up by shadow; too small a piece is dropped by the caller)."""
    v = fr.v
    ear_zone = (
        (v >= rules.ear_top_v)
        & (v <= rules.ear_bottom_v)
        & (fr.lateral > -0.1)
        & (fr.lateral < rules.ear_width)
        & ~fr.face
    )
    candidates = gm.close(ev.skin_near & ear_zone, max(1, int(round(0.05 / ev.cell)))) & ear_zone
    seeds = gm.ring(fr.face, max(1, int(round(0.12 / ev.cell)))) & ear_zone
    if pose is not None:  # a seen ear point also seeds its ear
        for pt in (pose.left_ear, pose.right_ear):
            if np.isfinite(pt).all():
                uv = fr.to_uv(pt)
                seeds |= ear_zone & (np.hypot(fr.u - uv[0], fr.v - uv[1]) < 0.25)
    ear = gm.attached(candidates, seeds)
    return gm.smooth(ear, ev.r_smooth) & ear_zone & ev.near & ~neck


def _hair(fr: FaceFrame, ev: Evidence, rules: OutsideFaceRules, ear: np.ndarray, neck: np.ndarray) -> np.ndarray:
    """The rest of the person around the head (above the ear bottoms); lower down (beside the jaw,
    over the shoulders) only hair-coloured pieces joined to it, away from the midline."""
    v, a = fr.v, fr.a
    hair = ev.pgrid & (v < rules.ear_bottom_v) & ~ear & ~neck
    rest = ev.pgrid & (v >= rules.ear_bottom_v) & ~neck & ~ear & ~ev.is_skin & (a > rules.long_hair_min_u)
    long_hair = np.zeros_like(hair)
    if ev.hair_model is not None and rest.any():
        rest_p = rest.ravel()[ev.at]
        body = (ev.pgrid & (v > fr.v_chin + 1.0) & ~ev.is_skin).ravel()[ev.at]
        body_model = fit_colour(ev.col[body], rules.skin_chroma_floor, dims=(0, 1, 2))
        d_hair = ev.hair_model.distance(ev.col[rest_p])
        like_p = d_hair < rules.hair_colour_distance
        if body_model is not None:  # clearly nearer the hair colour than the clothing's
            like_p &= d_hair + 1.0 < body_model.distance(ev.col[rest_p])
        like = gm.smooth(gm.scatter(like_p, ev.at[rest_p], fr.shape), 2 * ev.r_smooth)
        long_hair = gm.attached(like | hair, hair) & like
    return hair | long_hair
