"""``fifa-bench``: score DFA-Bench submissions and compare reports (typer, over the library API)."""

from __future__ import annotations

import dataclasses
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from fifa.cli_options import CliOption, FieldOption, config_from, option_parameters, with_options
from fifa.cli_utils import CONTEXT_SETTINGS, command, examples, make_app, run_app
from fifa.core.errors import UserError

from .judge import JudgeConfig
from .score_config import ScoreConfig

app = make_app(
    "DFA-Bench scoring: validated submissions, reference-exact metrics, reports.",
    epilog=examples(
        "fifa-bench score --bench bench.parquet --submission preds.jsonl --out report/",
        "fifa-bench compare report/ other_report/",
    ),
)


def _dir_str(p: Path | None) -> str | None:
    return str(p) if p else None


#: `score`'s scoring options: each default and type is the ScoreConfig field's (benchmarks/score_config.py)
SCORE_OPTION_SPECS: list[FieldOption | CliOption] = [
    FieldOption("strict", "strict", "Refuse a submission that misses bench questions."),
    FieldOption("seed", "seed", "Seed of the bootstrap."),
    FieldOption("bootstrap", "bootstrap", "Bootstrap resamples for the CIs (0 disables)."),
    FieldOption("no_plots", "plots", "Skip the PNG plots.", ("--no-plots",), invert=True),
    FieldOption(
        "no_meteor", "meteor", "Skip METEOR (the slowest metric; a warning says so).", ("--no-meteor",), invert=True
    ),
]
#: `score`'s judge options: each default and type is the JudgeConfig field's (benchmarks/judge.py); the model is
#: the CLI's own (no model: no judge)
JUDGE_OPTION_SPECS: list[FieldOption | CliOption] = [
    CliOption(
        "judge_model",
        str | None,
        None,
        "Judge the text answers with this model (any OpenAI-compatible endpoint): adds judge_mean.",
    ),
    FieldOption("judge_base_url", "base_url", "The judge's endpoint (default: OpenAI's)."),
    FieldOption(
        "judge_max_cost",
        "max_cost",
        "Stop judging once this many USD are spent; the rest stays unscored.",
        typer_kw={"min": 0},
    ),
    FieldOption("judge_concurrency", "concurrency", "Judge requests in flight.", typer_kw={"min": 1}),
    FieldOption(
        "judge_cache_dir",
        "cache_dir",
        "Judge response cache (default: the annotator's cache folder).",
        annotation=Path | None,
        to_config=_dir_str,
        typer_kw={"file_okay": False},
    ),
    FieldOption("judge_images", "images", "Send each question's image to the judge."),
    FieldOption(
        "judge_price_in",
        "price_in_per_mtok",
        "Judge: USD per 1M prompt tokens (for cost and --judge-max-cost).",
        typer_kw={"min": 0},
    ),
    FieldOption("judge_price_out", "price_out_per_mtok", "Judge: USD per 1M completion tokens.", typer_kw={"min": 0}),
]
SCORE_OPTIONS = option_parameters(ScoreConfig, SCORE_OPTION_SPECS) + option_parameters(JudgeConfig, JUDGE_OPTION_SPECS)


def score_config_from(kw: dict) -> ScoreConfig:
    """The scoring config from `score`'s parsed options."""
    return config_from(ScoreConfig, SCORE_OPTION_SPECS, kw)


def judge_config_from(kw: dict) -> JudgeConfig | None:
    """The judge's config from `score`'s parsed options; None without --judge-model."""
    model = kw["judge_model"]
    if not model and (kw["judge_base_url"] or kw["judge_max_cost"] is not None):
        raise UserError("--judge-base-url and --judge-max-cost need --judge-model")
    return config_from(JudgeConfig, JUDGE_OPTION_SPECS, kw, model=model) if model else None


@command(
    app,
    "fifa-bench score --bench BUILD/bench.parquet --submission preds.jsonl --out runs/tiny",
    "fifa-bench score --bench bench.parquet --submission preds.parquet --out out --strict --bootstrap 0",
    "FIFA_JUDGE_API_KEY=... fifa-bench score --bench bench.parquet --submission preds.jsonl --out out "
    "--judge-model gpt-4o-mini --judge-max-cost 2",
)
@with_options(SCORE_OPTIONS)
def score(
    bench: Annotated[Path, typer.Option(help="Bench Parquet file.", dir_okay=False)],
    submission: Annotated[Path, typer.Option(help="Submission (.parquet or .jsonl).", dir_okay=False)],
    out: Annotated[Path, typer.Option(help="Output folder for the report.", file_okay=False)],
    **kw,
) -> None:
    """Score a submission against a bench and write a report.

    Writes OUT/report.json, OUT/report.md and PNG plots (roc.png, confusion.png, per_method.png).
    An invalid submission (unreadable file, missing question_id, duplicate or unknown ids, wrong
    types, NaN/out-of-range scores, bad masks) exits with status 2 and a message listing up to 10
    offending ids.

    With --judge-model an LLM scores every text answer 1-5 with the toolkit's rubric (judge_mean per
    task, the judge and its cost in report.json, per-question scores in OUT/judge_scores.jsonl). Its API
    key is read from the environment: FIFA_JUDGE_API_KEY, else OPENAI_API_KEY.
    """
    from .leaderboard import leaderboard
    from .score_run import score_to_folder, validate_inputs

    config = score_config_from(kw)
    b, sub = validate_inputs(bench, submission, strict=config.strict)
    judge = judge_config_from(kw)
    # score_to_folder's keywords are ScoreConfig's fields
    report, path = score_to_folder(b, sub, out, judge=judge, **dataclasses.asdict(config))
    for w in report.warnings:
        typer.echo(f"warning: {w}", err=True)
    typer.echo(leaderboard({out.name or str(out): report.to_dict()}, "md", full=True))
    typer.echo(f"report: {path}")


class TableFormat(str, Enum):
    table = "table"
    md = "md"


@command(
    app,
    "fifa-bench compare runs/baseline runs/lora-r16 runs/lora-r64",
    "fifa-bench compare runs/* --format md > leaderboard.md",
)
def compare(
    dirs: Annotated[list[str], typer.Argument(help="Report folders (holding report.json) or report.json files.")],
    fmt: Annotated[
        TableFormat, typer.Option("--format", help="Rich table for the terminal or a Markdown table.")
    ] = TableFormat.table,
    sort_by: Annotated[
        str | None, typer.Option("--sort", help="Sort rows by this TASK/METRIC column (descending).")
    ] = None,
) -> None:
    """Leaderboard of several reports (folders holding report.json, or report.json files)."""
    from .leaderboard import ReportReadError, leaderboard, read_reports, sort_reports

    try:
        reports = read_reports(dirs)
    except ReportReadError as e:
        raise UserError(str(e)) from None
    if sort_by:
        reports = sort_reports(reports, sort_by)
    typer.echo(leaderboard(reports, fmt.value))


@command(
    app,
    "fifa-bench judge-agreement --judge runs/mine --human ratings.csv",
    "fifa-bench judge-agreement --judge runs/mine/judge_scores.jsonl --human ratings.jsonl --json",
)
def judge_agreement(
    judge: Annotated[Path, typer.Option(help="A report folder of `score --judge-model` (or its judge_scores.jsonl).")],
    human: Annotated[
        Path,
        typer.Option(
            help="Human ratings: CSV, JSONL or Parquet with question_id and rating "
            "(1-5; several raters per question are averaged).",
            dir_okay=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a Markdown table.")] = False,
) -> None:
    """Agreement of the judge with people: Spearman, exact and within-one agreement, overall and per task."""
    import json

    from .judge_agreement import AgreementError, agreement, read_human, read_judge, to_markdown

    try:
        scores, tasks = read_judge(judge)
        res = agreement(scores, read_human(human), tasks)
    except AgreementError as e:
        raise UserError(str(e)) from None
    if res["n"] == 0:
        raise UserError("no question is scored by both the judge and the ratings file (check the question ids)")
    typer.echo(json.dumps(res, indent=2) if as_json else to_markdown(res))


PROXY_HELP = """\b
Behind a reverse proxy (TLS, one public name): keep the server on 127.0.0.1 and let the proxy
forward to it; pass --root-path when it serves the app under a path prefix, and raise the
proxy's own body limit to --max-upload-mb. nginx:
  location /dfa/ {
      proxy_pass http://127.0.0.1:8000/;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      client_max_body_size 64m;
  }
  fifa-bench serve --bench bench.parquet --db sqlite:///serve.db --root-path /dfa
X-Forwarded-For/-Proto are trusted from --forwarded-allow-ips only (default 127.0.0.1)."""


# the longer options of `fifa-bench serve` (the scoring ones default to ScoreConfig's, as `score`'s do)
_ServedBench = Annotated[
    Path, typer.Option(help="Bench Parquet file (its references never leave the server).", dir_okay=False)
]
_DbUrl = Annotated[str, typer.Option(help="Database URL: sqlite:///FILE or postgresql://USER[:PASS]@HOST/DB.")]
_ServeWorkers = Annotated[int, typer.Option(help="Scoring worker processes on this machine (0: uploads only).", min=0)]
_DailyLimit = Annotated[
    int, typer.Option(help="Submissions per team and UTC day (a team's own limit wins); over it: 429.", min=0)
]
_ForwardedAllowIps = Annotated[
    str, typer.Option(help="Proxies trusted for X-Forwarded-* headers (comma-separated, '*' for any).")
]
_ServeBootstrap = Annotated[int, typer.Option(help="Bootstrap resamples for the CIs (as fifa-bench score).")]
_ServeNoMeteor = Annotated[bool, typer.Option("--no-meteor", help="Skip METEOR (as fifa-bench score).")]
_Lease = Annotated[
    float,
    typer.Option(
        help="Seconds a running job may go without its worker's heartbeat before another worker takes it.", min=1.0
    ),
]


@app.command(
    name="serve",
    context_settings=CONTEXT_SETTINGS,
    epilog=examples(
        "fifa-bench team add lab-a --db sqlite:///serve.db",
        "fifa-bench serve --bench BUILD/bench.parquet --db sqlite:///serve.db --workers 2",
        "fifa-bench serve --bench bench.parquet --db postgresql://fifa@db.internal/fifa --port 8000",
        "curl -H 'Authorization: Bearer TOKEN' -F file=@preds.jsonl http://127.0.0.1:8000/api/submissions",
    )
    + "\n\n"
    + PROXY_HELP,
)
def serve(
    bench: _ServedBench,
    db: _DbUrl = "sqlite:///fifa-serve.db",
    host: Annotated[str, typer.Option(help="Address to listen on (keep 127.0.0.1 behind a proxy).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: _ServeWorkers = 2,
    max_upload_mb: Annotated[float, typer.Option(help="Largest submission file accepted (MiB); larger: 413.")] = 64.0,
    daily_limit: _DailyLimit = 10,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap (as fifa-bench score).")] = ScoreConfig.seed,
    bootstrap: _ServeBootstrap = ScoreConfig.bootstrap,
    no_meteor: _ServeNoMeteor = not ScoreConfig.meteor,
    strict: Annotated[bool, typer.Option(help="Refuse submissions that miss bench questions.")] = ScoreConfig.strict,
    root_path: Annotated[str, typer.Option(help="Path prefix the reverse proxy serves the app under.")] = "",
    forwarded_allow_ips: _ForwardedAllowIps = "127.0.0.1",
    bench_name: Annotated[str | None, typer.Option(help="Name shown on the page (default: the file's name).")] = None,
    lease: _Lease = 60.0,
) -> None:
    """Serve a bench for hidden-label evaluation: uploads, a scoring queue, a leaderboard.

    \b
    POST /api/submissions     Bearer token, multipart field 'file' -> 202 {id, status}
    GET  /api/submissions/ID  its team only -> {id, status, metrics | error}
    GET  /api/leaderboard     each team's best per task headline metric; GET / the same as a page

    Workers claim queued submissions from the database and score them with the same code and options
    as `fifa-bench score`; a worker that dies is replaced and its job goes back to the queue.
    Several machines can serve one bench from one PostgreSQL database. Logs: JSON lines on stderr.
    """
    from .serve import DatabaseError, ScoreOptions, ServeConfig, run_server

    if not bench.is_file():
        raise UserError(f"bench not found: {bench}")
    cfg = ServeConfig(
        bench=bench.resolve(),
        db=db,
        host=host,
        port=port,
        workers=workers,
        max_upload_mb=max_upload_mb,
        daily_limit=daily_limit,
        scoring=ScoreOptions(strict=strict, seed=seed, bootstrap=bootstrap, meteor=not no_meteor),
        lease_s=lease,
        root_path=root_path.rstrip("/"),
        forwarded_allow_ips=forwarded_allow_ips,
        bench_name=bench_name,
    )
    from .bench import BenchError

    try:
        run_server(cfg)
    except (DatabaseError, BenchError) as e:
        raise UserError(str(e)) from None


team_app = make_app(
    "Teams of the evaluation server: tokens (shown once, stored hashed) and limits.",
    epilog=examples(
        "fifa-bench team add lab-a --db sqlite:///serve.db", "fifa-bench team list --db sqlite:///serve.db"
    ),
)
app.add_typer(team_app, name="team")


def _engine(db: str):
    from .serve import DatabaseError, make_engine

    try:
        return make_engine(db)
    except DatabaseError as e:
        raise UserError(str(e)) from None


@command(
    team_app,
    "fifa-bench team add lab-a --db sqlite:///serve.db",
    "fifa-bench team add 'Lab B' --db postgresql://fifa@db/fifa --daily-limit 3",
    name="add",
)
def team_add(
    name: Annotated[str, typer.Argument(help="Team name (shown on the leaderboard).")],
    db: Annotated[str, typer.Option(help="Database URL (as fifa-bench serve --db).")] = "sqlite:///fifa-serve.db",
    daily_limit: Annotated[
        int | None,
        typer.Option(help="This team's submissions per UTC day (default: the server's --daily-limit).", min=0),
    ] = None,
) -> None:
    """Create a team and print its API token (once: only its hash is stored)."""
    from .serve import add_team

    try:
        team, token = add_team(_engine(db), name, daily_limit)
    except ValueError as e:
        raise UserError(str(e)) from None
    typer.echo(f"team {team.name!r} created (id {team.id}). Its API token, shown only now:", err=True)
    typer.echo(token)


@command(team_app, "fifa-bench team list --db sqlite:///serve.db", name="list")
def team_list(
    db: Annotated[str, typer.Option(help="Database URL (as fifa-bench serve --db).")] = "sqlite:///fifa-serve.db",
) -> None:
    """List the teams: id, name, daily limit, submissions (never tokens)."""
    from .serve import list_teams

    rows = list_teams(_engine(db))
    typer.echo("| id | team | daily limit | submissions |\n|---:|---|---:|---:|")
    for r in rows:
        lim = "server default" if r["daily_limit"] is None else str(r["daily_limit"])
        typer.echo(f"| {r['id']} | {r['name']} | {lim} | {r['submissions']} |")


def main(argv: list[str] | None = None) -> None:
    run_app(app, argv, prog_name="fifa-bench")


if __name__ == "__main__":
    main()
