"""Both explainers write a visible description beside the explanation: what the fake alone shows, with the
explanation's marks in the same order, never the source or a figure measured against it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from fifa.annotator.explain import ExplainContext, RegionInfo
from fifa.annotator.explain_offline import OfflineExplainer
from fifa.annotator.explain_openai import OpenAIExplainer, build_request
from fifa.annotator.visible import source_mention
from fifa.core import marks
from fifa.core.llm import OpenAIConfig
from testkit.fake_llm_server import MARKER_COLOURS, FakeLLMServer

KINDS = {
    "colour": {"kind": "colour", "delta_e": 19.7, "dL": 4.0, "da": 6.0, "db": 3.0, "detail": 0.1},
    "pale": {"kind": "colour", "delta_e": 3.1, "dL": 0.5, "da": 0.2, "db": 0.1, "detail": 0.0},
    "blur": {"kind": "blur", "delta_e": 2.0, "dL": 0.1, "da": 0.0, "db": 0.0, "detail": -8.5},
    "noise": {"kind": "noise", "delta_e": 2.5, "dL": 0.0, "da": 0.1, "db": 0.0, "detail": 6.0},
    "geometry": {"kind": "geometry", "delta_e": 14.2, "dL": 0.3, "da": 0.1, "db": -0.2, "detail": 0.2},
    "mixed": {"kind": "mixed", "delta_e": 9.0, "dL": -3.0, "da": -4.0, "db": 2.0, "detail": -2.0},
}
REGIONS = [
    ("nose", "Nose"),
    ("left_cheek", "Left cheek"),
    ("mouth", "Mouth"),
    ("left_iris", "Left iris"),
    ("forehead", "Forehead"),
]


def contexts() -> list[ExplainContext]:
    """Fakes of every kind of change, alone and mixed, one to five regions; no region; no source; real."""
    out = []
    kinds = list(KINDS)
    for i in range(60):
        n = 1 + i % 5
        regs = [
            RegionInfo(
                rid,
                name,
                0.1 + 0.18 * k,
                0.2,
                dict(KINDS[kinds[(i + k * (i % 3)) % len(kinds)]]),
                artifacts=["blurred edges and a colour mismatch", "shape warped against the jaw"],
            )
            for k, (rid, name) in enumerate(REGIONS[:n])
        ]
        out.append(
            ExplainContext(
                sample_id=f"fake_{i}",
                label="fake",
                category=["FE", "FS", "FR", "EFS"][i % 4],
                regions=regs,
                stats={"mask_fraction": 0.039, "mask_area": 500},
            )
        )
    out.append(ExplainContext("none_0", "fake", "FE", regions=[], stats={"mask_fraction": 0.0, "mask_area": 0}))
    out.append(ExplainContext("none_1", "fake", "FS", regions=[], stats={"mask_fraction": 0.02, "mask_area": 90}))
    for i in range(6):
        out.append(
            ExplainContext(
                f"ungrounded_{i}",
                "fake",
                "FS",
                grounded=False,
                regions=[RegionInfo(r, nm, artifacts=["seam at the face boundary"]) for r, nm in REGIONS[: i % 4]],
            )
        )
    out.append(ExplainContext("real_0", "real", "real"))
    return out


def test_offline_visible_description_has_the_marks_and_no_source():
    ex = OfflineExplainer()
    measured_mentions = 0
    for ctx in contexts():
        res = ex.explain(ctx)
        assert res.visible, ctx.sample_id
        assert source_mention(res.visible) is None, (ctx.sample_id, res.visible)
        assert marks.parse(res.visible) == marks.parse(res.text), ctx.sample_id  # offline: the very same marks
        measured_mentions += source_mention(res.text) is not None
    assert measured_mentions > 60  # the explanation keeps the measurements: the check is not vacuous


def test_offline_visible_names_the_kind_of_edit():
    ex = OfflineExplainer()
    for kind, words in (
        ("blur", "smooth|softer"),
        ("noise", "grain"),
        ("geometry", "displaced|warped"),
        ("colour", "redder"),
    ):
        ctx = ExplainContext(
            "k",
            "fake",
            "FE",
            regions=[RegionInfo("nose", "Nose", 0.7, 0.5, dict(KINDS[kind]))],
            stats={"mask_fraction": 0.02, "mask_area": 10},
        )
        import re

        assert re.search(words, ex.explain(ctx).visible), (kind, ex.explain(ctx).visible)


def _jpeg(colour) -> bytes:
    img = np.full((64, 64, 3), 128, np.uint8)
    img[:16, :16] = colour
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _ctx(jpeg: bytes) -> ExplainContext:
    regs = [
        RegionInfo("nose", "Nose", 0.8, 0.6, dict(KINDS["colour"]), artifacts=["tone mismatch"]),
        RegionInfo("mouth", "Mouth", 0.3, 0.4, dict(KINDS["blur"]), artifacts=["blurred lips"]),
    ]
    return ExplainContext(
        "s1", "fake", "FE", regions=regs, stats={"mask_fraction": 0.05}, image_jpeg=jpeg, source_jpeg=jpeg
    )


def test_openai_request_asks_for_the_visible_description_as_schema_fields():
    req = build_request(_ctx(_jpeg((1, 2, 3))), OpenAIConfig(model="m"))
    schema = req["response_format"]["json_schema"]["schema"]
    assert "visible_summary" in schema["required"]
    assert "visible" in schema["properties"]["regions"]["items"]["required"]
    text = req["messages"][1]["content"][0]["text"]
    assert "visible_summary" in text and "must not" in text


@pytest.mark.parametrize(
    "script, ok",
    [(["ok"], True), (["source_in_visible", "ok"], True), (["source_in_visible", "source_in_visible"], False)],
)
def test_openai_visible_description_is_stored_and_a_source_mention_is_refused(script, ok, tmp_path):
    with FakeLLMServer(markers={"red": script}) as srv:
        ex = OpenAIExplainer(
            OpenAIConfig(model="test-vlm", base_url=srv.url, api_key="sk-test", cache_dir=None, max_retries=0)
        )
        try:
            res = ex.explain(_ctx(_jpeg(MARKER_COLOURS["red"])))
        finally:
            ex.close()
        assert srv.requests == len(script)
    assert res.ok is ok
    if ok:
        assert res.visible.startswith("The face shows localized editing traces.")
        assert marks.marked_ids(res.visible) == marks.marked_ids(res.text) == ["nose", "mouth"]
        assert source_mention(res.visible) is None and source_mention(res.text) is not None
    else:
        assert res.error_code == "llm_invalid" and "visible_summary" in res.error and "source" in res.error
        assert json.dumps(res.error)  # a plain message
