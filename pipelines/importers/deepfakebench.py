"""DeepfakeBench dataset JSON importer (its ``preprocessing/rearrange.py`` output).

Nesting, as ``rearrange.py`` writes it and ``training/dataset/abstract_dataset.py`` reads it::

    {dataset: {label: {split: {compression: {video: {"label": label, "frames": [...], "masks": [...]}}}}}}

``split`` is ``train`` / ``val`` / ``test``; the ``compression`` level (``raw``/``c23``/``c40``)
exists only for the FaceForensics++ family (FaceForensics++, FF-DF, FF-F2F, FF-FS, FF-NT,
DeepFakeDetection, FaceShifter); the other datasets put videos right under the split. Frame
paths are absolute, or relative to DeepfakeBench's ``rgb_dir`` (``--root``), with ``/`` or
Windows ``\\`` separators. The frames are DeepfakeBench's own face crops: they are used in
place, not re-cropped.

Labels map to methods (``FF-DF`` -> Deepfakes, ``CelebDFv2_fake`` -> CelebDF, ...; see
:data:`LABEL_METHODS`); a ``*_real``/``*-real`` label is real; any other label is looked up
in the method table after dropping a ``_fake`` suffix, so ``--methods FILE`` can add one.
A video listed under several splits (DeepfakeBench repeats some test videos as ``val``)
becomes one row per frame whose ``official_split`` lists every split, ``|``-separated.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fifa.pipelines.methods import MethodTable, load_methods

from .identity import video_identity
from .report import Failure, ImportLayoutError, ImportReport, finish, rel_path
from .video import frame_indices

LABEL_METHODS = {
    "FF-DF": "Deepfakes",
    "FF-F2F": "Face2Face",
    "FF-FS": "FaceSwap",
    "FF-NT": "NeuralTextures",
    "FF-FH": "FaceShifter",
    "FF-SH": "FaceShifter",
    "DFD_fake": "DeepFakeDetection",
    "CelebDFv1_fake": "CelebDF",
    "CelebDFv2_fake": "CelebDF",
    "DFDCP_FakeA": "DFDC",
    "DFDCP_FakeB": "DFDC",
    "DFDC_Fake": "DFDC",
    "DF_fake": "DeeperForensics",
    "UADFV_Fake": "UADFV",
    "roop_Fake": "InSwapper",
}
SPLITS = {"train": "train", "val": "validation", "test": "test"}
COMPRESSIONS = ("raw", "c23", "c40")
_REAL = re.compile(r"(^|[_-])real$", re.IGNORECASE)
_FAKE_SUFFIX = re.compile(r"[_-]fake[A-Za-z]?$", re.IGNORECASE)


@dataclass(frozen=True)
class DFBConfig:
    root: Path | None = None  # DeepfakeBench's rgb_dir: base of relative frame paths
    compression: str = "c23"  # for the FaceForensics++ family
    frames: int = 0  # frames per video, evenly spaced; 0 = every frame listed
    datasets: tuple[str, ...] | None = None  # only these top-level datasets
    pair: bool = True  # fakes of FF++/DFD/Celeb-DF get the same-named frame of their source video
    methods_file: Path | None = None


@dataclass(frozen=True)
class _Video:
    dataset: str
    label: str
    compression: str | None
    name: str
    frames: tuple[str, ...]
    masks: tuple[str, ...]
    splits: tuple[str, ...]


def label_method(label: str, table: MethodTable) -> str | None:
    """The canonical method of a DeepfakeBench label; None for a real label."""
    if _REAL.search(label):
        return None
    if label in LABEL_METHODS:
        return table.canonical(LABEL_METHODS[label])
    return table.canonical(_FAKE_SUFFIX.sub("", label) or label)


def family_of(dataset: str, label: str) -> str | None:
    if label.startswith("DFD"):
        return "dfd"
    if label.startswith("FF-") or dataset in ("FaceForensics++", "FaceShifter"):
        return "ffpp"
    if label.lower().startswith("celebdf") or dataset.lower().startswith("celeb-df"):
        return "celebdf"
    return None


def _is_video(node: object) -> bool:
    return isinstance(node, dict) and "frames" in node


def read_videos(doc: dict, source: str, config: DFBConfig) -> tuple[list[_Video], list[str]]:
    """Every video of a DeepfakeBench JSON document, merged across splits; and notes."""
    if not isinstance(doc, dict) or not doc or not all(isinstance(v, dict) for v in doc.values()):
        raise ImportLayoutError(
            f"{source} is not a DeepfakeBench dataset JSON: expected "
            "{dataset: {label: {split: {[compression:] {video: {label, frames}}}}}}"
        )
    merged: dict[tuple, dict] = {}
    notes: list[str] = []
    for dataset, labels in doc.items():
        if config.datasets and dataset not in config.datasets:
            continue
        for label, splits in labels.items():
            if not isinstance(splits, dict) or not (set(splits) & set(SPLITS)):
                raise ImportLayoutError(
                    f"{source}: {dataset}/{label} has no train/val/test splits "
                    f"(keys: {sorted(splits)[:5] if isinstance(splits, dict) else splits!r})"
                )
            for split, node in splits.items():
                if split not in SPLITS or not isinstance(node, dict):
                    continue
                if _is_video(node):  # DeepfakeBench's DFDC writer stores one video as the split itself
                    notes.append(f"{source}: {dataset}/{label}/{split} is a single video entry, not a split: skipped")
                    continue
                comp = None
                if node and set(node) <= set(COMPRESSIONS) and not any(_is_video(v) for v in node.values()):
                    comp = config.compression
                    node = node.get(comp, {})
                for video, info in node.items():
                    if not _is_video(info):
                        continue
                    key = (dataset, label, comp, video)
                    m = merged.setdefault(
                        key, {"frames": info.get("frames") or [], "masks": info.get("masks") or [], "splits": []}
                    )
                    m["splits"].append(SPLITS[split])
    videos = [
        _Video(d, lab, c, v, tuple(m["frames"]), tuple(m["masks"]), tuple(dict.fromkeys(m["splits"])))
        for (d, lab, c, v), m in merged.items()
    ]
    return videos, notes


def _norm(p: str) -> str:
    return p.replace("\\", "/")


def _frame_key(p: str) -> tuple:
    stem = Path(_norm(p)).stem
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


def _resolve(p: str, root: Path) -> Path:
    q = Path(_norm(p))
    return q if q.is_absolute() else root / q


def _check_root(videos: list[_Video], root: Path, source: str) -> None:
    sample = [f for v in videos[:50] for f in v.frames[:1]]
    rel = [f for f in sample if not Path(_norm(f)).is_absolute()]
    if rel and not any(_resolve(f, root).exists() for f in rel):
        raise ImportLayoutError(
            f"{source}: frame paths are relative (e.g. {_norm(rel[0])!r}) and none is found under {root}: "
            "pass --root DIR, DeepfakeBench's rgb_dir that they are relative to"
        )


def import_deepfakebench(
    json_paths: Iterable[str | Path], out: str | Path, config: DFBConfig = DFBConfig()
) -> ImportReport:
    """Import one or more DeepfakeBench dataset JSON files into the manifest ``out``."""
    started = time.perf_counter()
    out = Path(out)
    table = load_methods(config.methods_file)
    videos: list[_Video] = []
    notes: list[str] = []
    roots: list[Path] = []
    for jp in json_paths:
        jp = Path(jp)
        try:
            doc = json.loads(jp.read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ImportLayoutError(f"{jp} is not valid JSON: {e}") from None
        got, n = read_videos(doc, str(jp), config)
        root = Path(config.root) if config.root else jp.parent
        _check_root(got, root, str(jp))
        videos += got
        roots += [root] * len(got)
        notes += n
    methods = {v.label: label_method(v.label, table) for v in videos}  # unknown label: error, before any row
    rows, failures = _rows(videos, roots, methods, table, out.parent, config)
    return finish("deepfakebench", rows, failures, out, started=started, notes=notes)


def _rows(videos, roots, methods, table, base: Path, config: DFBConfig) -> tuple[list[dict], list[Failure]]:
    reals: dict[tuple, dict[str, Path]] = {}  # (dataset, compression, family, video) -> frame file name -> path
    for v, root in zip(videos, roots):
        if methods[v.label] is None:
            reals[(v.dataset, v.compression, family_of(v.dataset, v.label), v.name)] = {
                Path(_norm(f)).name: _resolve(f, root) for f in v.frames
            }
    rows: dict[str, dict] = {}
    failures: list[Failure] = []
    for v, root in zip(videos, roots):
        method = methods[v.label]
        fam = family_of(v.dataset, v.label)
        vid = video_identity(v.name, fam, fake=method is not None)
        frames = sorted(v.frames, key=_frame_key)
        if config.frames:
            frames = [frames[k] for k in frame_indices(len(frames), config.frames)]
        masks = {Path(_norm(m)).name: _resolve(m, root) for m in v.masks}
        src_frames = reals.get((v.dataset, v.compression, fam, vid.source)) if config.pair and vid.source else None
        comp = f"{v.compression}/" if v.compression else ""
        if not frames:
            failures.append(Failure(f"{v.dataset}/{v.label}/{v.name}", "no frames listed", "missing"))
        for f in frames:
            path = _resolve(f, root)
            name = Path(_norm(f)).name
            sid = f"dfb/{v.dataset}/{comp}{v.label}/{v.name}/{Path(name).stem}"
            if sid in rows:
                continue
            if not path.is_file():
                failures.append(Failure(sid, f"frame file not found: {path}", "missing"))
                continue
            src = src_frames.get(name) if src_frames else None
            row = {
                "sample_id": sid,
                "image_path": rel_path(path, base),
                "source_path": rel_path(src, base) if src is not None and src.is_file() else None,
                "label": "real" if method is None else "fake",
                "method": method,
                "category": "real" if method is None else table.category(method),
                "group": vid.group,
                "identities": vid.identities,
                "video": v.name,
                "frame": _frame_key(f)[1] if _frame_key(f)[0] == 0 else None,
                "collection": v.dataset,
                "official_split": "|".join(v.splits),
                "dfb_label": v.label,
            }
            if name in masks and masks[name].is_file():
                row["mask_path"] = rel_path(masks[name], base)
            rows[sid] = row
    return list(rows.values()), failures
