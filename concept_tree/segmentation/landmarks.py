"""Face landmark detection backends and the conversion of their output to pixel landmarks.

The default, MediaPipe FaceMesh with iris refinement, ships its model inside the
mediapipe wheel, so it runs offline. Detectors are created once per process and reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fifa.core.errors import FifaError


@dataclass(frozen=True)
class DetectedFace:
    landmarks: np.ndarray  # (478, 2) pixel x, y ((468, 2) without iris refinement)
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the landmarks
    depth: np.ndarray | None = None  # (478,) MediaPipe z in pixels (smaller = nearer the camera)

    @property
    def landmarks_with_depth(self) -> np.ndarray:
        """(478, 3) x, y, depth (or the (478, 2) landmarks when there is no depth)."""
        return self.landmarks if self.depth is None else np.column_stack([self.landmarks, self.depth])

    @property
    def area(self) -> int:
        x0, y0, x1, y1 = self.box
        return max(0, x1 - x0) * max(0, y1 - y0)


#: Wire layout of a NormalizedLandmark holding x, y, z only (proto2 floats, fixed 32 bits): the
#: landmark-list field (tag 0x0A), length 15, then x (0x0D), y (0x15), z (0x1D) with 4 bytes each.
_RECORD = 17
_TAGS = ((0, 0x0A), (1, 15), (2, 0x0D), (7, 0x15), (12, 0x1D))
_FLOAT_BYTES = np.array([3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16])


def landmark_array(landmarks) -> np.ndarray:
    """(N, 3) float64 x, y, z of a MediaPipe ``NormalizedLandmarkList``.

    Reads the serialized message with numpy (about 8x faster than 478 x 3 attribute reads: a
    measurable share of a face's work); any other layout (visibility or presence set, a
    protobuf that writes differently) takes the attribute path, which gives the same values."""
    raw = landmarks.SerializeToString()
    n = len(landmarks.landmark)
    if n and len(raw) == _RECORD * n:
        rec = np.frombuffer(raw, np.uint8).reshape(n, _RECORD)
        if all((rec[:, col] == tag).all() for col, tag in _TAGS):
            return rec[:, _FLOAT_BYTES].copy().view("<f4").astype(np.float64)
    return np.array([(p.x, p.y, p.z) for p in landmarks.landmark], dtype=np.float64).reshape(-1, 3)


class BackendUnavailable(FifaError, RuntimeError):
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
    """MediaPipe FaceMesh (478 points with iris), SelfieSegmentation and Pose, offline."""

    def __init__(
        self, max_faces: int = 5, min_confidence: float = 0.5, person_model: int = 1, refine_landmarks: bool = True
    ):
        import mediapipe as mp

        # refine_landmarks=False: 468 points without the iris model (faster; enough for face crops)
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            refine_landmarks=refine_landmarks,
            max_num_faces=max_faces,
            min_detection_confidence=min_confidence,
        )
        self._person = PersonSegmenter(person_model)
        self._pose = None
        self._mp = mp

    def faces(self, rgb: np.ndarray) -> list[DetectedFace]:
        """All faces, largest first."""
        h, w = rgb.shape[:2]
        res = self._mesh.process(np.ascontiguousarray(rgb))
        out = []
        for lm in res.multi_face_landmarks or []:
            xyz = landmark_array(lm) * (w, h, w)
            pts = xyz[:, :2].copy()
            x0, y0 = np.floor(pts.min(axis=0)).astype(int)
            x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
            out.append(DetectedFace(pts, (int(x0), int(y0), int(x1), int(y1)), xyz[:, 2].copy()))
        out.sort(key=lambda f: -f.area)
        return out

    def person_probability(self, rgb: np.ndarray) -> np.ndarray:
        """HxW float32 probability that a pixel belongs to a person (SelfieSegmentation)."""
        return self._person(rgb)

    def pose_points(self, rgb: np.ndarray, max_side: int = 256, min_visibility: float = 0.5):
        """Shoulders and ears of the most prominent person (MediaPipe Pose, the ``full`` model that
        ships in the wheel), run on a copy scaled to ``max_side``; a point not seen is NaN."""
        import cv2

        from .offface import PosePoints

        if self._pose is None:
            # model_complexity=1 is pose_landmark_full.tflite, bundled; 0 and 2 are downloaded at run time.
            self._pose = self._mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)
        h, w = rgb.shape[:2]
        s = min(1.0, max_side / max(h, w))
        small = (
            cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            if s < 1
            else rgb
        )
        res = self._pose.process(np.ascontiguousarray(small))
        nan = np.full(2, np.nan)
        if res.pose_landmarks is None:
            return PosePoints(nan, nan, nan, nan)
        lm = res.pose_landmarks.landmark

        def point(i):
            p = lm[i]
            return np.array([p.x * w, p.y * h]) if p.visibility >= min_visibility else nan

        return PosePoints(left_shoulder=point(11), right_shoulder=point(12), left_ear=point(7), right_ear=point(8))

    def close(self) -> None:
        self._mesh.close()
        self._person.close()
        if self._pose is not None:
            self._pose.close()
