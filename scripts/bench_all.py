#!/usr/bin/env python
"""`make bench`: every benchmark on generated data, one table of figures and ratios.

Each stage runs its own benchmark script in a child process (on generated data: forged pairs,
synthetic videos, benches, builds) and every figure is set against a baseline measured in the same
run (a plain decode + FaceMesh, one worker, pycocoevalcap, a plain Hugging Face Trainer loop, ...), so
the ratios mean something on any machine. Peak memory is the process tree's.

    python scripts/bench_all.py                  # full sizes (about 30 minutes on 2 cores)
    python scripts/bench_all.py --quick          # small sizes (a smoke run, about 8 minutes)
    python scripts/bench_all.py --only annotate score

Writes OUT/bench.md and OUT/bench.json (default OUT: bench_out/all) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from benchkit import Row, Stopwatch, describe, machine, markdown_table
from benchkit import rounded as _r

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


@dataclass
class Stage:
    name: str
    args: Callable[[Path, bool], list[str]]  # (work folder, quick) -> script arguments
    rows: Callable[[dict], list[Row]]  # its JSON -> rows
    json_name: str = "result.json"


# ------------------------------------------------------------------------------------ stages
def seg_args(work: Path, quick: bool) -> list[str]:
    return ["scripts/bench_segment.py", "speed", "--n", "60" if quick else "300", "--out", str(work)]


def seg_rows(d: dict) -> list[Row]:
    s = d["speed"]
    pc, tw, cpu = s["per_core"], s["two_workers_vs_one_plain_process"], s["worker_cpu"]["cpu_ms_per_image"]
    base = "decode + FaceMesh alone"
    return [
        Row(
            "segmentation",
            "per core, full (whole processes, 1 CPU each)",
            pc["full_s"],
            "s",
            base,
            pc["baseline_decode_facemesh_s"],
            pc["full_ratio"],
            "<= 1.5x",
            pc["full_ratio"] <= 1.5,
        ),
        Row(
            "segmentation",
            "per core, face concepts only",
            pc["face_only_s"],
            "s",
            base,
            pc["baseline_decode_facemesh_s"],
            pc["face_only_ratio"],
            "<= 1.5x",
            pc["face_only_ratio"] <= 1.5,
        ),
        Row(
            "segmentation",
            "2 workers vs 1 plain process, full",
            tw["full_s"],
            "s",
            base,
            tw["baseline_decode_facemesh_s"],
            tw["full_ratio"],
        ),
        Row(
            "segmentation",
            "worker CPU per image, full",
            cpu["full"],
            "ms",
            base,
            cpu["decode_facemesh"],
            _r(cpu["full"] / cpu["decode_facemesh"]),
        ),
    ]


def ann_args(work: Path, quick: bool) -> list[str]:
    return [
        "scripts/bench_annotate.py",
        "offline",
        "--rows",
        "300" if quick else "2000",
        "--cases",
        "source-cache",
        "ffpp-like-5-per-source",
        "no-cache",
        "source-cache-1-worker",
        "source-cache-ray",
        "--json",
        str(work / "result.json"),
    ]


def ann_rows(d: dict) -> list[Row]:
    o = d["offline"]
    shared, one, ray = o["source-cache"], o["source-cache-1-worker"], o["source-cache-ray"]
    rate = lambda c: c["wall_rows_per_s"]  # noqa: E731
    return [
        Row(
            "annotate",
            "offline pairs/s, fakes sharing sources",
            rate(shared),
            "pairs/s",
            "",
            None,
            None,
            ">= 40",
            rate(shared) >= 40,
        ),
        Row(
            "annotate",
            "offline pairs/s, FF++ order (5 fakes per source, far apart)",
            rate(o["ffpp-like-5-per-source"]),
            "pairs/s",
            "",
            None,
            None,
            ">= 40",
            rate(o["ffpp-like-5-per-source"]) >= 40,
        ),
        Row(
            "annotate",
            "offline pairs/s, every pair its own source",
            rate(o["no-cache"]),
            "pairs/s",
            "",
            None,
            None,
            ">= 40",
            rate(o["no-cache"]) >= 40,
        ),
        Row(
            "annotate",
            "2 workers vs 1 worker (local executor)",
            rate(shared),
            "pairs/s",
            "1 worker",
            rate(one),
            _r(rate(shared) / rate(one)),
            ">= 1.7x",
            rate(shared) / rate(one) >= 1.7,
        ),
        Row(
            "annotate",
            "Ray executor vs local (same 2 cores)",
            rate(ray),
            "pairs/s",
            "local",
            rate(shared),
            _r(rate(ray) / rate(shared)),
            ">= 0.85x",
            rate(ray) / rate(shared) >= 0.85,
        ),
        Row("annotate", "peak RSS, 2 workers", shared["peak_rss_mb"], "MB"),
    ]


def llm_args(work: Path, quick: bool) -> list[str]:
    return [
        "scripts/bench_annotate.py",
        "openai",
        "--rows",
        "160" if quick else "320",
        "--json",
        str(work / "result.json"),
    ]


def llm_rows(d: dict) -> list[Row]:
    o = d["openai"]
    st = o["llm_stage"]
    return [
        Row(
            "annotate (openai)",
            "LLM stage requests/s (200 ms server, concurrency 32)",
            st["requests_per_s"],
            "req/s",
            "concurrency / latency",
            o["ideal_requests_per_s"],
            st["share_of_ideal"],
            ">= 0.70",
            st["share_of_ideal"] >= 0.7,
        )
    ]


def score_args(work: Path, quick: bool) -> list[str]:
    return ["scripts/bench_score.py", "--scale", "0.2" if quick else "1.0", "--out", str(work)]


def score_rows(d: dict) -> list[Row]:
    t, m = d["text"], d["masks"]
    n = d["sizes"]
    rows = [
        Row(
            "score",
            f"end to end ({n['det_cls']} det/cls, {n['text']} text, {n['masks']} mask answers)",
            d["score_end_to_end_s"],
            "s",
            "",
            None,
            None,
            "<= 60 s (full size)",
        ),
        Row("score", "end to end, --no-meteor", d["score_end_to_end_no_meteor_s"], "s"),
        Row(
            "score",
            "mask metrics on RLE",
            m["rle_s"],
            "s",
            "decode every mask",
            m["numpy_decode_s"],
            _r(m["rle_s"] / m["numpy_decode_s"], 3),
            "<= 0.2x",
            m["rle_s"] / m["numpy_decode_s"] <= 0.2,
        ),
    ]
    if t.get("pycocoevalcap_s"):
        rows.append(
            Row(
                "score",
                "text metrics",
                t["ours_s"],
                "s",
                "pycocoevalcap",
                t["pycocoevalcap_s"],
                _r(t["ours_s"] / t["pycocoevalcap_s"], 3),
                "<= 1x",
                t["ours_s"] <= t["pycocoevalcap_s"],
            )
        )
    return rows


def grounding_args(work: Path, quick: bool) -> list[str]:
    return ["scripts/bench_grounding.py", "--n", "2000" if quick else "10000", "--out", str(work)]


def grounding_rows(d: dict) -> list[Row]:
    return [
        Row(
            "score",
            f"grounding metrics, {d['n']} age answers (score() with vs without them)",
            d["grounding_added_s"],
            "s",
            "",
            None,
            None,
            "<= 20 s (10,000)",
            d["met"],
        )
    ]


def judge_args(work: Path, quick: bool) -> list[str]:
    return ["scripts/bench_judge.py", "--n", "320" if quick else "640", "--out", str(work)]


def judge_rows(d: dict) -> list[Row]:
    return [
        Row(
            "score (judge)",
            f"requests/s ({d['latency_s'] * 1000:.0f} ms server, concurrency {d['concurrency']})",
            d["requests_per_s"],
            "req/s",
            "concurrency / latency",
            d["ideal_requests_per_s"],
            d["share_of_ideal"],
            ">= 0.70",
            d["met"],
        )
    ]


def build_args(work: Path, quick: bool) -> list[str]:
    big, small = ("20000", "2000") if quick else ("100000", "7300")
    return [
        "scripts/bench_build.py",
        "--annotations",
        big,
        "--small",
        small,
        "--work",
        str(work / "w"),
        "--json",
        str(work / "result.json"),
    ]


def build_rows(d: dict) -> list[Row]:
    s, large = d["small"], d["large"]
    return [
        Row(
            "build + release",
            f"{large['rows']:,} rows (images by reference)",
            large["total_s"],
            "s",
            "",
            None,
            None,
            "<= 300 s for >= 1.38M rows",
            large["rows"] >= 1_380_000 and large["total_s"] <= 300 if large["rows"] >= 1_380_000 else None,
        ),
        Row(
            "build + release",
            "rows/s at the large size",
            large["rows_per_s"],
            "rows/s",
            f"{s['rows']:,} rows",
            s["rows_per_s"],
            _r(large["rows_per_s"] / s["rows_per_s"]),
        ),
        Row(
            "build + release",
            "peak RSS",
            large["peak_rss_mb"],
            "MB",
            "",
            None,
            None,
            "< 4000 MB",
            large["peak_rss_mb"] < 4000,
        ),
    ]


def import_args(work: Path, quick: bool) -> list[str]:
    return ["scripts/bench_import.py", "--sources", "2" if quick else "8", "--json", str(work / "result.json")]


def import_rows(d: dict) -> list[Row]:
    one, two = d["workers_1"], d["workers_2"]
    return [
        Row(
            "import ffpp",
            "frames sampled + cropped per second, 2 workers",
            two["frames_per_s"],
            "frames/s",
            "1 worker",
            one["frames_per_s"],
            d["ratio_2_vs_1"],
        ),
        Row("import ffpp", "peak RSS, 2 workers", two["peak_rss_mb"], "MB"),
    ]


def viewer_args(work: Path, quick: bool) -> list[str]:
    return ["scripts/bench_viewer.py", "--samples", "100" if quick else "500", "--json", str(work / "result.json")]


def viewer_rows(d: dict) -> list[Row]:
    return [
        Row(
            "viewer",
            f"site of {d['samples']} samples, one image thread",
            d["build_s_workers_1"],
            "s",
            "transcoding the images alone",
            d["baseline_s"],
            d["ratio_1_thread_vs_baseline"],
            "<= 1.2x",
            d["ratio_1_thread_vs_baseline"] <= 1.2,
        )
    ]


def train_args(work: Path, quick: bool) -> list[str]:
    return [
        "scripts/bench_train.py",
        "--skip-learn",
        "--speed-steps",
        "10" if quick else "40",
        "--speed-repeats",
        "1" if quick else "3",
        "--work",
        str(work),
    ]


def train_rows(d: dict) -> list[Row]:
    sp = d["speed"]
    ours, plain = sp["ours"], sp["plain"]
    ratio = sp["tokens_per_s_ratio"]  # the median of the alternated pairs
    return [
        Row(
            "train (tiny, CPU)",
            "tokens/s, every head on (median ratio of alternated pairs)",
            ours["tokens_per_s"],
            "tokens/s",
            "plain HF Trainer + peft",
            plain["tokens_per_s"],
            _r(ratio),
            ">= 0.9x",
            ratio >= 0.9,
        ),
        Row(
            "train (tiny, CPU)",
            "peak RSS",
            ours["peak_rss_mb"],
            "MB",
            "plain HF Trainer + peft",
            plain["peak_rss_mb"],
            _r(sp["peak_rss_ratio"]),
            "<= 1.1x",
            sp["peak_rss_ratio"] <= 1.1,
        ),
    ]


def predict_args(work: Path, quick: bool) -> list[str]:
    return [
        "scripts/bench_predict.py",
        "--work",
        str(work),
        "--steps",
        "60" if quick else "300",
        "--repeats",
        "1" if quick else "2",
    ]


def predict_rows(d: dict) -> list[Row]:
    return [
        Row(
            "predict (tiny, CPU)",
            f"questions/s, {d['questions']} bench questions",
            d["questions_per_s"]["after"],
            "questions/s",
        )
    ]


STAGES = [
    Stage("segment", seg_args, seg_rows, "bench_segment_speed.json"),
    Stage("annotate", ann_args, ann_rows),
    Stage("openai", llm_args, llm_rows),
    Stage("score", score_args, score_rows, "bench_score.json"),
    Stage("grounding", grounding_args, grounding_rows, "bench_grounding.json"),
    Stage("judge", judge_args, judge_rows, "bench_judge.json"),
    Stage("build", build_args, build_rows),
    Stage("import", import_args, import_rows),
    Stage("viewer", viewer_args, viewer_rows),
    Stage("train", train_args, train_rows, "bench_train.json"),
    Stage("predict", predict_args, predict_rows, "bench_predict.json"),
]


# ------------------------------------------------------------------------------------ running
def run_stage(stage: Stage, out: Path, quick: bool) -> tuple[list[Row], dict]:
    work = out / stage.name
    work.mkdir(parents=True, exist_ok=True)
    args = stage.args(work, quick)
    with Stopwatch() as sw:
        p = subprocess.run(
            [PY, *args], cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, GLOG_minloglevel="2")
        )
    dt = sw.wall_s
    (work / "log.txt").write_text(p.stdout + "\n" + p.stderr)
    info = {"command": " ".join(["python", *args]), "seconds": round(dt, 1), "returncode": p.returncode}
    result = work / stage.json_name
    if not result.is_file():
        info["error"] = f"no {result.name} (exit {p.returncode}; see {work / 'log.txt'})"
        return [], info
    try:
        return stage.rows(json.loads(result.read_text())), info
    except (KeyError, TypeError, ZeroDivisionError) as e:
        info["error"] = f"unexpected result ({type(e).__name__}: {e})"
        return [], info


def markdown(rows: list[Row], stages: dict, mach: dict) -> str:
    lines = [
        f"Machine: {describe(mach)}; load average {mach['load_avg_1min']:.1f} before, "
        f"{mach.get('load_avg_after', 0):.1f} after.",
        "",
        *markdown_table(rows),
    ]
    failed = {k: v["error"] for k, v in stages.items() if "error" in v}
    if failed:
        lines += ["", "Stages without a result: " + "; ".join(f"{k}: {v}" for k, v in failed.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every benchmark")
    ap.add_argument("--only", nargs="*", choices=[s.name for s in STAGES], help="run these stages only")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_out" / "all")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    mach = machine()
    rows: list[Row] = []
    stages: dict = {}
    for stage in STAGES:
        if a.only and stage.name not in a.only:
            continue
        print(f"[bench] {stage.name} ...", file=sys.stderr, flush=True)
        got, info = run_stage(stage, a.out, a.quick)
        rows += got
        stages[stage.name] = info
        print(
            f"[bench] {stage.name}: {info['seconds']} s" + (f", {info['error']}" if "error" in info else ""),
            file=sys.stderr,
            flush=True,
        )
    mach["load_avg_after"] = os.getloadavg()[0]
    md = markdown(rows, stages, mach)
    (a.out / "bench.md").write_text(md, "utf-8")
    (a.out / "bench.json").write_text(
        json.dumps({"machine": mach, "quick": a.quick, "stages": stages, "rows": [asdict(r) for r in rows]}, indent=2),
        "utf-8",
    )
    print(md)
    return 1 if any("error" in v for v in stages.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
