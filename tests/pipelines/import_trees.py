"""Small, real-looking collection trees for the importer tests (videos written with OpenCV from
the public-domain sample faces; fakes are the source frames with a visible edit in the face box)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

SIDE = 320  # frame side (px)
STEP = 6  # the face moves STEP px right and STEP/2 down per frame: a wrong frame pairing shows


def face_frame(rgb: np.ndarray) -> np.ndarray:
    """A SIDE x SIDE BGR frame of a sample photo (square crop around its top half, where the face is)."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    x0 = (w - s) // 2
    crop = rgb[:s, x0 : x0 + s]
    return cv2.resize(np.ascontiguousarray(crop[:, :, ::-1]), (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def moving(base: np.ndarray, k: int) -> np.ndarray:
    m = np.float32([[1, 0, STEP * k - 30], [0, 1, STEP * k // 2 - 15]])
    return cv2.warpAffine(base, m, (SIDE, SIDE), borderMode=cv2.BORDER_REFLECT)


_BOXES: dict[int, tuple[int, int, int, int]] = {}


def base_face_box(base: np.ndarray) -> tuple[int, int, int, int]:
    """The FaceMesh landmark box of a base frame (cached by content)."""
    key = hash(base.tobytes())
    if key not in _BOXES:
        from fifa.concept_tree.segmentation.landmarks import MediaPipeFaceMesh

        mesh = MediaPipeFaceMesh(max_faces=1, refine_landmarks=False)
        faces = mesh.faces(np.ascontiguousarray(base[:, :, ::-1]))
        mesh.close()
        assert faces, "no face in the test base frame"
        _BOXES[key] = faces[0].box
    return _BOXES[key]


def face_box(base: np.ndarray, k: int) -> tuple[int, int, int, int]:
    """The edit box of frame k: the base's face box, moved with the face (frame coordinates)."""
    x0, y0, x1, y1 = base_face_box(base)
    dx, dy = STEP * k - 30, STEP * k // 2 - 15
    return x0 + dx, y0 + dy, x1 + dx, y1 + dy


def inner(box: tuple[int, int, int, int], keep: float = 0.6) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * (1 - keep) / 2, (y1 - y0) * (1 - keep) / 2
    return int(x0 + mx), int(y0 + my), int(x1 - mx), int(y1 - my)


def edit(base: np.ndarray, k: int, kind: str) -> np.ndarray:
    """Frame k of a fake of ``base``: ``colour`` shifts the colours of the middle of the face
    (eyes, nose, mouth; visibly fake, still a face), ``flat`` replaces the whole face by a grey
    patch (no detector finds a face there)."""
    out = moving(base, k)
    box = face_box(base, k)
    if kind == "colour":
        x0, y0, x1, y1 = inner(box)
        roi = out[y0:y1, x0:x1]
        roi[:] = np.clip(roi.astype(np.int16) + np.array([-50, 40, 70], np.int16), 0, 255).astype(np.uint8)
    elif kind == "flat":
        x0, y0, x1, y1 = box
        out[y0:y1, x0:x1] = (128, 128, 128)
    else:
        raise ValueError(kind)
    return out


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix == ".mp4" else "MJPG"))
    w = cv2.VideoWriter(str(path), fourcc, 25, (SIDE, SIDE))
    assert w.isOpened(), path
    for f in frames:
        w.write(f)
    w.release()
    return path


def ffpp_tree(
    root: Path,
    faces: dict[str, np.ndarray],
    n: int = 12,
    c: str = "c23",
    fakes: dict[str, dict[str, str]] | None = None,
    suffix: str = ".mp4",
) -> Path:
    """FF++ layout: original_sequences/youtube/<c>/videos/<id>.mp4 for each face (id -> RGB), and
    manipulated_sequences/<Method>/<c>/videos/<target>_<source>.mp4 for each fake
    ({method: {"000_001": edit kind}}), the fake being the target video's frames edited."""
    bases = {vid: face_frame(rgb) for vid, rgb in faces.items()}
    for vid, base in bases.items():
        write_video(
            root / "original_sequences" / "youtube" / c / "videos" / f"{vid}{suffix}",
            [moving(base, k) for k in range(n)],
        )
    for method, vids in (fakes or {}).items():
        for name, kind in vids.items():
            target = name.split("_")[0]
            frames = [edit(bases[target], k, kind) for k in range(n)]
            write_video(root / "manipulated_sequences" / method / c / "videos" / f"{name}{suffix}", frames)
    return root


def dfb_json(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path
