"""Region-level test and region snapping of the artifact mask (the source's segmentation; pure numpy / OpenCV).

Two things a window of fixed size does badly, done over the concept tree's atomic regions (leaves) instead:

* **Finding a small, faint edit** (an iris recoloured by two grey levels under JPEG, a small face's cheek
  smoothed): the mean of the signed Lab difference and of the lightness difference energy over a leaf,
  against the same statistics of boxes of the leaf's area placed all over the pair (the pair's own
  region-level noise: per texture class of the box's centre, median and 1.4826 MAD, so a JPEG's
  compression noise and its block structure count as they are). A leaf whose change is ``leaf_k`` robust
  deviations away is significant over its whole area (:func:`leaf_significance`). Only face leaves of
  ``leaf_min_area`` to ``leaf_max_area`` pixels are tested: larger regions are the window tests' job.
* **The extent of a small recolour**: JPEG's half-resolution chroma spreads a recoloured iris over its
  rim (and its pupil); a blurred difference spreads it further. A small, mostly-colour component is cut
  to the leaves whose mean change over *their whole area* (the spill reaches only their border) is at
  least ``snap_ratio`` of the strongest leaf's, along its direction (:func:`snap_to_leaves`).
"""

from __future__ import annotations

import cv2
import numpy as np

from .diffarea import small_components

#: box areas of the region-level null (px): a leaf is compared with boxes of the nearest of these areas
_BOX_AREAS = 2.0 ** np.arange(3, 15)


def leaves_of(regions, classes: np.ndarray, min_area: float, max_area: float, step: int) -> dict | None:
    """:func:`prepare_leaves` of a :class:`~fifa.concept_tree.segmentation.regions.FaceRegions` of the source
    (the leaves under the tree's ``face`` node only), or None when its label map is not the source's size."""
    from fifa.concept_tree.segmentation.regions import node_membership

    if regions.label_map is None or regions.label_map.shape != classes.shape:
        return None
    nodes, member = node_membership(tuple(regions.leaf_ids))
    face = member[nodes.index("face")].astype(bool) if "face" in nodes else np.ones(len(regions.leaf_ids), bool)
    return prepare_leaves(regions.label_map, face, classes, min_area, max_area, step)


def prepare_leaves(
    label_map: np.ndarray, face_leaf: np.ndarray, classes: np.ndarray, min_area: float, max_area: float, step: int
):
    """What the region-level test needs from the source's segmentation alone (None without leaves):

    ``label_map`` (int HxW, -1: no leaf) and ``face_leaf`` (bool per leaf: inside the face) of a
    :class:`~fifa.concept_tree.segmentation.regions.FaceRegions`; ``classes`` the texture class of each
    pixel (:func:`.diffmask.prepare_source`). Leaves of ``min_area`` to ``max_area`` pixels are tested,
    against boxes centred on a grid of ``step`` px (ordered by their centre's texture class)."""
    n = len(face_leaf)
    if n == 0 or n > 254 or label_map is None:
        return None
    h, w = label_map.shape
    face = np.concatenate([[False], face_leaf])  # only face leaves count: rows do not depend on lazy segmentation
    index = label_map.astype(np.int32) + 1
    index = np.where(face[index.clip(0, n)], index, 0)
    area = np.bincount(index.ravel(), minlength=n + 1)
    cls = np.bincount(index.ravel(), weights=classes.ravel(), minlength=n + 1) / np.maximum(area, 1)
    tested = np.zeros(n + 1, bool)
    tested[1:] = face_leaf & (area[1:] >= min_area) & (area[1:] <= max_area)
    box = np.abs(np.log2(np.maximum(area, 1))[:, None] - np.log2(_BOX_AREAS)[None, :]).argmin(axis=1)
    sides = {int(b): int(round(np.sqrt(_BOX_AREAS[b]))) for b in np.unique(box[tested])}
    sides = {b: s for b, s in sides.items() if s < min(h, w)}
    tested &= np.isin(box, list(sides))
    if not tested.any():
        return None
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    c = classes[::step, ::step].ravel()
    order = np.argsort(c, kind="stable")
    ys, xs = ys.ravel()[order], xs.ravel()[order]
    corners = {}
    for b, side in sides.items():  # flat indices of each box's corners in a (h + 1) x (w + 1) integral image
        y0, x0 = np.clip(ys - side // 2, 0, h - side), np.clip(xs - side // 2, 0, w - side)
        y1, x1 = y0 + side, x0 + side
        corners[b] = (np.stack([y1 * (w + 1) + x1, y0 * (w + 1) + x0, y0 * (w + 1) + x1, y1 * (w + 1) + x0]), side)
    return {
        "index": index.astype(np.uint8),
        "index_flat": index.ravel(),
        "area": area,
        "tested": tested,
        "leaf_class": np.rint(cls).astype(np.int64),
        "box": np.where(tested, box, -1),
        "corners": corners,
        "bounds": np.searchsorted(c[order], np.arange(int(classes.max()) + 2)),
    }


def leaf_means(delta: tuple, leaves: dict) -> np.ndarray:
    """(4, leaves + 1): the mean of dL, da, db and dL^2 over every leaf (row 0: pixels of no leaf)."""
    idx, area = leaves["index_flat"], np.maximum(leaves["area"], 1)
    chans = (*delta, cv2.multiply(delta[0], delta[0]))
    return np.stack([np.bincount(idx, weights=c.ravel(), minlength=len(area)) for c in chans]) / area


def _null(values: np.ndarray, bounds: np.ndarray, min_spread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel (rows) and texture class (``bounds``): robust centre (upper median) and spread (1.4826
    MAD) of class-ordered samples; a spread is at least ``min_spread`` and the median spread over classes (a
    JPEG leaves most flat pixels exact: the MAD of a flat class collapses)."""
    n_cls = len(bounds) - 1
    centre = np.zeros((values.shape[0], n_cls))
    spread = np.full((values.shape[0], n_cls), np.nan)
    for j in range(n_cls):
        seg = values[:, bounds[j] : bounds[j + 1]]
        m = seg.shape[1]
        if m < 24:
            continue
        centre[:, j] = np.partition(seg, m // 2, axis=1)[:, m // 2]
        spread[:, j] = 1.4826 * np.partition(np.abs(seg - centre[:, j, None]), m // 2, axis=1)[:, m // 2]
    ok = np.isfinite(spread[0])
    med = np.median(spread[:, ok], axis=1) if ok.any() else min_spread
    spread = np.where(ok[None, :], spread, med[:, None])
    return centre, np.maximum(spread, np.maximum(med, min_spread)[:, None])


def leaf_significance(delta: tuple, means: np.ndarray, leaves: dict, k: float, min_spread: float) -> np.ndarray:
    """Per leaf (index + 1; 0 and untested leaves: 0): max(chi of the mean signed Lab change, one-sided z
    of the mean lightness difference energy) / ``k``, against boxes of the leaf's area (module doc)."""
    chans = (*delta, cv2.multiply(delta[0], delta[0]))
    integrals = [cv2.integral(c, sdepth=cv2.CV_64F).ravel() for c in chans]
    tested, boxes, cls = leaves["tested"], leaves["box"], leaves["leaf_class"]
    sig = np.zeros(len(tested), np.float32)
    floor = np.array([min_spread] * 3 + [min_spread * min_spread])
    for b, (corners, side) in leaves["corners"].items():
        vals = np.stack([ii[corners[0]] + ii[corners[1]] - ii[corners[2]] - ii[corners[3]] for ii in integrals])
        centre, spread = _null(vals / float(side * side), leaves["bounds"], floor)
        ids = np.flatnonzero(tested & (boxes == b))
        c = np.clip(cls[ids], 0, centre.shape[1] - 1)
        z = (means[:, ids] - centre[:, c]) / spread[:, c]
        sig[ids] = np.maximum(np.sqrt((z[:3] ** 2).sum(axis=0)), z[3]) / k
    return sig


def leaf_map(sig: np.ndarray, leaves: dict) -> np.ndarray:
    """float32 HxW: each pixel's leaf significance."""
    lut = np.zeros(256, np.float32)
    lut[: len(sig)] = sig
    return cv2.LUT(leaves["index"], lut)


def snap_to_leaves(
    mask: np.ndarray,
    means: np.ndarray,
    leaves: dict,
    shift: tuple,
    max_area: float,
    ratio: float,
    consistency: float = 0.5,
) -> np.ndarray:
    """Cut each component of ``mask`` smaller than ``max_area`` px that is one recolour (mean chroma of the
    blurred ``shift`` above its mean lightness shift, and the norm of its mean shift at least ``consistency``
    x the mean of its norm) to the leaves whose mean signed change over the whole leaf (``means``,
    :func:`leaf_means`), along the direction of the strongest leaf it touches, is at least ``ratio`` of that
    leaf's (half that for a leaf it covers for the most part: JPEG's chroma spill reaches only a leaf's border).
    Components mostly outside the segmented face leaves are left as they are."""
    if ratio <= 0 or not mask.any():
        return mask
    index = leaves["index"]
    out = mask.copy()
    signed = means[:3]
    for box, comp in small_components(mask, max_area):
        if not _one_recolour([c[box][comp] for c in shift], consistency):
            continue
        li = index[box][comp]
        cnt = np.bincount(li, minlength=signed.shape[1])
        if cnt[0] > 0.2 * comp.sum():
            continue
        cand = np.flatnonzero(cnt[1:] >= 3) + 1
        if len(cand) < 2:
            continue
        mag = np.linalg.norm(signed[:, cand], axis=0)
        top = cand[int(mag.argmax())]
        proj = (signed[:, top] / max(float(mag.max()), 1e-6)) @ signed
        # a leaf the component covers for the most part needs half that (a swapped nose's parts differ in strength)
        keep = (proj >= ratio * proj[top]) | ((cnt >= 0.5 * leaves["area"]) & (proj >= 0.5 * ratio * proj[top]))
        keep[0] = False
        region = out[box]
        region[comp & ~keep[index[box]]] = False
    return out


def _one_recolour(sh: list[np.ndarray], consistency: float) -> bool:
    """Whether a component's blurred Lab shift (dL, da, db at its pixels) is mostly of colour (else a change of
    shape or detail, whose significance varies inside the edit) and one colour change (else noise or a swapped
    region's texture, whose leaf means say nothing of its extent)."""
    if float(np.hypot(sh[1], sh[2]).mean()) <= float(np.abs(sh[0]).mean()):
        return False
    norm = float(np.sqrt(sh[0] ** 2 + sh[1] ** 2 + sh[2] ** 2).mean())
    return float(np.linalg.norm([c.mean() for c in sh])) >= consistency * norm
