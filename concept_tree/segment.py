"""Region segmentation: an image -> :class:`FaceRegions` (a mask for every tree concept).

>>> from fifa.concept_tree.segment import Segmenter
>>> with Segmenter() as seg:                       # doctest: +SKIP
...     regions = seg.segment(rgb)
...     regions.mask("left_eye").sum()

The default backend is MediaPipe FaceMesh (478 points with iris) plus SelfieSegmentation,
both shipped inside the mediapipe wheel, so segmentation runs offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .labelmap import UNLABELLED, OutsideFaceRules, face_label_map, outside_face_labels
from .regions import FaceRegions
from .tree import load_tree


@dataclass(frozen=True)
class SegmentConfig:
    """Options of :class:`Segmenter`; the defaults work for typical face crops and photos."""

    max_faces: int = 5  # faces detected per image (the largest is returned by `segment`)
    min_confidence: float = 0.5
    outside_face: bool = True  # hair, ears, neck, background from SelfieSegmentation
    person_model: int = 1  # SelfieSegmentation: 1 = landscape (144x256, faster), 0 = general (256x256)
    rules: OutsideFaceRules = field(default_factory=OutsideFaceRules)
    backend: str = "mediapipe"  # one of BACKENDS: landmark source of the regions


#: Landmark backends a :class:`Segmenter` can run: ``mediapipe`` (478 points, every concept) and
#: ``dlib68`` (dlib's 68 points, calibrated; needs the ``dlib`` extra; see docs/backends.md).
BACKENDS: tuple[str, ...] = ("mediapipe", "dlib68")


def check_backend(name: str) -> None:
    """``ValueError`` for an unknown backend; :class:`~fifa.concept_tree.landmarks.BackendUnavailable`
    (with the install command) for one that cannot run here."""
    if name not in BACKENDS:
        raise ValueError(f"unknown segmentation backend {name!r}; choose from {', '.join(BACKENDS)}")
    if name == "dlib68":
        from .dlib_backend import check_available

        check_available()


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
) -> FaceRegions:
    """Pure core: MediaPipe-indexed landmarks (and a person probability map) -> FaceRegions."""
    h, w = image_size
    ids = leaf_ids()
    crop, face, (x0, y0, x1, y1) = face_label_map(landmarks, image_size, ids, skip)
    face_full = np.zeros((h, w), dtype=bool)
    face_full[y0:y1, x0:x1] = face
    if person is not None:
        labels = outside_face_labels(landmarks, image_size, person, face_full, ids, rules)
    else:
        labels = np.full((h, w), UNLABELLED, dtype=np.int16)
    view = labels[y0:y1, x0:x1]
    view[face] = crop[face]
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    box = (int(max(0, pts[:, 0].min())), int(max(0, pts[:, 1].min())), int(min(w, pts[:, 0].max())), int(min(h, pts[:, 1].max())))
    return FaceRegions(
        image_size=(h, w),
        status="ok",
        leaf_ids=ids,
        label_map=labels,
        landmarks=pts,
        face_box=box,
        face_index=face_index,
        backend=backend,
    )


class Segmenter:
    """Holds the detection models of one process; reuse it across images (not picklable)."""

    def __init__(self, config: SegmentConfig = SegmentConfig()):
        check_backend(config.backend)
        self.config = config
        if config.backend == "dlib68":
            from .dlib_backend import Dlib68Landmarks

            self._models = Dlib68Landmarks(person_model=config.person_model)
            return
        from .landmarks import MediaPipeFaceMesh

        self._models = MediaPipeFaceMesh(
            max_faces=config.max_faces, min_confidence=config.min_confidence, person_model=config.person_model
        )

    def segment(self, image: np.ndarray) -> FaceRegions:
        """Regions of the largest face; ``status == "no_face"`` when there is none."""
        faces = self.segment_all(image, limit=1)
        return faces[0]

    def segment_all(self, image: np.ndarray, limit: int | None = None) -> list[FaceRegions]:
        """Regions of every detected face, largest first (``face_index`` 0, 1, ...)."""
        rgb = _as_rgb(image)
        if self.config.backend == "dlib68":
            n = self.config.max_faces if limit is None else min(limit, self.config.max_faces)
            return self._models.segment_all(rgb, n, self.config.outside_face, self.config.rules)
        h, w = rgb.shape[:2]
        faces = self._models.faces(rgb)
        if not faces:
            return [FaceRegions(image_size=(h, w), status="no_face", leaf_ids=leaf_ids(), error="no face detected")]
        if limit is not None:
            faces = faces[:limit]
        person = self._models.person_probability(rgb) if self.config.outside_face else None
        return [
            regions_from_landmarks(f.landmarks, (h, w), person, face_index=i, rules=self.config.rules)
            for i, f in enumerate(faces)
        ]

    def close(self) -> None:
        self._models.close()

    def __enter__(self) -> "Segmenter":
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
