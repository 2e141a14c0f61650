"""Answer parsing on hard phrasings."""

from __future__ import annotations

import pytest

from fifa.benchmarks.parsing import parse_cls, parse_det

FAKE, REAL = 1, 0


@pytest.mark.parametrize(
    "answer,expected",
    [
        ("Yes", FAKE),
        ("yes.", FAKE),
        ("No", REAL),
        ("No.", REAL),
        ("fake", FAKE),
        ("Real", REAL),
        ("not fake", REAL),
        ("It is not fake.", REAL),
        ("This face isn't real.", FAKE),
        ("no signs of manipulation", REAL),
        ("There are no visible signs of any manipulation in this image.", REAL),
        ("The image shows no evidence of tampering; it is authentic.", REAL),
        ("real? no, it is fake", FAKE),
        ("Is it real? No. The face was swapped.", FAKE),
        ("Yes, the face has been manipulated.", FAKE),
        ("No, this is a genuine photograph.", REAL),
        ("It is not a deepfake.", REAL),
        ("This is a deepfake: the blending around the jaw is inconsistent.", FAKE),
        ("It looks real but it is actually fake.", FAKE),
        ("Unlikely to be fake.", REAL),
        ("The image is pristine.", REAL),
        ("AI-generated face.", FAKE),
    ],
)
def test_parse_det(answer, expected):
    assert parse_det(answer) == expected


@pytest.mark.parametrize(
    "answer",
    [
        "I cannot tell",
        "I can't tell whether it is real or fake.",
        "Hard to say.",
        "It is real and it is fake.",
        "",
        "   ",
        None,
        "banana",
        42,
    ],
)
def test_parse_det_unparseable(answer):
    assert parse_det(answer) is None


CATS = ["EFS", "FE", "FR", "FS", "real"]
METHODS = ["Deepfakes", "Face2Face", "FaceShifter", "FaceSwap", "NeuralTextures", "real"]


@pytest.mark.parametrize(
    "answer,expected",
    [
        ("FS", "FS"),
        ("fs", "FS"),
        ("It is a face swap.", "FS"),
        ("This image was produced by face swapping.", "FS"),
        ("identity swap", "FS"),
        ("The manipulation category is FR.", "FR"),
        ("face reenactment", "FR"),
        ("Expression swap was used.", "FR"),
        ("attribute editing", "FE"),
        ("The face was edited with an app.", "FE"),
        ("Entire face synthesis.", "EFS"),
        ("A fully synthetic face, GAN generated.", "EFS"),
        ("This is not face swap, it is face reenactment.", "FR"),
        ("It is not real; it is a face swap.", "FS"),
        ("I think this image is pristine.", "real"),
        ("Authentic.", "real"),
        ("Made with Deepfakes.", "FS"),  # a method name implies its category
        ("NeuralTextures", "FR"),
        ("FS? no, FR.", "FR"),
    ],
)
def test_parse_cls_categories(answer, expected):
    assert parse_cls(answer, CATS) == expected


@pytest.mark.parametrize(
    "answer,expected",
    [
        ("Deepfakes", "Deepfakes"),
        ("deepfakes", "Deepfakes"),
        ("The method is Face2Face.", "Face2Face"),
        ("face 2 face", "Face2Face"),
        ("neural textures", "NeuralTextures"),
        ("It was made with face swap", "FaceSwap"),
        ("Face Shifter", "FaceShifter"),
        ("not FaceSwap but FaceShifter", "FaceShifter"),
        ("real", "real"),
    ],
)
def test_parse_cls_methods(answer, expected):
    assert parse_cls(answer, METHODS) == expected


@pytest.mark.parametrize("answer", ["no idea", "I cannot tell which method", "not face swap", "", None, "fake"])
def test_parse_cls_unparseable(answer):
    assert parse_cls(answer, CATS) is None
