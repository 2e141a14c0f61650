"""DD-VQA importer: its JSON (laid out as in Research-DD-VQA/DQ_FF++) attached to imported FF++ frames."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from import_trees import ffpp_tree

from fifa.core.schemas import EXTRA_QA_SCHEMA
from fifa.pipelines.cli import main
from fifa.pipelines.importers import FFPPConfig, import_ffpp

Q_IMAGE = "Does the image looks real/fake?"  # DD-VQA's questions, verbatim
Q_SKIN = "Does the person's skin look real/fake?"
Q_EYES = "Do the person's eyes look real/fake?"
Q_MOUTH = "Does the person's mouth look real/fake?"


def _cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as e:
        main(["import", "ddvqa", *argv])
    return e.value.code


def _qa(*pairs) -> dict:
    return {str(i): {"question": q, "answer": list(a)} for i, (q, a) in enumerate(pairs)}


@pytest.fixture(scope="module")
def data(tmp_path_factory, astronaut_rgb, grace_hopper_rgb):
    tmp = tmp_path_factory.mktemp("ddvqa")
    root = ffpp_tree(
        tmp / "FF",
        {"000": astronaut_rgb, "001": grace_hopper_rgb},
        n=6,
        fakes={"Deepfakes": {"000_001": "colour"}, "FaceShifter": {"001_000": "colour"}},
    )
    frames = tmp / "ffpp" / "ffpp.parquet"
    import_ffpp(root, frames, FFPPConfig(frames=3, workers=0))  # frames 0, 2, 5 of each video
    dq = tmp / "DQ_FF++"
    files = {
        "train_set/Deepfakes/Deepfakes.json": {
            "0_000_001": _qa(
                (
                    Q_IMAGE,
                    ["The image looks fake. The eyes look asymmetric.", "The image looks fake. Blurry hairline."],
                ),
                (Q_EYES, ["The person's eyes look very fake because the eyes look unnaturally asymmetric."]),
                (Q_SKIN, ["The person's skin looks a bit fake because the skin is overly smooth."]),
            )
        },
        "train_set/Original/Original.json": {
            "5_000": _qa(
                (Q_IMAGE, ["The image looks real. Smooth illuminated skin."]),
                (Q_MOUTH, ["The person's mouth looks real. Full mouth, aligned teeth."]),
            )
        },
        "test_set/FaceShifter/FaceShifter.json": {"2_001_000": _qa((Q_EYES, ["The eyes look a bit fake."]))},
        "test_set/FaceSwap/FaceSwap.json": {"3_001_000": _qa((Q_IMAGE, ["The image looks fake."]))},
        "total_fake.json": {  # overlaps the sets (as the real file does) and holds an undocumented id 4
            "0_000_001": _qa((Q_IMAGE, ["The image looks fake. The eyes look asymmetric."])),
            "4_29829": _qa((Q_IMAGE, ["The image looks fake."])),
        },
        "split/test.json": [["001", "000"]],
    }
    for rel, doc in files.items():
        p = dq / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(doc))
    return tmp, frames, dq


def test_questions_attach_to_the_middle_frame(data):
    tmp, frames, dq = data
    out = tmp / "dd" / "ddvqa.parquet"
    assert _cli(str(dq), "--frames-manifest", str(frames), "--out", str(out)) == 0
    rows = {r["sample_id"]: r for r in pq.read_table(out).to_pylist()}
    assert set(rows) == {
        "ffpp/c23/Deepfakes/000_001/f0002",
        "ffpp/c23/youtube/000/f0002",
        "ffpp/c23/FaceShifter/001_000/f0002",
    }
    for r in rows.values():  # paths rebased onto the new manifest's folder
        assert r["image_path"].startswith("../ffpp/frames/") and (out.parent / r["image_path"]).is_file()
    assert rows["ffpp/c23/Deepfakes/000_001/f0002"]["identities"] == "000|001"
    qa = pq.read_table(tmp / "dd" / "ddvqa.qa.parquet")
    assert qa.schema.equals(EXTRA_QA_SCHEMA)
    got = sorted((r["sample_id"].split("/")[3], r["task"], r["node_id"], r["answer"][:22]) for r in qa.to_pylist())
    assert got == [
        ("000", "rq_name", "mouth", "The person's mouth loo"),
        ("000", "toe", None, "The image looks real. "),
        ("000_001", "rq_name", "eyes", "The person's eyes look"),
        ("000_001", "rq_name", "face", "The person's skin look"),  # skin: the face's skin
        ("000_001", "toe", None, "The image looks fake. "),  # two annotators, two answers,
        ("000_001", "toe", None, "The image looks fake. "),  # the duplicate in total_fake.json dropped
        ("001_000", "rq_name", "eyes", "The eyes look a bit fa"),
    ]
    assert {r["origin"] for r in qa.to_pylist()} >= {"ddvqa:0_000_001#1", "ddvqa:2_001_000#0"}
    ffpp_ids = {r["sample_id"] for r in pq.read_table(frames).to_pylist()}
    assert {r["sample_id"] for r in qa.to_pylist()} <= ffpp_ids  # the same ids as the FF++ manifest
    report = json.loads((tmp / "dd" / "ddvqa.import.json").read_text())
    failures = {f["item"]: f["stage"] for f in report["failures"]}
    assert failures == {"4_29829": "method", "3_001_000": "match"}  # recorded, the rest went on


def test_attach_all_and_first_answer_and_id_map(data, tmp_path):
    _, frames, dq = data
    out = tmp_path / "all.parquet"
    assert (
        _cli(
            str(dq / "train_set"),
            "--frames-manifest",
            str(frames),
            "--out",
            str(out),
            "--attach",
            "all",
            "--answers",
            "first",
            "--id-map",
            "4=DeepFakeDetection",
        )
        == 0
    )
    rows = pq.read_table(out).to_pylist()
    assert sorted(r["frame"] for r in rows if r["video"] == "000_001") == [0, 2, 5]
    qa = pq.read_table(tmp_path / "all.qa.parquet").to_pylist()
    assert sum(r["sample_id"] == "ffpp/c23/Deepfakes/000_001/f0005" for r in qa) == 3  # one answer per question
    assert (
        _cli(
            str(dq / "total_fake.json"),
            "--frames-manifest",
            str(frames),
            "--out",
            str(out),
            "--id-map",
            "4=DeepFakeDetection",
        )
        == 0
    )
    report = json.loads((tmp_path / "all.import.json").read_text())
    assert {f["item"]: f["stage"] for f in report["failures"]} == {"4_29829": "match"}


def test_wrong_inputs_are_clear_errors(data, tmp_path, capsys):
    tmp, frames, dq = data
    dfb = tmp_path / "FF-DF.json"
    dfb.write_text(json.dumps({"FF-DF": {"FF-real": {"train": {}}}}))
    assert _cli(str(dfb), "--frames-manifest", str(frames), "--out", str(tmp_path / "m.parquet")) == 2
    assert "not a DD-VQA JSON" in capsys.readouterr().err
    plain = tmp_path / "plain.csv"
    plain.write_text("sample_id,image_path,label\na,a.png,real\n")
    assert _cli(str(dq), "--frames-manifest", str(plain), "--out", str(tmp_path / "m.parquet")) == 2
    err = capsys.readouterr().err
    assert "video" in err and "import ffpp" in err
    assert _cli(str(dq), "--frames-manifest", str(frames), "--out", str(tmp_path / "m.parquet"), "--id-map", "x") == 2
    assert _cli(str(dq / "split"), "--frames-manifest", str(frames), "--out", str(tmp_path / "m.parquet")) == 2
    assert "split" in capsys.readouterr().err
    # nothing matched: ran, imported nothing -> exit 1
    other = tmp_path / "o.json"
    other.write_text(json.dumps({"1_998_999": _qa((Q_IMAGE, ["x"]))}))
    assert _cli(str(other), "--frames-manifest", str(frames), "--out", str(tmp_path / "m.parquet")) == 1


def test_region_words_map_to_tree_nodes():
    from fifa.pipelines.importers.ddvqa import region_node

    assert region_node("Do the person's eyebrows look real/fake?") == "eyebrows"
    assert region_node("Does the person's nose look real/fake?") == "nose"
    assert region_node("Does the person's skin look real/fake?") == "face"
    assert region_node("Does the person's lips look real/fake?") == "mouth"
    assert region_node("Does the image looks real/fake?") is None
    assert region_node("Does the person's aura look real/fake?") is None
