"""Quality measures of a segmentation, independent of how it was made.

* :func:`roughness`: how jagged a region's outline is (1.0 = as smooth as its own
  morphological open+close with a disk 3 % of the face width across; mesh-triangle zigzags give 1.2+).
* :func:`oval_coverage`: share of the FaceMesh face-oval polygon (drawn straight from the
  landmarks) that carries a face concept, and share of the face concepts outside it.
* :func:`skin_share`: share of a mask's pixels whose colour matches the face's own skin,
  by a colour rule independent of the one the segmenter uses.
"""

from __future__ import annotations

import cv2
import numpy as np

from .mesh_topology import mesh_topology


def perimeter(mask: np.ndarray) -> float:
    """Length of every outline (outer and holes) of a boolean mask, in pixels."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return float(sum(cv2.arcLength(c, True) for c in contours))


def face_width(landmarks: np.ndarray) -> float:
    """Width of the FaceMesh face oval (pixels)."""
    oval = np.asarray(landmarks)[list(mesh_topology().face_oval), 0]
    return float(oval.max() - oval.min())


def roughness(mask: np.ndarray, face_width_px: float, disk_fraction: float = 0.03) -> float:
    """Perimeter of ``mask`` / perimeter of ``mask`` after an open then a close with a disk whose
    diameter is ``disk_fraction`` of the face width (perimeters: outline lengths of
    ``cv2.findContours``, all outlines). NaN for an empty mask. Thin shapes score high by
    nature: an open removes any part narrower than the disk."""
    m = mask.astype(np.uint8)
    p = perimeter(m)
    if p == 0:
        return float("nan")
    r = max(1, int(round(disk_fraction * face_width_px / 2)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    pad = 2 * r + 2  # keep the close from being cut by the image border
    mp = cv2.copyMakeBorder(m, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    smooth = cv2.morphologyEx(cv2.morphologyEx(mp, cv2.MORPH_OPEN, disk), cv2.MORPH_CLOSE, disk)
    ps = perimeter(smooth)
    return p / ps if ps > 0 else float("inf")


def oval_polygon_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The face region drawn straight from the FaceMesh face-oval landmarks (no region rules)."""
    m = np.zeros(shape[:2], np.uint8)
    pts = np.round(np.asarray(landmarks)[list(mesh_topology().face_oval), :2] * 16).astype(np.int32)
    cv2.fillPoly(m, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return m.view(bool)  # 0/1 bytes: a bool view, no copy


def oval_coverage(face: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
    """(share of the oval polygon inside ``face``, share of ``face`` outside the oval grown by 1 px)."""
    oval = oval_polygon_mask(landmarks, face.shape)
    grown = cv2.dilate(oval.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    inside = float(face[oval].mean()) if oval.any() else float("nan")
    outside = float((face & ~grown).sum() / max(1, face.sum()))
    return inside, outside


#: FaceMesh vertices on bare skin (cheeks, forehead, nose bridge) whose neighbourhoods give the
#: face's reference skin colour for :func:`skin_share` (independent of the segmenter's skin model,
#: which is seeded from its own concept regions in another colour space).
SKIN_REFERENCE_VERTICES: tuple[int, ...] = (50, 280, 101, 330, 151, 9, 197, 36, 266)


def reference_skin_lab(rgb: np.ndarray, landmarks: np.ndarray, radius_frac: float = 0.04) -> np.ndarray:
    """Median CIE Lab (L 0-100, a, b) of patches around :data:`SKIN_REFERENCE_VERTICES`."""
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    r = max(1, int(round(radius_frac * face_width(landmarks))))
    h, w = rgb.shape[:2]
    patches = []
    for i in SKIN_REFERENCE_VERTICES:
        x, y = np.round(np.asarray(landmarks)[i, :2]).astype(int)
        patch = lab[max(0, y - r) : min(h, y + r + 1), max(0, x - r) : min(w, x + r + 1)].reshape(-1, 3)
        if len(patch):
            patches.append(patch)
    return np.median(np.concatenate(patches), axis=0)


def skin_share(
    mask: np.ndarray, rgb: np.ndarray, landmarks: np.ndarray, max_ab: float = 12.0, min_light: float = 0.25
) -> float:
    """Share of ``mask``'s pixels with the colour of the face's skin: within ``max_ab`` of the
    reference (a*, b*) chroma and at least ``min_light`` times its lightness (shadow allowed).
    NaN for an empty mask."""
    if not mask.any():
        return float("nan")
    ref = reference_skin_lab(rgb, landmarks)
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).astype(np.float32)[mask]
    light = lab[:, 0] * (100.0 / 255.0)
    dab = np.hypot(lab[:, 1] - 128.0 - ref[1], lab[:, 2] - 128.0 - ref[2])
    return float(((dab <= max_ab) & (light >= min_light * ref[0])).mean())


def skin_share_ycrcb_box(mask: np.ndarray, rgb: np.ndarray) -> float:
    """Share of ``mask``'s pixels inside the fixed YCrCb skin box of Chai & Ngan (1999):
    133 <= Cr <= 173 and 77 <= Cb <= 127 (a rule that knows nothing about this face)."""
    if not mask.any():
        return float("nan")
    ycc = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YCrCb)[mask]
    cr, cb = ycc[:, 1], ycc[:, 2]
    return float(((cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)).mean())
