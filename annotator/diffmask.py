"""Artifact mask from a fake and its pristine source (pure numpy / OpenCV, no I/O).

The published FiFa annotator kept the top 5% of pixel differences. A fixed share is wrong
twice: on a near-identical pair it returns 5% of compression noise, and on a small (or a
large) edit it returns a mask of the wrong size. A fixed absolute floor is wrong too: tuned
for JPEG noise, it hides a lossless edit of a few grey levels. Here:

1. **Difference terms** in ΔE-like units: the CIE Lab colour distance after a light Gaussian
   blur (colour shifts, swaps, geometry; the a/b difference blurred further because JPEG halves
   chroma resolution), and the local RMS of the *unblurred* lightness difference (zero-mean
   changes that a blurred difference loses: smoothing, grain, a light blur).
2. **The pair's own noise**: the source's pixels are put in classes of local texture (lightness
   and colour high-pass energy; JPEG and resampling errors grow with it); per class and term the
   noise floor is the median plus ``noise_k`` robust deviations (MAD), measured on a grid *away
   from connected structure* (a first pass finds the candidate edit and leaves its neighbourhood
   out), at least ``class_share`` x the median class floor (a JPEG leaves most flat pixels exact
   while its blocks still differ), at most a + b x the class's texture (``max_noise``: beyond, an
   edit covers most of the class) and never below the absolute ``noise_floor``. In a lossless pair
   the measured noise is zero, so a change of a grey level or two over a connected region is
   found; in a JPEG pair the floor rises to the pair's own compression noise.
   **Area level** (:mod:`.diffarea`): the same measurement on window statistics of the signed
   difference and of the lightness difference energy, and a chi test of the window-mean signed
   difference, find diffuse edits (smoothing, lighting, recolouring) under the pair's JPEG noise;
   a pixel's significance is the larger of its per-pixel and its (eroded) area-level one.
3. **Threshold**, on the significance (the strongest term over its floor): seeds are the
   ``top_percent`` strongest pixels (the published rule) above the floor; the mask grows from them
   by hysteresis through connected pixels above max(floor, ``grow_ratio`` x the seeds' strength).
4. **Clean-up**: closing, opening, hole filling; then every component must carry enough
   *evidence* (how far, summed over its pixels, it stands above the floor) and enough pixels
   changed before any blur, so isolated noise never forms a region while a small, clear edit
   (an iris) stays; a small recoloured component is cut back to its core.
5. **Regions** (:mod:`.diffleaf`, given the source's segmentation): a face leaf whose mean change stands
   out of the pair's own region-level noise is added where nothing was found in or next to it, and a small
   recolour is snapped to the leaves changed over their whole area (JPEG chroma spreads it over its rim).

What the pair shows inside each region (colour shift, lost detail, geometry) is
:func:`fifa.annotator.profiles.change_profiles`.

Blurs and radii are given for a 384 px image and scaled by ``min(h, w) / 384``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np

from fifa.core.errors import FifaError

from .diffarea import area_terms, erode_spill, signed_significance, signed_weight, trim_components
from .diffclean import clean, disk, strength
from .diffleaf import leaf_map, leaf_means, leaf_significance, leaves_of, snap_to_leaves
from .diffnoise import noise_floors, significance_map

REF_SIDE = 384.0
__all__ = [
    "DiffConfig",
    "DiffResult",
    "PairError",
    "align_pair",
    "artifact_mask",
    "difference_map",
    "difference_terms",
    "noise_floors",
    "prepare_source",
    "significance_map",
]


class PairError(FifaError, ValueError):
    """A fake/source pair that cannot be compared (``code``: size_mismatch, aspect_mismatch)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class DiffConfig:
    top_percent: float = 5.0  #: seed share of the strongest differences (published: 5%)
    noise_floor: float = 0.5  #: absolute minimum of the floor (ΔE): what a lossless pair's zero noise is raised to
    noise_k: float = 6.0  #: floor per texture class = median + noise_k * 1.4826 * MAD of the pair's own map
    class_share: float = (
        1.0  #: ... and at least this times the median class floor (flat areas of a JPEG: zero-inflated)
    )
    max_noise: tuple[float, float] = (3.0, 10.0)  #: (a, b): a class's measured noise is at most a + b * its texture
    texture_classes: tuple[float, ...] = (0.3, 0.55, 0.75, 0.88, 0.95)  #: quantiles of source texture between classes
    exclude_radius: float = 6.0  #: structure found by the first pass, grown by this (px at 384), is not noise
    grow_ratio: float = 0.2  #: hysteresis low threshold = max(floor, ratio * seed strength)
    strength_quantile: float = 0.5  #: seed strength = this quantile of the seeds (iterated: see diffclean.strength)
    blur_sigma: float = 1.0  #: light blur before the colour distance (px at 384)
    chroma_sigma: float = 2.0  #: extra blur of the a/b difference (JPEG halves chroma resolution)
    rms_weight: float = 1.3  #: weight of the local RMS of the unblurred lightness difference
    rms_sigma: float = 2.0  #: window of that RMS and of the source's texture (px at 384)
    close_radius: float = 4.0  #: closing radius (px at 384)
    open_radius: float = 1.5  #: opening radius (px at 384)
    min_evidence: float = 40.0  #: a component needs sum(clip(significance - 1, 0, cap)) >= this (px at 384, scaled)
    evidence_cap: float = 2.0  #: per-pixel cap of that sum
    min_support: float = 9.0  #: ... and this many pixels changed before any blur (px at 384, scaled)
    aspect_tolerance: float = 0.02  #: relative aspect-ratio difference still resized
    area_sigma: float = 5.0  #: window of the area-level terms (px at 384; 0: per-pixel terms only; see diffarea)
    area_noise_k: float = 10.0  #: noise_k of the area terms (a resize and back raises a detailed area's RMS)
    area_chi_k: float = 6.0  #: chi test of the window-mean signed difference at this many robust deviations (0: off)
    signed_skip_classes: int = 2  #: the chi test leaves out this many of the most textured classes (edges)
    area_erode: float = 1.0  #: the area significance is grey-eroded by this x its window (cuts its spill)
    trim_ratio: float = 0.5  #: a small recoloured component keeps pixels >= this x its peak significance (0: off)
    trim_max_area: float = 3000.0  #: ... when smaller than this (px at 384, scaled with the area)
    leaf_k: float = 8.0  #: region-level test of the source's segmented leaves at this many robust deviations (0: off)
    leaf_min_area: float = 12.0  #: ... of the face leaves of at least this many pixels
    leaf_max_area: float = 1500.0  #: ... and at most this many (px at 384, scaled with the area; larger: window tests)
    snap_ratio: float = 0.5  #: a small recoloured component keeps the leaves changed >= this x its strongest (0: off)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DiffResult:
    mask: np.ndarray  # bool HxW
    diff: np.ndarray  # float32 HxW combined difference map (ΔE units)
    stats: dict = field(default_factory=dict)
    colour: np.ndarray | None = None  # per-pixel colour distance
    shift: tuple | None = None  # (dL, da, db) HxW each: the Lab shift (fake - source), blurred
    significance: np.ndarray | None = None  # float32 HxW: the strongest term over its measured noise floor
    fake_l: np.ndarray | None = field(default=None, repr=False)  # fake lightness (detail change on demand)
    source_abs_hp: np.ndarray | None = field(default=None, repr=False)
    scale: float = 1.0

    def detail_at(self, where: np.ndarray) -> np.ndarray:
        """Signed change of detail energy, |high-pass| of the fake minus the source's, at the pixels
        of the bool mask ``where`` (computed around them only: profiles need no more)."""
        if self.fake_l is None or not where.any():
            return np.zeros(int(where.sum()), np.float32)
        sigma = 1.5 * self.scale
        pad = int(np.ceil(4 * sigma))
        x, y, w, h = cv2.boundingRect(where.astype(np.uint8))
        H, W = where.shape
        box = (slice(max(0, y - pad), min(H, y + h + pad)), slice(max(0, x - pad), min(W, x + w + pad)))
        lf = self.fake_l[box]
        hp = cv2.absdiff(cv2.subtract(lf, cv2.GaussianBlur(lf, (0, 0), sigma)), 0)
        return cv2.subtract(hp, self.source_abs_hp[box])[where[box]]


def align_pair(fake: np.ndarray, source: np.ndarray, config: DiffConfig = DiffConfig()) -> np.ndarray:
    """Return ``source`` resized to the fake's size when their aspect ratios match.

    Raises :class:`PairError` (``aspect_mismatch``) otherwise.
    """
    fh, fw = fake.shape[:2]
    sh, sw = source.shape[:2]
    if (fh, fw) == (sh, sw):
        return source
    ra, rb = fw / fh, sw / sh
    if abs(ra - rb) / ra > config.aspect_tolerance:
        raise PairError(
            "aspect_mismatch", f"fake is {fw}x{fh} and source {sw}x{sh}: aspect ratios differ ({ra:.3f} vs {rb:.3f})"
        )
    interp = cv2.INTER_AREA if sw > fw else cv2.INTER_LINEAR
    return cv2.resize(source, (fw, fh), interpolation=interp)


def _lab(img: np.ndarray, sigma: float) -> np.ndarray:
    f = np.multiply(img, np.float32(1.0 / 255.0), dtype=np.float32)  # one pass (same values as astype, then scale)
    if sigma > 0:
        f = cv2.GaussianBlur(f, (0, 0), sigma)
    return cv2.cvtColor(f, cv2.COLOR_RGB2Lab)


def _scale(shape) -> float:
    return max(min(shape[:2]) / REF_SIDE, 0.25)


def _grid_step(shape) -> int:
    """Sampling step of the noise measurement: about 10k samples, whatever the size."""
    return max(1, int(round(np.sqrt(shape[0] * shape[1] / 10000.0))))


def _count_at_or_above(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``searchsorted(edges, values, side="right")`` for a few sorted edges, as uint8: one comparison
    per edge (a tenth of the time of a binary search per pixel)."""
    out = np.zeros(values.shape, np.uint8)
    for e in np.asarray(edges, np.float64):
        t = values.dtype.type(e)  # the smallest value of the array's type that is >= e: same result as in float64
        if t < e:
            t = np.nextafter(t, values.dtype.type(np.inf))
        out += values >= t
    return out


def prepare_source(source: np.ndarray, config: DiffConfig = DiffConfig(), regions=None) -> dict:
    """What the difference map needs from the source alone (reusable for every fake of one source):
    its Lab channels, detail energy, and the texture class of every pixel (with the grid samples
    of the noise measurement ordered by class); with the source's ``regions`` (a segmentation of the
    same size, :class:`~fifa.concept_tree.segmentation.regions.FaceRegions`), what the region-level
    test and snapping need (:mod:`.diffleaf`)."""
    scale = _scale(source.shape)
    lab = cv2.split(_lab(source, 0.0))
    hp = [cv2.subtract(c, cv2.GaussianBlur(c, (0, 0), 1.5 * scale)) for c in lab]
    hp_s = hp[0]
    energy = cv2.add(cv2.multiply(hp[0], hp[0]), cv2.add(cv2.multiply(hp[1], hp[1]), cv2.multiply(hp[2], hp[2])))
    # local texture of lightness and colour (a colour edge without a lightness edge rings too)
    tex = cv2.sqrt(cv2.GaussianBlur(energy, (0, 0), config.rms_sigma * scale))
    g = _grid_step(source.shape)
    edges = np.unique(np.quantile(tex[::g, ::g], config.texture_classes)) if config.texture_classes else np.zeros(0)
    classes = _count_at_or_above(tex, edges)
    cg = classes[::g, ::g].ravel()
    order = np.argsort(cg, kind="stable")
    bounds = np.searchsorted(cg[order], np.arange(len(edges) + 2))
    tg = tex[::g, ::g].ravel()[order]
    texture = np.array([np.median(tg[a:b]) if b > a else np.nan for a, b in zip(bounds[:-1], bounds[1:])])
    leaves = None
    if regions is not None and regions.ok and (config.leaf_k > 0 or config.snap_ratio > 0):
        step = 2 * g  # ~2,500 boxes: enough for a robust centre and spread per texture class
        leaves = leaves_of(regions, classes, config.leaf_min_area, config.leaf_max_area * scale * scale, step)
    return {
        "shape": source.shape,
        "leaves": leaves,
        "lab": lab,
        "abs_hp": cv2.absdiff(hp_s, 0),
        "classes": classes,
        "signed_weight": signed_weight(source, classes, len(edges) + 1 - config.signed_skip_classes),
        "n_classes": len(edges) + 1,
        "scale": scale,  # what the noise measurement's exclusion radius is scaled by
        "grid": g,
        "order": order,
        "bounds": bounds,
        "class_texture": np.nan_to_num(texture, nan=float(np.nanmax(texture)) if np.isfinite(texture).any() else 0),
    }


@dataclass
class DiffTerms:
    terms: list  # what detection uses, ΔE-like units: colour distance, weighted lightness RMS
    colour: np.ndarray  # colour distance of the blurred Lab difference
    fake_l: np.ndarray  # the fake's lightness
    shift: tuple  # blurred (dL, da, db)
    delta: tuple  # unblurred (dL, da, db)


def difference_terms(
    fake: np.ndarray, source: np.ndarray, config: DiffConfig = DiffConfig(), prepared: dict | None = None
) -> DiffTerms:
    """The difference maps of two same-size RGB images (see :class:`DiffTerms`).

    The Lab difference is blurred after conversion (blur and Lab conversion nearly commute at
    this scale), one channel at a time (the chroma blur and the light blur in one pass).
    ``prepared`` (from :func:`prepare_source`) skips the source's share of the work.
    """
    scale = _scale(fake.shape)
    if prepared is None or prepared["shape"] != source.shape:
        prepared = prepare_source(source, config)
    lab_f = cv2.split(_lab(fake, 0.0))
    d = [cv2.subtract(f, s) for f, s in zip(lab_f, prepared["lab"])]
    s_l = config.blur_sigma * scale
    s_c = float(np.hypot(config.blur_sigma, config.chroma_sigma)) * scale  # blur, then the chroma blur
    shift = tuple(cv2.GaussianBlur(c, (0, 0), sig) if sig > 0 else c for c, sig in zip(d, (s_l, s_c, s_c)))
    colour = cv2.sqrt(
        cv2.add(
            cv2.add(cv2.multiply(shift[0], shift[0]), cv2.multiply(shift[1], shift[1])),
            cv2.multiply(shift[2], shift[2]),
        )
    )
    terms = [colour]
    if config.rms_weight > 0:
        # zero-mean changes (smoothing, grain, blur) vanish in the blurred difference but not in its energy
        rms = cv2.sqrt(cv2.GaussianBlur(cv2.multiply(d[0], d[0]), (0, 0), config.rms_sigma * scale))
        terms.append(cv2.multiply(rms, config.rms_weight))
    return DiffTerms(terms, colour, lab_f[0], shift, tuple(d))


def difference_map(
    fake: np.ndarray, source: np.ndarray, config: DiffConfig = DiffConfig(), prepared: dict | None = None
):
    """(combined, colour, shift): the largest of the :func:`difference_terms` per pixel, the colour
    distance and the blurred Lab shift."""
    t = difference_terms(fake, source, config, prepared)
    return _max(t.terms), t.colour, t.shift


def _max(maps: list[np.ndarray]) -> np.ndarray:
    out = maps[0]
    for m in maps[1:]:
        out = cv2.max(out, m)
    return out


def artifact_mask(
    fake: np.ndarray, source: np.ndarray, config: DiffConfig = DiffConfig(), prepared: dict | None = None
) -> DiffResult:
    """The artifact mask of a fake given its pristine source, with statistics.

    ``source`` must already be aligned (see :func:`align_pair`).
    """
    if fake.shape[:2] != source.shape[:2]:
        raise PairError("size_mismatch", f"fake {fake.shape[:2]} and source {source.shape[:2]} differ in size")
    scale = _scale(fake.shape)
    if prepared is None or prepared["shape"] != source.shape:
        prepared = prepare_source(source, config)
    t = difference_terms(fake, source, config, prepared)
    diff = _max(t.terms)
    floors, fstats = noise_floors(t.terms, prepared, config)
    z_pixel = significance_map(t.terms, floors, prepared["classes"])
    z = _with_area_significance(z_pixel, t, prepared, config, scale)
    mask, ncomp_clean, q, low_t = _grow_mask(z, z_pixel, t, prepared["grid"], config, scale)
    if prepared.get("leaves") is not None:  # the source's segmentation: region-level test and snapping (diffleaf)
        z, (mask, ncomp_clean, q, low_t) = _with_leaves(
            z, z_pixel, t, prepared, config, scale, (mask, ncomp_clean, q, low_t)
        )
    area = int(mask.sum())
    stats = {
        "mask_area": area,
        "mask_fraction": area / diff.size,
        "threshold": float(low_t),  # in units of the noise floor
        "seed_threshold": float(max(q, 1.0)),
        "noise_floor": float(floors.min(axis=1).max()),
        "floor_min": float(floors.min()),
        "floor_max": float(floors.max()),
        **fstats,
        "top_quantile": q,
        "diff_mean": float(diff.mean()),
        "diff_max": float(diff.max()),
        "diff_mean_in_mask": float(diff[mask].mean()) if area else 0.0,
        "components": int(ncomp_clean) if area else 0,
    }
    return DiffResult(
        mask=mask,
        diff=diff,
        stats=stats,
        colour=t.colour,
        shift=t.shift,
        significance=z,
        fake_l=t.fake_l,
        source_abs_hp=prepared["abs_hp"],
        scale=scale,
    )


def _with_area_significance(
    z_pixel: np.ndarray, t: DiffTerms, prepared: dict, config: DiffConfig, scale: float
) -> np.ndarray:
    """The per-pixel significance raised to the (eroded) area-level one where that is larger: diffuse edits,
    the same test on window statistics (see :mod:`.diffarea`). Unchanged when ``area_sigma`` is 0."""
    if config.area_sigma <= 0:
        return z_pixel
    at = area_terms(t.delta, scale, config.area_sigma, config.rms_weight)
    af = noise_floors(at, prepared, replace(config, noise_k=config.area_noise_k))[0]
    za = significance_map(at, af, prepared["classes"])
    if config.area_chi_k > 0:
        chi = signed_significance(
            t.delta, scale, config.area_sigma, prepared, config.area_chi_k, config.noise_floor / config.area_chi_k
        )
        za = cv2.max(za, chi)
    return cv2.max(z_pixel, erode_spill(za, config.area_erode * config.area_sigma * scale))


def _with_leaves(
    z: np.ndarray, z_pixel: np.ndarray, t: DiffTerms, prepared: dict, config: DiffConfig, scale: float, grown
):
    """The region-level test (:mod:`.diffleaf`) adds the significant leaves in and next to which the pixel and
    window tests found nothing (where they found something, the extent is theirs), then grows the mask again; small
    recolours are snapped to the leaves changed over their area. Returns (significance, :func:`_grow_mask`'s)."""
    leaves = prepared["leaves"]
    means = leaf_means(t.delta, leaves)
    if config.leaf_k > 0:
        sig = leaf_significance(t.delta, means, leaves, config.leaf_k, config.noise_floor / config.leaf_k)
        near = cv2.dilate(grown[0].astype(np.uint8), disk(max(8.0, 3 * scale)))  # JPEG spreads colour over 16 px
        sig[np.unique(leaves["index"][near > 0])] = 0  # in or near what was found: the extent is the pixels'
        sig[0] = 0
        if (sig >= 1).any():  # at most 1 + evidence_cap: the test finds an edit, not how strong it is
            z = cv2.max(z, leaf_map(np.minimum(sig, 1.0 + config.evidence_cap), leaves))
            grown = _grow_mask(z, z_pixel, t, prepared["grid"], config, scale)
    if config.snap_ratio > 0:
        mask = snap_to_leaves(grown[0], means, leaves, t.shift, config.trim_max_area * scale * scale, config.snap_ratio)
        grown = (mask, *grown[1:])
    return z, grown


def _grow_mask(
    z: np.ndarray, z_pixel: np.ndarray, t: DiffTerms, g: int, config: DiffConfig, scale: float
) -> tuple[np.ndarray, int, float, float]:
    """Steps 3-4 (module doc): seeds, hysteresis growth, clean-up and trimming; returns (mask, components
    after the clean-up, the seeds' quantile of the significance, the growth threshold)."""
    top = float(np.clip(config.top_percent, 0.0, 100.0))
    q = float(np.quantile(z[::g, ::g], 1.0 - top / 100.0)) if top > 0 else float(z.max())
    seeds = z > max(q, 1.0)
    low_t = max(q, 1.0)
    mask = np.zeros(z.shape[:2], dtype=bool)
    ncomp_clean = 0
    if seeds.any():
        low_t = max(1.0, config.grow_ratio * strength(z[seeds], config.grow_ratio, config.strength_quantile))
        cand = (z > low_t).astype(np.uint8)
        ncomp, lab = cv2.connectedComponents(cand, connectivity=8)
        keep = np.zeros(ncomp, dtype=bool)
        keep[np.unique(lab[seeds])] = True
        keep[0] = False
        mask, ncomp_clean = clean(keep[lab], z, t.delta, scale, config)
        if config.trim_ratio > 0:
            mask = trim_components(mask, z_pixel, t.shift, config.trim_max_area * scale * scale, config.trim_ratio)
    return mask, ncomp_clean, q, low_t
