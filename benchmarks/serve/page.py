"""The leaderboard as one HTML page: a plain table, sorted by links (works without JavaScript).

Every string that reaches the page (team names, the bench's name, column names) goes through
:func:`html.escape`; query strings through :func:`urllib.parse.urlencode`. Links are relative
(``?sort=...``), so the page works under any path prefix a reverse proxy adds.
"""

from __future__ import annotations

import datetime as _dt
from html import escape
from urllib.parse import urlencode

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse}th,td{padding:.35rem .7rem;border-bottom:1px solid #ddd}
th{background:#f4f4f4;text-align:right}th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}
td{text-align:right;font-variant-numeric:tabular-nums}th a{color:inherit;text-decoration:none}
th.sorted{background:#e2ebf7}.muted{color:#777}
"""


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _header(key: str, label: str, board: dict) -> str:
    active = board["sort"] == key
    flipped = "asc" if board["order"] == "desc" else "desc"
    first = "asc" if key == "team" else "desc"  # names read A to Z first, scores best first
    order = flipped if active else first
    arrow = (" ▼" if board["order"] == "desc" else " ▲") if active else ""
    href = "?" + urlencode({"sort": key, "order": order})
    cls = ' class="sorted"' if active else ""
    aria = f' aria-sort="{"descending" if board["order"] == "desc" else "ascending"}"' if active else ""
    return f'<th{cls}{aria} data-col="{escape(key)}"><a href="{escape(href)}">{escape(label)}{arrow}</a></th>'


def render_page(board: dict) -> str:
    """The leaderboard page for ``board`` (the ``GET /api/leaderboard`` object)."""
    cols = board["columns"]
    head = "<th>#</th>" + _header("team", "team", board) + "".join(_header(c, c, board) for c in cols)
    head += _header("submissions", "done", board)
    body = []
    for k, r in enumerate(board["rows"], 1):
        cells = [f"<td>{k}</td>", f'<td class="team">{escape(r["team"])}</td>']
        cells += [f'<td data-col="{escape(c)}">{_fmt(r["scores"].get(c))}</td>' for c in cols]
        cells.append(f'<td title="{escape(_when(r.get("last_finished_at")))}">{r["submissions"]}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(cols) + 3}" class="muted">no scored submission yet</td></tr>')
    name = escape(board["bench"])
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>DFA-Bench leaderboard: {name}</title><style>{STYLE}</style></head><body>"
        f"<h1>DFA-Bench leaderboard</h1><p>bench <b>{name}</b>: each team's best scored submission per task "
        "(the task's headline metric); click a column to sort.</p>"
        f'<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        '<p class="muted">Submissions: <code>POST api/submissions</code> with a team token; '
        'JSON: <a href="api/leaderboard">api/leaderboard</a>.</p></body></html>\n'
    )
