"""The Facial Image Concept Tree: packaged data, structure checks and the query API."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from fifa.concept_tree.tree import ANCHORS, MASK_SOURCES, ConceptTree, load_tree
from fifa.concept_tree.tree_nodes import Node, TreeError


def _sided(*names: str) -> list[str]:
    return [f"{s}_{n}" for s in ("left", "right") for n in names]


#: The leaf ids each anchor must hold: a contract shared with the segmentation code.
EXPECTED_LEAVES: dict[str, set[str]] = {
    "forehead": {"glabella", "forehead_center", "upper_forehead", *_sided("forehead", "brow_ridge")},
    "nose": {"nasal_root", "nasal_bridge", "nasal_supratip", "nose_tip", "columella",
             *_sided("nasal_sidewall", "ala", "nostril")},
    "mouth": {"philtrum", "upper_lip_center", "lower_lip_center", "inner_mouth",
              *_sided("upper_lip_skin", "upper_lip", "lower_lip", "mouth_corner")},
    "chin": {"mentolabial_sulcus", "chin_center", "lower_chin", *_sided("chin", "marionette")},
    "hair": {"hairline_center", "crown_hair", *_sided("hairline", "side_hair")},
    "neck": {"throat", *_sided("neck")},
    "background": {"background_above_head", "background_left", "background_right",
                   "background_lower_left", "background_lower_right", "upper_body"},
}  # fmt: skip
for _s in ("left", "right"):
    EXPECTED_LEAVES[f"{_s}_temple"] = {f"{_s}_upper_temple", f"{_s}_lower_temple"}
    EXPECTED_LEAVES[f"{_s}_eyebrow"] = {f"{_s}_eyebrow_{p}" for p in ("head", "body", "tail")}
    EXPECTED_LEAVES[f"{_s}_eye"] = {f"{_s}_{p}" for p in (
        "upper_eyelid", "eyelid_crease", "lower_eyelid", "inner_canthus", "outer_canthus",
        "upper_eyelashes", "lower_eyelashes", "iris", "pupil", "medial_sclera", "lateral_sclera",
        "under_eye", "crows_feet")}  # fmt: skip
    EXPECTED_LEAVES[f"{_s}_cheek"] = {f"{_s}_{p}" for p in (
        "cheekbone", "mid_cheek", "lower_cheek", "nasolabial_fold", "preauricular")}  # fmt: skip
    EXPECTED_LEAVES[f"{_s}_jaw"] = {f"{_s}_{p}" for p in (
        "jaw_angle", "posterior_jawline", "anterior_jawline", "jowl")}  # fmt: skip
    EXPECTED_LEAVES[f"{_s}_ear"] = {f"{_s}_{p}" for p in ("helix", "concha", "tragus", "earlobe")}

DATA_FILE = Path(__file__).resolve().parents[1] / "concept_tree" / "data" / "fict.yaml"


@pytest.fixture(scope="module")
def tree() -> ConceptTree:
    return load_tree()


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.fixture(scope="module")
def _raw_once() -> dict:
    return yaml.load(DATA_FILE.read_text(encoding="utf-8"), Loader=_Loader)


@pytest.fixture()
def raw(_raw_once) -> dict:
    """A fresh copy of the parsed data file, free to mutate."""
    return copy.deepcopy(_raw_once)


# ------------------------------------------------------------------ packaged data
def test_loads_packaged_file_with_version(tree):
    assert re.fullmatch(r"\d+\.\d+\.\d+", tree.version)
    assert tree.root.id == "face_image" and tree.root.parent is None and tree.root.depth == 0
    assert load_tree() is tree  # cached
    assert load_tree(DATA_FILE) is load_tree(str(DATA_FILE))  # cached on the resolved path


def test_ids_unique_snake_case_and_parents_listed_first(tree, raw):
    ids = [n["id"] for n in raw["nodes"]]
    assert len(ids) == len(set(ids)) == len(tree)
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", i) for i in ids)
    seen: set[str] = set()
    for n in raw["nodes"]:
        assert n["parent"] is None or n["parent"] in seen, f"{n['id']} listed before its parent"
        seen.add(n["id"])
    assert [n.id for n in tree.nodes] == ids


def test_one_root_and_no_cycles(tree):
    roots = [n for n in tree.nodes if n.parent is None]
    assert [r.id for r in roots] == ["face_image"]
    for n in tree.nodes:
        chain = [a.id for a in tree.ancestors(n.id)]
        assert len(chain) == len(set(chain)) == n.depth
        assert (chain[-1] if chain else n.id) == "face_image"


def test_leaf_contract_per_anchor(tree):
    assert len(ANCHORS) == 19 and len(set(ANCHORS)) == 19
    assert all(a in tree for a in ANCHORS)
    got = {a: {n.id for n in tree.leaves(under=a)} for a in ANCHORS}
    assert got == EXPECTED_LEAVES
    leaves = tree.leaves()
    assert len(leaves) == 114 >= 112
    for leaf in leaves:
        under = [a for a in ANCHORS if a == leaf.id or a in {x.id for x in tree.ancestors(leaf.id)}]
        assert len(under) == 1, (leaf.id, under)
        assert tree.anchor_of(leaf.id) == under[0]


def test_face_subtree_holds_the_facial_anchors(tree):
    facial = {"forehead", "left_temple", "right_temple", "left_eyebrow", "right_eyebrow", "left_eye",
              "right_eye", "nose", "left_cheek", "right_cheek", "mouth", "chin", "left_jaw", "right_jaw"}  # fmt: skip
    below_face = {n.id for n in tree.descendants("face")}
    assert facial <= below_face
    assert not (set(ANCHORS) - facial) & below_face
    assert {c.id for c in tree.children("face_image")} == {"face", "ears", "hair", "neck", "background"}


def test_every_node_described_with_artifacts(tree):
    for n in tree.nodes:
        assert n.name.strip() and len(n.description) > 20, n.id
        assert 2 <= len(n.artifacts) <= 5, n.id
        assert len(set(n.artifacts)) == len(n.artifacts), n.id
        assert all(len(a) > 8 for a in n.artifacts), n.id
    # Cues are specific to regions, not one list copied everywhere.
    distinct = {n.artifacts for n in tree.nodes}
    assert len(distinct) > 0.6 * len(tree)
    assert any("teeth" in a for a in tree["inner_mouth"].artifacts)
    assert any("catch-light" in a for a in tree["left_iris"].artifacts)


def test_masks_on_leaves_only_with_known_sources(tree):
    for n in tree.nodes:
        if n.is_leaf:
            assert n.mask["source"] in MASK_SOURCES and n.mask["note"].strip(), n.id
        else:
            assert n.mask is None, n.id
    src = {n.id: n.mask["source"] for n in tree.leaves()}
    assert src["left_iris"] == src["right_pupil"] == "iris"
    assert src["left_medial_sclera"] == "eye_opening"
    assert src["inner_mouth"] == "mouth_opening"
    assert src["crown_hair"] == src["left_earlobe"] == src["throat"] == src["upper_body"] == "person_evidence"
    assert src["background_left"] == "background"
    assert all(src[n.id] == "mesh" for n in tree.leaves(under="face") if n.id not in {
        "left_iris", "left_pupil", "right_iris", "right_pupil", "left_medial_sclera", "left_lateral_sclera",
        "right_medial_sclera", "right_lateral_sclera", "inner_mouth"})  # fmt: skip


def test_left_right_pairs_are_symmetric(tree):
    for n in tree.nodes:
        for a, b in (("left", "right"), ("right", "left")):
            if n.id.startswith(a + "_"):
                twin = b + n.id[len(a) :]
                assert twin in tree, f"{n.id} has no {twin}"
                t = tree[twin]
                assert t.is_leaf == n.is_leaf
                assert (t.parent or "").replace(b, a) == (n.parent or "")
                assert (t.mask or {}).get("source") == (n.mask or {}).get("source")


def test_left_right_is_the_subjects_side(tree):
    assert "image's right" in tree["left_eye"].description
    assert "image's left" in tree["right_eye"].description
    assert "image's right" in tree["left_ear"].description


# ------------------------------------------------------------------ lookups
@pytest.mark.parametrize("query, expected", [
    ("left_iris", "left_iris"),
    ("Left Iris", "left_iris"),
    ("  LEFT_IRIS ", "left_iris"),
    ("colored part of the left eye", "left_iris"),
    ("Bridge of the Nose", "nasal_bridge"),
    ("nasal dorsum", "nasal_dorsum"),
    ("teeth", "inner_mouth"),
    ("crow's feet", None),  # ambiguous between sides: not a key
    ("left crow's feet", "left_crows_feet"),
    ("Cupid's bow", "upper_lip_center"),
    ("nose-tip", "nose_tip"),
])  # fmt: skip
def test_get_by_id_name_or_synonym(tree, query, expected):
    if expected is None:
        with pytest.raises(KeyError):
            tree.get(query)
    else:
        assert tree.get(query).id == expected


def test_unknown_lookup_suggests_close_matches(tree):
    with pytest.raises(KeyError, match="nose_tip"):
        tree.get("nose tipp")
    with pytest.raises(KeyError, match="unknown concept 'left_irsi'.*left_iris"):
        tree["left_irsi"]
    assert "left_irsi" not in tree and "left_iris" in tree


def test_parent_children_ancestors_descendants(tree):
    assert tree.parent("left_iris").id == "left_eyeball"
    assert tree.parent("face_image") is None
    assert [c.id for c in tree.children("left_eyeball")] == [
        "left_iris",
        "left_pupil",
        "left_medial_sclera",
        "left_lateral_sclera",
    ]
    assert [a.id for a in tree.ancestors("left_iris")] == ["left_eyeball", "left_eye", "eyes", "face", "face_image"]
    desc = {n.id for n in tree.descendants("mouth")}
    assert {"upper_lip", "philtrum", "inner_mouth", "left_mouth_corner"} <= desc
    assert "mouth" not in desc and "chin_center" not in desc
    assert tree.descendants("inner_mouth") == ()
    assert [n.id for n in tree.leaves(under="inner_mouth")] == ["inner_mouth"]
    assert len(tree.descendants("face_image")) == len(tree) - 1
    order = [n.id for n in tree.nodes]
    leaves = [n.id for n in tree.leaves(under="nose")]
    assert leaves == sorted(leaves, key=order.index)  # file order


def test_anchor_of_and_roll_up(tree):
    assert tree.anchor_of("left_iris") == "left_eye"
    assert tree.anchor_of("left_eye") == "left_eye"
    assert tree.anchor_of("hairline_center") == "hair"
    assert tree.anchor_of("eyes") is None and tree.anchor_of("face") is None
    assert tree.roll_up("left_iris", "anchor") == "left_eye"
    assert tree.roll_up("philtrum", "anchor") == "mouth"
    assert tree.roll_up("cheeks", "anchor") == "cheeks"  # above the anchors: itself
    assert tree.roll_up("left_iris", 0) == "face_image"
    assert tree.roll_up("left_iris", 1) == "face"
    assert tree.roll_up("left_iris", 2) == "eyes"
    assert tree.roll_up("left_iris", 4) == "left_eyeball"
    assert tree.roll_up("left_helix", 1) == "ears"
    assert tree.roll_up("throat", 5) == "throat"  # shallower than the level: itself
    with pytest.raises(ValueError):
        tree.roll_up("throat", -1)
    with pytest.raises(KeyError):
        tree.roll_up("no_such_node", 1)


def test_node_is_frozen(tree):
    n: Node = tree["nose_tip"]
    with pytest.raises(AttributeError):
        n.name = "x"  # type: ignore[misc]
    assert n.is_leaf and not tree["nose"].is_leaf


# ------------------------------------------------------------------ output
def test_render_indents_by_depth(tree):
    text = tree.render()
    lines = text.splitlines()
    assert lines[0] == "face_image: Face image"
    assert "  face: Face" in lines
    assert "          left_iris: Left iris" in lines  # depth 5 -> 10 spaces
    assert len(lines) == len(tree)
    top = tree.render(depth=1).splitlines()
    assert top == ["face_image: Face image", "  face: Face", "  ears: Ears", "  hair: Hair",
                   "  neck: Neck", "  background: Background"]  # fmt: skip
    sub = tree.render(root="left_eyeball", with_descriptions=True, with_artifacts=True)
    assert sub.startswith("left_eyeball: Left eyeball\n  - ")
    assert "    - artifacts: " in sub and "non-circular or irregular pupil" in sub
    assert tree.render(root="nose", depth=0) == "nose: Nose"


def test_to_dict_json_yaml_round_trip(tree):
    d = tree.to_dict()
    assert d["version"] == tree.version and len(d["nodes"]) == len(tree)
    first = d["nodes"][0]
    assert set(first) == {"id", "name", "parent", "synonyms", "description", "artifacts", "mask", "children"}
    assert json.loads(tree.to_json()) == d
    rebuilt = ConceptTree.from_yaml(tree.to_yaml())
    assert list(rebuilt.nodes) == list(tree.nodes)


# ------------------------------------------------------------------ broken trees
def _write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "broken.yaml"
    p.write_text(
        yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False), encoding="utf-8"
    )
    return p


def _node(raw: dict, node_id: str) -> dict:
    return next(n for n in raw["nodes"] if n["id"] == node_id)


def test_broken_duplicate_id(tmp_path, raw):
    raw["nodes"].append(copy.deepcopy(_node(raw, "nose_tip")))
    with pytest.raises(TreeError, match="duplicate node id 'nose_tip'"):
        load_tree(_write(tmp_path, raw))


def test_broken_cycle(tmp_path, raw):
    _node(raw, "nose")["parent"] = "nose_tip"
    with pytest.raises(TreeError, match="cycle"):
        load_tree(_write(tmp_path, raw))


def test_broken_missing_anchor(tmp_path, raw):
    raw["nodes"] = [n for n in raw["nodes"] if n["id"] != "chin" and n["parent"] != "chin"]
    with pytest.raises(TreeError, match="missing anchor.*chin"):
        load_tree(_write(tmp_path, raw))


def test_broken_orphan(tmp_path, raw):
    _node(raw, "philtrum")["parent"] = "upper_lipp"
    with pytest.raises(TreeError, match="'philtrum': parent 'upper_lipp' does not exist"):
        load_tree(_write(tmp_path, raw))


@pytest.mark.parametrize("mutate, message", [
    (lambda r: _node(r, "face").update(parent=None), "exactly one root"),
    (lambda r: _node(r, "nose_tip").pop("mask"), "leaf 'nose_tip' has no 'mask'"),
    (lambda r: _node(r, "nose_tip")["mask"].update(source="magic"), "unknown mask source 'magic'"),
    (lambda r: _node(r, "nose_tip").update(artifacts=[]), "'nose_tip': 'artifacts'"),
    (lambda r: _node(r, "nose_tip").update(description=" "), "'nose_tip': missing or empty 'description'"),
    (lambda r: _node(r, "nose_tip").update(id="NoseTip"), "not a snake_case"),
    (lambda r: _node(r, "left_ear").update(parent="left_cheek"), "several anchors"),
    (lambda r: r["nodes"].append({"id": "freckle", "name": "Freckle", "parent": "face", "description": "A dot.",
                                  "artifacts": ["gone"], "mask": {"source": "mesh"}}), "'freckle' does not descend"),
    (lambda r: _node(r, "nose_tip")["synonyms"].append("left eye"), "already the id of 'left_eye'"),
])  # fmt: skip
def test_broken_other_rules(tmp_path, raw, mutate, message):
    mutate(raw)
    with pytest.raises(TreeError, match=message):
        load_tree(_write(tmp_path, raw))


def test_broken_not_yaml(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("nodes: [unclosed", encoding="utf-8")
    with pytest.raises(TreeError, match="not valid YAML"):
        load_tree(p)
