"""Fixtures of the modeling tests: a small forged build (lfw faces, held-out identities) and tiny configs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def lfw_dir(tmp_path_factory) -> Path:
    from testkit.build_fixture import lfw_faces

    return lfw_faces(tmp_path_factory.mktemp("lfw"), n=24, size=96)


@pytest.fixture(scope="session")
def small_build(tmp_path_factory, lfw_dir) -> Path:
    """~50 real faces (+ mirrors) and 40 fakes; 20 % of identities only in the bench."""
    from testkit.build_fixture import make_build

    return make_build(tmp_path_factory.mktemp("build"), n=40, seed=1, faces=lfw_dir)


@pytest.fixture(scope="session")
def chain_build(tmp_path_factory) -> Path:
    """A build made by the real chain (forge -> annotate -> build) on 80 lfw identities, 30 % of them in the
    bench only; its image paths are relative to the forge's image folder, outside the build."""
    from testkit.build_fixture import real_chain_build

    return real_chain_build(
        tmp_path_factory.mktemp("chain"), n=150, seed=2, identity_size=96, max_identities=80, test_share=0.3
    )


@pytest.fixture(scope="session")
def tiny_cfg_path() -> Path:
    return Path(__file__).resolve().parents[2] / "modeling" / "configs" / "tiny-cpu.yaml"
