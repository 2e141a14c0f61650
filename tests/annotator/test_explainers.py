"""The explainer registry (fifa.annotator.explainers): `make_explainer` picks by name, the names drive the config's
check and `fifa-annotate --llm`, and the explainers' modules are imported only when one is made."""

from __future__ import annotations

import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from fifa.annotator.explain_offline import OfflineExplainer
from fifa.annotator.explain_openai import OpenAIExplainer
from fifa.annotator.explainers import EXPLAINERS, explainer, make_explainer
from fifa.annotator.run import AnnotateConfig, run_annotation

from .conftest import read_rows, run_cli


def test_the_registry_lists_exactly_the_explainers():
    assert list(EXPLAINERS) == ["offline", "openai"]
    assert isinstance(make_explainer(AnnotateConfig()), OfflineExplainer)
    made = make_explainer(AnnotateConfig(llm="openai"))
    assert isinstance(made, OpenAIExplainer) and made.cfg.model == AnnotateConfig().openai.model


def test_the_cli_choices_are_the_registry_names():
    p = run_cli("run", "--help", env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert p.returncode == 0, p.stderr[-2000:]
    assert "--llm <offline|openai> Explainer backend. [default: offline]" in " ".join(p.stdout.split())
    bad = run_cli("run", "--manifest", "m.parquet", "--out", "o", "--llm", "gpt")
    assert bad.returncode == 2 and "'gpt' is not one of 'offline', 'openai'" in " ".join(bad.stderr.split())


def test_an_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"llm must be one of offline, openai, not 'gpt'"):
        AnnotateConfig(llm="gpt")
    # a config made before its explainer left the registry (no config can name an unknown one otherwise)
    config = AnnotateConfig(llm="openai")
    factory = EXPLAINERS.pop("openai")
    try:
        with pytest.raises(ValueError, match=r"unknown explainer 'openai' \(offline\)$"):
            make_explainer(config)
    finally:
        EXPLAINERS["openai"] = factory


def test_a_name_registered_twice_is_refused():
    with pytest.raises(ValueError, match="explainer 'offline' registered twice"):
        explainer("offline")(lambda config: OfflineExplainer())
    assert list(EXPLAINERS) == ["offline", "openai"]


class _Tagged:
    """A test explainer: the offline text under its own name (the `explainer` column shows who wrote a row)."""

    name = "tagged/none/v0"
    needs_images = False

    def __init__(self) -> None:
        self.inner = OfflineExplainer()

    def explain(self, ctx):
        return self.inner.explain(ctx)


@pytest.fixture()
def tagged():
    made: list[AnnotateConfig] = []

    @explainer("tagged")
    def _make(config: AnnotateConfig) -> _Tagged:
        made.append(config)
        return _Tagged()

    try:
        yield made
    finally:
        EXPLAINERS.pop("tagged")


def test_a_registered_explainer_is_picked_by_name(tagged, forged, tmp_path):
    config = AnnotateConfig(llm="tagged", workers=1, progress=False)
    assert isinstance(make_explainer(config), _Tagged) and tagged == [config]
    summary = run_annotation(forged, tmp_path / "out", config)  # no explainer given: the run makes the named one
    assert len(tagged) == 2 and summary.ok == summary.total > 0
    fakes = {r["sample_id"] for r in pq.read_table(forged).to_pylist() if r["label"] == "fake"}
    rows = read_rows(tmp_path / "out")
    assert fakes and {r["explainer"] for r in rows if r["sample_id"] in fakes} == {"tagged/none/v0"}


_LAZY = """
import sys
from fifa.annotator.cli import app
from fifa.annotator.explainers import make_explainer
from fifa.annotator.run import AnnotateConfig
assert "fifa.annotator.explain_openai" not in sys.modules and "openai" not in sys.modules
make_explainer(AnnotateConfig())
assert "fifa.annotator.explain_openai" not in sys.modules and "openai" not in sys.modules
make_explainer(AnnotateConfig(llm="openai"))
assert "fifa.annotator.explain_openai" in sys.modules
print("ok")
"""


def test_explainer_modules_are_imported_only_when_used():
    p = subprocess.run([sys.executable, "-c", _LAZY], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]
