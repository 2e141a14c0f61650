"""The offline explainer's text: measured facts grouped by kind of change, cues only where they fit."""

from __future__ import annotations

from fifa.annotator.explain import ExplainContext, RegionInfo
from fifa.annotator.explain_offline import OfflineExplainer
from fifa.core import marks


def _geometry(de: float) -> dict:
    return {"kind": "geometry", "delta_e": de, "shift": 0.5, "dL": 0.3, "da": 0.1, "db": -0.2, "detail": 0.2}


def _colour(de: float, dl: float) -> dict:
    return {"kind": "colour", "delta_e": de, "shift": de, "dL": dl, "da": 0.4, "db": 0.2, "detail": 0.1}


def _ctx(sample_id: str = "fake_1") -> ExplainContext:
    regions = [
        RegionInfo(
            "nose",
            "Nose",
            0.9,
            0.5,
            _geometry(14.2),
            artifacts=["nose shape changing between frames", "nose shading inconsistent with the light"],
        ),
        RegionInfo("left_cheek", "Left cheek", 0.4, 0.2, _colour(6.0, -5.0), artifacts=["tone mismatch with the nose"]),
        RegionInfo("philtrum", "Philtrum", 0.7, 0.2, _geometry(5.7), artifacts=["moustache hairs smeared"]),
    ]
    return ExplainContext(
        sample_id=sample_id,
        label="fake",
        category="FE",
        regions=regions,
        stats={"mask_fraction": 0.047, "mask_area": 100},
    )


def test_regions_with_the_same_change_share_one_clause():
    res = OfflineExplainer().explain(_ctx())
    text = res.text
    # the two geometry regions are described together, with the range of their values, before the colour one
    assert [nid for nid, _ in marks.parse(text)] == ["nose", "philtrum", "left_cheek"] == res.region_ids
    assert text.count("ΔE 5.7–14.2") == 1 and "ΔE 6.0" in text
    assert sum(text.count(w) for w in ("displaced", "no longer line up")) == 1
    assert "darker" in marks.strip(text)  # the colour direction comes from the measured Lab shift
    assert "4.7%" in text
    assert "region-wise edit followed by blending" in text  # two kinds of change


def test_a_cue_is_only_called_a_match_when_it_fits_the_measured_change():
    text = OfflineExplainer().explain(_ctx()).text
    assert "nose shape changing between frames" in text  # geometry cue for a geometry change
    assert "tone mismatch with the nose" in text  # colour cue for the colour change
    assert "moustache hairs" not in text  # does not fit a shape change, and the group has a fitting cue
    only = _ctx()
    only.regions = [only.regions[2]]
    text = OfflineExplainer().explain(only).text
    assert "Worth checking by eye in the philtrum: moustache hairs smeared." in text  # offered, not matched
    assert "fits" not in text


def test_text_is_deterministic_and_varies_between_samples():
    ex = OfflineExplainer()
    assert ex.explain(_ctx("a")).text == ex.explain(_ctx("a")).text
    openings = {ex.explain(_ctx(f"s{i}")).text.split(". ")[0] for i in range(12)}
    assert len(openings) >= 2


def test_one_kind_of_change_gets_a_closing_sentence_about_that_kind():
    ctx = _ctx()
    ctx.regions = [ctx.regions[0], ctx.regions[2]]
    text = OfflineExplainer().explain(ctx).text
    assert text.endswith("Colour is essentially unchanged, so the edit moved pixels rather than repainting them.")
