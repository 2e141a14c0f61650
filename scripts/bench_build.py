"""Speed and memory of `fifa-data build` + `fifa-data release` at FiFa-Instruct-1M scale.

Real annotations (forged pairs annotated offline by the real annotator) are replicated columnar into
N annotation rows with new sample ids, groups (five images per group, one real and four fakes, as in
FF++) and identities linking some groups; then `build` and `release --images reference` run in a child
process whose process tree is sampled for RSS. Two sizes show how throughput grows: about 100,000
instruction rows (the baseline) and 100,000 annotations (>= 1.38M rows).

    nice -n 5 python scripts/bench_build.py --annotations 100000 --small 7300 --work /tmp/bench_build
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchkit import TreeSampler, machine


def seed_annotations(work: Path) -> Path:
    ann = work / "seed" / "ann"
    if (ann / "annotations").is_dir():
        return ann
    from fifa.annotator.forge import forge
    from fifa.annotator.run import AnnotateConfig, run_annotation

    man = forge(work / "seed" / "forged", n=80, seed=21)
    run_annotation(man, ann, AnnotateConfig(progress=False, workers=2))
    return ann


def synthesise(seed_ann: Path, n: int, out: Path, shard_rows: int = 5000) -> Path:
    """``n`` annotation rows made of the seed's ok rows (columnar: take + new id / group columns)."""
    from fifa.annotator.store import read_annotations

    if (out / "annotations").is_dir() and (out / "n.txt").is_file() and (out / "n.txt").read_text() == str(n):
        return out
    t = read_annotations(seed_ann)
    t = t.filter(pc.equal(t["status"], "ok"))
    real = np.flatnonzero(np.asarray(t["label"].to_pylist()) == "real")
    fake = np.flatnonzero(np.asarray(t["label"].to_pylist()) == "fake")
    k = np.arange(n)
    pick = np.where(k % 5 == 0, real[k % len(real)], fake[(k * 7) % len(fake)])  # 1 real : 4 fakes per group
    rows = t.take(pa.array(pick))
    sid = pc.binary_join_element_wise(rows["sample_id"], pa.array([f"{i:07d}" for i in k]), "_")
    group = pa.array([f"g{i // 5:06d}" for i in k])
    ident = pa.array([f"g{i // 5:06d}|g{(i // 5 + 1) % (n // 5 + 1):06d}" if i % 50 == 1 else None for i in k])
    rows = rows.set_column(rows.schema.get_field_index("sample_id"), "sample_id", sid)
    rows = rows.set_column(rows.schema.get_field_index("group"), "group", group)
    rows = rows.set_column(rows.schema.get_field_index("identities"), "identities", ident)
    d = out / "annotations"
    d.mkdir(parents=True, exist_ok=True)
    for j, s in enumerate(range(0, n, shard_rows)):
        pq.write_table(rows.slice(s, shard_rows), d / f"part-{j + 1:06d}-bench.parquet", compression="zstd")
    (out / "n.txt").write_text(str(n))
    return out


CHILD = r"""
import json, sys, time
from fifa.pipelines.build import BuildConfig, build
from fifa.pipelines.release import ReleaseConfig, release
ann, out, rel = sys.argv[1:4]
t0 = time.perf_counter()
s = build([ann], out, BuildConfig(seed=0))
t1 = time.perf_counter()
r = release(out, rel, ReleaseConfig(version="bench"))
t2 = time.perf_counter()
rows = sum(s.rows.values())
print(json.dumps({"rows": rows, "bench": s.bench, "annotations": s.annotations["kept"], "build_s": t1 - t0,
                  "release_s": t2 - t1}))
"""


def run_child(ann: Path, out: Path, rel: Path) -> dict:
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(ann), str(out), str(rel)], stdout=subprocess.PIPE, text=True)
    with TreeSampler(p.pid, every=0.05) as tree:
        stdout, _ = p.communicate()
    res = json.loads(stdout.strip().splitlines()[-1])
    res["peak_rss_mb"] = round(tree.peak_mb, 1)
    res["total_s"] = res["build_s"] + res["release_s"]
    res["rows_per_s"] = round(res["rows"] / res["total_s"], 1)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--annotations", type=int, default=100_000)
    ap.add_argument("--small", type=int, default=7300, help="annotations of the baseline run (~100k rows)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_build"))
    ap.add_argument("--json", type=Path, default=None, help="also write the result to this file")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    seed = seed_annotations(a.work)
    results = {}
    for name, n in (("small", a.small), ("large", a.annotations)):
        ann = synthesise(seed, n, a.work / f"ann_{name}")
        results[name] = run_child(ann, a.work / f"build_{name}", a.work / f"release_{name}")
        print(name, json.dumps(results[name]), flush=True)
    s, big = results["small"], results["large"]
    results["growth"] = {
        "rows_ratio": round(big["rows"] / s["rows"], 2),
        "rows_per_s_ratio": round(big["rows_per_s"] / s["rows_per_s"], 3),
    }
    results["machine"] = machine()
    print(json.dumps(results, indent=2))
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
