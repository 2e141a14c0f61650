"""Verdict accuracy of region-query answers and the anchor-named rate of grounded explanations."""

from fifa.benchmarks.metrics_verdict import anchor_named_rate, verdict_accuracy, verdict_of


def test_verdict_of_reads_the_opening_word_only():
    assert verdict_of("Yes. The nose is manipulated.") == "yes"
    assert verdict_of("  no, the left jaw is untouched") == "no"
    assert (
        verdict_of("Nothing here; yes it is") is None and verdict_of("Yesterday") is None and verdict_of(None) is None
    )


def test_verdict_accuracy_counts_missing_answers_wrong_and_skips_unlabelled_references():
    refs = ["Yes. The nose ...", "No, untouched.", "No.", "The face ..."]
    assert verdict_accuracy(refs, ["yes", "No", None, "yes"]) == 2 / 3
    assert verdict_accuracy(["The face"], ["yes"]) is None


def test_anchor_named_rate_matches_by_anchor_and_skips_real_images():
    answers = [
        "Within <p>the left eyeball</p> [SEG] the colour ...",  # left_eyeball: anchor left_eye
        "Around <p>the nose</p> [SEG] ...",
        "No manipulation.",
        "anything",
    ]
    refs = [["left_upper_eyelashes"], ["mouth"], ["nose"], []]
    # left_eyeball and left_upper_eyelashes share the left eye's anchor; nose != mouth; no mark; real image skipped
    assert anchor_named_rate(answers, refs) == 1 / 3
