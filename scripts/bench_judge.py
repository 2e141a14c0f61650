#!/usr/bin/env python
"""Request rate of the `fifa-bench score` judge against the project's scripted OpenAI-compatible server.

The server (tests/testkit/fake_llm_server.py, answering the judge's ``judge_score`` schema) runs in its own
process with a fixed latency; the judge (:class:`fifa.benchmarks.judge.Judge`, the annotator's client:
retries, cache off here) scores N answers with a 256x256 image each at the given concurrency. The ideal rate
is concurrency / latency; the target (issue 18, like the annotator's LLM stage) is at least 0.7x of it.

Usage: python scripts/bench_judge.py [--n 640] [--concurrency 32] [--latency 0.2] [--out bench_judge_out]
Prints a table row and writes OUT/bench_judge.json.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from pathlib import Path

from benchkit import machine, testkit

REPO = Path(__file__).resolve().parents[1]


def serve(latency: float) -> None:
    FakeLLMServer = testkit("fake_llm_server").FakeLLMServer

    class JudgeServer(FakeLLMServer):
        def _handle(self, h, req):
            if req.get("response_format", {}).get("json_schema", {}).get("name") != "judge_score":
                return super()._handle(h, req)
            time.sleep(self.latency)
            h._send(
                200,
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": req["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": json.dumps({"score": 3, "reason": "ok"})},
                        }
                    ],
                    "usage": {"prompt_tokens": 900, "completion_tokens": 30, "total_tokens": 930},
                },
            )

    srv = JudgeServer(latency=latency)
    print(srv.url, flush=True)
    srv.httpd.serve_forever(poll_interval=0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=640)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--out", default="bench_judge_out")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        return serve(a.latency)
    import numpy as np
    from PIL import Image

    from fifa.benchmarks.judge import Judge, JudgeConfig, JudgeItem

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    srv = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--latency", str(a.latency)], stdout=subprocess.PIPE, text=True
    )
    try:
        url = srv.stdout.readline().strip()
        rng = np.random.default_rng(0)
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(buf, format="JPEG")
        words = [
            "the",
            "left",
            "eye",
            "shows",
            "blending",
            "artifacts",
            "near",
            "the",
            "mouth",
            "with",
            "unnatural",
            "skin",
            "texture",
        ]
        items = [
            JudgeItem(
                f"q{k}",
                "toe",
                "What is wrong?",
                " ".join(rng.choice(words, 14)),
                " ".join(rng.choice(words, 12)),
                buf.getvalue(),
            )
            for k in range(a.n)
        ]
        cfg = JudgeConfig(
            model="bench-judge", base_url=url, api_key="sk-bench", concurrency=a.concurrency, cache_dir=""
        )
        with Judge(cfg) as j:
            j.judge_many(items[: a.concurrency])  # warm-up: connections, imports
            t = time.perf_counter()
            res = j.judge_many(items)
            wall = time.perf_counter() - t
        assert all(r.score == 3 for r in res)
    finally:
        srv.terminate()
        srv.wait()
    rate, ideal = a.n / wall, a.concurrency / a.latency
    d = {
        "n": a.n,
        "concurrency": a.concurrency,
        "latency_s": a.latency,
        "wall_s": round(wall, 3),
        "requests_per_s": round(rate, 1),
        "ideal_requests_per_s": ideal,
        "share_of_ideal": round(rate / ideal, 3),
        "met": rate / ideal >= 0.7,
        "machine": machine(),
    }
    (out / "bench_judge.json").write_text(json.dumps(d, indent=2) + "\n")
    print(
        f"| judge | requests/s ({a.latency * 1000:.0f} ms server, concurrency {a.concurrency}) | {rate:.1f} req/s "
        f"| concurrency / latency: {ideal:.0f} req/s | {rate / ideal:.3f}x | >= 0.70 | {'✓' if d['met'] else '✗'} |"
    )


if __name__ == "__main__":
    main()
