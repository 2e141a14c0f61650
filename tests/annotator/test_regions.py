"""Region selection and roll-up on a real segmentation (MediaPipe on the astronaut photo)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from fifa.annotator.regions import select_regions
from fifa.concept_tree.tree import load_tree


@pytest.fixture(scope="module")
def regions(astronaut_rgb):
    from fifa.concept_tree.segmentation.segment import Segmenter

    face = cv2.resize(astronaut_rgb[20:260, 100:340], (384, 384), interpolation=cv2.INTER_AREA)
    with Segmenter() as seg:
        r = seg.segment(face)
    assert r.ok
    return r


def _without(regions, node: str):
    """The same face with ``node``'s leaves absent (as on a turned face, where one eye is hidden)."""
    tree = load_tree()
    gone = [regions.leaf_ids.index(x.id) for x in tree.leaves(under=node) if x.id in regions.leaf_ids]
    lm = regions.label_map.copy()
    lm[np.isin(lm, gone)] = -1
    return dataclasses.replace(regions, label_map=lm)


def test_one_visible_eye_keeps_its_side(regions):
    turned = _without(regions, "right_eye")
    assert not turned.mask("right_eye").any()
    chosen = select_regions(turned, turned.mask("left_eye")).chosen
    assert "left_eye" in chosen and "eyes" not in chosen


def test_two_chosen_children_still_roll_up_to_the_grouping_parent(regions):
    chosen = select_regions(regions, regions.mask("eyes")).chosen
    assert "eyes" in chosen and "left_eye" not in chosen and "right_eye" not in chosen


def test_one_cheek_of_two_stays_a_cheek(regions):
    chosen = select_regions(regions, regions.mask("right_cheek")).chosen
    assert chosen[0] == "right_cheek" and "cheeks" not in chosen


def test_leaves_roll_up_to_their_anchor(regions):
    chosen = select_regions(regions, regions.mask("mouth")).chosen
    assert chosen == ["mouth"]
