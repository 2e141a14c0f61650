"""Literal choice fields checked in one place (fifa/core/choices.py) by every frozen config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import pytest

from fifa.core.choices import bad_choice, choices_of


@dataclass(frozen=True)
class Example:
    mode: Literal["a", "b"] = "a"
    size: int = 3
    kind: Literal["x", "y", "z"] = "z"


def test_bad_choice_names_the_first_field_outside_its_choices():
    assert choices_of(Example) == {"mode": ("a", "b"), "kind": ("x", "y", "z")}
    assert bad_choice(Example()) is None
    assert bad_choice(Example(kind="w")) == ("kind", ("x", "y", "z"), "w")
    assert bad_choice(Example(mode="c", kind="w")) == ("mode", ("a", "b"), "c")


def test_the_stage_configs_are_frozen_and_check_their_choices():
    from fifa.annotator.run import AnnotateConfig
    from fifa.modeling.config import HeadsConfig
    from fifa.pipelines.build import BuildConfig, BuildError
    from fifa.pipelines.viewer.site import ViewerConfig

    for cfg in (BuildConfig(), ViewerConfig(), AnnotateConfig(), HeadsConfig()):
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.progress = False  # type: ignore[misc]
    with pytest.raises(BuildError, match="review_rule must be one of all, majority, any; got 'most'"):
        BuildConfig(review_rule="most")  # type: ignore[arg-type]
    with pytest.raises(BuildError, match="bench_cls must be one of method, category"):
        BuildConfig(bench_cls="kind")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="executor must be one of"):
        AnnotateConfig(executor="slurm")  # type: ignore[arg-type]
