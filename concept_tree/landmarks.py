"""Face landmark detection backends and the conversion of their output to pixel landmarks.

The default, MediaPipe FaceMesh with iris refinement, ships its model inside the
mediapipe wheel, so it runs offline. Detectors are created once per process and reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DetectedFace:
    landmarks: np.ndarray  # (478, 2) pixel x, y ((468, 2) without iris refinement)
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the landmarks

    @property
    def area(self) -> int:
        x0, y0, x1, y1 = self.box
        return max(0, x1 - x0) * max(0, y1 - y0)


class BackendUnavailable(RuntimeError):
    """An optional backend cannot run here (package or weights missing); the message says how to fix it."""


class PersonSegmenter:
    """Person probability map from MediaPipe SelfieSegmentation (ships in the mediapipe wheel, offline),
    created on first use and reused."""

    def __init__(self, model: int = 1):
        self.model = model  # 1 = landscape (144x256, faster), 0 = general (256x256)
        self._selfie = None

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """HxW float32 probability that a pixel belongs to a person."""
        if self._selfie is None:
            import mediapipe as mp

            self._selfie = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=self.model)
        return self._selfie.process(np.ascontiguousarray(rgb[..., :3])).segmentation_mask

    def close(self) -> None:
        if self._selfie is not None:
            self._selfie.close()
            self._selfie = None


class MediaPipeFaceMesh:
    """MediaPipe FaceMesh (478 points with iris) and SelfieSegmentation, offline."""

    def __init__(self, max_faces: int = 5, min_confidence: float = 0.5, person_model: int = 1,
                 refine_landmarks: bool = True):
        import mediapipe as mp

        # refine_landmarks=False: 468 points without the iris model (faster; enough for face crops)
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            refine_landmarks=refine_landmarks,
            max_num_faces=max_faces,
            min_detection_confidence=min_confidence,
        )
        self._person = PersonSegmenter(person_model)

    def faces(self, rgb: np.ndarray) -> list[DetectedFace]:
        """All faces, largest first."""
        h, w = rgb.shape[:2]
        res = self._mesh.process(np.ascontiguousarray(rgb))
        out = []
        for lm in res.multi_face_landmarks or []:
            pts = np.array([(p.x * w, p.y * h) for p in lm.landmark], dtype=np.float64)
            x0, y0 = np.floor(pts.min(axis=0)).astype(int)
            x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
            out.append(DetectedFace(pts, (int(x0), int(y0), int(x1), int(y1))))
        out.sort(key=lambda f: -f.area)
        return out

    def person_probability(self, rgb: np.ndarray) -> np.ndarray:
        """HxW float32 probability that a pixel belongs to a person (SelfieSegmentation)."""
        return self._person(rgb)

    def close(self) -> None:
        self._mesh.close()
        self._person.close()
