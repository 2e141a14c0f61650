"""Fixtures of the build / export / release tests: real forged pairs annotated by the real annotator.

``annotated`` (session): ``fifa.annotator.forge.forge`` -> a manifest regrouped into one group per
base image (about 20 groups), with identities linking some groups (as FF++ fakes link a target and
a source identity) and one row whose image is missing (it fails), annotated offline by
``run_annotation``, which passes the manifest's ``identities`` through to the annotation rows.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:  # pytest runs with --import-mode=importlib: make build_helpers importable
    sys.path.insert(0, _here)

from build_helpers import build_config  # noqa: E402


def _regroup(manifest: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(manifest).to_pylist()
    for r in t:
        src = r["source_path"] or r["image_path"]
        r["group"] = Path(src).stem
    groups = sorted({r["group"] for r in t})
    for i, r in enumerate(x for x in t if x["label"] == "fake"):
        if i % 4 == 0:  # this fake also shows the identity of the next group: the two groups are linked
            other = groups[(groups.index(r["group"]) + 1) % len(groups)]
            r["identities"] = f"{r['group']}|{other}"
        else:
            r["identities"] = None
    for r in t:
        r.setdefault("identities", None)
    real = next(r for r in t if r["label"] == "real")
    t.append(
        dict(
            real,
            sample_id="fake_broken_missing",
            image_path="images/fake/missing.png",
            source_path=real["image_path"],
            label="fake",
            method="Blur",
            category="FE",
            identities=None,
            truth=[],
            truth_target=None,
            edit=None,
        )
    )
    out = manifest.with_name("manifest_grouped.parquet")
    pq.write_table(
        pa.Table.from_pylist(t, schema=pq.read_schema(manifest).append(pa.field("identities", pa.string()))), out
    )
    return out


def _check_identities_carried(ann: Path, manifest: Path) -> None:
    """The annotator passes the manifest's identities through to its rows (the build relies on it)."""
    import pyarrow.parquet as pq

    from fifa.annotator.store import read_annotations

    want = dict(zip(*pq.read_table(manifest, columns=["sample_id", "identities"]).to_pydict().values()))
    got = dict(zip(*read_annotations(ann, ["sample_id", "identities"]).to_pydict().values()))
    assert got == want and any(got.values())


@pytest.fixture(scope="session")
def annotated(tmp_path_factory) -> dict:
    from fifa.annotator.forge import forge
    from fifa.annotator.run import AnnotateConfig, run_annotation

    d = tmp_path_factory.mktemp("annotated")
    manifest = _regroup(forge(d / "forged", n=36, seed=11))
    ann = d / "ann"
    run_annotation(manifest, ann, AnnotateConfig(progress=False, workers=1))
    _check_identities_carried(ann, manifest)
    return {"root": d, "ann": ann, "manifest": manifest, "images": d / "forged" / "images"}


@pytest.fixture(scope="session")
def built(annotated, tmp_path_factory) -> Path:
    from fifa.pipelines.build import build

    out = tmp_path_factory.mktemp("built") / "build"
    build([annotated["ann"]], out, build_config())
    return out
