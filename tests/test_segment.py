"""Region segmentation on real faces: partition, parents, left/right, stability, several faces, no face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fifa.concept_tree.segmentation.mesh_topology import mesh_topology
from fifa.concept_tree.segmentation.segment import Segmenter, leaf_ids
from fifa.concept_tree.tree import ANCHORS, load_tree
from fifa.core import rle


@pytest.fixture(scope="module")
def seg():
    with Segmenter() as s:
        yield s


@pytest.fixture(scope="module")
def photos(astronaut_rgb, grace_hopper_rgb):
    return {"astronaut": astronaut_rgb, "grace_hopper": grace_hopper_rgb}


def _face_crop(rgb: np.ndarray, name: str) -> np.ndarray:
    return rgb[10:250, 60:300] if name == "astronaut" else rgb[40:400, 70:430]


def _oval_polygon_mask(landmarks: np.ndarray, shape) -> np.ndarray:
    """The face region drawn independently from the FaceMesh face-oval landmarks."""
    m = np.zeros(shape, np.uint8)
    pts = np.round(landmarks[list(mesh_topology().face_oval)] * 16).astype(np.int32)
    cv2.fillPoly(m, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return m.astype(bool)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_face_concepts_partition_the_face(seg, photos, name):
    r = seg.segment(photos[name])
    assert r.ok and r.landmarks.shape == (478, 2)
    tree = load_tree()
    face_leaves = [n.id for n in tree.leaves(under="face")]
    stack = np.stack([r.mask(i) for i in face_leaves])
    assert int((stack.sum(axis=0) > 1).sum()) == 0  # pairwise disjoint
    oval = _oval_polygon_mask(r.landmarks, r.image_size)
    coverage = stack.any(axis=0)[oval].mean()
    assert coverage >= 0.99
    # the face leaves stay inside the face region (a pixel or so of rasterisation at the border)
    outside = stack.any(axis=0) & ~cv2.dilate(oval.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert outside.sum() == 0
    # nearly every atomic face concept is present on a frontal photo
    present = {k for k, a in r.areas().items() if a > 0}
    assert len(present & set(face_leaves)) >= len(face_leaves) - 4


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_parent_masks_are_unions_of_children(seg, photos, name):
    r = seg.segment(photos[name])
    rles = r.rles(include_parents=True)
    tree = load_tree()
    for node in tree.nodes:
        if node.is_leaf or node.id not in rles:
            continue
        union = np.zeros(r.image_size, bool)
        for c in node.children:
            if c in rles:
                union |= rle.decode(rles[c])
        assert np.array_equal(rle.decode(rles[node.id]), union), node.id
        assert np.array_equal(r.mask(node.id), union), node.id
    areas = r.areas(include_parents=True)
    assert areas["face"] == int(r.mask("face").sum())
    assert areas["face_image"] == int((r.label_map >= 0).sum())


def test_every_pixel_gets_a_concept_on_a_portrait(seg, photos):
    r = seg.segment(photos["grace_hopper"])
    assert (r.label_map >= 0).all()
    # the person's hair is above the face, the neck below it, background around
    for node in ("hair", "neck", "background", "left_ear", "right_ear"):
        assert r.mask(node).sum() > 0, node
    ys_face = np.nonzero(r.mask("face"))[0]
    ys_neck = np.nonzero(r.mask("throat"))[0]
    assert np.median(ys_neck) > ys_face.max() - 5


def _centroid_x(mask: np.ndarray) -> float:
    return float(np.nonzero(mask)[1].mean())


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_left_right_are_the_subjects_own(seg, photos, name):
    img = photos[name]
    r = seg.segment(img)
    w = img.shape[1]
    # the subject's left eye appears on the image's right
    assert _centroid_x(r.mask("left_eye")) > _centroid_x(r.mask("right_eye"))
    assert _centroid_x(r.mask("left_iris")) > _centroid_x(r.mask("right_iris"))
    assert _centroid_x(r.mask("left_cheek")) > _centroid_x(r.mask("right_cheek"))
    # mirrored photo: the physical eye that was `left_eye` moves to the image's left and becomes
    # `right_eye`: the anatomical labels swap image side with the pixels.
    m = seg.segment(np.ascontiguousarray(img[:, ::-1]))
    for side, other in (("left_eye", "right_eye"), ("left_eyebrow", "right_eyebrow")):
        mirrored_orig = r.mask(side)[:, ::-1]
        assert _centroid_x(mirrored_orig) < w / 2 + 40  # the original left eye now lies on the left
        inter = (m.mask(other) & mirrored_orig).sum()
        union = (m.mask(other) | mirrored_orig).sum()
        assert inter / union > 0.6, side
        assert _centroid_x(m.mask(side)) > _centroid_x(m.mask(other))


# Anchors whose masks are thin bands along the face contour (temples, jaw) or about 0.2 IOD tall
# (eyebrows: 12 px at 256 px) lose a larger share of IoU to the 1-2 px landmark jitter between scales;
# the stable threshold applies to the others (README: numbers). Ears are found from image evidence
# (skin attached to the contour): compared by position and size instead.
THIN = {"left_temple", "right_temple", "left_jaw", "right_jaw", "left_eyebrow", "right_eyebrow"}
EARS = {"left_ear", "right_ear"}


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_stability_between_512_and_256_px(seg, photos, name):
    crop = _face_crop(photos[name], name)
    big = cv2.resize(crop, (512, 512), interpolation=cv2.INTER_AREA)
    small = cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA)
    rb, rs = seg.segment(big), seg.segment(small)
    iod = float(np.linalg.norm(rb.landmarks[263] - rb.landmarks[33]))
    for a in ANCHORS:
        mb = rb.mask(a)
        ms = cv2.resize(rs.mask(a).astype(np.uint8), (512, 512), interpolation=cv2.INTER_NEAREST) > 0
        if not (mb | ms).any():
            continue
        if a in EARS:
            if mb.sum() > 0.02 * iod**2 and ms.sum() > 0.02 * iod**2:  # an ear seen at both scales
                cb, cs = np.argwhere(mb).mean(0), np.argwhere(ms).mean(0)
                assert np.linalg.norm(cb - cs) < 0.3 * iod, a
                assert 0.4 < ms.sum() / mb.sum() < 2.5, (a, ms.sum() / mb.sum())
            continue
        iou = (mb & ms).sum() / (mb | ms).sum()
        assert iou >= (0.7 if a in THIN else 0.85), (a, iou)


def test_several_faces_largest_first(seg, astronaut_rgb, grace_hopper_rgb):
    a = cv2.resize(_face_crop(astronaut_rgb, "astronaut"), (200, 200))
    g = cv2.resize(_face_crop(grace_hopper_rgb, "grace_hopper"), (300, 300))
    canvas = np.full((320, 540, 3), 128, np.uint8)
    canvas[60:260, 10:210] = a
    canvas[10:310, 230:530] = g
    faces = seg.segment_all(canvas)
    assert [f.face_index for f in faces] == [0, 1]
    assert _centroid_x(faces[0].mask("face")) > 230  # grace (the larger) first
    assert _centroid_x(faces[1].mask("face")) < 210
    assert seg.segment(canvas).face_index == 0
    assert not (faces[0].mask("face") & faces[1].mask("face")).any()


def test_no_face_is_a_status_not_an_exception(seg):
    import skimage.data

    r = seg.segment(skimage.data.coffee())
    assert r.status == "no_face" and not r.ok
    assert r.rles() == {} and r.mask("left_eye").sum() == 0


def test_label_ids_follow_the_tree(seg, photos):
    r = seg.segment(photos["astronaut"])
    assert r.leaf_ids == leaf_ids() == tuple(n.id for n in load_tree().leaves())
    assert r.label_map.dtype == np.int16
    assert r.label_map.max() < len(r.leaf_ids)
