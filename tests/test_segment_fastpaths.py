"""The segmentation's fast paths against plain reference code, on real faces.

Each fast path (OpenCV passes, byte tables, run-based RLE, shipped outlines, landmarks read from
the serialized message, Arrow columns from buffers, one worker in-process) must give what the
plain code gives: the references below are the straightforward numpy / pycocotools / protobuf
versions the fast paths replaced.
"""

from __future__ import annotations

import cv2
import numpy as np
import pyarrow as pa
import pytest

from fifa.concept_tree.segmentation import atlas as atlas_mod
from fifa.concept_tree.segmentation import colour, gridmasks, labelmap, offface
from fifa.concept_tree.segmentation.segment import Segmenter, leaf_ids, regions_from_landmarks
from fifa.concept_tree.tree import load_tree
from fifa.core import rle


def _lfw(idx, tint=None):
    import skimage.data

    lfw = skimage.data.lfw_subset()
    for i in idx:  # 25 x 25 grey faces upscaled; tinted ones take the colour-evidence path
        g = cv2.resize((lfw[i] * 255).astype(np.uint8), (250, 250), interpolation=cv2.INTER_CUBIC)
        img = np.repeat(g[:, :, None], 3, axis=2)
        yield img if tint is None else np.clip(img * np.array(tint), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def faces(astronaut_rgb, grace_hopper_rgb):
    """Real faces with their FaceMesh landmarks (with depth) and person maps, computed once."""
    imgs = [astronaut_rgb, grace_hopper_rgb, np.ascontiguousarray(grace_hopper_rgb[:, ::-1])]
    imgs += list(_lfw([3, 40])) + list(_lfw([7, 51, 77], tint=(1.1, 0.9, 0.75)))
    out = []
    with Segmenter() as seg:
        for img in imgs:
            found = seg._models.faces(img)
            if found:
                out.append((img, found[0].landmarks_with_depth, seg._models.person_probability(img)))
    assert len(out) >= 6
    return out


def _labels(faces, person=True):
    return [
        regions_from_landmarks(lm, img.shape[:2], p if person else None, image=img).label_map for img, lm, p in faces
    ]


# ------------------------------------------------------------------ plain references
def _distance_ref(model, pixels):
    x = np.asarray(pixels, dtype=np.float32)
    k = len(model.mean)
    d = [x[..., i] - np.float32(model.mean[i]) for i in range(k)]
    q = sum(np.float32(model.inv_cov[i, j]) * d[i] * d[j] for i in range(k) for j in range(k))
    return np.sqrt(np.maximum(q, 0.0))


def _fit_ref(samples, floor, dims=(1, 2), max_samples=1500):
    s = np.asarray(samples).reshape(-1, 3)
    if len(s) < 20:
        return None
    if len(s) > max_samples:
        s = s[:: -(-len(s) // max_samples)]
    s = s.astype(np.float32)
    y = s[:, 0]
    lo, hi = np.partition(y, [len(y) // 20, len(y) * 97 // 100])[[len(y) // 20, len(y) * 97 // 100]]
    s = s[(y >= lo) & (y <= hi)]
    x = s[:, list(dims)]
    keep = np.ones(len(x), bool)
    for _ in range(2):
        if keep.sum() < 10:
            return None
        xs = x[keep]
        mean = xs.mean(axis=0)
        c = xs - mean
        cov = np.array([[float((c[:, i] * c[:, j]).mean()) for j in range(len(dims))] for i in range(len(dims))])
        cov = cov + np.eye(len(dims)) * floor**2
        model = colour.ColourModel(mean, colour._inv_small(cov), 0.0, cov)
        keep = _distance_ref(model, x) < 2.5
    y = s[:, 0]
    return colour.ColourModel(mean, model.inv_cov, float(np.partition(y, len(y) // 2)[len(y) // 2]), model.cov)


def _finish_ref(person_code, bg, fr, person, face_full, rules, image_size, also_person=None):
    h, w = image_size
    extra = also_person if also_person is not None else np.zeros(fr.shape, bool)
    both = gridmasks.upsample(np.dstack([person_code, bg, extra]).astype(np.uint8), fr.step, (h, w))
    is_person = (person >= rules.person_threshold) if person is not None else np.zeros((h, w), bool)
    out = np.where(is_person | (both[..., 2] > 0), both[..., 0], both[..., 1]).astype(np.int16)
    out[face_full] = offface.UNLABELLED
    return out


def _compose_ref(fr, pairs):
    def choice(k):
        return np.where(fr.u >= 0, k.left, k.right) if isinstance(k, offface._Side) else k

    return np.select(
        [c for c, _ in pairs[:-1]], [choice(k) for _, k in pairs[:-1]], default=choice(pairs[-1][1])
    ).astype(np.int16)


def _is_grey_ref(grid, rules):
    c = grid[..., 1:].reshape(-1, 2).astype(np.float32)
    return bool(np.abs(c - 128.0).mean() < rules.grey_chroma and c.std(axis=0).max() < rules.grey_chroma)


def _to_grid_ref(img, step, shape):
    gh, gw = shape
    h, w = img.shape[:2]
    padded = cv2.copyMakeBorder(img, 0, gh * step - h, 0, gw * step - w, cv2.BORDER_REPLICATE)
    return cv2.resize(padded, (gw, gh), interpolation=cv2.INTER_AREA)


def _drop_small_ref(mask, min_cells):
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    for c in range(1, n):
        if stats[c, cv2.CC_STAT_AREA] < min_cells:
            mask[lab == c] = False


def _seed_mask_ref(face_labels, ids):
    lut = np.zeros(len(ids) + 1, bool)
    lut[[i + 1 for i, k in enumerate(ids) if k in colour.SKIN_SEED_LEAVES]] = True
    return lut[face_labels + 1]


# ------------------------------------------------------------------ tests
def test_off_face_fast_paths_give_the_plain_labels(faces, monkeypatch):
    """OpenCV colour models, byte-grid composition, side tables, face cells found in the face's
    blocks, unpadded grids, one-look-up piece removal and the byte seed table: the same label maps
    as the plain numpy code."""
    fast = _labels(faces)
    hair = [leaf_ids().index(k) for k in ("crown_hair", "left_side_hair", "right_side_hair")]
    assert sum(np.isin(lab, hair).any() for lab in fast) >= 3  # the colour-evidence path ran on several faces
    monkeypatch.setattr(colour.ColourModel, "distance", _distance_ref)
    monkeypatch.setattr(offface, "fit_colour", _fit_ref)
    monkeypatch.setattr(colour, "fit_colour", _fit_ref)
    monkeypatch.setattr(offface, "_finish", _finish_ref)
    monkeypatch.setattr(offface, "_compose", _compose_ref)
    monkeypatch.setattr(colour, "is_grey", _is_grey_ref)
    monkeypatch.setattr(gridmasks, "to_grid", _to_grid_ref)
    monkeypatch.setattr(gridmasks, "face_cells", lambda face_full, step, shape: gridmasks.block_any(face_full, step))
    monkeypatch.setattr(gridmasks, "drop_small", _drop_small_ref)
    monkeypatch.setattr(colour, "_seed_mask", _seed_mask_ref)
    plain = _labels(faces)
    for a, b in zip(fast, plain):
        assert np.array_equal(a, b)


def test_colour_model_matches_numpy_fit_on_face_skin(faces):
    ids = leaf_ids()
    for img, lm, _ in faces[:3]:
        lab = regions_from_landmarks(lm, img.shape[:2]).label_map
        ys, xs = np.nonzero(_seed_mask_ref(lab, ids))
        samples = cv2.cvtColor(np.ascontiguousarray(img[ys, xs][:, None, :]), cv2.COLOR_RGB2YCrCb).reshape(-1, 3)
        for dims in ((1, 2), (0, 1, 2)):
            fast, ref = colour.fit_colour(samples, 3.0, dims=dims), _fit_ref(samples, 3.0, dims=dims)
            np.testing.assert_allclose(fast.mean, ref.mean, rtol=1e-4)
            np.testing.assert_allclose(fast.cov, ref.cov, rtol=1e-3)
            pix = samples[:, list(dims)].astype(np.float32)
            np.testing.assert_allclose(fast.distance(pix), _distance_ref(fast, pix), rtol=1e-4, atol=1e-4)


def test_is_grey_and_seed_mask_match_numpy(faces):
    rules = offface.OutsideFaceRules()
    ids = leaf_ids()
    for img, lm, _ in faces:
        grid = cv2.cvtColor(img[::4, ::4].copy(), cv2.COLOR_RGB2YCrCb)
        assert colour.is_grey(grid, rules) == _is_grey_ref(grid, rules)
        lab = regions_from_landmarks(lm, img.shape[:2]).label_map
        assert np.array_equal(colour._seed_mask(lab, ids).astype(bool), _seed_mask_ref(lab, ids))


def test_face_concepts_fast_paths_match_plain_drawing(faces):
    """Outline placement from contiguous columns, opening fills in their windows."""
    ol = atlas_mod.face_outlines()
    for img, lm, _ in faces:
        mesh = lm[:468, :2]
        w, c = ol.weights, ol.corners
        x = w[:, 0] * mesh[c[:, 0], 0] + w[:, 1] * mesh[c[:, 1], 0] + w[:, 2] * mesh[c[:, 2], 0]
        y = w[:, 0] * mesh[c[:, 0], 1] + w[:, 1] * mesh[c[:, 1], 1] + w[:, 2] * mesh[c[:, 2], 1]
        assert np.array_equal(ol.place(mesh), np.column_stack([x, y]))
        h, wd = img.shape[:2]
        for loop in (labelmap.mesh_topology().left_eye, labelmap.mesh_topology().lips_inner):
            pts = lm[list(loop), :2] - (5, 7)  # partly outside the array on small crops
            full = np.zeros((h, wd), np.uint8)
            cv2.fillPoly(full, [labelmap._fixed(pts)], 1, lineType=cv2.LINE_8, shift=labelmap._SHIFT)
            ys, xs = labelmap._fill_window((h, wd), pts)
            got = np.zeros((h, wd), np.uint8)
            got[ys, xs] = 1
            assert np.array_equal(got, full) and full.any()


def test_shipped_outlines_are_a_fresh_build():
    """concept_tree/data/face_atlas_outlines.npz is what outlines() makes of the shipped atlas
    (scripts/build_face_atlas.py rewrites it with the atlas)."""
    atlas = atlas_mod.face_atlas()
    shipped = atlas_mod._load_outlines(atlas)
    assert shipped is not None, "face_atlas_outlines.npz missing or stale: rerun scripts/build_face_atlas.py"
    fresh = atlas_mod.outlines(atlas, *atlas_mod._OUTLINE_PARAMS)
    assert shipped.label == fresh.label and shipped.loops == fresh.loops
    for f in ("triangle", "weights", "corners", "group_depth"):
        a, b = getattr(shipped, f), getattr(fresh, f)
        assert a.dtype == b.dtype and np.array_equal(a, b), f


def test_stale_outlines_are_not_used():
    atlas = atlas_mod.face_atlas()
    edited = atlas_mod.Atlas(labels=np.ascontiguousarray(atlas.labels[:, ::-1]), names=atlas.names, origin=atlas.origin,
                             step=atlas.step)  # fmt: skip
    assert atlas_mod._load_outlines(edited) is None


def test_rles_and_areas_equal_per_mask_encoding(faces):
    """Run-based RLE of every node (leaves, parents by merges) and run-based areas, against
    pycocotools' encode of each node's mask."""
    tree = load_tree()
    for img, lm, p in faces[:4]:
        r = regions_from_landmarks(lm, img.shape[:2], p, image=img)
        rles, areas = r.rles(), r.areas(include_parents=True)
        expected = [n.id for n in tree.nodes if r.mask(n.id).any()]
        assert sorted(rles) == sorted(expected) and sorted(areas) == sorted(expected)
        for node in expected:
            m = r.mask(node)
            assert rles[node] == rle.encode(m), node
            assert areas[node] == int(m.sum()), node
        ids = [0, 5, int(r.label_map.max()), 10_000]
        enc = rle.encode_label_map(r.label_map, ids=ids)
        assert set(enc) == set(ids) and all(enc[i] == rle.encode(r.label_map == i) for i in ids)


def test_landmarks_read_from_the_message_equal_attribute_reads(faces):
    import mediapipe as mp
    from mediapipe.framework.formats import landmark_pb2

    from fifa.concept_tree.segmentation.landmarks import landmark_array

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=2) as fm:
        for img, _, _ in faces:
            for lms in fm.process(img).multi_face_landmarks or []:
                ref = np.array([(q.x, q.y, q.z) for q in lms.landmark], dtype=np.float64)
                assert np.array_equal(landmark_array(lms), ref)
    other = landmark_pb2.NormalizedLandmarkList()
    q = other.landmark.add()
    q.x, q.y, q.z, q.visibility = 0.5, 0.25, -0.125, 0.9  # another layout: the attribute path
    assert np.array_equal(landmark_array(other), [[0.5, 0.25, -0.125]])


def test_arrow_columns_equal_pa_array():
    from fifa.concept_tree.segmentation.arrowcols import column, int_list_column, table
    from fifa.concept_tree.segmentation.batch import IMAGES_SCHEMA

    rng = np.random.default_rng(0)
    for t in (pa.string(), pa.int32(), pa.int64(), pa.float64()):
        for _ in range(20):
            vals = [None if rng.random() < 0.3 else
                    ("".join(rng.choice(list("ab é€z"), int(rng.integers(0, 5)))) if t == pa.string() else
                     float(rng.normal()) if t == pa.float64() else int(rng.integers(-999, 999)))
                    for _ in range(int(rng.integers(0, 12)))]  # fmt: skip
            assert column(vals, t).equals(pa.array(vals, type=t))
    rows = [[250, 250], [384, 512]]
    assert int_list_column(rows, 2).equals(pa.array(rows, type=pa.list_(pa.int64())))
    recs = [{"image": "a.jpg", "status": "ok", "error_code": None, "error": None, "width": 3, "height": 4, "faces": 1,
             "seconds": 0.5}, {"image": "b.png", "status": "failed", "error_code": "decode", "error": "bad",
                               "width": None, "height": None, "faces": 0, "seconds": 0.1}]  # fmt: skip
    assert table(recs, IMAGES_SCHEMA).equals(pa.Table.from_pylist(recs, schema=IMAGES_SCHEMA))


def test_one_worker_in_process_writes_what_a_pool_writes(astronaut_rgb, grace_hopper_rgb, tmp_path):
    import pyarrow.parquet as pq

    from fifa.concept_tree.imageio import list_images
    from fifa.concept_tree.segmentation.batch import BatchOptions, image_tasks, segment_folder

    src = tmp_path / "in"
    src.mkdir()
    for name, img in (("astronaut.png", astronaut_rgb), ("grace.jpg", grace_hopper_rgb), ("lfw.png", next(_lfw([3])))):
        cv2.imwrite(str(src / name), img[:, :, ::-1])
    (src / "broken.jpg").write_bytes(b"not an image")
    tasks = image_tasks(src, list_images(src))
    out = {}
    for w in (1, 2):
        s = segment_folder(tasks, tmp_path / f"w{w}", BatchOptions(workers=w, overlays=False), progress=False)
        assert s.ok >= 2 and s.failed + s.no_face >= 1
        out[w] = {f: pq.read_table(tmp_path / f"w{w}" / f"{f}.parquet") for f in ("regions", "images")}
    assert out[1]["regions"].num_rows > 200
    assert out[1]["regions"].equals(out[2]["regions"])
    assert out[1]["images"].drop(["seconds"]).equals(out[2]["images"].drop(["seconds"]))
