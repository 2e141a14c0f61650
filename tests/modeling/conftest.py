"""Fixtures of the modeling tests: a small forged build (lfw faces, held-out identities) and tiny configs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

#: A model small enough for a few steps per second on one core (the shipped tiny config is larger).
MICRO = ["model.image_size=32", "model.tiny.hidden=64", "model.tiny.intermediate=128", "model.tiny.layers=1",
         "model.tiny.vision_hidden=48", "model.tiny.vision_layers=1", "model.tiny.vocab_size=400",
         "heads.mask_size=32", "heads.mask_dim=32", "heads.pixel_channels=16", "train.batch_size=8",
         "train.log_every=1", "train.warmup_steps=2", "data.num_workers=0", "data.max_length=160",
         "eval.at_end=false", "train.threads=1"]


@pytest.fixture(scope="session")
def lfw_dir(tmp_path_factory) -> Path:
    from build_fixture import lfw_faces

    return lfw_faces(tmp_path_factory.mktemp("lfw"), n=24, size=96)


@pytest.fixture(scope="session")
def small_build(tmp_path_factory, lfw_dir) -> Path:
    """~50 real faces (+ mirrors) and 40 fakes; 20 % of identities only in the bench."""
    from build_fixture import make_build

    return make_build(tmp_path_factory.mktemp("build"), n=40, seed=1, faces=lfw_dir)


@pytest.fixture(scope="session")
def tiny_cfg_path() -> Path:
    return Path(__file__).resolve().parents[2] / "modeling" / "configs" / "tiny-cpu.yaml"
