"""Settings of ``fifa-bench serve`` (one dataclass shared by the web app, the supervisor and the workers)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..score_config import ScoreConfig


@dataclass(frozen=True)
class ScoreOptions:
    """How every submission is scored: the same options (and defaults) as ``fifa-bench score``'s ScoreConfig."""

    strict: bool = ScoreConfig.strict
    seed: int = ScoreConfig.seed
    bootstrap: int = ScoreConfig.bootstrap
    meteor: bool = ScoreConfig.meteor

    def cli_args(self) -> list[str]:
        """The same options for ``fifa-bench score`` / the worker's command line."""
        out = ["--seed", str(self.seed), "--bootstrap", str(self.bootstrap)]
        if self.strict:
            out.append("--strict")
        if not self.meteor:
            out.append("--no-meteor")
        return out


@dataclass(frozen=True)
class ServeConfig:
    """One bench served from one database (see docs/server.md)."""

    bench: Path
    db: str = "sqlite:///fifa-serve.db"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2  # scoring processes on this machine (0: this machine only takes uploads)
    max_upload_mb: float = 64.0  # the submission file; larger uploads get 413
    daily_limit: int = 10  # accepted uploads per team and UTC day (a team's own limit wins); over it: 429
    scoring: ScoreOptions = ScoreOptions()
    lease_s: float = 60.0  # a running job not renewed for this long goes back to the queue
    poll_s: float = 0.25  # an idle worker looks for a job this often
    root_path: str = ""  # the path prefix a reverse proxy serves the app under
    forwarded_allow_ips: str = "127.0.0.1"  # proxies trusted for X-Forwarded-For / -Proto
    bench_name: str | None = None  # shown on the page and in reports (default: the bench file's name)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * (1 << 20))

    @property
    def display_name(self) -> str:
        return self.bench_name or Path(self.bench).name

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bench"] = str(self.bench)
        return d
