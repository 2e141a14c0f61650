"""The CPU stage of one row, run in worker processes (one Segmenter per process).

``process_row`` loads the pair, computes the artifact mask and the regions, encodes every
mask as RLE, builds the explainer context and, for the offline explainer, the finished
:class:`~fifa.core.records.AnnotationRecord`. For an LLM explainer it returns the record without
text plus the context (compact JPEGs).
The worker's state (its segmenter, the caches of segmentations and aligned sources) lives in
:mod:`.worker_sources`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from fifa.concept_tree.imageio import ImageError
from fifa.core import marks
from fifa.core import rle as rle_utils
from fifa.core.records import AnnotationRecord, replace

from . import age
from .diffmask import DiffConfig, PairError, artifact_mask
from .explain import ExplainContext, RegionInfo
from .profiles import change_profiles
from .regions import RegionSelectConfig, select_regions
from .worker_sources import STATE, load_image, segment_cached, source_cached


@dataclass
class WorkerConfig:
    diff: DiffConfig = field(default_factory=DiffConfig)
    select: RegionSelectConfig = field(default_factory=RegionSelectConfig)
    explainer: str = "offline"  # offline | openai
    llm_image_size: int = 512  # max side of the JPEGs sent to the LLM
    llm_jpeg_quality: int = 85
    segment_cache: int = 16  # segmentations of sources kept per worker (fakes share sources)
    segmenter: str = "mediapipe"  # landmark backend of the regions (fifa.concept_tree.segmentation.backends.BACKENDS)
    lazy_outside_face: bool = True  # segment hair/ears/neck/background of a source only for a mask that leaves the face
    parent_pid: int | None = None  # the run's process: workers exit when it is gone


def _set_pdeathsig() -> None:
    """Die with the parent process (with a fork server the run itself is watched, below)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # pragma: no cover - non-Linux
        pass


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 128 << 20) -> bool:
    """Serve per-image arrays (a few MB each) from the heap instead of fresh mmaps (glibc only).

    By default glibc maps each allocation above 128 KB afresh and unmaps it when freed, so a
    worker paid page faults and zeroing for the ~20 image-sized arrays of every image: about
    15 % of its CPU. Raising the mmap threshold (and the trim threshold above it) lets freed
    blocks be reused; the heap stays bounded by the largest image's working set plus the trim
    threshold. Returns whether the settings took effect.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
        return bool(ok and libc.mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False


def _watch_parent(parent_pid: int) -> None:
    """Exit when the run's process is gone (also covers a parent killed before prctl took effect)."""
    import threading

    def loop():
        while True:
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # pragma: no cover - pid reused by another user's process
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=loop, daemon=True, name="parent-watch").start()


def init_worker(config: WorkerConfig) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the run decides how to stop, a worker
    # finishes its batch (a KeyboardInterrupt here would surface in the run as a failed batch).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_pdeathsig()
    keep_freed_memory()
    if config.parent_pid is not None:
        _watch_parent(config.parent_pid)
    import cv2

    cv2.setNumThreads(1)  # one process per core already
    if os.environ.get("FIFA_SEGMENT_CACHE") is not None:  # benchmarks: measure without the cache
        from dataclasses import replace

        config = replace(config, segment_cache=int(os.environ["FIFA_SEGMENT_CACHE"]))
    os.environ.setdefault("GLOG_minloglevel", "2")
    STATE.clear()
    STATE["config"] = config
    STATE["seg_cache"] = OrderedDict()


def close_worker() -> None:
    seg = STATE.pop("segmenter", None)
    if seg is not None:
        seg.close()


def _jpeg(img: np.ndarray, max_side: int, quality: int) -> bytes:
    import cv2

    h, w = img.shape[:2]
    s = max_side / max(h, w)
    if s < 1:
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    return buf.tobytes()


def _tree():
    from fifa.concept_tree.tree import load_tree

    return load_tree()


#: the columns an annotation record takes from its manifest row as they are
FROM_MANIFEST = ("label", "method", "category", "group", "identities", "collection", "video", "frame")
FROM_MANIFEST += ("image_path", "source_path")


def base_row(row: dict) -> AnnotationRecord:
    """The record of a manifest row (a dict of its columns, ``attempt`` included) before any work: the columns
    named here and the manifest's, the others null until a step fills them."""
    return AnnotationRecord.from_row(
        {
            **{c: row.get(c) for c in FROM_MANIFEST},
            "sample_id": row["sample_id"],
            "status": "ok",
            "artifact_regions": [],
            "regions": [],
            "segments": [],
            "tree_version": _tree().version,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": 0.0,
            "llm_calls": 0,
            "cached": False,
            "time_llm_s": 0.0,
            "attempt": int(row.get("attempt") or 1),
        }
    )


def failed(rec: AnnotationRecord, code: str, message: str) -> AnnotationRecord:
    """``rec`` failed with ``code`` (what it found before the failure is kept, no text)."""
    return replace(
        rec,
        status="failed",
        error_code=code,
        error=f"{code}: {message}",
        explanation=None,
        visible_explanation=None,
        segments=[],
    )


@dataclass
class _Draft:
    """The record of the row in work, replaced as each step adds to it: a step that fails keeps what came before."""

    rec: AnnotationRecord

    def set(self, **changes) -> None:
        self.rec = replace(self.rec, **changes)


@dataclass
class CpuResult:
    row: AnnotationRecord  # the annotation record (text pending if ctx is set)
    ctx: ExplainContext | None = None  # explainer context when an explanation is still needed
    node_masks: dict = field(default_factory=dict)  # node id -> RLE used for segments


def process_row(row: dict) -> CpuResult:
    """CPU stage of one manifest row (never raises for a bad row: it fails the row)."""
    t0 = time.perf_counter()
    cfg: WorkerConfig = STATE.get("config") or WorkerConfig()
    out = _Draft(base_row(row))
    try:
        res = _process(row, out, cfg)
    except ImageError as e:
        res = CpuResult(failed(out.rec, e.code, e.message))
    except PairError as e:
        res = CpuResult(failed(out.rec, e.code, str(e)))
    except MemoryError:
        res = CpuResult(failed(out.rec, "out_of_memory", "image too large to process"))
    except Exception as e:  # a bug or an unexpected input must not stop the run
        res = CpuResult(failed(out.rec, "internal_error", f"{type(e).__name__}: {e}"))
    if cfg.explainer == "offline" and res.row.status == "ok" and res.ctx is not None:
        from .explain_offline import OfflineExplainer

        ex = STATE.get("offline")
        if ex is None:  # one per worker, not one per row
            ex = STATE["offline"] = OfflineExplainer()
        er = ex.explain(res.ctx)
        res.row = finish_row(res, er.text, ex.name, er.region_ids, er.visible)
        res.ctx = None  # done: nothing to send back but the row
        res.node_masks = {}
    res.row = replace(res.row, time_cpu_s=time.perf_counter() - t0)
    return res


def process_rows(rows: list[dict]) -> list[CpuResult]:
    """:func:`process_row` of a batch (one task: less IPC, and rows of one source meet one cache)."""
    return [process_row(r) for r in rows]


def _process(row: dict, out: _Draft, cfg: WorkerConfig) -> CpuResult:
    fake = load_image(row["image_path"], "image")
    h, w = fake.shape[:2]
    out.set(image_height=h, image_width=w)
    empty = rle_utils.empty(h, w)
    if row.get("label") == "real":
        out.set(artifact_mask=empty, grounded=True, mask_area=0, mask_fraction=0.0)
        ctx = ExplainContext(sample_id=row["sample_id"], label="real", category="real", grounded=True)
        return CpuResult(out.rec, ctx)
    src_path = row.get("source_path")
    if not src_path:
        return _ungrounded(row, out, fake, cfg)
    src = source_cached(src_path, fake, cfg)
    diff = artifact_mask(fake, src.image, cfg.diff, src.prepared)
    if not src.regions.ok:
        return CpuResult(failed(out.rec, "no_face", "no face detected in the source image"))
    source, regions = src.image, src.regions_for(diff.mask)
    sel = select_regions(regions, diff.mask, cfg.select)
    st = diff.stats
    out.set(
        artifact_mask=rle_utils.encode(diff.mask),
        grounded=True,
        mask_area=int(st["mask_area"]),
        mask_fraction=float(st["mask_fraction"]),
        diff_threshold=float(st["threshold"]),
        diff_mean_in_mask=float(st["diff_mean_in_mask"]),
        artifact_regions=list(sel.chosen),
    )
    # Masks of the artifact inside every node it touches: leaves in one pass, parents by merging.
    node_masks = _node_intersections(regions, diff.mask, sel.hits)
    out.set(
        regions=[
            {"node_id": nid, "coverage": float(hh.coverage), "share": float(hh.share), "mask": node_masks[nid]}
            for nid, hh in sorted(sel.hits.items(), key=lambda kv: (-kv[1].share, kv[0]))
            if nid in node_masks
        ]
    )
    infos = _region_infos(diff, regions, sel)
    ctx = ExplainContext(
        sample_id=row["sample_id"],
        label="fake",
        category=row.get("category"),
        method=row.get("method"),
        grounded=True,
        regions=infos,
        stats=dict(st),
        image_size=(h, w),
    )
    if cfg.explainer != "offline" and infos:
        ctx.image_jpeg = _jpeg(fake, cfg.llm_image_size, cfg.llm_jpeg_quality)
        ctx.source_jpeg = _jpeg(source, cfg.llm_image_size, cfg.llm_jpeg_quality)
    return CpuResult(out.rec, ctx, {k: node_masks[k] for k in sel.chosen if k in node_masks})


def _region_infos(diff, regions, sel) -> list[RegionInfo]:
    """What the explainer is told of each chosen region: its concept, how much of it the artifact covers,
    and what changed inside it (:func:`change_profiles` over the leaves under the region)."""
    from .regions import _tree_index

    tree = _tree()
    _, leaves_under = _tree_index()
    lidx = {k: i for i, k in enumerate(regions.leaf_ids)}
    profs = change_profiles(
        diff, regions.label_map, {nid: [lidx[x] for x in leaves_under[nid] if x in lidx] for nid in sel.chosen}
    )
    infos = []
    for nid in sel.chosen:
        node = tree[nid]
        hh = sel.hits[nid]
        infos.append(
            RegionInfo(nid, node.name, hh.coverage, hh.share, profs[nid], node.description, list(node.artifacts))
        )
    return infos


def _node_intersections(regions, mask: np.ndarray, hits: dict) -> dict[str, dict]:
    from .regions import _tree_index

    tree, leaves_under = _tree_index()
    lm = np.where(mask, regions.label_map, -1).astype(np.int16)
    idx = {k: i for i, k in enumerate(regions.leaf_ids)}
    enc = rle_utils.encode_label_map(lm)
    leaf_rles = {regions.leaf_ids[k]: r for k, r in enc.items() if k >= 0}
    out = {}
    for nid in hits:
        if nid in leaf_rles:
            out[nid] = leaf_rles[nid]
        else:
            parts = [leaf_rles[x] for x in leaves_under[nid] if x in leaf_rles and x in idx]
            if parts:
                out[nid] = rle_utils.merge(parts)
    return out


def _ungrounded(row: dict, out: _Draft, fake: np.ndarray, cfg: WorkerConfig) -> CpuResult:
    """A fake without source: no measured mask; candidate regions from the category prior."""
    from .explain_offline import CATEGORY_PRIOR

    h, w = fake.shape[:2]
    regions = segment_cached(row["image_path"], fake)
    if not regions.ok:
        return CpuResult(failed(out.rec, "no_face", "no face detected in the image"))
    tree = _tree()
    areas = regions.areas()
    from .regions import _tree_index

    _, leaves_under = _tree_index()

    def present(nid):
        return any(areas.get(x, 0) for x in leaves_under[nid])

    if cfg.explainer == "offline":
        cand = [n for n in CATEGORY_PRIOR.get(row.get("category") or "", ["face"]) if n in tree and present(n)]
    else:  # the model chooses among the facial anchors present
        from fifa.concept_tree.tree import ANCHORS

        cand = [a for a in ANCHORS if present(a)]
    infos = [RegionInfo(n, tree[n].name, 0.0, 0.0, {}, tree[n].description, list(tree[n].artifacts)) for n in cand]
    masks = {n: rle_utils.encode(regions.mask(n)) for n in cand}
    out.set(
        artifact_mask=rle_utils.empty(h, w),
        grounded=False,
        mask_area=0,
        mask_fraction=0.0,
        artifact_regions=list(cand) if cfg.explainer == "offline" else [],
    )
    ctx = ExplainContext(
        sample_id=row["sample_id"],
        label="fake",
        category=row.get("category"),
        method=row.get("method"),
        grounded=False,
        regions=infos,
        image_size=(h, w),
    )
    if cfg.explainer != "offline":
        ctx.image_jpeg = _jpeg(fake, cfg.llm_image_size, cfg.llm_jpeg_quality)
    return CpuResult(out.rec, ctx, masks)


def finish_row(
    res: CpuResult, text: str, explainer_name: str, region_ids: list[str] | None = None, visible: str | None = None
) -> AnnotationRecord:
    """``res.row`` with the explanation, its visible description (same marks, in order) and their segments."""
    out = replace(res.row, explainer=explainer_name)
    segments = age.build_segments(text, res.node_masks)
    problem = age.check_segments(text, segments)
    if problem:  # never write an explanation whose marks and masks disagree
        return failed(out, "marks_mismatch", problem)
    if visible and marks.marked_ids(visible) != marks.marked_ids(text):  # phrases may differ in case or words
        return failed(out, "marks_mismatch", "the visible description marks other regions than the explanation")
    regions = out.artifact_regions
    if out.grounded is False and region_ids is not None:
        regions = list(dict.fromkeys(region_ids))
    return replace(
        out, explanation=text, visible_explanation=visible or None, segments=segments, artifact_regions=regions
    )
