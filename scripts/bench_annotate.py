#!/usr/bin/env python
"""Benchmarks of `fifa-annotate` (numbers go to docs/annotator.md).

    python scripts/bench_annotate.py accuracy [--seed 11 21 31 --n 80 --sets forge lfw heldout diffuse]
    python scripts/bench_annotate.py accuracy --sets diffuse --diff area_sigma=0 trim_ratio=0   # before
    python scripts/bench_annotate.py diffcost [--baseline-rev main]
    python scripts/bench_annotate.py offline  [--rows 400] [--ray]
    python scripts/bench_annotate.py openai   [--rows 320 --latency 0.2 --concurrency 32]
    python scripts/bench_annotate.py memory   [--rows 20000]
    python scripts/bench_annotate.py all

Pairs are forged from the bundled public-domain photos (384 px variants), reused many
times in the manifest under distinct sample ids. ``accuracy`` scores the annotator on forge
seeds, on the forge with the lfw faces and on scripts/heldout_pairs.py (other edit code), per
edit kind and encoding, with the re-encoded-only pairs shown as suspected fakes (they must get no
region); ``diffcost`` times the artifact mask against a git revision in one process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchkit import TreeSampler, machine

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def forged_384(work: Path, n: int = 120, seed: int = 1) -> list[dict]:
    from fifa.annotator.forge import forge

    man = forge(work / "forged", n=n, seed=seed)
    rows = pq.read_table(man).to_pylist()
    base = man.parent
    out = []
    for r in rows:
        if r["label"] != "fake" or "_384" not in (r["source_path"] or ""):
            continue
        out.append(
            dict(
                sample_id=r["sample_id"],
                image_path=str(base / r["image_path"]),
                source_path=str(base / r["source_path"]),
                label="fake",
                method=r["method"],
                category=r["category"],
                group=r["group"],
            )
        )
    return out


def replicate(rows: list[dict], n: int, path: Path) -> Path:
    out = []
    i = 0
    while len(out) < n:
        r = dict(rows[i % len(rows)])
        r["sample_id"] = f"{r['sample_id']}__{i}"
        out.append(r)
        i += 1
    pq.write_table(pa.Table.from_pylist(out), path)
    return path


def ffpp_like(rows: list[dict], n: int, per_source: int, work: Path, path: Path) -> Path:
    """``n`` pairs, ``per_source`` fakes per distinct source file, in FF++ order (method by method:
    the fakes of one source are n / per_source rows apart). Sources are hard links with distinct
    paths, so every one is a new image to the annotator."""
    by_src: dict[str, list[dict]] = {}
    for r in rows:
        by_src.setdefault(r["source_path"], []).append(r)
    usable = [(s, fs) for s, fs in by_src.items() if len(fs) >= per_source]
    n_src = n // per_source
    links = work / "ffpp_sources"
    links.mkdir(exist_ok=True)
    out = []
    for m in range(per_source):  # "method" m
        for v in range(n_src):  # "video" v
            src, fakes = usable[v % len(usable)]
            link = links / f"v{v:05d}{Path(src).suffix}"
            if not link.exists():
                os.link(src, link)
            r = dict(fakes[m])
            r["sample_id"] = f"m{m}_v{v:05d}"
            r["source_path"] = str(link)
            out.append(r)
    pq.write_table(pa.Table.from_pylist(out), path)
    return path


LAST_CPU = [0.0, 0.0]  # CPU seconds (user+sys) of the last fifa-annotate run: all its processes, its main process


def run_cli(args: list[str], env: dict | None = None) -> tuple[float, int, subprocess.CompletedProcess]:
    e = dict(os.environ, GLOG_minloglevel="2")
    e.update(env or {})

    t0 = time.perf_counter()
    p = subprocess.Popen(
        [str(BIN / "fifa-annotate"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e
    )
    with TreeSampler(p.pid, every=0.2) as s:
        out, err = p.communicate()
    dt = time.perf_counter() - t0
    LAST_CPU[0] = s.cpu_s  # last sample of every process of the run (a lower bound)
    LAST_CPU[1] = s.root_cpu_s
    if p.returncode != 0:
        print(err[-3000:], file=sys.stderr)
        raise SystemExit(f"fifa-annotate failed ({p.returncode})")
    return dt, s.peak, subprocess.CompletedProcess(p.args, p.returncode, out, err)


OFFLINE_CASES = {  # label -> extra command-line options
    "source-cache": [],
    "ffpp-like-5-per-source": [],
    "no-cache": [],
    "source-cache-ray": ["--executor", "ray"],  # the same rows on a local Ray cluster
    "source-cache-1-worker": [],  # the same rows on one worker: the scaling baseline
}


def bench_offline(work: Path, rows: int, workers: int, ray: bool = False, cases: list[str] | None = None) -> dict:
    base = forged_384(work)
    res = {}
    names = cases or ["source-cache", "ffpp-like-5-per-source", "no-cache"] + (["source-cache-ray"] if ray else [])
    for label, extra in ((n, OFFLINE_CASES[n]) for n in names):
        if label.startswith("ffpp"):
            man = ffpp_like(base, rows, 5, work, work / f"offline_{label}.parquet")
        else:
            man = replicate(base, rows, work / f"offline_{label}.parquet")
        out = work / f"off_{label}"
        env = {"FIFA_SEGMENT_CACHE": "0"} if label == "no-cache" else {}
        n_workers = 1 if label.endswith("-1-worker") else workers
        dt, peak, p = run_cli(
            ["run", "--manifest", str(man), "--out", str(out), "--workers", str(n_workers), "--no-progress", *extra],
            env,
        )
        run = json.loads((out / "run.json").read_text())
        inv = run["invocations"][-1]
        cpu = LAST_CPU[0]
        res[label] = {
            "rows": rows,
            "wall_s": round(dt, 2),
            "run_rows_per_s": inv["rows_per_s"],
            "wall_rows_per_s": round(rows / dt, 1),
            "cpu_s_all_processes": round(cpu, 1),
            "cpu_ms_per_row": round(1000 * cpu / rows, 1),
            "main_process_cpu_ms_per_row": round(1000 * LAST_CPU[1] / rows, 1),
            "workers": n_workers,
            "rows_per_s_if_dedicated_cores": round(rows / (cpu / n_workers), 1),
            "load_avg_1min_after": os.getloadavg()[0],
            "peak_rss_mb": round(peak / 2**20),
        }
    return res


def bench_openai(work: Path, rows: int, latency: float, concurrency: int, workers: int) -> dict:
    base = forged_384(work)
    man = replicate(base, rows, work / "openai.parquet")
    srv = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "testkit" / "fake_llm_server.py"), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = srv.stdout.readline().strip()
        out = work / "openai_out"
        dt, peak, p = run_cli(
            [
                "run",
                "--manifest",
                str(man),
                "--out",
                str(out),
                "--llm",
                "openai",
                "--base-url",
                url,
                "--model",
                "bench",
                "--concurrency",
                str(concurrency),
                "--workers",
                str(workers),
                "--no-cache",
                "--no-progress",
            ],
            {"OPENAI_API_KEY": "sk-bench"},
        )
        stage = bench_llm_stage(base, url, rows, concurrency)
    finally:
        srv.terminate()
        srv.wait()
    run = json.loads((out / "run.json").read_text())
    inv = run["invocations"][-1]
    ideal = concurrency / latency
    return {
        "ideal_requests_per_s": ideal,
        "llm_stage": dict(stage, share_of_ideal=round(stage["requests_per_s"] / ideal, 3)),
        "end_to_end": {
            "rows": rows,
            "latency_s": latency,
            "concurrency": concurrency,
            "wall_s": round(dt, 2),
            "llm_calls": inv["llm_calls"],
            "rows_per_s": inv["rows_per_s"],
            "cpu_s_all_processes": round(LAST_CPU[0], 1),
            "peak_rss_mb": round(peak / 2**20),
        },
    }


def bench_llm_stage(base_rows: list[dict], url: str, n: int, concurrency: int) -> dict:
    """Requests/s of the explainer alone: contexts (JPEGs, regions, stats) prepared by the CPU stage
    once, then sent with `concurrency` threads, as the run's LLM pool does."""
    import concurrent.futures as cf

    from fifa.annotator import worker
    from fifa.annotator.explain_openai import OpenAIExplainer
    from fifa.core.llm import OpenAIConfig

    worker.init_worker(worker.WorkerConfig(explainer="openai"))
    ctxs = [c for c in (worker.process_row(r).ctx for r in base_rows) if c is not None and c.regions]
    ctxs = [ctxs[i % len(ctxs)] for i in range(n)]
    ex = OpenAIExplainer(OpenAIConfig(model="bench", base_url=url, api_key="sk-bench", timeout=30, cache_dir=None))
    jpeg_kb = sum(len(c.image_jpeg or b"") + len(c.source_jpeg or b"") for c in ctxs) / len(ctxs) / 1024
    with cf.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(ex.explain, ctxs[:concurrency]))  # warm the connection pool
        t0 = time.perf_counter()
        res = list(pool.map(ex.explain, ctxs))
        dt = time.perf_counter() - t0
    ex.close()
    return {
        "requests": n,
        "ok": sum(r.ok for r in res),
        "wall_s": round(dt, 2),
        "requests_per_s": round(n / dt, 1),
        "mean_latency_s": round(sum(r.latency_s for r in res) / n, 3),
        "jpeg_kb_per_request": round(jpeg_kb, 1),
    }


def bench_memory(work: Path, rows: int, workers: int) -> dict:
    base = forged_384(work)
    man = replicate(base, rows, work / "memory.parquet")
    out = work / "memory_out"
    dt, peak, p = run_cli(
        ["run", "--manifest", str(man), "--out", str(out), "--workers", str(workers), "--no-progress"]
    )
    run = json.loads((out / "run.json").read_text())
    return {
        "rows": rows,
        "wall_s": round(dt, 1),
        "rows_per_s": run["invocations"][-1]["rows_per_s"],
        "peak_rss_mb_all_processes": round(peak / 2**20),
        "counts": run["counts"],
    }


def accuracy_set(work: Path, family: str, seed: int, n: int) -> Path:
    """A forged manifest: ``forge`` (bundled faces), ``lfw`` (forge with the lfw faces at 224 px),
    ``heldout`` (scripts/heldout_pairs.py: other edit code, sizes and encodings) or ``diffuse`` (the
    held-out generator's skin smoothing, lighting and iris recolouring only, every fake JPEG: half
    the pairs JPEG on both sides)."""
    from fifa.annotator.forge import forge

    out = work / f"{family}{seed}"
    if family == "forge":
        return forge(out, n=n, seed=seed)
    if family == "lfw":
        return forge(out, n=n, seed=seed, identities="lfw", identity_size=224)
    from heldout_pairs import DIFFUSE, make  # scripts/heldout_pairs.py

    if family == "diffuse":
        return make(out, n=n, seed=seed, negatives=max(8, n // 5), kinds=DIFFUSE, jpeg_pairs=0.5, jpeg_fakes=0.5)
    return make(out, n=n, seed=seed, negatives=max(8, n // 5))


def bench_accuracy(work: Path, families: list[str], seeds: list[int], n: int, diff=None) -> dict:
    """Annotate each set (re-encoded pairs shown as suspected fakes) and score it against its truth."""
    from fifa.annotator.evaluate import evaluate_run, summarize, suspect_manifest
    from fifa.annotator.run import AnnotateConfig, run_annotation

    cfg = AnnotateConfig(progress=False) if diff is None else AnnotateConfig(progress=False, diff=diff)
    sets, pooled = [], {}
    for family in families:
        for seed in seeds:
            man = accuracy_set(work, family, seed, n)
            out = work / f"{family}{seed}_ann"
            run_annotation(suspect_manifest(man), out, cfg)
            ev, samples = evaluate_run(man, out)
            d = ev.to_dict()
            d.update(family=family, seed=seed, macro_recall=macro_recall(d))
            sets.append(d)
            s, neg = pooled.setdefault(family, ([], []))
            s.extend(samples)
            neg.extend(ev.negative_samples)
    pooled_d = {f: summarize(s, neg).to_dict() for f, (s, neg) in pooled.items()}
    for d in pooled_d.values():
        d["macro_recall"] = macro_recall(d)
    return {"sets": sets, "pooled": pooled_d}


def macro_recall(d: dict) -> float:
    """Anchor recall averaged over edit kinds (each kind counts the same, however many anchors it has)."""
    per = [x["recall"] for x in d["per_method"].values()]
    return float(sum(per) / len(per)) if per else d["recall"]


def diff_overrides(pairs: list[str]):
    """A DiffConfig from ``KEY=VALUE`` overrides (e.g. ``area_sigma=0 trim_ratio=0``: the per-pixel test
    alone, as before the area-level terms), or None without overrides."""
    if not pairs:
        return None
    import dataclasses

    from fifa.annotator.diffmask import DiffConfig

    types = {f.name: f.type for f in dataclasses.fields(DiffConfig)}
    kw = {}
    for p in pairs:
        k, _, v = p.partition("=")
        if k not in types:
            raise SystemExit(f"--diff: unknown DiffConfig field {k!r} (one of {', '.join(types)})")
        kw[k] = float(v)
    return DiffConfig(**kw)


def accuracy_tables(acc: dict) -> str:
    """Markdown: one row per set, then per edit kind and per encoding of each family (pooled); macro
    recall = recall averaged over edit kinds."""

    def row(name, d):
        m = f"{d['macro_recall']:.3f}" if "macro_recall" in d else ""
        return (
            f"| {name} | {d['n']} | {d['recall']:.3f} | {m} | {d['precision']:.3f} | {d['iou_median']:.3f} | "
            f"{d.get('empty', 0)} |"
        )

    head = "| {} | n | recall | macro recall | precision | IoU median | empty masks |\n|---|---|---|---|---|---|---|"
    lines = [head.format("set")]
    for d in acc["sets"]:
        neg = d.get("negatives") or {}
        name = (
            f"{d['family']} seed {d['seed']} (re-encoded: {neg.get('with_regions', 0)}/{neg.get('n', 0)} with regions)"
        )
        lines.append(row(name, d))
    for fam, d in acc["pooled"].items():
        lines += [
            "",
            f"**{fam}** (pooled): "
            + (
                f"re-encoded pairs with a region {d['negatives']['with_regions']}/"
                f"{d['negatives']['n']}, with a mask {d['negatives']['with_mask']}"
                if d["negatives"]
                else ""
            ),
            "",
            head.format("edit kind"),
        ]
        lines += [row(m, x) for m, x in d["per_method"].items()] + [row("all (pooled)", d)]
        lines += ["", head.format("encoding")] + [row(e, x) for e, x in d["per_encoding"].items()]
    return "\n".join(lines)


def bench_diffcost(work: Path, baseline_rev: str, pairs: int = 60, rounds: int = 5) -> dict:
    """CPU time of ``artifact_mask`` now and at ``baseline_rev`` (git), in one process, interleaved."""
    import importlib.util

    import cv2

    from fifa.annotator import diffmask as now
    from fifa.annotator.worker import keep_freed_memory
    from fifa.concept_tree.imageio import load_rgb

    keep_freed_memory()  # as in a worker
    cv2.setNumThreads(1)
    repo = Path(__file__).resolve().parents[1]
    src = subprocess.run(
        ["git", "-C", str(repo), "show", f"{baseline_rev}:annotator/diffmask.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (work / "diffmask_baseline.py").write_text(src)
    name = "fifa.annotator._diffmask_baseline"  # inside the package: its relative imports resolve there
    spec = importlib.util.spec_from_file_location(name, work / "diffmask_baseline.py")
    base = importlib.util.module_from_spec(spec)
    sys.modules[name] = base
    spec.loader.exec_module(base)
    rows = forged_384(work, n=3 * pairs)[:pairs]
    imgs = [(load_rgb(r["image_path"]), load_rgb(r["source_path"])) for r in rows]
    mods = {"baseline": base, "now": now}
    prep = {k: [_prepared(m, s, regions) for (_, s), regions in zip(imgs, _segment(imgs))] for k, m in mods.items()}
    cpu = dict.fromkeys(mods, 0.0)
    for r in range(rounds):
        for i, (f, s) in enumerate(imgs):
            for k in ("baseline", "now") if (r + i) % 2 == 0 else ("now", "baseline"):
                t0 = time.process_time()
                mods[k].artifact_mask(f, s, mods[k].DiffConfig(), prep[k][i])
                cpu[k] += time.process_time() - t0
    n = rounds * len(imgs)
    return {
        "baseline_rev": baseline_rev,
        "pairs": len(imgs),
        "rounds": rounds,
        "cpu_ms_per_pair": {k: round(1000 * v / n, 2) for k, v in cpu.items()},
        "ratio_now_over_baseline": round(cpu["now"] / cpu["baseline"], 3),
        "load_avg_1min": os.getloadavg()[0],
    }


def _segment(imgs: list) -> list:
    """The sources' segmentations (what the worker hands ``prepare_source`` along with the source)."""
    from fifa.concept_tree.segmentation.segment import Segmenter

    with Segmenter() as seg:
        return [seg.segment(s) for _, s in imgs]


def _prepared(module, source, regions) -> dict:
    """``prepare_source`` of a diffmask version, given the segmentation when it takes one (as the worker does)."""
    import inspect

    if "regions" in inspect.signature(module.prepare_source).parameters:
        return module.prepare_source(source, module.DiffConfig(), regions)
    return module.prepare_source(source, module.DiffConfig())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["accuracy", "diffcost", "offline", "openai", "memory", "all"])
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seed", type=int, nargs="*", default=[11, 21, 31])
    ap.add_argument("--n", type=int, default=80)
    ap.add_argument(
        "--sets",
        nargs="*",
        default=["forge", "lfw", "heldout", "diffuse"],
        choices=["forge", "lfw", "heldout", "diffuse"],
        help="accuracy: which data (forge seeds, forge with lfw faces, the held-out generator, its "
        "diffuse edits on JPEG pairs)",
    )
    ap.add_argument(
        "--diff",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="accuracy: DiffConfig overrides, e.g. --diff area_sigma=0 trim_ratio=0 (the per-pixel test alone)",
    )
    ap.add_argument("--baseline-rev", default="main", help="diffcost: git revision of the baseline diffmask.py")
    ap.add_argument("--ray", action="store_true", help="offline: also time --executor ray (local cluster)")
    ap.add_argument(
        "--cases",
        nargs="*",
        choices=list(OFFLINE_CASES),
        default=None,
        help="offline: which cases (default: source-cache, ffpp-like-5-per-source, no-cache)",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the result to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fifa-bench-"))
    result = {"machine": machine()}
    try:
        if a.what in ("accuracy", "all"):
            result["accuracy"] = bench_accuracy(work, a.sets, a.seed, a.n, diff=diff_overrides(a.diff))
            print(accuracy_tables(result["accuracy"]), file=sys.stderr)
        if a.what in ("diffcost", "all"):
            result["diffcost"] = bench_diffcost(work, a.baseline_rev, pairs=a.rows or 60)
        if a.what in ("offline", "all"):
            result["offline"] = bench_offline(work, a.rows or 400, a.workers, ray=a.ray, cases=a.cases)
        if a.what in ("openai", "all"):
            result["openai"] = bench_openai(work, a.rows or 320, a.latency, a.concurrency, a.workers)
        if a.what in ("memory", "all"):
            result["memory"] = bench_memory(work, a.rows or 20000, a.workers)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
