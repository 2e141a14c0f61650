"""Deterministic, network-free explainer.

The text is assembled from what was measured, not from a fixed sentence: the chosen
regions (strongest first) with how much of each is affected, what the pair shows there
(colour shift and its direction, lost or added detail, changed geometry, from
``profiles.change_profiles``), and the concept tree's artifact cues for those regions that
match the measured change (a cue that does not match is offered as something to check,
never as a match). Regions showing the same kind of change are described together, so
the text does not repeat one clause per region; a closing sentence says what the
combination of changes implies. Phrasings vary deterministically with the sample id, so
a rerun gives the same text.

Two texts with the same marks in the same order: the explanation (measured against the source:
"redder than in the source (mean ΔE 19.7)") and the visible description (what the fake alone shows:
"an unnatural redder cast", no source, no figure; DESIGN.md "Answers describe the image"), which the
build's instruction and bench answers use.
"""

from __future__ import annotations

import hashlib

from fifa.core import marks

from .explain import CATEGORY_WORDS, ExplainContext, ExplainResult, RegionInfo, real_text

PROMPT_VERSION = "offline-v3"

KIND_KEYWORDS = {
    "colour": ("colour", "color", "tone", "tint", "light", "shade", "mismatch", "pale", "red"),
    "blur": ("blur", "smooth", "smear", "texture", "detail", "sharp", "wax", "missing", "plastic"),
    "noise": ("noise", "compression", "grain", "resolution", "block", "texture"),
    "geometry": ("shape", "warp", "misalign", "asymmetr", "distort", "position", "contour", "outline", "size"),
    "mixed": ("blend", "seam", "boundary", "edge", "outline", "mismatch"),
}

OPENERS = [
    (
        "This {cat} image was altered locally; the differences from its source concentrate in {n} region{s} "
        "and cover {pct} of the frame."
    ),
    "Compared with the pristine source, the {cat} manipulation is confined to {n} region{s} ({pct} of the image).",
    "The forgery ({cat}) leaves measurable traces in {n} region{s}, about {pct} of the pixels.",
]
#: the visible description's openers (what the fake alone shows: no source, no figure measured against it)
VISIBLE_OPENERS = [
    "This {cat} image shows manipulation in {n} region{s}.",
    "The face carries traces of {cat} manipulation in {n} region{s}.",
    "Signs of {cat} manipulation are visible in {n} region{s}.",
]
LEADS = ["In {p}, ", "Around {p}, ", "Within {p}, ", "At {p}, "]
EXTENT = [
    (0.85, "almost all of it"),
    (0.6, "most of it"),
    (0.35, "a large part of it"),
    (0.15, "part of it"),
    (0.0, "a small patch of it"),
]


EXTENT_SHORT = {
    "almost all of it": "almost all",
    "most of it": "most",
    "a large part of it": "a large part",
    "part of it": "part",
    "a small patch of it": "a small patch",
}

MEASURED = {
    "colour": ["the colour is {dir} than in the source ({de})", "the tone has shifted, {dir} than the source ({de})"],
    "blur": [
        "fine detail is lost and the texture is smoothed (detail energy down {det})",
        "the texture is softer than in the source, its fine detail gone (detail energy down {det})",
    ],
    "noise": [
        "grain or compression noise absent from the source was added (detail energy up {det})",
        "the texture is noisier than in the source, with added grain or blocking (detail energy up {det})",
    ],
    "geometry": [
        "edges and features are displaced relative to the source, a change of shape rather than of colour ({de})",
        "contours no longer line up with the source, so the shape changed rather than the colour ({de})",
    ],
    "mixed": [
        "the pixels differ from the source in both tone and structure ({de})",
        "both colour and structure depart from the source ({de})",
    ],
}

VISIBLE = {
    "colour": [
        "the colour shows {cast} that the surrounding skin does not share",
        "the colour looks uneven: {cast} sets it apart from its surroundings",
    ],
    "blur": [
        "the texture is smoothed and fine detail is missing",
        "it looks softer than the rest of the face, its fine detail gone",
    ],
    "noise": [
        "the texture carries grain or blocking that the rest of the face lacks",
        "it looks noisier than its surroundings, with visible grain or blocking",
    ],
    "geometry": [
        "edges and features look displaced, a change of shape rather than of colour",
        "contours look warped: the shape was changed rather than the colour",
    ],
    "mixed": [
        "both tone and texture look out of place next to the surrounding face",
        "colour and structure both look inconsistent with the rest of the face",
    ],
}
VISIBLE_CLOSERS = {
    "colour": "No loss of detail or change of shape comes with the tint: the edit changed tone, not structure.",
    "geometry": "The colours look natural, so the edit moved pixels rather than repainting them.",
}

CLOSERS = {
    "colour": "No loss of detail or change of shape comes with the shift: the edit changed tone, not structure.",
    "geometry": "Colour is essentially unchanged, so the edit moved pixels rather than repainting them.",
    "blur": (
        "The smoothing has no matching colour shift, as when a region is blurred or re-rendered at a lower resolution."
    ),
    "noise": "The added grain is local, unlike sensor noise, which would cover the whole frame.",
    "several": "The mix of changes points to a region-wise edit followed by blending, not a global filter.",
}


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


def _span(values: list[float]) -> str:
    """One value, or the range of a group's values (one decimal)."""
    lo, hi = f"{min(values):.1f}", f"{max(values):.1f}"
    return lo if lo == hi else f"{lo}–{hi}"


def _measured(kind: str, profiles: list[dict], seed: str) -> str:
    """What the pair shows in a group of regions of one ``kind`` (values as a range over them)."""
    de = "mean ΔE " + _span([p.get("delta_e", 0.0) for p in profiles])
    det = _span([abs(p.get("detail", 0.0)) for p in profiles])
    # direction of the group's mean shift (regions of one edit shift the same way)
    mean = {k: sum(p.get(k, 0.0) for p in profiles) / len(profiles) for k in ("dL", "da", "db")}
    direction = _colour_words(mean) if kind == "colour" else ""
    return _pick(MEASURED.get(kind, MEASURED["mixed"]), seed, "measured" + kind).format(dir=direction, de=de, det=det)


def _visible(kind: str, profiles: list[dict], seed: str) -> str:
    """What a group of regions of one ``kind`` looks like in the fake (no source, no figure)."""
    mean = {k: sum(p.get(k, 0.0) for p in profiles) / len(profiles) for k in ("dL", "da", "db")}
    words = _colour_words(mean)
    cast = "a slightly unnatural tint" if words == "slightly off in tone" else f"an unnatural {words} tint"
    return _pick(VISIBLE.get(kind, VISIBLE["mixed"]), seed, "visible" + kind).format(cast=cast)


def _cues(region: RegionInfo, kind: str) -> tuple[list[str], list[str]]:
    """(cues matching the measured change, the others) of a region, in tree order."""
    keys = KIND_KEYWORDS.get(kind, KIND_KEYWORDS["mixed"])
    matching = [a for a in region.artifacts if any(k in a.lower() for k in keys)]
    return matching, [a for a in region.artifacts if a not in matching]


def _lower(text: str) -> str:
    return text[0].lower() + text[1:] if text and not text[:2].isupper() else text


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _group_by_kind(regions: list[RegionInfo]) -> list[tuple[str, list[RegionInfo]]]:
    """Regions grouped by their kind of change, groups in order of their strongest region."""
    groups: dict[str, list[RegionInfo]] = {}
    for r in regions:
        groups.setdefault((r.profile or {}).get("kind", "mixed"), []).append(r)
    return list(groups.items())


class OfflineExplainer:
    needs_images = False

    def __init__(self, max_regions: int = 5):
        self.max_regions = max_regions
        self.name = f"offline/none/{PROMPT_VERSION}"

    def explain(self, ctx: ExplainContext) -> ExplainResult:
        if ctx.label == "real":
            return ExplainResult(text=real_text(ctx), visible=real_text(ctx))
        if not ctx.grounded:
            text, visible = self._ungrounded(ctx)
            return ExplainResult(text=text, visible=visible, region_ids=[r.id for r in ctx.regions])
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
                visible = f"Labelled as a {cat} fake, but no artifact stands out in the image, so no region is marked."
            else:
                text = (
                    f"Labelled as a {cat} fake; the differences from the source ({frac:.1%} of the image) "
                    "lie outside the mapped facial regions."
                )
                visible = f"Labelled as a {cat} fake; its manipulation lies outside the mapped facial regions."
            return ExplainResult(text=text, visible=visible)
        pct = f"{ctx.stats.get('mask_fraction', 0.0):.1%}"
        n = len(regions)
        fmt = dict(cat=cat, n=n, s="" if n == 1 else "s", pct=pct)
        sents = [_pick(OPENERS, seed, "open").format(**fmt)]
        vis = [_pick(VISIBLE_OPENERS, seed, "open").format(**fmt)]
        groups = _group_by_kind(regions)
        for g, (kind, members) in enumerate(groups):
            lead = _pick(LEADS, seed, f"lead{g}")
            profiles = [r.profile or {} for r in members]
            if len(members) == 1:
                r = members[0]
                where = f"{lead.format(p=marks.mark(r.phrase(), r.id))}{_extent(r.coverage)} is affected: "
            else:
                parts = [f"{marks.mark(r.phrase(), r.id)} ({EXTENT_SHORT[_extent(r.coverage)]})" for r in members]
                where = lead.format(p=_join(parts))
            for out, what in ((sents, _measured(kind, profiles, seed)), (vis, _visible(kind, profiles, seed))):
                body = where + what
                out.append(body[0].upper() + body[1:] + ".")
            cues = self._cue_sentences(members, kind, seed)
            sents.extend(cues)
            vis.extend(cues)
        kinds = [k for k, _ in groups]
        several = len(set(kinds)) > 1
        closer = CLOSERS["several"] if several else CLOSERS.get(kinds[0])
        if closer:
            sents.append(closer)
        closer = CLOSERS["several"] if several else VISIBLE_CLOSERS.get(kinds[0], CLOSERS.get(kinds[0]))
        if closer:
            vis.append(closer)
        return ExplainResult(
            text=" ".join(sents), visible=" ".join(vis), region_ids=[r.id for _, members in groups for r in members]
        )

    @staticmethod
    def _cue_sentences(members: list[RegionInfo], kind: str, seed: str) -> list[str]:
        matched, unmatched = [], []
        for r in members:
            good, other = _cues(r, kind)
            if good:
                matched.append((r, _pick(good, seed, r.id + kind)))
            elif other:
                unmatched.append((r, _pick(other, seed, r.id + kind)))
        out = []
        by_cue: dict[str, list[str]] = {}  # one cue shared by several regions is said once
        for r, cue in matched:
            by_cue.setdefault(_lower(cue), []).append(r.phrase())
        if len(matched) == 1:
            r, cue = matched[0]
            out.append(f"This fits a typical artifact of {r.phrase()}: {_lower(cue)}.")
        elif matched:
            out.append(
                "This fits typical artifacts of these regions: "
                + "; ".join(f"{c} ({_join(where)})" for c, where in by_cue.items())
                + "."
            )
        if unmatched and not matched:  # nothing fits: offer one cue to check, as a cue, not a match
            r, cue = unmatched[0]
            out.append(f"Worth checking by eye in {r.phrase()}: {_lower(cue)}.")
        return out

    def _ungrounded(self, ctx: ExplainContext) -> tuple[str, str]:
        """(explanation, visible description) of a fake without a source to compare with."""
        cat = CATEGORY_WORDS.get(ctx.category or "", "manipulated")
        regions = ctx.regions[: self.max_regions]
        if not regions:
            return (
                f"Labelled as a {cat} fake; without its source the artifacts cannot be localised.",
                f"Labelled as a {cat} fake; no artifact can be localised in the image.",
            )
        marked = ", ".join(marks.mark(r.phrase(), r.id) for r in regions)
        looks = []
        for r in regions[:3]:
            if r.artifacts:
                looks.append(f"Look for {_pick(r.artifacts, ctx.sample_id, r.id).rstrip('.')} ({r.name.lower()}).")
        text = (
            f"Labelled as a {cat} fake; no source image is available, so this explanation is not grounded "
            f"in a measured difference. Such forgeries typically leave traces in {marked}."
        )
        visible = f"Labelled as a {cat} fake; such forgeries typically leave traces in {marked}."
        return " ".join([text, *looks]), " ".join([visible, *looks])


#: Regions a category of forgery typically touches (used when there is no source to compare with).
CATEGORY_PRIOR = {
    "FS": ["face"],
    "FR": ["mouth", "eyes", "chin"],
    "FE": ["face"],
    "EFS": ["face", "hair", "background"],
}
