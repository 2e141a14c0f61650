"""``fifa-data build``: annotation folders -> instruction data (train/validation), bench (test), stats.

Streaming, columnar (polars/pyarrow): pass 1 reads a small index of every annotation row and
decides what is kept and which split each sample goes to; pass 2 reads the kept rows in chunks,
generates the rows of every task (:mod:`fifa.pipelines.tasks`) and writes them as they come.
Only the test split's questions stay in memory until the bench is balanced and written.

Layout of ``BUILD``::

    instruct/train.parquet, instruct/validation.parquet   INSTRUCT_SCHEMA
    bench.parquet                                          BENCH_SCHEMA (the test split)
    annotations/{train,validation,test}.parquet            the AGE records (records.AGE_RECORD_SCHEMA)
    stats.json                                             counts per task, split, method, category
    build.json                                             settings, inputs, image root, what was left out

Image paths are relative to the image root recorded in ``build.json`` (``image_root``, itself
relative to ``BUILD``): resolve with :func:`resolve_image`. Same inputs and seed -> same bytes.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from fifa.core.atomic import clean_stale, staging_dir, swap_folder
from fifa.core.choices import bad_choice
from fifa.core.errors import EXIT_USAGE, FifaError
from fifa.core.records import BenchQuestion
from fifa.core.tasks import REGION_QUERY_TASKS, TASK_IDS, TASKS

from . import rand
from .bench_rows import BenchCollector
from .buildinfo import resolve_image  # noqa: F401  (part of this module's API)
from .conversation import ConversationConfig, make_conversations
from .inputs import AnnotationInput, InputError, image_root, read_index, relative_paths, select
from .parquet_io import write_json
from .provenance import add_provenance
from .review_build import ReviewRule
from .splits import MIN_UNITS, SplitRatios, assign_splits, empty_splits, leaks
from .stats import StatsCollector

log = logging.getLogger(__name__)

BUILD_FORMAT = "fifa-build/1"


class BuildError(FifaError, ValueError):
    """A build that cannot be made as asked (user mistake: exit 2)."""

    exit_code = EXIT_USAGE


class ChoiceError(BuildError):
    """A choice field of :class:`BuildConfig` outside its choices (``field``, ``choices``, ``value``)."""

    def __init__(self, field: str, choices: tuple[str, ...], value: object):
        self.field, self.choices, self.value = field, choices, value
        super().__init__(f"{field} must be one of {', '.join(choices)}; got {value!r}")


@dataclass(frozen=True)
class BuildConfig:
    seed: int = 0
    tasks: tuple[str, ...] = TASK_IDS
    ratios: SplitRatios = field(default_factory=SplitRatios)
    rq_queries: int = 3  #: positive queries per fake and rq task (at most; fewer when fewer regions)
    negative_fraction: float = 1 / 3  #: expected share of negative rq queries among a fake's queries
    real_queries: int = 2  #: negative rq queries per real image and rq task
    bench_per_class: int | None = 500  #: at most this many bench questions per (task, class)
    bench_cls: Literal["method", "category"] = "method"  #: the cls question the bench asks
    chunk_rows: int = 4096  #: annotations per chunk (memory vs. overhead)
    methods: str | None = None  #: extra methods YAML
    review: str | Sequence[str] | None = None  #: review file(s) of the viewer, one per reviewer
    review_rule: ReviewRule = "all"  #: how several reviewers' decisions combine
    extra_qa: tuple[str, ...] = ()  #: <manifest stem>.qa.parquet files
    image_root: str | None = None  #: default: the common folder of all images
    questions: str | None = None  #: question templates YAML (default: packaged)
    answers: str | None = None  #: answer templates YAML (default: packaged)
    fc: ConversationConfig = field(default_factory=ConversationConfig)

    def __post_init__(self) -> None:
        bad = bad_choice(self)
        if bad is not None:
            raise ChoiceError(*bad)

    def review_files(self) -> list[str]:
        if not self.review:
            return []
        return [str(self.review)] if isinstance(self.review, (str, os.PathLike)) else [str(p) for p in self.review]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        d["extra_qa"] = [Path(p).name for p in self.extra_qa]
        d["review"] = [Path(p).name for p in self.review_files()] or None
        d["methods"] = Path(self.methods).name if self.methods else None
        d["image_root"] = None  # recorded relative in build.json
        d["fc"] = self.fc.to_dict()
        for k in ("questions", "answers"):
            d[k] = Path(d[k]).name if d[k] else None
        return d


@dataclass
class BuildSummary:
    out: str
    rows: dict  # split -> instruction rows
    bench: int
    annotations: dict  # read, kept
    left_out: dict
    warnings: list[str]
    complete: bool = True


@dataclass
class _Kept:
    """Pass 1's outcome: the kept rows (split, hash, relative image path, provenance) and what it learnt."""

    index: pl.DataFrame
    kept: pl.DataFrame
    left_out: dict
    root: Path
    n_units: int
    empty: list
    review_summary: dict | None


def build(
    annotations: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: BuildConfig | None = None,
    progress: bool = False,
) -> BuildSummary:
    """Build instruction data, bench and stats from annotation folders (see the module docstring);
    ``config`` defaults to ``BuildConfig()``."""
    from fifa.concept_tree.tree import load_tree

    from .build_rows import stream_rows

    config = config if config is not None else BuildConfig()
    inputs, methods, templates, review = _open_inputs(annotations, config)
    _check_out(Path(out))
    names = [i.name for i in inputs]
    if len(set(names)) != len(names):
        names = [f"{i}-{n}" for i, n in enumerate(names)]
    tree = load_tree()
    warnings: list[str] = []
    out = Path(out)
    k = _pass1(inputs, review, config, warnings)

    # ---------------------------------------------------------------- pass 2: rows, streamed
    tmp = staging_dir(out)
    clean_stale(out)  # what killed builds left (a swap cut between its renames is finished)
    shutil.rmtree(tmp, ignore_errors=True)
    conv = make_conversations(config.fc)
    ctx = _task_context(config, templates, methods, tree, conv)
    stats = StatsCollector()
    bench = BenchCollector(config.seed, image_root=k.root)
    xqa = stream_rows(inputs, k.kept, ctx, conv, config, tmp, stats, bench, warnings, progress)
    questions, bench_counts = bench.finish(config.bench_per_class)
    from .parquet_io import write_table

    write_table(BenchQuestion.to_arrow(questions), tmp / "bench.parquet")
    counters, incomplete = _task_notes(ctx.counters, warnings)
    st = stats.finish(k.kept, bench_counts, counters)
    write_json(st, tmp / "stats.json")
    meta = _build_meta(config, names, inputs, out, tree, templates, methods, k, counters, xqa, conv, warnings)
    write_json(meta, tmp / "build.json")
    swap_folder(tmp, out)  # the old build stays whole until the new one is complete
    return BuildSummary(
        str(out),
        dict(st["rows"]["by_split"]),
        len(questions),
        {"read": k.index.height, "kept": k.kept.height},
        k.left_out,
        warnings,
        complete=not incomplete,
    )


def _task_context(config: BuildConfig, templates, methods, tree, conv):
    """What every task's row generator reads: templates, method table, concept tree, query settings."""
    from .tasks import TaskContext

    return TaskContext(
        templates=templates,
        tasks=tuple(config.tasks),
        methods=methods,
        tree=tree,
        rq_queries=config.rq_queries,
        negative_fraction=config.negative_fraction,
        real_queries=config.real_queries,
        bench_cls=config.bench_cls,
        conversations=conv,
    )


def _task_notes(task_counters: dict, warnings: list[str]) -> tuple[dict, dict]:
    """(the tasks' counters for build.json, the fc conversations left out): unknown methods and left-out
    conversations become warnings."""
    counters = dict(task_counters)
    unknown_methods = sorted(counters.pop("_unknown_methods", set()))
    if unknown_methods:
        warnings.append(
            f"method(s) not in the method table: {', '.join(unknown_methods)} (cls answers give no "
            "definition; add them with --methods FILE)"
        )
    incomplete = {n: v for n, v in counters.items() if n.startswith("fc_")}
    if incomplete:
        warnings.append(f"fc conversations left out: {incomplete}")
    return counters, incomplete


def _open_inputs(annotations: Sequence[str | os.PathLike], config: BuildConfig):
    """Check the config and open what the build reads: (inputs, method table, templates, reviews or None)."""
    from .methods import MethodTableError, load_methods
    from .review import ReviewError
    from .review_build import Reviews
    from .templates import TemplateError, load_templates

    unknown = [t for t in config.tasks if t not in TASKS]
    if unknown:
        raise BuildError(f"unknown task(s) {', '.join(unknown)}; tasks are {', '.join(TASK_IDS)}")
    if not annotations:
        raise BuildError("no --annotations folder given")
    try:
        inputs = [AnnotationInput.open(a) for a in annotations]
        methods = load_methods(config.methods)
        templates = load_templates(config.questions, config.answers)
        review = Reviews.load(config.review_files(), config.review_rule) if config.review else None
    except (InputError, MethodTableError, ReviewError, TemplateError, ValueError) as e:
        raise BuildError(str(e)) from None
    return inputs, methods, templates, review


def _pass1(inputs: list, review, config: BuildConfig, warnings: list[str]) -> _Kept:
    """Pass 1: index, selection, splits (the kept rows with their split, hash, relative image path, provenance)."""
    from .card import load_sources

    index = read_index(inputs)
    sel = select(index, review.rejected if review is not None else None)
    kept = sel.kept
    if sel.duplicate_ids:
        warnings.append(
            f"{len(sel.duplicate_ids)} sample_id(s) occur more than once; the first ok row is kept: "
            + ", ".join(sel.duplicate_ids[:10])
            + (" ..." if len(sel.duplicate_ids) > 10 else "")
        )
    review_summary = review.summary(index) if review else None
    if review_summary and review_summary["unknown"]:
        warnings.append(
            f"review: {review_summary['unknown']} decision(s) name sample ids the annotations do not "
            f"have: {', '.join(review_summary['unknown_ids'][:10])}"
        )
    if not kept.height:
        raise BuildError(f"no usable annotation row (read {index.height}; left out: {sel.left_out})")
    _check_supply(kept, config.tasks)
    try:
        root = image_root(kept["image_path"], config.image_root)
        kept = kept.with_columns(relative_paths(kept["image_path"], root).alias("image_rel"))
    except InputError as e:
        raise BuildError(str(e)) from None
    kept = add_provenance(kept, review.frame() if review else None, load_sources())
    kept = assign_splits(kept, config.ratios, config.seed)
    leak = leaks(kept)
    assert not leak["group"] and not leak["identity"], leak  # by construction of the units
    kept = kept.with_columns(pl.Series("h", rand.string_hash(kept["sample_id"].to_list(), config.seed)))
    n_units = int(kept["unit"].n_unique())
    empty = empty_splits(kept, config.ratios)
    if empty:
        warnings.append(
            f"split(s) {', '.join(empty)} empty: {n_units} split unit(s) (groups linked by identities), "
            f"at least {MIN_UNITS} give every split one; releases and exports leave empty splits out"
        )
    return _Kept(index, kept, dict(sel.left_out), root, n_units, empty, review_summary)


def _build_meta(
    config: BuildConfig,
    names: list[str],
    inputs: list,
    out: Path,
    tree,
    templates,
    methods,
    k: _Kept,
    counters: dict,
    xqa,
    conv,
    warnings: list[str],
) -> dict:
    """What ``build.json`` records: settings, inputs, image root, what was left out, warnings."""
    meta = {
        "format": BUILD_FORMAT,
        "seed": config.seed,
        "config": config.to_dict(),
        "inputs": [{"name": n, "shards": len(i.shards), "annotator": i.settings()} for n, i in zip(names, inputs)],
        "image_root": os.path.relpath(k.root, out.resolve()),
        "image_root_name": k.root.name,
        "tree_version": tree.version,
        "annotation_tree_versions": sorted(v for v in k.kept["tree_version"].unique().to_list() if v),
        "explainers": sorted(v for v in k.kept["explainer"].unique().to_list() if v),
        "templates": templates.source,
        "methods_table": [Path(s).name for s in methods.sources],
        "annotations": {"read": k.index.height, "kept": k.kept.height},
        "left_out": k.left_out,
        "task_notes": counters,
        "review": k.review_summary,
        "extra_qa": xqa.summary if xqa is not None else None,
        "fc": conv.summary() if conv is not None else {"backend": "offline"},
        "split_units": k.n_units,
        "empty_splits": k.empty,
        "warnings": warnings,
    }
    if meta["annotation_tree_versions"] and meta["annotation_tree_versions"] != [tree.version]:
        warnings.append(
            f"annotations were made with tree version(s) {meta['annotation_tree_versions']}, "
            f"this toolkit has {tree.version}"
        )
    return meta


def _check_supply(kept: pl.DataFrame, tasks: Sequence[str]) -> None:
    """Refuse tasks the annotations cannot supply (exit 2 with the reason)."""
    fake = kept.filter(pl.col("label") == "fake")
    measured = fake.filter(pl.col("grounded").fill_null(True) & (pl.col("mask_area").fill_null(0) > 0))
    why = {}
    if "cls" in tasks and fake.filter(pl.col("method").is_not_null() | pl.col("category").is_not_null()).height == 0:
        why["cls"] = "no fake has a method or a category"
    for t in [k for k, task in TASKS.items() if task.needs_artifact_mask]:
        if t in tasks and measured.height == 0:
            why[t] = "no fake has a measured artifact mask (fakes with a source image)"
    for t in REGION_QUERY_TASKS:
        if t in tasks and t not in why and measured.filter(pl.col("n_regions").fill_null(0) > 0).height == 0:
            why[t] = "no fake has chosen regions (artifact_regions)"
    if "toe" in tasks and fake.height == 0:
        why["toe"] = "the annotations hold no fake"
    if why:
        raise BuildError(
            "the annotations cannot supply task(s): "
            + "; ".join(f"{k}: {v}" for k, v in why.items())
            + " (leave them out with --tasks)"
        )


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "build.json").is_file())):
        raise BuildError(f"{out} exists and is not a build folder: choose another --out")
