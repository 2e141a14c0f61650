"""Face crops as DeepfakeBench makes them, from MediaPipe landmarks instead of dlib's.

DeepfakeBench (``preprocessing/preprocess.py``) takes five dlib points (two eyes, nose tip, two
mouth corners) of the largest face, fits a similarity transform onto the ArcFace 112x112
template enlarged by a margin (``scale`` 1.3), and warps the frame to a ``size`` x ``size``
crop. :func:`align_matrix` is that computation; the points come from MediaPipe FaceMesh
(eye centres = mean of the eye contour, nose tip, mouth corners) or, when FaceMesh finds no
landmarks, from MediaPipe FaceDetection's keypoints (eyes, nose tip, mouth *centre*, fitted to
the template's mouth-corner midpoint). ``mode="box"`` is FaceForensics++'s own crop instead: an
axis-aligned square ``scale`` times the landmarks' bounding box, no rotation.

Detection: FaceDetection's full-range model finds the largest face (FaceMesh's own short-range
detector misses faces that are small in a video frame), then FaceMesh runs on a square region
twice that face's size for the landmarks; a close-up FaceDetection misses goes to FaceMesh on
the whole frame.

A crop is a :class:`CropTransform` (a 2x3 affine matrix): computed once on the source frame,
then applied unchanged to every fake of that source at the same frame index, so the pair
stays pixel-aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CROP_MODES = ("align", "box", "none")

#: ArcFace's five-point template in a 96x112 box (DeepfakeBench shifts x by 8 for 112x112).
_TEMPLATE_112 = np.array(
    [[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366], [33.5493, 92.3655], [62.7299, 92.2041]],
    dtype=np.float64,
) + np.array([8.0, 0.0])

# FaceMesh indices (subject's sides: the subject's right eye is on the image's left)
_RIGHT_EYE = (33, 133, 159, 145, 160, 144, 158, 153)
_LEFT_EYE = (263, 362, 386, 374, 387, 373, 385, 380)
_NOSE_TIP = 1
_MOUTH_RIGHT, _MOUTH_LEFT = 61, 291


@dataclass(frozen=True)
class CropConfig:
    mode: str = "align"  # align (DeepfakeBench) | box (FF++ square box) | none (whole frame, as it is)
    size: int = 256  # output side in pixels
    scale: float = 1.3  # margin: the crop covers `scale` times the face
    min_confidence: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in CROP_MODES:
            raise ValueError(f"crop mode {self.mode!r} not in {CROP_MODES}")
        if self.size < 16:
            raise ValueError(f"crop size must be >= 16 px, got {self.size}")
        if not 1.0 <= self.scale <= 4.0:
            raise ValueError(f"crop scale must be in [1, 4], got {self.scale}")


@dataclass(frozen=True)
class CropTransform:
    matrix: np.ndarray  # 2x3 affine, frame pixels -> crop pixels
    out_size: tuple[int, int]  # width, height of the crop
    detector: str  # facemesh | facedetection | none

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The crop of ``image`` (any channel layout); outside the frame is black, as in DeepfakeBench.
        ``mode="none"`` returns the frame itself."""
        if self.detector == "none":
            return image
        return cv2.warpAffine(
            image, self.matrix, self.out_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) mapping ``src`` onto ``dst``
    (Umeyama 1991, as ``skimage.transform.SimilarityTransform.estimate``); a 2x3 matrix."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    rot = u @ e @ vt
    var = (s**2).sum() / len(src)
    c = (sig * np.diag(e)).sum() / var if var > 0 else 1.0
    m = np.empty((2, 3))
    m[:, :2] = c * rot
    m[:, 2] = mu_d - c * rot @ mu_s
    return m


def template(size: int, scale: float) -> np.ndarray:
    """DeepfakeBench's five target points for a ``size`` crop with margin ``scale``."""
    dst = _TEMPLATE_112 * (size / 112.0)
    margin = size * (scale - 1.0) / 2.0
    return (dst + margin) * (size / (size + 2.0 * margin))


def align_matrix(points: np.ndarray, size: int, scale: float) -> np.ndarray:
    """Similarity fit of face points onto :func:`template`: five points (eyes, nose tip, mouth
    corners) or four (eyes, nose tip, mouth centre), image-left eye first."""
    dst = template(size, scale)
    pts = np.asarray(points, np.float64)
    if len(pts) == 4:
        dst = np.vstack([dst[:3], dst[3:].mean(0)])
    elif len(pts) != 5:
        raise ValueError(f"align_matrix needs 4 or 5 points, got {len(pts)}")
    return similarity_matrix(pts, dst)


def box_matrix(box: tuple[float, float, float, float], size: int, scale: float) -> np.ndarray:
    """Scale-and-shift matrix of a square ``scale`` times the box's longer side, centred on it."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * scale
    k = size / max(side, 1e-6)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return np.array([[k, 0.0, size / 2.0 - k * cx], [0.0, k, size / 2.0 - k * cy]])


def mesh_points(landmarks: np.ndarray) -> np.ndarray:
    """The five DeepfakeBench points from FaceMesh landmarks (pixels), image-left eye first."""
    lm = np.asarray(landmarks, np.float64)
    return np.stack(
        [lm[list(_RIGHT_EYE)].mean(0), lm[list(_LEFT_EYE)].mean(0), lm[_NOSE_TIP], lm[_MOUTH_RIGHT], lm[_MOUTH_LEFT]]
    )


class FaceCropper:
    """Finds the largest face of a frame and returns its :class:`CropTransform` (one per process;
    holds MediaPipe graphs, not picklable)."""

    def __init__(self, config: CropConfig = CropConfig()):
        self.config = config
        self._mesh = None
        self._detector = None

    def transform(self, bgr: np.ndarray) -> CropTransform | None:
        """The crop of the largest face in a BGR frame; ``None`` when no face is found.
        With ``mode="none"``: the whole frame as it is (no detection)."""
        c = self.config
        h, w = bgr.shape[:2]
        if c.mode == "none":
            return CropTransform(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (w, h), "none")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        found = self._facedetection(rgb, w, h)
        if found is not None:
            points, box = found
            lm = self._mesh_around(rgb, box)
        else:  # a close-up the full-range detector misses: FaceMesh on the whole frame
            faces = self._facemesh().faces(rgb)
            if not faces:
                return None
            lm = faces[0].landmarks
        detector = "facemesh" if lm is not None else "facedetection"
        if lm is not None:
            points = mesh_points(lm)
            box = (*lm.min(axis=0), *lm.max(axis=0))
        m = align_matrix(points, c.size, c.scale) if c.mode == "align" else box_matrix(box, c.size, c.scale)
        return CropTransform(m, (c.size, c.size), detector)

    def _mesh_around(self, rgb: np.ndarray, box) -> np.ndarray | None:
        """FaceMesh landmarks (frame pixels) of the face in ``box``, found on a square region twice the
        box's size: FaceMesh's own short-range detector misses faces that are small in a video frame."""
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = box
        half = max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        a, b = int(max(0, cx - half)), int(max(0, cy - half))
        a2, b2 = int(min(w, cx + half)), int(min(h, cy + half))
        if a2 - a < 16 or b2 - b < 16:
            return None
        faces = self._facemesh().faces(np.ascontiguousarray(rgb[b:b2, a:a2]))
        return faces[0].landmarks + np.array([a, b], np.float64) if faces else None

    def _facemesh(self):
        if self._mesh is None:
            from fifa.concept_tree.segmentation.landmarks import MediaPipeFaceMesh

            self._mesh = MediaPipeFaceMesh(
                max_faces=4, min_confidence=self.config.min_confidence, refine_landmarks=False
            )
        return self._mesh

    def _facedetection(self, rgb: np.ndarray, w: int, h: int):
        """Largest FaceDetection (full-range model) face: (eyes, nose tip, mouth centre), box; or None."""
        if self._detector is None:
            import mediapipe as mp

            self._detector = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=self.config.min_confidence
            )
        dets = self._detector.process(rgb).detections or []
        if not dets:
            return None
        best = max(
            dets,
            key=lambda d: d.location_data.relative_bounding_box.width * d.location_data.relative_bounding_box.height,
        )
        loc = best.location_data
        kp = np.array([(k.x * w, k.y * h) for k in loc.relative_keypoints[:4]], np.float64)
        # keypoint 0 is the subject's right eye (image left), 1 the left eye, 2 nose tip, 3 mouth centre
        bb = loc.relative_bounding_box
        box = (bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h)
        return kp, box

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def __enter__(self) -> FaceCropper:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
