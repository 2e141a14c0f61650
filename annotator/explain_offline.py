"""Deterministic, network-free explainer.

The text is assembled from what was measured, not from a fixed sentence: the chosen
regions (strongest first) with how much of each is affected, what the pair shows there
(colour shift and its direction, lost or added detail, changed geometry, from
``diffmask.change_profile``), and the concept tree's artifact cue for that region that
matches the measured change. Phrasings vary deterministically with the sample id, so
a rerun gives the same text.
"""

from __future__ import annotations

import hashlib

from . import age
from .explain import CATEGORY_WORDS, ExplainContext, ExplainResult, RegionInfo, real_text

PROMPT_VERSION = "offline-v1"

KIND_KEYWORDS = {
    "colour": ("colour", "color", "tone", "tint", "light", "shade", "skin", "mismatch", "pale", "red"),
    "blur": ("blur", "smooth", "smear", "texture", "detail", "sharp", "wax", "missing", "plastic"),
    "noise": ("noise", "compression", "grain", "resolution", "block", "texture"),
    "geometry": ("shape", "warp", "misalign", "asymmetr", "distort", "position", "contour", "outline", "size"),
    "mixed": ("blend", "seam", "boundary", "edge", "outline", "mismatch"),
}

OPENERS = [
    "This {cat} image was altered locally; the differences from its source concentrate in {n} region{s} and cover {pct} of the frame.",
    "Compared with the pristine source, the {cat} manipulation is confined to {n} region{s} ({pct} of the image).",
    "The forgery ({cat}) leaves measurable traces in {n} region{s}, about {pct} of the pixels.",
]
LEADS = ["In {p}, ", "Around {p}, ", "Within {p}, ", "At {p}, "]
EXTENT = [
    (0.85, "almost all of it"),
    (0.6, "most of it"),
    (0.35, "a large part of it"),
    (0.15, "part of it"),
    (0.0, "a small patch of it"),
]


def _pick(options: list[str], seed: str, salt: str) -> str:
    h = int(hashlib.sha1(f"{seed}/{salt}".encode()).hexdigest()[:8], 16)
    return options[h % len(options)]


def _extent(coverage: float) -> str:
    for t, words in EXTENT:
        if coverage >= t:
            return words
    return EXTENT[-1][1]


def _colour_words(p: dict) -> str:
    dl, da, db = p.get("dL", 0.0), p.get("da", 0.0), p.get("db", 0.0)
    parts = []
    if abs(dl) >= 2.0:
        parts.append("lighter" if dl > 0 else "darker")
    if abs(da) >= 2.0 and abs(da) >= 0.5 * abs(db):
        parts.append("redder" if da > 0 else "greener")
    if abs(db) >= 2.0 and abs(db) >= 0.5 * abs(da):
        parts.append("yellower" if db > 0 else "bluer")
    if not parts:
        return "slightly off in tone"
    return " and ".join(parts[:2])


def _measured(p: dict) -> str:
    kind = p.get("kind", "mixed")
    de = p.get("delta_e", 0.0)
    if kind == "colour":
        return f"the colour is {_colour_words(p)} than in the source (mean ΔE {de:.1f})"
    if kind == "blur":
        return f"fine detail is lost, the texture is smoothed (detail energy down {abs(p.get('detail', 0.0)):.1f})"
    if kind == "noise":
        return f"grain or compression noise not present in the source was added (detail energy up {abs(p.get('detail', 0.0)):.1f})"
    if kind == "geometry":
        return f"edges and features are displaced relative to the source, a change of shape rather than of colour (ΔE {de:.1f})"
    return f"the pixels differ from the source in both tone and structure (ΔE {de:.1f})"


def _cue(region: RegionInfo, kind: str, seed: str) -> str | None:
    if not region.artifacts:
        return None
    keys = KIND_KEYWORDS.get(kind, KIND_KEYWORDS["mixed"])
    matching = [a for a in region.artifacts if any(k in a.lower() for k in keys)]
    pool = matching or region.artifacts
    return _pick(pool, seed, region.id + kind)


class OfflineExplainer:
    needs_images = False

    def __init__(self, max_regions: int = 5):
        self.max_regions = max_regions
        self.name = f"offline/none/{PROMPT_VERSION}"

    def explain(self, ctx: ExplainContext) -> ExplainResult:
        if ctx.label == "real":
            return ExplainResult(text=real_text(ctx))
        if not ctx.grounded:
            return ExplainResult(text=self._ungrounded(ctx), region_ids=[r.id for r in ctx.regions])
        return self._grounded(ctx)

    def _grounded(self, ctx: ExplainContext) -> ExplainResult:
        regions = ctx.regions[: self.max_regions]
        seed = ctx.sample_id
        cat = CATEGORY_WORDS.get(ctx.category or "", "manipulated")
        if not regions:
            frac = ctx.stats.get("mask_fraction", 0.0)
            if ctx.stats.get("mask_area", 0) == 0:
                text = (
                    f"Labelled as a {cat} fake, but the image is practically identical to its source: "
                    "no difference rises above the compression-noise floor, so no region is marked."
                )
            else:
                text = (
                    f"Labelled as a {cat} fake; the differences from the source ({frac:.1%} of the image) "
                    "lie outside the mapped facial regions."
                )
            return ExplainResult(text=text)
        pct = f"{ctx.stats.get('mask_fraction', 0.0):.1%}"
        n = len(regions)
        sents = [_pick(OPENERS, seed, "open").format(cat=cat, n=n, s="" if n == 1 else "s", pct=pct)]
        for i, r in enumerate(regions):
            p = r.profile or {}
            kind = p.get("kind", "mixed")
            lead = _pick(LEADS, seed, f"lead{i}").format(p=age.mark(r.phrase(), r.id))
            body = f"{lead}{_extent(r.coverage)} is affected: {_measured(p)}"
            cue = _cue(r, kind, seed)
            if cue:
                body += f"; this matches a typical artifact here, {cue[0].lower() + cue[1:]}"
            sents.append(body + ".")
        kinds = {(r.profile or {}).get("kind") for r in regions}
        if len(kinds) > 1:
            sents.append("The mix of changes points to a region-wise edit followed by blending, not a global filter.")
        return ExplainResult(text=" ".join(sents), region_ids=[r.id for r in regions])

    def _ungrounded(self, ctx: ExplainContext) -> str:
        cat = CATEGORY_WORDS.get(ctx.category or "", "manipulated")
        regions = ctx.regions[: self.max_regions]
        if not regions:
            return f"Labelled as a {cat} fake; without its source the artifacts cannot be localised."
        marked = ", ".join(age.mark(r.phrase(), r.id) for r in regions)
        sents = [
            f"Labelled as a {cat} fake; no source image is available, so this explanation is not grounded "
            f"in a measured difference. Such forgeries typically leave traces in {marked}."
        ]
        for r in regions[:3]:
            if r.artifacts:
                sents.append(f"Look for {_pick(r.artifacts, ctx.sample_id, r.id).rstrip('.')} ({r.name.lower()}).")
        return " ".join(sents)


#: Regions a category of forgery typically touches (used when there is no source to compare with).
CATEGORY_PRIOR = {
    "FS": ["face"],
    "FR": ["mouth", "eyes", "chin"],
    "FE": ["face"],
    "EFS": ["face", "hair", "background"],
}
