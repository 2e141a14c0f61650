"""Landmark backends: what every backend provides (:class:`LandmarkBackend`) and the one registry of them.

A landmark backend finds the faces of an RGB image, places the MediaPipe mesh on each (detected, or
estimated from 68 iBUG points), and gives the :class:`~.regions.FaceRegions` of every face.
:data:`REGISTRY` is the only list of backends: ``SegmentConfig.backend``, :func:`check_backend`,
``fifa-tree segment --backend`` and ``fifa-annotate run --segmenter`` (:data:`BackendChoice`, the
help of :func:`backends_help`) are all read from it.

==================  =========  ==================================================================
name                source     what
==================  =========  ==================================================================
``mediapipe``       image      MediaPipe FaceMesh (478 points with iris): every concept (default)
``ibug68``          points68   68 given iBUG points (:func:`~.ibug68.regions_from_ibug68`): no image
``dlib68``          image      dlib's 68 points, calibrated (``dlib`` extra; non-commercial model)
``face_alignment``  image      face-alignment's 2D-FAN 68 points (``facealign`` extra + local weights)
==================  =========  ==================================================================

The optional packages are imported only when a backend is checked or loaded, so reading this
module (e.g. for a command line's choices) costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from .offface import OutsideFaceRules
    from .regions import FaceRegions
    from .segment import SegmentConfig

__all__ = ["BACKENDS", "REGISTRY", "BackendChoice", "BackendSpec", "LandmarkBackend", "backends_help",
           "check_backend", "load_backend"]  # fmt: skip


class LandmarkBackend(Protocol):
    """What every image backend gives a :class:`~.segment.Segmenter` (one per process; not picklable)."""

    def segment_all(self, rgb: np.ndarray, limit: int | None, outside_face: bool,
                    rules: OutsideFaceRules) -> list[FaceRegions]:  # fmt: skip
        """Regions of the detected faces, largest first, at most ``limit`` (one ``no_face`` result
        when there is none); ``outside_face``: hair, ears, neck and background too."""
        ...

    def person_probability(self, rgb: np.ndarray) -> np.ndarray:
        """HxW float32 probability that a pixel belongs to a person (the off-face concepts' base)."""
        ...

    def close(self) -> None:
        """Free the models."""
        ...


@dataclass(frozen=True)
class BackendSpec:
    """One registry entry. ``name`` is ``SegmentConfig.backend``, the command-line value and
    ``FaceRegions.backend``; ``source`` is ``"image"`` (a :class:`~.segment.Segmenter` runs it) or
    ``"points68"`` (68 given points, no detector); ``load`` builds the backend from a
    ``SegmentConfig``; ``check`` raises :class:`~.landmarks.BackendUnavailable` (with the install
    command) when the backend cannot run here; ``pose``: it can run MediaPipe Pose."""

    name: str
    summary: str
    source: str = "image"
    load: Callable[[SegmentConfig], LandmarkBackend] | None = None
    check: Callable[[], None] | None = None
    pose: bool = False


def _load_mediapipe(config: SegmentConfig) -> LandmarkBackend:
    from .segment import MediaPipeBackend

    return MediaPipeBackend(config)


def _load_dlib68(config: SegmentConfig) -> LandmarkBackend:
    from .dlib_backend import Dlib68Landmarks

    return Dlib68Landmarks(person_model=config.person_model)


def _check_dlib68() -> None:
    from .dlib_backend import check_available

    check_available()


def _load_face_alignment(config: SegmentConfig) -> LandmarkBackend:
    from .face_alignment_backend import FaceAlignmentLandmarks

    return FaceAlignmentLandmarks(device="cpu")


def _check_face_alignment() -> None:
    from .face_alignment_backend import check_available

    check_available()


_LIMITED = "no eyeball or forehead concepts"

#: Every landmark backend, by name (the default first).
REGISTRY: dict[str, BackendSpec] = {s.name: s for s in (
    BackendSpec("mediapipe", "478 points, every concept", load=_load_mediapipe, pose=True),
    BackendSpec("ibug68", f"68 given iBUG points; {_LIMITED}", source="points68"),
    BackendSpec("dlib68", f"dlib's 68 points; {_LIMITED}; pip install 'fifa-toolkit[dlib]'; model licence: "
                          "non-commercial", load=_load_dlib68, check=_check_dlib68),
    BackendSpec("face_alignment", f"face-alignment's 68 points; {_LIMITED}; pip install "
                                  "'fifa-toolkit[facealign]' and local weights",
                load=_load_face_alignment, check=_check_face_alignment),
)}  # fmt: skip

#: The backends a :class:`~.segment.Segmenter` runs on images (the command-line choices).
BACKENDS: tuple[str, ...] = tuple(name for name, spec in REGISTRY.items() if spec.source == "image")

#: :data:`BACKENDS` as a ``str`` enum, for typer options.
BackendChoice = Enum("BackendChoice", [(name, name) for name in BACKENDS], type=str, module=__name__)


def backends_help(prefix: str = "Landmarks") -> str:
    """One help line over the image backends, e.g. ``Landmarks: mediapipe (478 points, ...) or dlib68 (...).``"""
    items = [f"{name} ({REGISTRY[name].summary})" for name in BACKENDS]
    return f"{prefix}: {', '.join(items[:-1])} or {items[-1]}."


def check_backend(name: str) -> None:
    """``ValueError`` for a name a Segmenter cannot run; :class:`~.landmarks.BackendUnavailable`
    (with the install command) for a backend that cannot run here."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise ValueError(f"unknown segmentation backend {name!r}; choose from {', '.join(BACKENDS)}")
    if spec.load is None:
        raise ValueError(
            f"the {name} backend takes 68 given points, not images (ibug68.regions_from_ibug68); "
            f"image backends: {', '.join(BACKENDS)}"
        )
    if spec.check is not None:
        spec.check()


def load_backend(config: SegmentConfig) -> LandmarkBackend:
    """The backend ``config.backend`` names, built from ``config`` (checked first)."""
    check_backend(config.backend)
    spec = REGISTRY[config.backend]
    if config.pose and not spec.pose:
        with_pose = ", ".join(n for n, s in REGISTRY.items() if s.pose)
        raise ValueError(f"the pose model places off-face concepts for the {with_pose} backend only")
    return spec.load(config)  # type: ignore[misc]  (checked above: an image backend has a loader)
