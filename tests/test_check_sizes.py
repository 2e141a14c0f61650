"""scripts/check_sizes.py: product functions over 60 lines and modules over 400 lines, beyond an allow-list."""

from __future__ import annotations

from pathlib import Path

import check_sizes


def _function(name: str, body_lines: int, indent: str = "") -> str:
    return f"{indent}def {name}():\n" + "".join(f"{indent}    x = {i}\n" for i in range(body_lines - 1))


def _tree(root: Path) -> None:
    (root / "annotator").mkdir(parents=True)
    (root / "annotator" / "small.py").write_text(_function("fine", 60))  # exactly 60: allowed
    (root / "annotator" / "long.py").write_text(
        _function("long_one", 61) + "class K:\n" + _function("method", 70, "    ") + "\n" * 300
    )
    (root / "pipelines").mkdir()
    (root / "pipelines" / "big.py").write_text("x = 1\n" * 401)
    (root / "scripts").mkdir()
    (root / "scripts" / "not_product.py").write_text(_function("huge", 200))


def test_finds_long_functions_methods_and_modules_in_product_folders_only(tmp_path):
    _tree(tmp_path)
    found = {(o.kind, o.name, o.lines) for o in check_sizes.offenders(tmp_path)}
    assert found == {
        ("function", "annotator/long.py:long_one", 61),
        ("function", "annotator/long.py:K.method", 70),
        ("module", "annotator/long.py", 432),
        ("module", "pipelines/big.py", 401),
    }


def test_fails_only_on_offenders_missing_from_the_allowlist(tmp_path, capsys):
    _tree(tmp_path)
    allow = tmp_path / "allow.txt"
    assert check_sizes.main(["--root", str(tmp_path), "--allowlist", str(allow), "--write-allowlist"]) == 0
    assert check_sizes.main(["--root", str(tmp_path), "--allowlist", str(allow)]) == 0
    out = capsys.readouterr().out
    assert "allowed  function annotator/long.py:K.method  70 lines" in out

    # a new long function fails, and is named
    (tmp_path / "pipelines" / "new.py").write_text(_function("grown", 75))
    assert check_sizes.main(["--root", str(tmp_path), "--allowlist", str(allow)]) == 1
    assert "NEW      function pipelines/new.py:grown  75 lines" in capsys.readouterr().out

    # a split one is reported as stale (to delete from the list), without failing
    (tmp_path / "pipelines" / "new.py").unlink()
    (tmp_path / "pipelines" / "big.py").write_text("x = 1\n" * 10)
    assert check_sizes.main(["--root", str(tmp_path), "--allowlist", str(allow)]) == 0
    assert "no longer over the limit (delete it from allow.txt): module pipelines/big.py" in capsys.readouterr().out
