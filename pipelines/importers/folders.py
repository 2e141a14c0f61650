"""Plain folder importer: ``real/``, ``fake/<method>/`` and optional ``source/``.

Layout::

    ROOT/real/[sub/]name.jpg            real images
    ROOT/fake/<method>/[sub/]name.png   fakes, by method (looked up in the method table)
    ROOT/source/[sub/]name.jpg          optional: the pristine image a fake was made from

A fake's source is ``source/<same relative path>`` when it exists, else the one file in
``source/`` with the same file name stem (any image suffix); none or several: no source (a
note counts them). ``group``: the first sub-folder under ``real/``, ``fake/<method>/`` or
``source/`` when images sit in sub-folders (one per identity or video), else the file stem; a
fake with a source takes its source's group. Images are used in place (paths relative to the
manifest's folder).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from fifa.pipelines.methods import load_methods

from .report import Failure, ImportLayoutError, ImportReport, finish, rel_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class FoldersConfig:
    prefix: str = "folders"  # sample ids: <prefix>/real/<relative path>, <prefix>/fake/<method folder>/<relative path>
    methods_file: Path | None = None


def _images(d: Path) -> list[Path]:
    return sorted(
        p
        for p in d.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(d).parts)
    )


def _group(rel: Path) -> str:
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _check(root: Path) -> None:
    if (root / "real").is_dir() or (root / "fake").is_dir():
        return
    hint = f" (pass its parent {root.parent})" if root.name in ("real", "fake", "source") else ""
    raise ImportLayoutError(
        f"{root} has neither real/ nor fake/<method>/{hint}: expected ROOT/real/*.jpg, "
        "ROOT/fake/<method>/*.png and optionally ROOT/source/*.jpg"
    )


def import_folders(root: str | Path, out: str | Path, config: FoldersConfig = FoldersConfig()) -> ImportReport:
    """Import a real/ fake/<method>/ [source/] tree into the manifest ``out``."""
    started = time.perf_counter()
    root, out = Path(root), Path(out)
    _check(root)
    table = load_methods(config.methods_file)
    fake_dirs = sorted(p for p in (root / "fake").iterdir() if p.is_dir()) if (root / "fake").is_dir() else []
    methods = {d: table.canonical(d.name) for d in fake_dirs}  # unknown method: error before any row
    src_dir = root / "source"
    by_rel: dict[Path, Path] = {}
    by_stem: dict[str, list[Path]] = {}
    if src_dir.is_dir():
        for p in _images(src_dir):
            rel = p.relative_to(src_dir)
            by_rel[rel] = p
            by_stem.setdefault(p.stem, []).append(p)
    rows: list[dict] = []
    failures: list[Failure] = []
    base = out.parent
    for p in _images(root / "real") if (root / "real").is_dir() else []:
        rel = p.relative_to(root / "real")
        rows.append(_row(f"{config.prefix}/real", None, "real", rel, p, None, _group(rel), base))
    unpaired = ambiguous = 0
    for d in fake_dirs:
        method = methods[d]
        images = _images(d)
        if not images:
            failures.append(Failure(str(d), f"no images in fake/{d.name}/", "missing"))
        for p in images:
            rel = p.relative_to(d)
            src = by_rel.get(rel)
            if src is None and src_dir.is_dir():
                cands = by_stem.get(p.stem, [])
                src = cands[0] if len(cands) == 1 else None
                ambiguous += len(cands) > 1
            unpaired += src is None and src_dir.is_dir()
            group = _group(src.relative_to(src_dir)) if src is not None else _group(rel)
            rows.append(
                _row(f"{config.prefix}/fake/{d.name}", method, table.category(method), rel, p, src, group, base)
            )
    notes = []
    if unpaired:
        notes.append(
            f"{unpaired} fake(s) without a matching image in source/ ({ambiguous} with several same-named candidates)"
        )
    if not rows and not failures:
        failures.append(Failure(str(root), "no images under real/ or fake/<method>/", "missing"))
    return finish("folders", rows, failures, out, started=started, notes=notes)


def _row(
    prefix: str, method: str | None, category: str, rel: Path, path: Path, src: Path | None, group: str, base: Path
) -> dict:
    return {
        "sample_id": f"{prefix}/{rel.as_posix()}",  # the folder's own name: stable, unique per file
        "image_path": rel_path(path, base),
        "source_path": rel_path(src, base) if src is not None else None,
        "label": "real" if method is None else "fake",
        "method": method,
        "category": category,
        "group": group,
    }
