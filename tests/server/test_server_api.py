"""`fifa-bench serve` over HTTP on 127.0.0.1 (SQLite): scores equal `fifa-bench score`, bad submissions
fail with the validator's message, 401 / 413 / 429, teams see only their own submissions, and no
response, error, page or log line holds a reference answer, mask or label."""

from __future__ import annotations

import json
import math

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bench_helpers import make_submission, write_jsonl
from server_kit import SCORE_ARGS, SECRET, cli_report, team_add, upload, wait_done

from fifa.benchmarks.bench import load_bench
from fifa.benchmarks.scoring import score
from fifa.benchmarks.submission import SubmissionError, load_submission
from fifa.core.rle import encode

SEEN: list[str] = []  # every response body of this module, grepped by the last test


def seen(r: httpx.Response) -> httpx.Response:
    SEEN.append(r.text)
    return r


@pytest.fixture(scope="module")
def team_a(sqlite_server):
    return team_add(sqlite_server.db, "team-a")


@pytest.fixture(scope="module")
def team_b(sqlite_server):
    return team_add(sqlite_server.db, "team-b")


def _comparable(report: dict) -> dict:
    meta = {k: v for k, v in report["_meta"].items() if k not in ("created", "bench", "submission")}
    return {**{k: v for k, v in report.items() if not k.startswith("_")}, "_meta": meta}


def test_scores_equal_fifa_bench_score(sqlite_server, small_bench, team_a, tmp_path):
    rows, bench = small_bench
    jsonl = write_jsonl(make_submission(rows, seed=5), tmp_path / "preds.jsonl")
    parquet = tmp_path / "preds.parquet"
    pq.write_table(pa.Table.from_pylist(make_submission(rows, seed=6)), parquet)
    ids = {}
    for p in (jsonl, parquet):
        r = seen(upload(sqlite_server.url, team_a, p))
        assert r.status_code == 202 and r.json()["status"] == "queued", r.text
        ids[p] = r.json()["id"]
    got = wait_done(sqlite_server.url, team_a, list(ids.values()))
    for p, sid in ids.items():
        seen(httpx.get(f"{sqlite_server.url}/api/submissions/{sid}", headers={"Authorization": f"Bearer {team_a}"}))
        sub = got[sid]
        assert sub["status"] == "done", sub
        if p.suffix == ".jsonl":  # the command line itself; the Parquet file through the function it calls
            want = cli_report(bench, p, tmp_path / p.stem, *SCORE_ARGS)
        else:
            want = json.loads(json.dumps(score(bench, p, seed=3, bootstrap=200, meteor=False).to_dict()))
        assert _comparable(sub["metrics"]) == _comparable(want)
        assert sub["metrics"]["_meta"]["submission"] == p.name and sub["metrics"]["_meta"]["bench"] == "bench.parquet"
        assert set(sub["metrics"]) - {"_meta"} == {"det", "cls", "toe", "fc", "loc", "age"}


def _bad_suite(rows: list[dict]) -> dict[str, bytes]:
    good = make_submission(rows, seed=2)
    loc = next(r["question_id"] for r in rows if r["task"] == "loc" and r["masks"])
    real_loc = next(r["question_id"] for r in rows if r["task"] == "loc" and not r["masks"])

    def jl(rs) -> bytes:
        return "".join(json.dumps(r, allow_nan=True) + "\n" for r in rs).encode()

    def with_(qid, **kw):
        return [dict(r, **kw) if r["question_id"] == qid else dict(r) for r in good]

    dets = [r["question_id"] for r in good if r["question_id"].startswith("det-")]
    suite = {
        "garbage.jsonl": b'\x00\x01 this is not json\n{"question_id": "det-0"}\n',
        "broken.parquet": b"PAR1 definitely not parquet",
        "no_id.jsonl": jl([{"id": "det-0", "answer": "yes"}]),
        "dups.jsonl": jl(good + [dict(good[0]), dict(good[1])]),
        "unknown.jsonl": jl(good + [{"question_id": f"zz-{k}", "answer": "yes"} for k in range(13)]),
        "types.jsonl": jl(
            [dict(r, answer=7) if k == 0 else r for k, r in enumerate(good)] + [{"question_id": 1.5, "answer": "yes"}]
        ),
        "nan.jsonl": jl(
            [dict(r, score=math.nan) if r["question_id"] == dets[0] else r for r in with_(dets[1], score=1.5)]
        ),
        "undecodable_mask.jsonl": jl(with_(loc, masks=[{"size": [24, 32], "counts": "]]]]"}])),
        "wrong_size_mask.jsonl": jl(with_(real_loc, masks=[encode(np.ones((10, 10), bool))])),
        "non_ascii_mask.jsonl": jl(with_(loc, masks=[{"size": [24, 32], "counts": "\u00ff\u00ff"}])),
    }
    return suite


def test_bad_submissions_fail_with_the_validators_message(sqlite_server, small_bench, team_b, tmp_path):
    rows, bench_path = small_bench
    bench = load_bench(bench_path)
    ids = {}
    for name, data in _bad_suite(rows).items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(SubmissionError) as ei:
            load_submission(p, bench)
        ei.value.source = name
        r = seen(upload(sqlite_server.url, team_b, p))
        assert r.status_code == 202, r.text
        ids[r.json()["id"]] = str(ei.value)
    got = wait_done(sqlite_server.url, team_b, list(ids))
    for sid, msg in ids.items():
        assert got[sid]["status"] == "failed" and got[sid]["metrics"] is None
        assert got[sid]["error"] == msg
        assert str(sqlite_server.dir) not in msg and "/tmp" not in got[sid]["error"]


def test_wrong_or_missing_token_is_401(sqlite_server, small_bench, team_a, tmp_path):
    p = write_jsonl(make_submission(small_bench[0], seed=1), tmp_path / "s.jsonl")
    for token in (None, "fifa_not-a-real-token", team_a + "x", team_a[:-1]):
        r = seen(upload(sqlite_server.url, token, p))
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), (token, r.text)
    r = seen(
        httpx.post(
            sqlite_server.url + "/api/submissions",
            files={"file": ("s.jsonl", p.read_bytes())},
            headers={"Authorization": f"Basic {team_a}"},
        )
    )
    assert r.status_code == 401
    r = seen(httpx.get(sqlite_server.url + "/api/submissions/0123", headers={"Authorization": "Bearer nope"}))
    assert r.status_code == 401
    assert not any(e.get("event") == "submission.queued" and e.get("team") is None for e in sqlite_server.events())
    assert all(team_a not in line for line in sqlite_server.log_path.read_text().splitlines())


def test_oversize_upload_is_413_and_not_counted(sqlite_server, small_bench, tmp_path):
    token = team_add(sqlite_server.db, "big-uploader", daily_limit=1)
    big = tmp_path / "big.jsonl"
    big.write_bytes(b" " * (300 << 10))  # the server takes 0.25 MiB
    r = seen(upload(sqlite_server.url, token, big))
    assert r.status_code == 413 and "too large" in r.json()["error"], r.text

    def chunks():  # no Content-Length: refused while the body streams in
        yield b'--xx\r\nContent-Disposition: form-data; name="file"; filename="c.jsonl"\r\n\r\n'
        for _ in range(40):
            yield b" " * (16 << 10)
        yield b"\r\n--xx--\r\n"

    r = seen(
        httpx.post(
            sqlite_server.url + "/api/submissions",
            content=chunks(),
            timeout=60,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "multipart/form-data; boundary=xx"},
        )
    )
    assert r.status_code == 413, r.text
    ok = write_jsonl(make_submission(small_bench[0], seed=1), tmp_path / "ok.jsonl")  # its one upload is left
    assert seen(upload(sqlite_server.url, token, ok)).status_code == 202


def test_over_the_daily_limit_is_429(sqlite_server, small_bench, tmp_path):
    token = team_add(sqlite_server.db, "limited", daily_limit=2)
    p = write_jsonl(make_submission(small_bench[0], seed=1), tmp_path / "s.jsonl")
    codes = [seen(upload(sqlite_server.url, token, p)).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    r = seen(upload(sqlite_server.url, token, p))
    assert r.status_code == 429 and "daily limit" in r.json()["error"] and int(r.headers["retry-after"]) > 0


def test_a_team_cannot_read_another_teams_submission(sqlite_server, small_bench, team_a, team_b, tmp_path):
    p = write_jsonl(make_submission(small_bench[0], seed=8), tmp_path / "mine.jsonl")
    sid = seen(upload(sqlite_server.url, team_a, p)).json()["id"]
    wait_done(sqlite_server.url, team_a, [sid])
    other = seen(httpx.get(f"{sqlite_server.url}/api/submissions/{sid}", headers={"Authorization": f"Bearer {team_b}"}))
    unknown = seen(
        httpx.get(f"{sqlite_server.url}/api/submissions/{'0' * 32}", headers={"Authorization": f"Bearer {team_b}"})
    )
    assert other.status_code == unknown.status_code == 404 and other.text == unknown.text  # no existence oracle
    mine = seen(httpx.get(f"{sqlite_server.url}/api/submissions/{sid}", headers={"Authorization": f"Bearer {team_a}"}))
    assert mine.status_code == 200 and mine.json()["status"] == "done"


def test_leaderboard_is_each_teams_best(sqlite_server, small_bench, tmp_path):
    rows = small_bench[0]
    best, failing = team_add(sqlite_server.db, "board-c"), team_add(sqlite_server.db, "board-only-failed")
    ids = [
        seen(
            upload(sqlite_server.url, best, write_jsonl(make_submission(rows, seed=s), tmp_path / f"{s}.jsonl"))
        ).json()["id"]
        for s in (11, 12)
    ]
    bad = seen(upload(sqlite_server.url, failing, write_jsonl([{"id": 1}], tmp_path / "bad.jsonl"))).json()["id"]
    metrics = [m["metrics"] for m in wait_done(sqlite_server.url, best, ids).values()]
    assert wait_done(sqlite_server.url, failing, [bad])[bad]["status"] == "failed"
    board = seen(httpx.get(sqlite_server.url + "/api/leaderboard")).json()
    assert board["columns"] == ["det/auc", "cls/acc", "toe/rouge_l", "age/giou", "loc/giou", "fc/rouge_l"]
    by_team = {r["team"]: r for r in board["rows"]}
    assert "board-only-failed" not in by_team and by_team["board-c"]["submissions"] == 2
    for col in board["columns"]:
        t, m = col.split("/")
        assert by_team["board-c"]["scores"][col] == max(x[t][m] for x in metrics)
    assert (
        len({by_team["board-c"]["scores"][c] == metrics[0][c.split("/")[0]][c.split("/")[1]] for c in board["columns"]})
        == 2
    )  # the best of each column comes from either submission
    values = [r["scores"]["det/auc"] for r in board["rows"]]
    assert values == sorted(values, reverse=True)


def test_no_reference_answer_mask_or_label_in_any_response(sqlite_server, small_bench, tmp_path):
    rows = small_bench[0]
    token = team_add(sqlite_server.db, "leak-check", daily_limit=50)
    ids = [
        seen(
            upload(sqlite_server.url, token, write_jsonl(make_submission(rows, seed=21), tmp_path / "g.jsonl"))
        ).json()["id"]
    ]
    for name, data in _bad_suite(rows).items():
        (tmp_path / name).write_bytes(data)
        ids.append(seen(upload(sqlite_server.url, token, tmp_path / name)).json()["id"])
    wait_done(sqlite_server.url, token, ids)
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as c:
        for sid in ids:
            seen(c.get(f"{sqlite_server.url}/api/submissions/{sid}"))
        seen(c.get(f"{sqlite_server.url}/api/submissions/{'f' * 32}"))
    seen(upload(sqlite_server.url, "wrong", tmp_path / "g.jsonl"))
    for path in ("/api/leaderboard", "/", "/?sort=cls%2Facc&order=asc", "/healthz", "/nope"):
        seen(httpx.get(sqlite_server.url + path))
    blob = "\n".join(SEEN + [sqlite_server.log_path.read_text()])
    assert '"status":"done"' in blob and '"status":"failed"' in blob and "<table" in blob
    assert SECRET not in blob  # every reference text answer holds it
    counts = {m["counts"] for r in rows for m in r["masks"]}
    assert counts and not any(c in blob for c in counts)
    # labels: a response holds a bench question id only where the validator echoes the submitter's own
    # ids, never next to a reference label or answer
    for r in rows:
        q = json.dumps(r["question_id"])
        for lab in ("fake", "real", r["answer"]):
            assert f"{q}: {json.dumps(lab)}" not in blob and f"{q}:{json.dumps(lab)}" not in blob


HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> & "q" \'s'


def _column(page, col: str) -> list[float]:
    return [float(x) for x in page.locator(f'td[data-col="{col}"]').all_inner_texts() if x != "–"]


def test_leaderboard_page_in_chromium_sorts_and_escapes(sqlite_server, small_bench, browser, tmp_path):
    rows = small_bench[0]
    tokens = {name: team_add(sqlite_server.db, name) for name in (HOSTILE, "page-y", "page-z")}
    ids = {}
    for k, (_name, tok) in enumerate(tokens.items()):
        ids[tok] = [
            seen(
                upload(
                    sqlite_server.url, tok, write_jsonl(make_submission(rows, seed=40 + k), tmp_path / f"p{k}.jsonl")
                )
            ).json()["id"]
        ]
    for tok, sids in ids.items():
        wait_done(sqlite_server.url, tok, sids)
    ctx = browser.new_context(java_script_enabled=True)
    ctx.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', "
        "(e) => window.__csp.push(e.violatedDirective));"
    )
    page = ctx.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        resp = page.goto(sqlite_server.url + "/")
        assert resp.status == 200 and "default-src 'none'" in resp.headers["content-security-policy"]
        seen_html = page.content()
        SEEN.append(seen_html)
        teams = page.locator("td.team").all_inner_texts()
        assert HOSTILE in teams and {"page-y", "page-z"} <= set(teams)  # shown literally
        assert page.evaluate("window.__pwned") is None and not dialogs
        assert page.evaluate("document.scripts.length") == 0  # no JavaScript at all
        assert page.locator("table img").count() == 0
        auc = _column(page, "det/auc")
        assert len(auc) >= 3 and auc == sorted(auc, reverse=True)  # default: first column, best first
        page.click('th[data-col="cls/acc"] a')
        acc = _column(page, "cls/acc")
        assert acc == sorted(acc, reverse=True) and "sort=cls%2Facc" in page.url
        page.click('th[data-col="cls/acc"] a')  # the sorted column's link flips the order
        acc_up = _column(page, "cls/acc")
        assert acc_up == sorted(acc) and page.locator("th.sorted").get_attribute("aria-sort") == "ascending"
        page.click('th[data-col="team"] a')
        names = page.locator("td.team").all_inner_texts()
        assert names == sorted(names, key=str.lower)
        assert page.evaluate("window.__csp") == [] and page.evaluate("window.__pwned") is None
    finally:
        ctx.close()
