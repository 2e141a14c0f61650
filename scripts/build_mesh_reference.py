"""Build `concept_tree/data/mesh_reference.json`: a frontal, left/right-symmetric reference layout
of the 468 MediaPipe FaceMesh vertices in eye-normalised units.

Run once (offline) over the public-domain sample faces shipped with scikit-image and
matplotlib. The segmentation assigns every mesh triangle to a concept by where its
centroid falls in this reference layout, so the assignment is fixed per mesh index
and deforms with the face in every image.

    .venv/bin/python scripts/build_mesh_reference.py
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import mediapipe as mp
import numpy as np
import skimage.data
from scipy.optimize import linear_sum_assignment

from fifa.concept_tree.imageio import load_rgb
from fifa.concept_tree.segmentation.mesh_topology import eye_normalise

OUT = Path(__file__).resolve().parents[1] / "concept_tree" / "data" / "mesh_reference.json"


def main() -> None:
    faces = [skimage.data.astronaut(), load_rgb(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")]
    faces += [f[:, ::-1].copy() for f in faces]  # mirrors cancel residual yaw
    layouts = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as fm:
        for img in faces:
            res = fm.process(img)
            h, w = img.shape[:2]
            pts = np.array([[p.x * w, p.y * h] for p in res.multi_face_landmarks[0].landmark])[:468]
            layouts.append(eye_normalise(pts))
    q = np.mean(layouts, axis=0)
    mirrored = q * np.array([-1.0, 1.0])
    cost = np.linalg.norm(q[:, None] - mirrored[None], axis=2)
    _, mirror = linear_sum_assignment(cost)
    ref = (q + mirrored[mirror]) / 2
    OUT.write_text(
        json.dumps(
            {
                "about": "Frontal symmetric layout of MediaPipe FaceMesh vertices; origin between the eye centres, "
                "x towards the subject's left, y down, unit = inter-ocular distance. "
                "Built by scripts/build_mesh_reference.py.",
                "points": np.round(ref, 4).tolist(),
                "mirror": [int(i) for i in mirror],
            }
        )
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
