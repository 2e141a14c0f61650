from fifa.annotator import age


def test_marks_and_renderers():
    text = "The [left iris](left_iris) is blurred, and [the upper lip](upper_lip) is redder (ΔE 12)."
    assert age.parse(text) == [("left_iris", "left iris"), ("upper_lip", "the upper lip")]
    assert age.to_plain(text) == "The left iris is blurred, and the upper lip is redder (ΔE 12)."
    assert age.to_glamm(text) == "The <p>left iris</p> [SEG] is blurred, and <p>the upper lip</p> [SEG] is redder (ΔE 12)."
    segs = age.build_segments(text, {"left_iris": {"size": [2, 2], "counts": "04"}, "upper_lip": {"size": [2, 2], "counts": "4"}})
    assert [s["node_id"] for s in segs] == ["left_iris", "upper_lip"]
    assert age.check_ids(text, ["left_iris"]) == ["upper_lip"]


def test_mark_escapes_brackets():
    m = age.mark("the [odd] phrase", "nose")
    assert age.parse(f"x {m} y") == [("nose", "the (odd) phrase")]
