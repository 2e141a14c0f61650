"""Region queries: ``rq_name`` (a named FICT region), ``rq_mask`` (a given mask), ``rq_box`` (a given box).

Positives are the annotation's chosen regions (``artifact_regions``) with the artifact inside
them (``regions[].mask``; its bounding box for ``rq_box``); up to ``rq_queries`` per fake and
task, chosen by hash. Negatives are untouched regions: facial anchors the artifact does not
reach (``rq_name``) or cells of a 4x4 grid that do not meet the artifact's bounding box (dilated
by 2% of the image side) (``rq_mask``, ``rq_box``). A fake gets on average
``p * f / (1 - f)`` negatives for ``p`` positives (``f`` = ``negative_fraction``); a real image
``real_queries`` negatives.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from fifa.core.tasks import REGION_QUERY_TASKS

from .. import rand
from .common import RLE, TaskContext, capitalize, fill, finish, pick, sentences, slim, top_regions, two_turns

FAKE = pl.col("label") == "fake"
MEASURED = FAKE & pl.col("grounded") & (pl.col("mask_area").fill_null(0) > 0)
#: facial anchors offered as negative rq_name queries (the always-visible ones)
ANCHORS = (
    "forehead",
    "left_eyebrow",
    "right_eyebrow",
    "left_eye",
    "right_eye",
    "nose",
    "left_cheek",
    "right_cheek",
    "mouth",
    "chin",
    "left_jaw",
    "right_jaw",
    "left_temple",
    "right_temple",
)
GRID = 4
MARGIN = 0.02


def _bbox(masks: pl.Series) -> np.ndarray:
    """[x0, y0, x1, y1] per RLE of a polars RLE series (pycocotools, one C call)."""
    from pycocotools import mask as mask_utils

    if not masks.len():
        return np.zeros((0, 4))
    counts = masks.struct.field("counts").to_list()
    sizes = masks.struct.field("size").list.to_array(2).to_numpy().tolist()
    b = np.asarray(
        mask_utils.toBbox([{"size": s, "counts": c} for s, c in zip(sizes, counts)]), dtype=np.float64
    ).reshape(-1, 4)
    b[:, 2] += b[:, 0]
    b[:, 3] += b[:, 1]
    return b


def _boxes_series(name: str, boxes: np.ndarray) -> pl.Series:
    return pl.Series(name, np.ascontiguousarray(boxes, dtype=np.float64)).cast(pl.List(pl.Float64))


def _box_rles(boxes: np.ndarray, sizes: np.ndarray) -> pl.Series:
    """RLE series of each [x0, y0, x1, y1] box in an image of size [h, w] (one C call per distinct size)."""
    from pycocotools import mask as mask_utils

    counts: list[str | None] = [None] * len(boxes)
    keys = sizes[:, 0].astype(np.int64) * 1_000_003 + sizes[:, 1].astype(np.int64)
    for key in np.unique(keys):
        idx = np.flatnonzero(keys == key)
        hh, ww = (int(v) for v in sizes[idx[0]])
        xywh = boxes[idx].astype(np.float64).copy()
        xywh[:, 2:] -= xywh[:, :2]
        for i, r in zip(idx.tolist(), mask_utils.frPyObjects(np.ascontiguousarray(xywh), hh, ww)):
            counts[i] = r["counts"].decode("ascii")
    size = pl.Series("size", np.ascontiguousarray(sizes, dtype=np.int64)).cast(pl.List(pl.Int64))
    return (
        pl.DataFrame([size, pl.Series("counts", counts, dtype=pl.String)])
        .select(pl.struct("size", "counts").alias("mask"))
        .to_series()
    )


def _extent(ctx: TaskContext) -> pl.Expr:
    e = None
    for t, words in ctx.templates.a("extents"):
        cond = pl.col("coverage") >= t
        e = pl.when(cond).then(pl.lit(words)) if e is None else e.when(cond).then(pl.lit(words))
    return e.otherwise(pl.lit(ctx.templates.a("extents")[-1][1]))


def node_hash(node_ids: pl.Series) -> np.ndarray:
    """Stable uint64 hash per node id (hashed once per distinct id)."""
    uniq = node_ids.unique().drop_nulls().sort().to_list()
    table = dict(zip(uniq, rand.string_hash(uniq).tolist()))
    return node_ids.replace_strict(table, default=0, return_dtype=pl.UInt64).to_numpy().astype(np.uint64)


def _take(frame: pl.DataFrame, hashes: pl.DataFrame, salt: str, limit: pl.Expr) -> pl.DataFrame:
    """Rows ranked per sample by a hash of (sample, node_id) and ``salt``; keeps rank < limit."""
    f = frame.join(hashes, on="sample_id", how="left") if "h" not in frame.columns else frame
    k = rand.mix(f["h"].to_numpy().astype(np.uint64) ^ node_hash(f["node_id"]), salt)
    f = f.with_columns(pl.Series("_k", k)).sort(["sample_id", "_k", "node_id"])
    f = f.with_columns(pl.int_range(pl.len()).over("sample_id").alias("_rank"))
    return f.filter(pl.col("_rank") < limit).drop("h")


def _negative_counts(samples: pl.DataFrame, npos: pl.DataFrame, ctx: TaskContext, salt: str) -> pl.DataFrame:
    f = (
        samples.select("sample_id", "h", "label")
        .join(npos, on="sample_id", how="left")
        .with_columns(pl.col("npos").fill_null(0))
    )
    r = min(max(ctx.negative_fraction, 0.0), 0.95)
    u = rand.uniform(f["h"].to_numpy().astype(np.uint64), salt)
    want = np.floor(f["npos"].to_numpy() * (r / (1 - r)) + u).astype(np.int64)
    real = (f["label"] == "real").to_numpy()
    want = np.where(real, ctx.real_queries, want)
    return f.with_columns(pl.Series("nneg", want)).select("sample_id", "nneg")


def region_rows(chunk: pl.DataFrame, ctx: TaskContext) -> list[pl.DataFrame]:
    samples = slim(
        chunk, "grounded", "mask_area", "height", "width", "artifact_mask", "artifact_regions", "regions", "visible"
    ).filter(MEASURED | (pl.col("label") == "real"))
    ctx.count("rq_fake_without_measured_mask", chunk.filter(FAKE & ~MEASURED).height)
    fakes = samples.filter(FAKE)
    names = {n: ctx.region_phrase(n) for n in ANCHORS}
    # candidate positives: chosen regions with the artifact inside them
    reg = fakes.select("sample_id", "regions").explode("regions").drop_nulls("regions").unnest("regions")
    chosen = (
        fakes.select("sample_id", "artifact_regions")
        .explode("artifact_regions")
        .drop_nulls("artifact_regions")
        .rename({"artifact_regions": "node_id"})
        .with_columns(pl.int_range(pl.len()).over("sample_id").alias("order"))
    )
    pos = chosen.join(reg, on=["sample_id", "node_id"], how="inner")
    for nid in pos["node_id"].unique().to_list():
        names.setdefault(nid, ctx.region_phrase(nid))
    region_name = pl.col("node_id").replace_strict(names, default=None, return_dtype=pl.String)
    desc = sentences(fakes).explode("ids").drop_nulls("ids").rename({"ids": "node_id", "text": "sentence"})
    desc = desc.group_by(["sample_id", "node_id"]).agg(pl.col("sentence").first())
    pos = pos.join(desc, on=["sample_id", "node_id"], how="left").with_columns(
        region_name.alias("region"), _extent(ctx).alias("extent"), pl.col("sentence").fill_null("")
    )
    base = (
        slim(samples, "height", "width", "artifact_mask")
        .join(top_regions(fakes, ctx).rename({"regions_top": "elsewhere"}), on="sample_id", how="left")
        .with_columns(pl.col("elsewhere").fill_null("other regions"))
    )
    touched = reg.select("sample_id", "node_id").unique()
    hashes = samples.select("sample_id", "h")
    if "rq_mask" in ctx.tasks or "rq_box" in ctx.tasks:
        base = base.with_columns(_boxes_series("abox", _bbox(base["artifact_mask"])))
    if "rq_box" in ctx.tasks:
        pos = pos.with_columns(_boxes_series("box", _bbox(pos["mask"])))
    out = []
    for task in REGION_QUERY_TASKS:
        if task not in ctx.tasks:
            continue
        p = _take(pos, hashes, f"{task}/pos", pl.lit(ctx.rq_queries))
        npos = p.group_by("sample_id").agg(pl.len().alias("npos"))
        nneg = _negative_counts(samples, npos, ctx, f"{task}/neg")
        if task == "rq_name":
            cand = base.select("sample_id").join(pl.DataFrame({"node_id": list(ANCHORS)}), how="cross")
            cand = cand.join(touched, on=["sample_id", "node_id"], how="anti")
            n = _take(cand.join(nneg, on="sample_id"), hashes, f"{task}/negpick", pl.col("nneg"))
            n = n.with_columns(region_name.alias("region"))
        else:
            n = _cells(base, nneg, hashes, task)
        out.append(_rows(task, base, p, n, ctx))
    return [o for o in out if o is not None]


def _cells(base: pl.DataFrame, nneg: pl.DataFrame, hashes: pl.DataFrame, task: str) -> pl.DataFrame:
    """Grid cells (as box and mask) that do not meet the artifact of the sample."""
    b = base.select("sample_id", "label", "height", "width", "abox")
    ab = b["abox"].list.to_array(4).to_numpy().reshape(-1, 4) if b.height else np.zeros((0, 4))
    fake = (b["label"] == "fake").to_numpy()
    h = b["height"].to_numpy().astype(np.float64)
    w = b["width"].to_numpy().astype(np.float64)
    m = MARGIN * np.maximum(h, w)
    rows = []
    for i in range(GRID):
        for j in range(GRID):
            x0, x1 = np.floor(j * w / GRID), np.floor((j + 1) * w / GRID)
            y0, y1 = np.floor(i * h / GRID), np.floor((i + 1) * h / GRID)
            meets = (x0 < ab[:, 2] + m) & (ab[:, 0] - m < x1) & (y0 < ab[:, 3] + m) & (ab[:, 1] - m < y1)
            ok = ~(fake & meets)
            rows.append(
                pl.DataFrame(
                    {
                        "sample_id": b["sample_id"],
                        "node_id": f"cell_{i}{j}",
                        "ok": ok,
                        "x0": x0,
                        "y0": y0,
                        "x1": x1,
                        "y1": y1,
                        "height": b["height"],
                        "width": b["width"],
                    }
                )
            )
    cells = pl.concat(rows).filter(pl.col("ok")).join(nneg, on="sample_id")
    cells = _take(cells, hashes, f"{task}/negpick", pl.col("nneg"))
    boxes = cells.select("x0", "y0", "x1", "y1").to_numpy()
    sizes = cells.select("height", "width").to_numpy()
    masks = _box_rles(boxes, sizes) if cells.height else pl.Series("mask", [], dtype=RLE)
    return cells.with_columns(masks, _boxes_series("box", boxes.reshape(-1, 4)))


def _question(task: str, region: pl.Expr) -> pl.Expr:
    """The picked question template (``_q``), filled with the queried box (rq_box) or region name (rq_name)."""
    if task == "rq_box":
        box_text = (
            pl.lit("[")
            + pl.col("box").list.eval(pl.element().round(0).cast(pl.Int64).cast(pl.String)).list.join(", ")
            + pl.lit("]")
        )
        return fill(pl.col("_q"), box=box_text)
    if task == "rq_name":
        return fill(pl.col("_q"), region=region)
    return pl.col("_q")


def _rows(task: str, base: pl.DataFrame, pos: pl.DataFrame, neg: pl.DataFrame, ctx: TaskContext) -> pl.DataFrame | None:
    t = ctx.templates
    area = task != "rq_name"
    cols = ["sample_id", "node_id", "_rank"]
    if area and "box" not in pos.columns:
        pos = pos.with_columns(pl.lit(None, dtype=pl.List(pl.Float64)).alias("box"))
    p = pos.select(*cols, "region", "extent", "sentence", *(["mask", "box"] if area else [])).with_columns(
        pl.lit(True).alias("positive")
    )
    n = neg.select(*cols, *([] if area else ["region"]), *(["mask", "box"] if area else [])).with_columns(
        pl.lit(True).alias("positive").not_()
    )
    allq = pl.concat([p, n], how="diagonal_relaxed")
    if not allq.height:
        return None
    f = allq.join(base, on="sample_id", how="inner")
    hq = rand.mix(f["h"].to_numpy().astype(np.uint64), node_hash(f["node_id"]))
    f = f.with_columns(pl.Series("h", hq))
    key = "rq_area" if area else "rq"
    opts_pos, opts_nf, opts_nr = t.a(f"{key}_positive"), t.a(f"{key}_negative_fake"), t.a(f"{key}_negative_real")
    f = f.with_columns(
        pick(f, t.q(task), f"{task}/q", "_q"),
        pick(f, opts_pos, f"{task}/a", "_ap"),
        pick(f, opts_nf, f"{task}/a", "_anf"),
        pick(f, opts_nr, f"{task}/a", "_anr"),
    )
    tpl = pl.when(pl.col("positive")).then(pl.col("_ap")).when(FAKE).then(pl.col("_anf")).otherwise(pl.col("_anr"))
    region = pl.col("region").fill_null("this region")
    answer = fill(
        tpl,
        Region=capitalize(region),
        region=region,
        extent=pl.col("extent").fill_null(""),
        sentence=pl.col("sentence").fill_null(""),
        elsewhere=pl.col("elsewhere"),
    )
    answer = answer.str.replace_all(r"\s{2,}", " ").str.strip_chars()
    f = f.with_columns(two_turns(_question(task, region), answer))
    suffix = pl.when(pl.col("positive")).then(pl.lit("p")).otherwise(pl.lit("n")) + pl.col("node_id")
    klass = pl.col("label") + pl.when(pl.col("positive")).then(pl.lit("/yes")).otherwise(pl.lit("/no"))
    extra = {}
    if task == "rq_mask":
        extra["query_mask"] = pl.col("mask")
    if task == "rq_box":
        extra["query_box"] = pl.col("box")
    return finish(
        f.sort(["sample_id", "positive", "node_id"], descending=[False, True, False]),
        task,
        suffix=suffix,
        cls=klass,
        **extra,
    )
