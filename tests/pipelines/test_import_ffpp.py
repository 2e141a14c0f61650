"""FaceForensics++ importer on small FF++ trees of real MP4/AVI videos made from the sample faces."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from import_trees import edit, face_frame, ffpp_tree, moving, write_video

from fifa.pipelines.cli import main
from fifa.pipelines.importers import CropConfig, FaceCropper, FFPPConfig, import_ffpp

N_VIDEO = 12  # frames per test video
PICKED = [0, 3, 7, 11]  # np.linspace(0, 11, 4).astype(int): DeepfakeBench's fixed_num_frames


def _cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as e:
        main(["import", *argv])
    return e.value.code


def _read(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


@pytest.fixture(scope="module")
def faces(astronaut_rgb, grace_hopper_rgb):
    return {"000": astronaut_rgb, "001": grace_hopper_rgb}


@pytest.fixture(scope="module")
def ffpp(tmp_path_factory, faces):
    """000 (astronaut) and 001 (Grace Hopper), fakes 000_001 / 001_000 (colour edits) and a FaceSwap
    000_001 whose face is a flat patch, imported once with two worker processes."""
    root = tmp_path_factory.mktemp("ffpp") / "FaceForensics++"
    ffpp_tree(
        root,
        faces,
        n=N_VIDEO,
        fakes={"Deepfakes": {"000_001": "colour", "001_000": "colour"}, "FaceSwap": {"000_001": "flat"}},
    )
    out = root.parent / "out" / "ffpp.parquet"
    rep = import_ffpp(root, out, FFPPConfig(frames=4, workers=2))
    return root, out, rep


def test_rows_ids_groups_and_identities(ffpp):
    _, out, rep = ffpp
    rows = _read(out)
    assert rep.rows == len(rows) == 2 * 4 + 3 * 4 and rep.failures == []
    by_id = {r["sample_id"]: r for r in rows}
    assert sorted(r["frame"] for r in rows if r["video"] == "000_001" and r["method"] == "Deepfakes") == PICKED
    real = by_id["ffpp/c23/youtube/000/f0007"]
    assert (
        real["label"],
        real["method"],
        real["category"],
        real["group"],
        real["identities"],
        real["source_path"],
    ) == ("real", None, "real", "000", "000", None)
    fake = by_id["ffpp/c23/Deepfakes/001_000/f0011"]
    assert (fake["label"], fake["method"], fake["category"], fake["group"], fake["identities"]) == (
        "fake",
        "Deepfakes",
        "FS",
        "001",
        "001|000",
    )
    # the fake's source is the real crop of its target video at the same frame index
    assert fake["source_path"] == by_id["ffpp/c23/youtube/001/f0011"]["image_path"]
    # paths are relative to the manifest's folder and exist there
    for r in rows:
        assert not Path(r["image_path"]).is_absolute() and r["image_path"].startswith("frames/")
        assert (out.parent / r["image_path"]).is_file()
    report = json.loads((out.parent / "ffpp.import.json").read_text())
    assert report["rows"] == len(rows) and report["failures"] == []


def test_fake_and_source_crops_are_pixel_aligned(ffpp):
    _, out, _ = ffpp
    rows = [r for r in _read(out) if r["method"] == "Deepfakes"]
    assert len(rows) == 8
    for r in rows:
        fake = cv2.imread(str(out.parent / r["image_path"])).astype(int)
        src = cv2.imread(str(out.parent / r["source_path"])).astype(int)
        assert fake.shape == src.shape == (256, 256, 3)
        diff = np.abs(fake - src).max(axis=2)
        # the edit covers the middle of the face (about an eighth of the crop); everywhere else only
        # codec noise remains. Half a frame of motion (3 px) already gives a 75th percentile above 20.
        assert np.percentile(diff, 75) <= 6, r["sample_id"]
        assert (diff > 25).mean() > 0.05, "the fake must differ from its source in the edited face"


def test_fakes_are_cropped_with_the_source_frames_box(ffpp, faces):
    """A fake whose face is a flat patch (no detector finds a face in it) is still imported, with the
    crop of its source frame: the box comes from the source, never from the fake."""
    _, out, _ = ffpp
    base = face_frame(faces["000"])
    with FaceCropper(CropConfig()) as cropper:
        assert cropper.transform(edit(base, 3, "flat")) is None  # premise: nothing to detect in the fake
        assert cropper.transform(moving(base, 3)) is not None
    rows = [r for r in _read(out) if r["method"] == "FaceSwap"]
    assert sorted(r["frame"] for r in rows) == PICKED
    for r in rows:
        fake = cv2.imread(str(out.parent / r["image_path"])).astype(int)
        src = cv2.imread(str(out.parent / r["source_path"])).astype(int)
        diff = np.abs(fake - src).max(axis=2)
        assert np.percentile(diff, 50) <= 6  # hair, background and clothes line up


def test_align_crop_puts_the_eyes_on_deepfakebench_template(faces):
    """mode=align maps the face's eye centres onto DeepfakeBench's template points at scale 1.3;
    a larger scale shows more around the face."""
    from fifa.concept_tree.segmentation.landmarks import MediaPipeFaceMesh
    from fifa.pipelines.importers.facecrop import mesh_points

    # DeepfakeBench's eye targets in a 256 px crop: ArcFace's (38.2946, 51.6963) and (73.5318, 51.5014)
    # in 112 px, scaled by 256/112, shifted by the margin 256*(scale-1)/2, shrunk by 256/(256+2*margin)
    eyes = {1.3: [(96.9, 120.4), (158.8, 120.1)], 2.0: [(107.8, 123.1), (148.0, 122.9)]}
    frame = face_frame(faces["001"])
    mesh = MediaPipeFaceMesh(max_faces=1, refine_landmarks=False)
    try:
        for scale, want in eyes.items():
            with FaceCropper(CropConfig(size=256, scale=scale)) as cropper:
                crop = cropper.transform(frame).apply(frame)
            found = mesh.faces(np.ascontiguousarray(crop[:, :, ::-1]))
            pts = mesh_points(found[0].landmarks)
            assert np.abs(pts[:2] - np.array(want)).max() < 6, (scale, pts[:2], want)
        box = CropConfig(mode="box", size=200, scale=1.5)
        with FaceCropper(box) as cropper:
            crop = cropper.transform(frame).apply(frame)
        x0, y0, x1, y1 = mesh.faces(np.ascontiguousarray(crop[:, :, ::-1]))[0].box
        assert abs(max(x1 - x0, y1 - y0) - 200 / 1.5) < 8  # the landmark box spans 1/scale of the crop
    finally:
        mesh.close()


def test_bad_videos_are_recorded_and_the_rest_go_on(tmp_path, faces):
    """A video that fails to decode and a source without a face: each recorded with a reason,
    everything else imported (AVI files, this time)."""
    root = tmp_path / "FF"
    ffpp_tree(root, faces, n=N_VIDEO, fakes={"Face2Face": {"000_001": "colour"}}, suffix=".avi")
    vids = root / "original_sequences" / "youtube" / "c23" / "videos"
    fakes = root / "manipulated_sequences" / "Face2Face" / "c23" / "videos"
    (vids / "002.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage, not a video" * 10)
    blank = np.full((320, 320, 3), 90, np.uint8)
    write_video(vids / "003.avi", [blank] * N_VIDEO)  # decodes, but shows no face
    for name in ("002_000", "003_000"):
        write_video(fakes / f"{name}.avi", [edit(face_frame(faces["000"]), k, "colour") for k in range(N_VIDEO)])
    out = tmp_path / "m.parquet"
    code = _cli("ffpp", str(root), "--out", str(out), "--frames", "4", "--workers", "0")
    assert code == 0
    rows = {r["sample_id"]: r for r in _read(out)}
    report = json.loads((tmp_path / "m.import.json").read_text())
    failed = {f["item"]: f for f in report["failures"]}
    assert failed[str(vids / "002.avi")]["stage"] == "open"
    # the fake of the undecodable source is imported on its own frames, without a source
    unpaired = [r for r in rows.values() if r["video"] == "002_000"]
    assert len(unpaired) == 4 and all(r["source_path"] is None for r in unpaired)
    # the faceless source: each of its frames recorded, and each frame of its fake
    assert {f["item"] for f in report["failures"] if f["stage"] == "face"} == {
        f"ffpp/c23/youtube/003/f{i:04d}" for i in PICKED
    }
    assert {f["item"] for f in report["failures"] if f["stage"] == "source"} == {
        f"ffpp/c23/Face2Face/003_000/f{i:04d}" for i in PICKED
    }
    assert not any(r["video"] in ("003", "003_000") for r in rows.values())
    # the good pairs are all there
    assert sum(r["video"] in ("000", "001", "000_001") for r in rows.values()) == 12
    assert (
        _cli("ffpp", str(root), "--out", str(tmp_path / "s.parquet"), "--frames", "2", "--workers", "0", "--strict")
        == 1
    )


def test_truncated_video_records_the_missing_frames(tmp_path, faces):
    """An AVI cut in half: its header still says 12 frames, only the first ones decode."""
    root = tmp_path / "FF"
    ffpp_tree(root, {"000": faces["000"]}, n=N_VIDEO, fakes={"Deepfakes": {"000_001": "colour"}}, suffix=".avi")
    fake = root / "manipulated_sequences" / "Deepfakes" / "c23" / "videos" / "000_001.avi"
    data = fake.read_bytes()
    fake.write_bytes(data[: len(data) // 2])
    rep = import_ffpp(root, tmp_path / "m.parquet", FFPPConfig(frames=4, workers=0))
    rows = _read(tmp_path / "m.parquet")
    assert sorted(r["frame"] for r in rows if r["label"] == "real") == PICKED  # the source is untouched
    got = sorted(r["frame"] for r in rows if r["label"] == "fake")
    assert got == [0, 3]
    assert {f.item for f in rep.failures} == {"ffpp/c23/Deepfakes/000_001/f0007", "ffpp/c23/Deepfakes/000_001/f0011"}
    assert all(f.stage == "decode" and "ends earlier" in f.reason for f in rep.failures)


def test_unknown_method_names_it_and_the_file_to_extend(tmp_path, faces, monkeypatch, capsys):
    monkeypatch.delenv("FIFA_METHODS", raising=False)
    root = tmp_path / "FF"
    ffpp_tree(root, {"000": faces["000"]}, n=4, fakes={"MyNewSwap": {"000_001": "colour"}})
    out = tmp_path / "m.parquet"
    assert _cli("ffpp", str(root), "--out", str(out), "--frames", "2", "--workers", "0") == 2
    err = capsys.readouterr().err
    assert "MyNewSwap" in err and "methods.yaml" in err and "--methods" in err and "Traceback" not in err
    assert not out.exists()
    extra = tmp_path / "mine.yaml"
    extra.write_text("methods:\n  MyNewSwap: {category: FE, definition: an edit of ours.}\n")
    assert _cli("ffpp", str(root), "--out", str(out), "--frames", "2", "--workers", "0", "--methods", str(extra)) == 0
    fakes = [r for r in _read(out) if r["label"] == "fake"]
    assert {(r["method"], r["category"]) for r in fakes} == {("MyNewSwap", "FE")} and len(fakes) == 2


@pytest.mark.parametrize("where", ["original_sequences", "empty", "c40"])
def test_pointed_at_the_wrong_folder(tmp_path, faces, capsys, where):
    root = tmp_path / "FF"
    ffpp_tree(root, {"000": faces["000"]}, n=4)
    target = {"original_sequences": root / "original_sequences", "empty": tmp_path}[where] if where != "c40" else root
    extra = ["--compression", "c40"] if where == "c40" else []
    assert _cli("ffpp", str(target), "--out", str(tmp_path / "m.parquet"), "--workers", "0", *extra) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    if where == "original_sequences":
        assert "pass its parent" in err and str(root) in err
    elif where == "empty":
        assert "not a FaceForensics++ folder" in err
    else:
        assert "c23" in err and "--compression" in err  # says which compressions exist


def test_dfd_actors_from_frames_folders_with_limit_and_method(tmp_path, faces):
    """DeepFakeDetection naming (actors), frames read from <c>/frames/<video>/NNN.png, a subset."""
    root = tmp_path / "FF"
    base = face_frame(faces["000"])
    real = root / "original_sequences" / "actors" / "c23" / "frames" / "01__walking"
    fake = root / "manipulated_sequences" / "DeepFakeDetection" / "c23" / "frames" / "01_02__walking__AB12CD34"
    other = root / "manipulated_sequences" / "Deepfakes" / "c23" / "frames" / "000_001"
    for k in range(10):
        for d, img in ((real, moving(base, k)), (fake, edit(base, k, "colour")), (other, edit(base, k, "colour"))):
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / f"{k:03d}.png"), img)
    (fake / "009.png").unlink()  # a frame the fake lacks: the pair uses frames both have
    out = tmp_path / "m.parquet"
    rep = import_ffpp(root, out, FFPPConfig(frames=3, workers=0, source="frames", methods=("DFD",), limit=1))
    rows = {r["sample_id"]: r for r in _read(out)}
    assert rep.failures == [] and len(rows) == 6
    assert sorted(r["frame"] for r in rows.values() if r["label"] == "fake") == [0, 4, 8]
    f = rows["ffpp/c23/DeepFakeDetection/01_02__walking__AB12CD34/f0004"]
    assert (f["group"], f["identities"], f["method"]) == ("01__walking", "DFD:01|DFD:02", "DeepFakeDetection")
    assert f["source_path"] == rows["ffpp/c23/actors/01__walking/f0004"]["image_path"]
    assert not any(r["method"] == "Deepfakes" for r in rows.values())  # --method kept DFD only


def test_a_killed_worker_is_replaced_and_its_task_retried(tmp_path, faces):
    """SIGKILL one worker process in the middle of an import: the pool restarts, the tasks it had in
    flight run again, no row is lost or doubled."""
    import os
    import signal

    import psutil

    root = tmp_path / "FF"
    ffpp_tree(
        root,
        {f"{i:03d}": faces["000" if i % 2 else "001"] for i in range(6)},
        n=6,
        fakes={"Deepfakes": {f"{i:03d}_{(i + 1) % 6:03d}": "colour" for i in range(6)}},
    )
    killed = []

    def progress(done, total, frames):
        if done == 1 and not killed:
            me = os.getpid()
            workers = [
                p
                for p in psutil.Process(me).children(recursive=True)
                if p.ppid() != me and "python" in p.name().lower()
            ]
            assert workers, "no worker processes found"
            os.kill(workers[0].pid, signal.SIGKILL)
            killed.append(workers[0].pid)

    out = tmp_path / "m.parquet"
    rep = import_ffpp(root, out, FFPPConfig(frames=2, workers=2), progress=progress)
    assert killed
    rows = _read(out)
    assert rep.failures == [] and len(rows) == len({r["sample_id"] for r in rows}) == 6 * 2 * 2


def test_ctrl_c_keeps_the_finished_videos(tmp_path, faces):
    """SIGINT to the whole process group (a terminal's Ctrl-C) in the middle of an import: exit 130,
    the manifest holds the source videos finished so far, every row's files exist."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = tmp_path / "FF"
    ffpp_tree(
        root,
        {f"{i:03d}": faces["000" if i % 2 else "001"] for i in range(10)},
        n=8,
        fakes={"Deepfakes": {f"{i:03d}_{(i + 1) % 10:03d}": "colour" for i in range(10)}},
    )
    out = tmp_path / "m.parquet"
    env = dict(os.environ, GLOG_minloglevel="2")
    cmd = [
        sys.executable,
        "-m",
        "fifa.pipelines.cli",
        "import",
        "ffpp",
        str(root),
        "--out",
        str(out),
        "--frames",
        "8",
        "--workers",
        "2",
    ]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "frames").rglob("*.png")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()[-2000:]
    rows = _read(out)
    assert 0 < len(rows) < 10 * 2 * 8
    per_source = {}  # whole source videos (with their fake) only
    for r in rows:
        per_source.setdefault(r["group"], []).append(r)
    assert all(len(v) == 2 * 8 for v in per_source.values())
    assert all((tmp_path / r["image_path"]).is_file() for r in rows)
    report = json.loads((tmp_path / "m.import.json").read_text())
    assert any(n.startswith("interrupted") for n in report["notes"])
