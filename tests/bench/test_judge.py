"""The LLM judge of `fifa-bench score` against the project's scripted OpenAI-compatible server (real HTTP on
127.0.0.1, real openai client), with faults; and `fifa-bench judge-agreement` against scipy / hand counts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bench_helpers import make_bench, write_bench
from scipy.stats import spearmanr

from fifa.benchmarks.judge import JudgeConfig, rubric
from fifa.benchmarks.judge_agreement import agreement
from fifa.benchmarks.scoring import score
from testkit.fake_llm_server import FakeLLMServer

FIFA_BENCH = Path(sys.executable).parent / "fifa-bench"
KEY = "sk-judge-secret-123"
TEXT = ("toe", "fc", "age")


def truth(reference: str, answer: str) -> int:
    """What the scripted judge answers: 1 + 4 x word overlap (Jaccard), rounded."""
    a, b = set(reference.lower().split()), set(answer.lower().split())
    return 1 + int(round(4 * len(a & b) / max(1, len(a | b))))


class JudgeServer(FakeLLMServer):
    """Answers ``judge_score`` requests from the reference and answer in the prompt; ``script`` plays faults
    per answer text (one step per request about it, the corrective retry included), then ``ok``."""

    def __init__(self, script: dict[str, list[str]] | None = None, **kw):
        super().__init__(retry_after=0.01, stall_seconds=kw.pop("stall_seconds", 3.0), **kw)
        self.script = script or {}
        self.steps: dict[str, int] = {}
        self.judge_requests = 0
        self.bodies: list[str] = []

    def _handle(self, h, req):
        name = ((req.get("response_format") or {}).get("json_schema") or {}).get("name")
        if name != "judge_score":
            return super()._handle(h, req)
        text = next(p["text"] for p in req["messages"][1]["content"] if p["type"] == "text")
        ref = re.search(r"Reference answer: (.*)\n", text).group(1)
        ans = re.search(r"Model's answer: (.*)\n", text).group(1)
        with self.lock:
            self.judge_requests += 1
            self.auth_headers.add(h.headers.get("Authorization", ""))
            self.bodies.append(json.dumps(req))
            step = self.steps.get(ans, 0)
            self.steps[ans] = step + 1
        acts = self.script.get(ans, [])
        action = acts[step] if step < len(acts) else "ok"
        if action in ("429", "500", "400"):
            return h._send(int(action), {"error": {"message": action}}, headers={"Retry-After": "0.01"})
        if action == "stall":
            import time

            time.sleep(self.stall_seconds)
            return h._send(504, {"error": {"message": "stalled"}})
        content, finish = json.dumps({"score": truth(ref, ans), "reason": "overlap"}), "stop"
        if action == "malformed":
            content = '{"score": 4, "reas'
        elif action == "schema":
            content = json.dumps({"score": 7, "reason": "too good"})
        elif action == "length":
            content, finish = '{"score": 3', "length"
        h._send(
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": req["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
                ],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100},
            },
        )


def _bench(tmp_path, seed=3):
    rows = make_bench(seed=seed, n_det=6, n_cls=4, n_text=10, n_loc=2, n_age=8)
    return rows, write_bench(rows, tmp_path / "bench.parquet")


def _sub(rows, rng, drop=()):
    out = []
    for r in rows:
        if r["question_id"] in drop:
            continue
        if r["task"] in TEXT:
            words = r["answer"].split()
            keep = [w for w in words if rng.random() < 0.6] + ["blurry"] * int(rng.integers(0, 4))
            out.append({"question_id": r["question_id"], "answer": " ".join(keep) or "nothing"})
        else:
            out.append({"question_id": r["question_id"], "answer": "yes"})
    return out


def _cfg(srv, tmp_path, **kw):
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    kw.setdefault("concurrency", 4)
    return JudgeConfig(model="judge-test", base_url=srv.url, api_key=KEY, timeout=1.0, retry_initial_wait=0.01, **kw)


def test_judge_mean_per_task_equals_the_scripted_scores(tmp_path):
    rows, bench = _bench(tmp_path)
    sub = _sub(rows, np.random.default_rng(0), drop={"toe-0"})
    by_q = {s["question_id"]: s for s in sub}
    with JudgeServer() as srv:
        rep = score(bench, sub, bootstrap=200, use_java=False, meteor=False, judge=_cfg(srv, tmp_path))
    for t in TEXT:
        want = [
            truth(r["answer"], by_q[r["question_id"]]["answer"]) if r["question_id"] in by_q else 1
            for r in rows
            if r["task"] == t
        ]
        assert rep.tasks[t]["judge_mean"] == pytest.approx(np.mean(want), abs=1e-12)
        tm = rep.meta["tasks"][t]
        ci = tm["cis"]["judge_mean"]
        assert ci["low"] <= rep.tasks[t]["judge_mean"] <= ci["high"]
        assert tm["judge"] == {"judged": len(want), "failed": 0, "budget": 0}
        for m, g in tm["by_method"].items():
            ws = [w for w, r in zip(want, [r for r in rows if r["task"] == t]) if (r["method"] or "(none)") == m]
            assert g["judge_mean"] == pytest.approx(np.mean(ws))
    assert "judge_mean" not in rep.tasks["det"] and "judge_mean" not in rep.tasks["loc"]
    j = rep.meta["judge"]
    assert j["model"] == "judge-test" and j["rubric_version"] == rubric()["version"] == "judge-v1"
    n_calls = sum(1 for r in rows if r["task"] in TEXT) - 1  # the missing answer costs no call
    assert srv.judge_requests == j["llm_calls"] == n_calls
    assert j["cost_usd"] == pytest.approx(n_calls * (1000 * 2.5 + 100 * 10.0) / 1e6)
    assert srv.auth_headers == {f"Bearer {KEY}"}
    assert all("image_url" in b for b in srv.bodies)  # the image goes with the question
    assert all('"json_schema"' in b and '"judge_score"' in b for b in srv.bodies)


def test_faults_are_retried_or_counted_and_the_cache_answers_reruns(tmp_path):
    rows, bench = _bench(tmp_path, seed=4)
    sub = _sub(rows, np.random.default_rng(1))
    text_answers = [s["answer"] for s, r in zip(sub, rows) if r["task"] in TEXT]
    a = text_answers
    script = {
        a[0]: ["429", "500", "ok"],  # transport faults: retried, then scored
        a[1]: ["malformed", "ok"],  # corrective retry
        a[2]: ["schema", "ok"],
        a[3]: ["length", "length"],  # fails twice: unscored
        a[4]: ["400"],  # not retried: unscored
        a[5]: ["stall", "stall", "stall", "stall", "stall", "stall"],
    }  # times out every attempt
    with JudgeServer(script, stall_seconds=1.5) as srv:
        cfg = _cfg(srv, tmp_path, max_retries=2)
        rep = score(bench, sub, bootstrap=0, use_java=False, meteor=False, judge=cfg)
        first = srv.judge_requests
        per_task = {t: rep.meta["tasks"][t]["judge"] for t in TEXT}
        assert sum(v["failed"] for v in per_task.values()) == 3
        assert sum(v["judged"] for v in per_task.values()) == len(a) - 3
        assert any("left unscored" in w and "llm_truncated" in w for w in rep.warnings)
        refs = {r["question_id"]: r["answer"] for r in rows}
        answers = {x["question_id"]: x["answer"] for x in sub}
        scored = [x for x in rep.judge_scores if x["score"] is not None]
        assert scored and all(x["score"] == truth(refs[x["question_id"]], answers[x["question_id"]]) for x in scored)
        assert srv.steps[a[0]] == 3 and srv.steps[a[1]] == 2 and srv.steps[a[4]] == 1 and srv.steps[a[5]] == 3
        # a rerun: the scored answers come from the cache; only the failed ones are asked again
        rep2 = score(bench, sub, bootstrap=0, use_java=False, meteor=False, judge=cfg)
        assert srv.judge_requests - first == sum(srv.steps[x] for x in a[3:6]) - (2 + 1 + 3)
        assert rep2.meta["judge"]["cache_hits"] == len(a) - 3
    assert sum(rep2.meta["tasks"][t]["judge"]["judged"] for t in TEXT) == len(a) - 1  # only the stalled one left


def test_budget_stops_judging_and_says_so(tmp_path):
    rows, bench = _bench(tmp_path, seed=5)
    sub = _sub(rows, np.random.default_rng(2))
    with JudgeServer() as srv:
        cfg = _cfg(srv, tmp_path, max_cost=0.02, concurrency=1, images=False)
        rep = score(bench, sub, bootstrap=0, use_java=False, meteor=False, judge=cfg)
    j = rep.meta["judge"]
    assert j["cost_usd"] <= 0.02 and j["budget_stops"] > 0 and srv.judge_requests == j["llm_calls"] > 0
    assert sum(rep.meta["tasks"][t]["judge"]["budget"] for t in TEXT) == j["budget_stops"]
    assert any("budget" in w for w in rep.warnings)
    assert not any("image_url" in b for b in srv.bodies)


def test_cli_judge_key_from_env_never_written(tmp_path):
    rows, bench = _bench(tmp_path, seed=6)
    sub = _sub(rows, np.random.default_rng(3))
    sp = tmp_path / "sub.jsonl"
    sp.write_text("".join(json.dumps(s) + "\n" for s in sub))
    out = tmp_path / "out"
    env = {"PATH": "/usr/bin:/bin", "FIFA_JUDGE_API_KEY": KEY, "HOME": str(tmp_path)}
    with JudgeServer() as srv:
        r = subprocess.run(
            [
                str(FIFA_BENCH),
                "score",
                "--bench",
                str(bench),
                "--submission",
                str(sp),
                "--out",
                str(out),
                "--bootstrap",
                "20",
                "--no-meteor",
                "--no-plots",
                "--judge-model",
                "judge-test",
                "--judge-base-url",
                srv.url,
                "--judge-cache-dir",
                str(tmp_path / "c"),
                "--judge-price-in",
                "1",
                "--judge-price-out",
                "0",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    assert r.returncode == 0, r.stderr
    assert srv.auth_headers == {f"Bearer {KEY}"}
    rep = json.loads((out / "report.json").read_text())
    assert rep["_meta"]["judge"]["rubric_version"] == "judge-v1" and rep["toe"]["judge_mean"] >= 1
    assert rep["_meta"]["judge"]["cost_usd"] == pytest.approx(rep["_meta"]["judge"]["llm_calls"] * 1000 / 1e6)
    for p in [*out.rglob("*"), *(tmp_path / "c").rglob("*")]:
        if p.is_file():
            assert KEY not in p.read_text(errors="replace")
    assert KEY not in r.stdout + r.stderr
    lines = [json.loads(x) for x in (out / "judge_scores.jsonl").read_text().splitlines()]
    assert len(lines) == sum(1 for x in rows if x["task"] in TEXT) and {x["task"] for x in lines} == set(TEXT)
    # judge-agreement against a ratings file
    ratings = tmp_path / "human.csv"
    rng = np.random.default_rng(9)
    rated = [
        (x["question_id"], x["task"], x["score"], int(np.clip(x["score"] + rng.integers(-1, 2), 1, 5)))
        for x in lines[:-3]
    ]
    ratings.write_text(
        "question_id,rating\n" + "".join(f"{q},{h}\n" for q, _, _, h in rated) + f"{rated[0][0]},{rated[0][3]}\n"
    )  # a second rater of one question
    r = subprocess.run(
        [str(FIFA_BENCH), "judge-agreement", "--judge", str(out), "--human", str(ratings), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    j = np.array([s for _, _, s, _ in rated], dtype=float)
    h = np.array([x for _, _, _, x in rated], dtype=float)
    assert res["n"] == len(rated) and res["only_judge"] == 3 and res["only_human"] == 0
    assert res["spearman"] == pytest.approx(spearmanr(j, h)[0])
    assert res["exact"] == pytest.approx(np.mean(j == h)) and res["within_one"] == 1.0
    assert set(res["by_task"]) == set(TEXT)


def test_agreement_by_hand_and_bad_files(tmp_path):
    judge = {"a": 5, "b": 4, "c": 1, "d": 3, "e": 2}
    human = {"a": 4.5, "b": 4.0, "c": 3.0, "d": 3.0, "x": 2.0}  # a: two raters, 4 and 5
    res = agreement(judge, human, dict.fromkeys(judge, "toe"))
    # exact: a -> human 4.5 rounds half up to 5 == 5; b yes; c no; d yes -> 3/4; within one: c (|1-3| = 2) fails
    assert res["n"] == 4 and res["exact"] == 0.75 and res["within_one"] == 0.75
    assert res["only_judge"] == 1 and res["only_human"] == 1
    assert res["spearman"] == pytest.approx(spearmanr([5, 4, 1, 3], [4.5, 4.0, 3.0, 3.0])[0])
    bad = tmp_path / "bad.csv"
    bad.write_text("question_id,rating\na,9\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "judge_scores.jsonl").write_text(
        json.dumps({"question_id": "a", "task": "toe", "score": 4}) + "\n"
    )
    for human_file, msg in ((bad, "outside 1-5"), (tmp_path / "none.csv", "file not found")):
        r = subprocess.run(
            [str(FIFA_BENCH), "judge-agreement", "--judge", str(tmp_path / "run"), "--human", str(human_file)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr


def test_judge_options_need_a_model(tmp_path):
    rows, bench = _bench(tmp_path)
    sp = tmp_path / "s.jsonl"
    sp.write_text("".join(json.dumps(s) + "\n" for s in _sub(rows, np.random.default_rng(0))))
    r = subprocess.run(
        [
            str(FIFA_BENCH),
            "score",
            "--bench",
            str(bench),
            "--submission",
            str(sp),
            "--out",
            str(tmp_path / "o"),
            "--judge-max-cost",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "need --judge-model" in r.stderr
