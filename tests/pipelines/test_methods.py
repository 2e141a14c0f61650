"""The method -> category table: lookups, aliases, user extension, clear errors."""

from __future__ import annotations

import pytest

from fifa.pipelines.methods import MethodTableError, UnknownMethodError, load_methods


def test_ffpp_methods_have_their_published_categories():
    t = load_methods()
    assert {m: t.category(m) for m in ("Deepfakes", "FaceSwap", "FaceShifter", "Face2Face", "NeuralTextures")} == {
        "Deepfakes": "FS",
        "FaceSwap": "FS",
        "FaceShifter": "FS",
        "Face2Face": "FR",
        "NeuralTextures": "FR",
    }
    assert t.canonical("neural_textures") == "NeuralTextures"
    assert t.canonical("F2F") == "Face2Face"
    assert t.category("stylegan2") == "EFS"
    assert t.definition("Face2Face").endswith(".")


def test_forge_methods_are_known():
    from fifa.annotator.forge import CATEGORY

    t = load_methods()
    for method, cat in CATEGORY.items():
        assert t.category(method) == cat


def test_unknown_method_names_it_and_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("FIFA_METHODS", raising=False)
    with pytest.raises(UnknownMethodError) as e:
        load_methods().category("MyNewSwap")
    assert "MyNewSwap" in str(e.value) and "--methods" in str(e.value) and "methods.yaml" in str(e.value)


def test_user_file_extends_and_overrides(tmp_path, monkeypatch):
    f = tmp_path / "mine.yaml"
    f.write_text(
        "methods:\n  MyNewSwap: {category: FS, definition: a swap of ours., aliases: [mns]}\n"
        "  Deepfakes: {category: FE, definition: overridden.}\n"
    )
    t = load_methods(f)
    assert t.category("mns") == "FS" and t.definition("MyNewSwap") == "a swap of ours."
    assert t.category("Deepfakes") == "FE"
    assert "DF" not in t  # the override replaced the packaged aliases too
    monkeypatch.setenv("FIFA_METHODS", str(f))
    assert load_methods().category("MyNewSwap") == "FS"
    with pytest.raises(UnknownMethodError) as e:
        t.category("Other")
    assert str(f) in str(e.value)


@pytest.mark.parametrize(
    "text",
    [
        "methods: [1, 2]",
        "methods:\n  X: {category: XX}",
        "nothing: 1",
        "methods:\n  X: {category: FS, aliases: notalist}",
    ],
)
def test_bad_user_file_is_a_clear_error(tmp_path, text):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(MethodTableError) as e:
        load_methods(f)
    assert str(f) in str(e.value)
