from fifa.annotator import age


def test_segments_and_id_guard():
    text = "The [left iris](left_iris) is blurred, and [the upper lip](upper_lip) is redder (ΔE 12)."
    segs = age.build_segments(
        text, {"left_iris": {"size": [2, 2], "counts": "04"}, "upper_lip": {"size": [2, 2], "counts": "4"}}
    )
    assert [s["node_id"] for s in segs] == ["left_iris", "upper_lip"]
    assert age.check_segments(text, segs) is None
    assert age.check_segments(text, segs[:1]) == "marked region(s) without a mask: upper_lip"
    assert age.check_ids(text, ["left_iris"]) == ["upper_lip"]
