"""The dataset card (``README.md``) of a release: YAML header with ``configs:``, statistics, sources."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from fifa.core.tasks import TASKS


def load_sources(extra: str | None = None) -> dict:
    base = Path(str(resources.files("fifa.pipelines") / "data" / "sources.yaml"))
    src = dict(yaml.safe_load(base.read_text("utf-8"))["sources"])
    if extra:
        src.update(yaml.safe_load(Path(extra).read_text("utf-8")).get("sources", {}))
    return src


def _header(meta: dict) -> str:
    configs = []
    for name, splits in meta["configs"].items():
        entry = {
            "config_name": name,
            "data_files": [{"split": s, "path": f"data/{name}/{s}-*.parquet"} for s in splits],
        }
        if name == "instruct":
            entry["default"] = True
        configs.append(entry)
    head = {
        "pretty_name": meta.get("title") or "FiFa-Instruct",
        "license": "other",
        "language": ["en"],
        "task_categories": ["visual-question-answering", "image-segmentation", "image-classification"],
        "tags": ["deepfake-detection", "explainable-ai", "grounded-explanation", "face-forensics"],
        "configs": configs,
    }
    return "---\n" + yaml.safe_dump(head, sort_keys=False, allow_unicode=True) + "---\n"


def _table(rows: list[list], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _stats_tables(stats: dict) -> str:
    splits = ("train", "validation", "test")
    bt = stats["rows"]["by_task_split"]
    rows = [
        [f"`{t}`", TASKS[t].title if t in TASKS else ""] + [bt.get(t, {}).get(s, 0) for s in splits] for t in sorted(bt)
    ]
    out = [
        "### Instruction rows per task and split (test = before bench balancing)",
        "",
        _table(rows, ["task", "what", *splits]),
    ]
    for key, title in (("by_split_method", "method"), ("by_split_category", "category")):
        d = stats["annotations"][key]
        names = sorted({m for s in d.values() for m in s})
        out += [
            "",
            f"### Annotated images per {title} and split",
            "",
            _table([[n] + [d.get(s, {}).get(n, 0) for s in splits] for n in names], [title, *splits]),
        ]
    bench = stats["bench"]["by_task_class"]
    out += [
        "",
        "### Bench questions per task and class",
        "",
        _table(
            [
                [f"`{t}`", ", ".join(f"{c}: {n}" for c, n in sorted(v.items())), sum(v.values())]
                for t, v in sorted(bench.items())
            ],
            ["task", "classes", "questions"],
        ),
    ]
    return "\n".join(out)


def _sources(stats: dict, extra: str | None) -> str:
    methods = set(stats["annotations"]["by_split_method"].get("train", {}))
    for s in stats["annotations"]["by_split_method"].values():
        methods |= set(s)
    src = load_sources(extra)
    rows, covered = [], set()
    for name, s in sorted(src.items()):
        hit = sorted(methods & set(s.get("methods", [])))
        if hit:
            covered |= set(hit)
            rows.append([name, ", ".join(hit), s.get("licence", "?"), s.get("url", ""), s.get("get", "")])
    rest = sorted(methods - covered - {"(none)"})
    text = (
        _table(rows, ["source", "methods", "licence", "where", "how to get the images"])
        if rows
        else "(no known source collection matched the methods of this release)"
    )
    if rest:
        text += f"\n\nMethods of unlisted sources: {', '.join(rest)} (see the build's inputs below)."
    return text


def _annotator(meta: dict) -> str:
    lines = []
    for inp in meta["build"].get("inputs", []):
        a = inp.get("annotator") or {}
        cfg = a.get("config") or {}
        sel = cfg.get("select") or {}
        diff = cfg.get("diff") or {}
        lines.append(
            f"- `{inp['name']}`: {a.get('tool', 'fifa-annotate')} {a.get('version', '?')}, explainer "
            f"`{a.get('explainer', '?')}`, diff top {diff.get('top_percent', '?')} % / noise floor "
            f"{diff.get('noise_floor', '?')}, region selection min coverage {sel.get('min_coverage', '?')}, "
            f"min share {sel.get('min_share', '?')}, counts {a.get('counts', {})}, "
            f"cost {a.get('cost_usd_total', 0)} USD"
        )
    return "\n".join(lines) or "- (no run.json found in the annotation folders)"


def _fmt(x) -> str:
    return "undefined" if x is None else f"{x:.2f}"


def _agreement(review: dict) -> str:
    """The review's agreement figures in words (several reviewers; the annotator's status)."""
    ag = review.get("agreement") or {}
    parts = []
    for p in ag.get("pairs") or []:
        parts.append(
            f"Cohen's kappa {p['reviewers'][0]}/{p['reviewers'][1]} {_fmt(p['cohen_kappa'])} "
            f"(agreement {_fmt(p['agreement'])}, {p['n']} samples both decided)"
        )
    fl = ag.get("fleiss") or {}
    if fl.get("raters", 0) >= 2:
        parts.append(
            f"Fleiss' kappa {_fmt(fl.get('kappa'))} over the {fl.get('n')} samples all {fl['raters']} reviewers decided"
        )
    for a in ag.get("annotator") or []:
        parts.append(
            f"{a['reviewer']} agrees with the annotator's status on {_fmt(a['agreement'])} of "
            f"{a['n']} samples (kappa {_fmt(a['cohen_kappa'])})"
        )
    if ag.get("reviewers") and len(ag["reviewers"]) > 1:
        parts.append(f"{ag.get('disputed', 0)} disputed sample(s); combined by the rule `{review.get('rule')}`")
    return (
        (" Agreement: " + "; ".join(parts) + ". A kappa is undefined where every decision was the same.")
        if parts
        else ""
    )


def _empty_splits(meta: dict) -> str:
    """The sentence naming the splits left out for having no row (none: empty string)."""
    empty = meta.get("empty_splits") or {}
    if not empty:
        return ""
    gone = [c for c in empty if c not in meta["configs"]]
    parts = ", ".join(f"`{c}` {'/'.join(s)}" for c, s in empty.items())
    return (
        f"\n\n**Left out: {parts}** (no row: the build had {meta['build'].get('split_units')} split unit(s), "
        f"at least 3 give every split one). An empty split is not registered, so `load_dataset` never meets it"
        + (f"; the config(s) {', '.join(f'`{c}`' for c in gone)} are left out whole." if gone else ".")
    )


def render_card(meta: dict, stats: dict, config) -> str:
    title = config.title
    body = _card_intro(meta, title) + _PROVENANCE + _card_statistics(meta, stats, config) + _card_making(meta) + _FILES
    return _header({**meta, "title": title}) + body.lstrip("\n")


def _card_intro(meta: dict, title: str) -> str:
    """The card's title, how to load it, its configs and columns."""
    return f"""
# {title} {meta["version"]}

Instruction data, a benchmark and grounded annotations for explainable deepfake analysis, made with
fifa-toolkit from face images annotated by FiFa-Annotator.{" Date: " + meta["date"] + "." if meta.get("date") else ""}

```python
from datasets import load_dataset
ds = load_dataset("path/to/this/folder", "instruct")          # or "bench", "annotations"
ds = load_dataset("parquet", data_files={{"train": "data/instruct/train-*.parquet"}})
```

Configs: `instruct` (train, validation: one conversation per row, `messages` user/assistant, `masks` one
per grounded mark `[phrase](node_id)` of the assistant turns, in order), `bench` (test: `question`,
plain-text `answer`, reference `masks`, `query_mask` / `query_box`, `history`), `annotations` (the AGE
records, split like the rest). Columns: DESIGN.md "Instruction rows" and "Bench"; masks are COCO RLE
(`size`, `counts`). Bench metrics follow the toolkit's DESIGN.md definitions (`fifa-bench score`).{_empty_splits(meta)}
"""


_PROVENANCE = """
### Provenance columns

Every instruction, bench and annotation row says where it comes from: `collection` (the source collection:
as the importer recorded it, else the collection whose methods include the row's method; null when
unknown), `video` and `frame` (the video and frame index an image was taken from, for collections imported
from video; null otherwise), `explainer` (the annotator backend / model / prompt version that wrote the
explanation and the answers' visible description, e.g. `offline/none/offline-v3`, `openai/gpt-4o/age-v2`),
`tree_version` (the Facial Image Concept Tree version of the regions), `review` (`accepted` when a review
decided on the annotation, null when none did; rejected annotations are not in the release) and `reviewers`
(who decided on it). Answers describe what the image shows; the measurements against the source image
stay in the `annotations` config (`explanation`, `regions`).
"""


def _card_statistics(meta: dict, stats: dict, config) -> str:
    """The card's statistics, images and source collections."""
    b = meta["build"]
    images = (
        "embedded in the Parquet files (`image.bytes`, a `datasets` Image feature)"
        if meta["images"] == "embed"
        else f"referenced: `image.path` is relative to the root of the source images, the folder "
        f"`{meta.get('image_root_name')}` of the collection(s) below (download them, then join the root "
        "and `image.path`)"
    )
    left = b.get("left_out") or {}
    return f"""
## Statistics

{_stats_tables(stats)}

Annotations read: {b.get("annotations", {}).get("read")}; kept: {b.get("annotations", {}).get("kept")};
left out: {", ".join(f"{k} {v}" for k, v in sorted(left.items()) if not isinstance(v, dict)) or "none"}.

## Images

Images are {images}.

### Source collections and licences

{_sources(stats, config.sources)}
"""


def _card_making(meta: dict) -> str:
    """How the release was made: annotation, build, splits, review; the annotator's settings."""
    b = meta["build"]
    review = b.get("review")
    review_text = (
        f"Reviewed with `{review['file']}` (sha256 `{review['sha256'][:16]}...`, reviewer "
        f"{review.get('reviewer') or 'unnamed'}): {review['accepted']} accepted, {review['rejected']} "
        f"rejected and left out, {review['unknown']} decisions for unknown samples." + _agreement(review)
        if review
        else "No review file was applied."
    )
    cfg = b.get("config", {})
    ratios = cfg.get("ratios", {})
    return f"""
## How it was made

1. Real/fake pairs (a fake and the pristine image it was made from) were annotated by FiFa-Annotator:
   an artifact mask from the pair's difference, the Facial Image Concept Tree (version
   `{b.get("tree_version")}`; annotations made with {", ".join(b.get("annotation_tree_versions") or ["?"])})
   regions it falls in, and an explanation whose region phrases carry masks.
2. `fifa-data build` (seed {b.get("seed")}) turned every kept annotation into rows of the nine tasks
   (`det, cls, toe, age, loc, rq_name, rq_mask, rq_box, fc`) with template libraries of at least 30 question
   phrasings per task; region queries include negatives on untouched regions (share
   {round(cfg.get("negative_fraction") or 0, 3)}). Conversations: {b.get("fc", {}).get("backend")}.
3. Splits by source group, never cutting a group or an identity (connected components of groups linked by
   shared identities, {b.get("split_units")} units), stratified by method, ratios
   {ratios.get("train")}/{ratios.get("validation")}/{ratios.get("test")}. The bench is the test split,
   balanced per task across classes (at most {cfg.get("bench_per_class")} per class).
4. {review_text}

### Annotator settings

{_annotator(meta)}
"""


_FILES = """
## Files

`MANIFEST.json` lists the sha256 of every file; `fifa-data validate <folder>` checks them, the schemas,
every mask, the mark/mask correspondence and the splits. Rebuilding from the same annotations and seed
gives the same bytes.
"""
