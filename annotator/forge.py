"""Pseudo-forgeries with exact ground truth, from real faces (`fifa-data forge`).

It lives with the annotator, the lowest stage that uses it (`fifa-annotate run --demo`, the
accuracy evaluation); `fifa-data forge` in pipelines is its command line. See docs/forge.md.

* Base faces (:mod:`.forge_faces`): the bundled public-domain photos and their variants, the
  100 faces of scikit-image's ``lfw_subset`` (``identities="lfw"``), any folder of faces. Every
  base is a real row; ``group`` is the identity.
* Fakes (:mod:`.forge_edits`): strong edits (SBI, ColorShift, Blur, Warp, Noise, RegionSwap) and
  subtle ones (GentleWarp, LightBlur, Tint, SkinSmooth, IrisRecolour), deterministic given
  ``seed``. A fake is saved as PNG, as a high-quality JPEG (``jpeg_fraction``) or as a *JPEG
  pair* (``jpeg_pair_fraction``: fake and source both re-encoded, the source as a JPEG copy of
  the base).
* Re-encoded-only pairs (``reencoded_fraction``): a base re-saved as JPEG (q 70-95) or resized
  and back. They are not forgeries: ``label=real``, ``source_path`` = the pristine base,
  ``pair_kind=reencoded``, an empty truth mask; an annotator shown such a pair as a suspected
  fake must find nothing (the JPEG copies that serve as sources of JPEG pairs are rows of the
  same kind).

Ground truth: ``truth_mask`` is the region the edit was applied to, exactly: no pixel outside it
changes (blends are feathered inward, warps tapered); ``truth`` lists the FICT leaves
substantially covered by it (at least half of the leaf, or a quarter of the edit), computed from
that mask and the segmentation of the source; ``truth_target`` is the node the edit aimed at.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from .forge_edits import (  # noqa: F401
    CATEGORY,
    EDIT_TYPES,
    REGION_EDITS,
    STRONG,
    SUBTLE,
    TARGETS,
    UNIONS,
    edit_sbi,
    edit_swap,
    face_scale,
    mean_abs_change,
)
from .forge_faces import BaseFace, BaseSet, FaceSource, base_variants, bundled_faces, grace_hopper_path, identity_faces  # noqa: F401
from .forge_output import ForgeWriter, manifest_schema

log = logging.getLogger(__name__)

MIN_TARGET_FRACTION = 0.0006  # of the image
MIN_TARGET_PX = 30  # an iris of a small face
TRUTH_COVERAGE = 0.5
TRUTH_SHARE = 0.25
SMALL_FACE_KINDS = ("SkinSmooth", "IrisRecolour")  # preferably on small faces in a large frame
SOURCE_JPEG_QUALITIES = (75, 85, 95)
MIN_MEAN_CHANGE = 1.5  # grey levels over the truth mask: a lighter edit (a light blur of a blurry face) is no fake
PAIR_KINDS = ("pristine", "forgery", "reencoded")


def truth_leaves(regions, truth_mask: np.ndarray) -> list[str]:
    """FICT leaves substantially covered by the edit mask, most covered first."""
    lm = regions.label_map
    n = len(regions.leaf_ids)
    area = np.bincount(lm.ravel().astype(np.int64) + 1, minlength=n + 1)[1:]
    inter = np.bincount(lm[truth_mask].astype(np.int64) + 1, minlength=n + 1)[1:]
    total = max(int(truth_mask.sum()), 1)
    out = []
    for k, leaf in enumerate(regions.leaf_ids):
        if not area[k] or not inter[k]:
            continue
        cov, share = inter[k] / area[k], inter[k] / total
        if cov >= TRUTH_COVERAGE or share >= TRUTH_SHARE:
            out.append((-cov, leaf))
    return [leaf for _, leaf in sorted(out)]


def _choose_base(kind: str, bases: list[BaseFace], rng) -> BaseFace | None:
    pool = bases
    if kind == "Tint":
        pool = [b for b in bases if b.grey]
    elif kind in SMALL_FACE_KINDS:
        small = [b for b in bases if b.small_face]
        if small and rng.random() < 0.75:
            pool = small
    if not pool:
        return None
    return pool[int(rng.integers(len(pool)))]


def _target_mask(kind: str, target: str, reg) -> np.ndarray:
    if target in UNIONS:
        leaves, _ = UNIONS[target]
        return np.logical_or.reduce([reg.mask(x) for x in leaves])
    return reg.mask(target)


def _make_fake(kind: str, b: BaseFace, bases: list[BaseFace], tree, rng):
    """(fake, truth mask, params, truth_target) or None when the base does not suit the edit."""
    img, reg = b.image, b.regions
    h, w = img.shape[:2]
    s = face_scale(reg)
    if kind == "SBI":
        return (*edit_sbi(img, reg, rng, s), "face")
    min_px = MIN_TARGET_PX if kind == "IrisRecolour" else max(MIN_TARGET_PX, MIN_TARGET_FRACTION * h * w)
    cands = [t for t in TARGETS[kind] if (t in tree or t in UNIONS) and _target_mask(kind, t, reg).sum() >= min_px]
    if not cands:
        return None
    target = cands[int(rng.integers(len(cands)))]
    m = _target_mask(kind, target, reg)
    if kind == "RegionSwap":
        donors = [d for d in bases if d.group != b.group]
        if not donors:
            return None
        res = edit_swap(img, m, rng, s, reg, donors[int(rng.integers(len(donors)))])
        if res is None:
            return None
    else:
        res = REGION_EDITS[kind](img, m, rng, s)
    return (*res, UNIONS[target][1] if target in UNIONS else target)


def reencode(img: np.ndarray, rng) -> tuple[np.ndarray, int | None, dict]:
    """A copy that differs only by re-encoding: (pixels, JPEG quality or None for PNG, params)."""
    if rng.random() < 0.5:
        q = int(rng.integers(70, 96))
        return img, q, {"reencode": "jpeg", "quality": q}
    h, w = img.shape[:2]
    f = float(rng.uniform(0.5, 0.9))
    small = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    back = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC)
    return back, None, {"reencode": "resize", "factor": round(f, 3)}


@dataclass(frozen=True)
class ForgeConfig:
    """What :func:`forge` makes (the defaults of the library and of ``fifa-data forge``).

    ``identities``: ``bundled`` (the two photos and their variants), ``lfw`` (the 100 faces of
    ``lfw_subset``, upscaled to ``identity_size``, at most ``max_identities``) or ``all``.
    ``kinds``: edit types to use (default: all of :data:`EDIT_TYPES`).
    """

    n: int = 60  #: fakes
    seed: int = 0
    faces: str | Path | None = None  #: extra folder (or file) of real faces used as bases
    jpeg_fraction: float = 0.25  #: share of fakes saved as high-quality JPEG (source PNG)
    base_tags: tuple[str, ...] | None = None  #: base variants to keep (default: all)
    identities: str = "bundled"
    identity_size: int = 256
    max_identities: int | None = None
    kinds: tuple[str, ...] | None = None
    jpeg_pair_fraction: float = 0.15  #: share of fakes whose fake and source are both JPEG
    reencoded_fraction: float = 0.1  #: re-encoded-only pairs, as a share of ``n``

    def edit_kinds(self) -> tuple[str, ...]:
        """The edit kinds to use; raises ValueError for an unknown kind or bad fractions."""
        kinds = tuple(self.kinds) if self.kinds else EDIT_TYPES
        bad = [k for k in kinds if k not in EDIT_TYPES]
        if bad:
            raise ValueError(f"unknown edit kind(s) {', '.join(bad)}; known: {', '.join(EDIT_TYPES)}")
        fractions = (self.jpeg_fraction, self.jpeg_pair_fraction, self.reencoded_fraction)
        if min(fractions) < 0 or self.jpeg_fraction + self.jpeg_pair_fraction > 1:
            raise ValueError("fractions must be >= 0 and jpeg_fraction + jpeg_pair_fraction <= 1")
        return kinds


def forge(out_dir: str | Path, config: ForgeConfig | None = None, *, segmenter=None, **options) -> Path:
    """Write ``out_dir/manifest.parquet`` (real bases, ``n`` fakes, re-encoded pairs); returns its path.

    ``options`` are fields of :class:`ForgeConfig` that replace those of ``config``:
    ``forge(out, n=60, seed=7)`` is ``forge(out, ForgeConfig(n=60, seed=7))``. Also writes
    ``out_dir/forge.json`` (counts, skipped faces). Raises ValueError for a bad option or
    when no base face is usable.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fifa.concept_tree.tree import load_tree

    cfg = replace(config or ForgeConfig(), **options)
    kinds = cfg.edit_kinds()
    out = Path(out_dir)
    w = ForgeWriter(out)
    rng = np.random.default_rng(cfg.seed)
    tree = load_tree()
    bases, skipped = _bases(cfg, segmenter)
    for b in bases:
        w.real(b)
    made, attempts, by_method = _forge_fakes(cfg, kinds, bases, tree, rng, w)
    n_neg = int(round(cfg.n * cfg.reencoded_fraction))
    for k in range(1, n_neg + 1):
        b = bases[int(rng.integers(len(bases)))]
        arr, quality, params = reencode(b.image, rng)
        sid = f"reenc_{k:05d}_{params['reencode']}"
        path = w.image(arr, sid, quality)
        w.rows.append(w.row(sid, path, w.pristine(b), "real", b, edit=params, pair_kind="reencoded"))
    table = pa.Table.from_pylist(w.rows, schema=manifest_schema())
    path = out / "manifest.parquet"
    pq.write_table(table, path)
    summary = {
        "seed": cfg.seed,
        "n": cfg.n,
        "identities": cfg.identities,
        "bases": len(bases),
        "skipped_faces": len(skipped),
        "skipped": skipped,
        "fakes": made,
        "fakes_by_method": dict(sorted(by_method.items())),
        "reencoded_rows": sum(r["pair_kind"] == "reencoded" for r in w.rows),
        "attempts": attempts,
    }
    (out / "forge.json").write_text(json.dumps(summary, indent=2) + "\n")
    if made < cfg.n:
        log.warning("made %d of %d fakes (the bases did not suit the edits asked for)", made, cfg.n)
    return path


def _bases(cfg: ForgeConfig, segmenter) -> tuple[list[BaseFace], list]:
    """The usable base faces (identities, extra faces, their variants) and the skipped ones."""
    from fifa.concept_tree.imageio import ImageError, list_images, load_rgb
    from fifa.concept_tree.segmentation.segment import Segmenter

    src_faces = identity_faces(cfg.identities, cfg.identity_size, cfg.max_identities)
    if cfg.faces is not None:
        for p in list_images(cfg.faces):
            try:
                src_faces.append(FaceSource(p.stem, load_rgb(p)))
            except ImageError as e:
                log.warning("skipping %s: %s", p, e)
    own = segmenter is None
    seg = Segmenter() if own else segmenter
    try:
        found = base_variants(src_faces, seg, cfg.base_tags)
    finally:
        if own:
            seg.close()
    if not found.bases:
        raise ValueError("no usable face among the base images")
    return found.bases, found.skipped


def _forge_fakes(
    cfg: ForgeConfig, kinds: tuple[str, ...], bases: list[BaseFace], tree, rng, w: ForgeWriter
) -> tuple[int, int, dict[str, int]]:
    """Up to ``cfg.n`` fakes (at most ``20 n`` attempts), written by ``w``: (made, attempts, fakes per kind)."""
    made = attempts = 0
    by_method: dict[str, int] = {}
    queue: list[str] = []
    while made < cfg.n and attempts < cfg.n * 20:
        attempts += 1
        if not queue:  # every kind once per round, in a random order: balanced kinds
            queue = [kinds[i] for i in rng.permutation(len(kinds))]
        kind = queue.pop()
        b = _choose_base(kind, bases, rng)
        res = _make_fake(kind, b, bases, tree, rng) if b is not None else None
        if res is None:
            continue
        fake, tmask, params, target = res
        if tmask.sum() < 20:
            continue
        truth = truth_leaves(b.regions, tmask)
        change = mean_abs_change(b.image, fake, tmask)
        if not truth or change < MIN_MEAN_CHANGE:
            continue
        made += 1
        by_method[kind] = by_method.get(kind, 0) + 1
        sid = f"fake_{made:05d}_{kind.lower()}"
        params["mean_abs_change"] = round(change, 2)
        _save_fake(cfg, w, b, sid, fake, tmask, params, kind, truth, target, rng)
    return made, attempts, by_method


def _save_fake(
    cfg: ForgeConfig,
    w: ForgeWriter,
    b: BaseFace,
    sid: str,
    fake,
    tmask,
    params: dict,
    kind: str,
    truth: list[str],
    target,
    rng,
) -> None:
    """Save one fake (PNG, JPEG or JPEG pair, drawn from ``rng``), its truth mask and its manifest row."""
    src_path, quality = w.pristine(b), None
    r = rng.random()
    if r < cfg.jpeg_pair_fraction:
        qs = int(rng.choice(SOURCE_JPEG_QUALITIES))
        quality = int(rng.integers(75, 96))
        src_path = w.jpeg_source(b, qs)
        params.update(source_jpeg_q=qs, fake_jpeg_q=quality)
    elif r < cfg.jpeg_pair_fraction + cfg.jpeg_fraction:
        quality = int(rng.integers(92, 98))
        params["fake_jpeg_q"] = quality
    path = w.image(fake, sid, quality)
    w.mask(tmask, sid)
    w.rows.append(
        w.row(
            sid,
            path,
            src_path,
            "fake",
            b,
            method=kind,
            truth=truth,
            target=target,
            mask=tmask,
            edit=params,
            pair_kind="forgery",
        )
    )
