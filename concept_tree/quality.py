"""Quality measures of a segmentation, independent of how it was made.

* :func:`roughness`: how jagged a region's outline is (1.0 = as smooth as its own
  morphological open+close with a disk of 3 % of the face width; triangle zigzags give 1.15+).
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
    radius is ``disk_fraction`` of the face width. NaN for an empty mask."""
    m = mask.astype(np.uint8)
    p = perimeter(m)
    if p == 0:
        return float("nan")
    r = max(1, int(round(disk_fraction * face_width_px)))
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
    return m.astype(bool)


def oval_coverage(face: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
    """(share of the oval polygon inside ``face``, share of ``face`` outside the oval grown by 1 px)."""
    oval = oval_polygon_mask(landmarks, face.shape)
    grown = cv2.dilate(oval.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    inside = float(face[oval].mean()) if oval.any() else float("nan")
    outside = float((face & ~grown).sum() / max(1, face.sum()))
    return inside, outside
