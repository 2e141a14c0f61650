"""fifa-train on what `fifa-data build` really writes: image paths relative to the image root that
build.json records (outside the build folder), every task, the bench beside it."""

from __future__ import annotations

import json
import shutil

import pytest
from micro_config import MICRO

from fifa.cli_utils import UserError
from fifa.modeling.config import load_config
from fifa.modeling.submit import predict_bench
from fifa.modeling.train import train


def test_trains_and_predicts_on_a_real_chain_build(chain_build, tmp_path):
    meta = json.loads((chain_build / "build.json").read_text())
    assert meta["image_root"].startswith("..")  # the images live outside the build
    cfg = load_config(None, [*MICRO, "train.max_steps=3", "train.save_every=3"])
    s = train(cfg, chain_build, tmp_path / "ck", progress=False)
    assert s["steps"] == 3 and s["skipped"] == {}
    p = predict_bench(tmp_path / "ck", chain_build / "bench.parquet", tmp_path / "p.parquet", limit=8, progress=False)
    assert p.predicted == 8 and p.failed == 0


def test_a_run_that_can_use_no_row_stops_with_the_reasons(chain_build, tmp_path):
    """Without build.json the image paths resolve against the build folder, where no image is: the run
    stops after a few steps naming why, instead of training on nothing."""
    b = tmp_path / "moved"
    shutil.copytree(chain_build / "instruct", b / "instruct")
    cfg = load_config(None, [*MICRO, "train.max_steps=50"])
    with pytest.raises(UserError, match="every row of the first 5 steps was skipped: image: missing_file"):
        train(cfg, b, tmp_path / "ck", progress=False)
    with pytest.raises(UserError, match="image root not found"):  # the bench side: a wrong root is a clear error
        predict_bench(tmp_path / "ck", chain_build / "bench.parquet", tmp_path / "p.parquet",
                      image_root=tmp_path / "nope", progress=False)
