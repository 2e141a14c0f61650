"""Region segmentation: an image -> :class:`FaceRegions` (a mask for every tree concept).

>>> from fifa.concept_tree.segmentation.segment import Segmenter
>>> with Segmenter() as seg:                       # doctest: +SKIP
...     regions = seg.segment(rgb)
...     regions.mask("left_eye").sum()

The default backend is MediaPipe FaceMesh (478 points with iris) plus SelfieSegmentation
(and, on request, Pose), all shipped inside the mediapipe wheel, so segmentation runs offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

import cv2
import numpy as np

from ..tree import load_tree
from .backends import LandmarkBackend, load_backend
from .labelmap import face_label_map
from .landmarks import MediaPipeFaceMesh
from .offface import UNLABELLED, OutsideFaceRules, PosePoints, evidence_outside_labels, outside_face_labels
from .regions import FaceRegions


@dataclass(frozen=True)
class SegmentConfig:
    """Options of :class:`Segmenter`; the defaults work for typical face crops and photos."""

    max_faces: int = 5  # faces detected per image (the largest is returned by `segment`)
    min_confidence: float = 0.5
    outside_face: bool = True  # hair, ears, neck, background (SelfieSegmentation + image evidence)
    person_model: int = 1  # SelfieSegmentation: 1 = landscape (144x256, faster), 0 = general (256x256)
    evidence: bool = True  # off-face concepts from skin colour; False: by face geometry alone
    pose: bool = False  # MediaPipe Pose (bundled full model) for the shoulder line and ear points: ~5x FaceMesh
    pose_input: int = 256  # long side of the image given to the pose model
    rules: OutsideFaceRules = field(default_factory=OutsideFaceRules)
    backend: str = "mediapipe"  # a name of backends.BACKENDS: landmark source of the regions


@lru_cache(maxsize=1)
def leaf_ids() -> tuple[str, ...]:
    """Atomic concepts in tree order: label ``k`` of a label map is ``leaf_ids()[k]``."""
    return tuple(n.id for n in load_tree().leaves())


def regions_from_landmarks(
    landmarks: np.ndarray,
    image_size: tuple[int, int],
    person: np.ndarray | None = None,
    *,
    face_index: int = 0,
    backend: str = "mediapipe",
    skip: frozenset[str] = frozenset(),
    rules: OutsideFaceRules = OutsideFaceRules(),
    image: np.ndarray | None = None,
    pose: PosePoints | None = None,
) -> FaceRegions:
    """Pure core: MediaPipe-indexed landmarks (and a person probability map) -> FaceRegions.

    ``landmarks``: (468 | 478, 2) pixel x, y, or (N, 3) with MediaPipe depth as third column
    (orders overlapping triangles of turned faces). Without ``person`` only the face concepts
    are drawn (``meta["outside_face"] is None``); with it, the off-face concepts too: from image
    evidence when ``image`` (RGB) is given, else by geometry (``meta["outside_face"]`` says which).
    """
    h, w = image_size
    ids = leaf_ids()
    crop, face, (x0, y0, x1, y1) = face_label_map(landmarks, image_size, ids, skip)
    labels = np.full((h, w), UNLABELLED, dtype=np.int16)
    labels[y0:y1, x0:x1] = crop  # the crop is unlabelled outside the face already
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    box = (
        int(max(0, pts[:, 0].min())),
        int(max(0, pts[:, 1].min())),
        int(min(w, pts[:, 0].max())),
        int(min(h, pts[:, 1].max())),
    )
    regions = FaceRegions(
        image_size=(h, w),
        status="ok",
        leaf_ids=ids,
        label_map=labels,
        landmarks=pts,
        face_box=box,
        face_index=face_index,
        backend=backend,
        meta={"outside_face": None},
    )
    if person is not None:
        regions = with_outside_face(regions, person, image=image, pose=pose, rules=rules)
    return regions


def face_region(landmarks: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """The face region of one face (HxW bool): the FaceMesh face-oval polygon."""
    from .quality import oval_polygon_mask

    return oval_polygon_mask(landmarks, image_size)


def with_outside_face(
    regions: FaceRegions,
    person: np.ndarray,
    *,
    image: np.ndarray | None = None,
    pose: PosePoints | None = None,
    rules: OutsideFaceRules = OutsideFaceRules(),
) -> FaceRegions:
    """``regions`` (face concepts drawn) with the off-face concepts added (a new object; the
    face pixels keep their labels). Same result as passing ``person`` to
    :func:`regions_from_landmarks` in the first place."""
    if regions.label_map is None or regions.landmarks is None:
        return regions
    h, w = regions.image_size
    face_full = face_region(regions.landmarks, (h, w))
    if image is not None:
        outside, report = evidence_outside_labels(image, regions.landmarks, person, face_full, regions.label_map,
                                                  regions.leaf_ids, rules, pose)  # fmt: skip
    else:
        outside, report = (
            outside_face_labels(regions.landmarks, (h, w), person, face_full, regions.leaf_ids, rules),
            {"mode": "geometry"},
        )
    labels = outside  # a fresh array: face pixels copied in place, no second full-size array
    cv2.copyTo(np.ascontiguousarray(regions.label_map, dtype=np.int16), face_full.view(np.uint8), labels)
    meta = dict(regions.meta, outside_face=report["mode"], outside_face_report=report)
    return replace(regions, label_map=labels, meta=meta)


class MediaPipeBackend(MediaPipeFaceMesh):
    """The default :class:`~.backends.LandmarkBackend`: FaceMesh's 478 points (every concept);
    off-face concepts from SelfieSegmentation, image evidence and, with ``config.pose``, Pose."""

    def __init__(self, config: SegmentConfig):
        super().__init__(
            max_faces=config.max_faces, min_confidence=config.min_confidence, person_model=config.person_model
        )
        self.config = config

    def segment_all(self, rgb: np.ndarray, limit: int | None, outside_face: bool,
                    rules: OutsideFaceRules) -> list[FaceRegions]:  # fmt: skip
        h, w = rgb.shape[:2]
        faces = self.faces(rgb)
        if not faces:
            return [FaceRegions(image_size=(h, w), status="no_face", leaf_ids=leaf_ids(), error="no face detected")]
        out = [regions_from_landmarks(f.landmarks_with_depth, (h, w), face_index=i, rules=rules)
               for i, f in enumerate(faces[:limit])]  # fmt: skip
        return add_outside(self, self.config, rgb, out) if outside_face else out


def add_outside(
    models: LandmarkBackend, config: SegmentConfig, rgb: np.ndarray, faces: list[FaceRegions]
) -> list[FaceRegions]:
    """``faces`` of ``rgb`` with the off-face concepts added: the backend's person map, Pose when
    ``config.pose``, image evidence unless ``config.evidence`` is off."""
    person = models.person_probability(rgb)
    pose = models.pose_points(rgb, config.pose_input) if config.pose else None  # type: ignore[attr-defined]
    image = rgb if config.evidence else None
    return [with_outside_face(f, person, image=image, pose=pose, rules=config.rules) for f in faces]


class Segmenter:
    """Holds the detection models of one process; reuse it across images (not picklable). The
    landmark backend is ``config.backend``'s entry of :data:`~.backends.REGISTRY`."""

    def __init__(self, config: SegmentConfig = SegmentConfig()):
        self.config = config
        self._models: LandmarkBackend = load_backend(config)

    def segment(self, image: np.ndarray, *, outside_face: bool | None = None) -> FaceRegions:
        """Regions of the largest face; ``status == "no_face"`` when there is none.

        ``outside_face=False`` draws the face concepts only (no person model: the fast path for
        callers whose region of interest lies inside the face); :meth:`add_outside_face` adds
        the rest later. ``None``: as configured."""
        faces = self.segment_all(image, limit=1, outside_face=outside_face)
        return faces[0]

    def segment_all(
        self, image: np.ndarray, limit: int | None = None, *, outside_face: bool | None = None
    ) -> list[FaceRegions]:
        """Regions of every detected face, largest first (``face_index`` 0, 1, ...)."""
        cfg = self.config
        n = cfg.max_faces if limit is None else min(limit, cfg.max_faces)
        wanted = cfg.outside_face if outside_face is None else outside_face
        return self._models.segment_all(_as_rgb(image), n, wanted, cfg.rules)

    def add_outside_face(self, image: np.ndarray, regions: FaceRegions) -> FaceRegions:
        """Complete face-only ``regions`` of ``image`` with hair, ears, neck and background
        (runs the person model, and the pose model when configured)."""
        if not regions.ok or regions.meta.get("outside_face"):
            return regions
        return add_outside(self._models, self.config, _as_rgb(image), [regions])[0]

    def close(self) -> None:
        self._models.close()

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _as_rgb(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxWx3 RGB image, got shape {a.shape}")
    if a.shape[2] == 4:
        a = a[:, :, :3]
    if a.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {a.dtype}")
    return np.ascontiguousarray(a)


def segment(image: np.ndarray, config: SegmentConfig = SegmentConfig()) -> FaceRegions:
    """One-off convenience: segment the largest face (loads the models each call; use
    :class:`Segmenter` for many images)."""
    with Segmenter(config) as seg:
        return seg.segment(image)
