"""Overlay rendering: concept regions at a chosen tree level, coloured, labelled, with a legend."""

from __future__ import annotations

import colorsys
import hashlib
from dataclasses import replace

import cv2
import numpy as np

from ..tree import ConceptTree, load_tree
from .regions import FaceRegions

Level = str | int


def node_colour(node_id: str) -> tuple[int, int, int]:
    """A stable, saturated RGB colour per concept id."""
    hsh = int(hashlib.md5(node_id.encode()).hexdigest()[:8], 16)
    hue = (hsh % 360) / 360.0
    sat = 0.55 + ((hsh >> 9) % 40) / 100.0
    val = 0.75 + ((hsh >> 17) % 25) / 100.0
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return int(r * 255), int(g * 255), int(b * 255)


def level_of(tree: ConceptTree, leaf_id: str, level: Level) -> str:
    """The node a leaf is shown as: ``"leaf"``, ``"anchor"`` or a tree depth."""
    if level == "leaf":
        return leaf_id
    return tree.roll_up(leaf_id, level)


def render_overlay(
    rgb: np.ndarray,
    regions: list[FaceRegions],
    level: Level = "anchor",
    alpha: float = 0.5,
    min_side: int = 640,
    tree: ConceptTree | None = None,
    crop_to_faces: bool | None = None,
) -> np.ndarray:
    """Image with the regions of every face drawn at ``level``, labels and a legend (RGB uint8).

    ``crop_to_faces`` (default: on for ``level="leaf"``, whose regions are small) zooms to the faces.
    """
    tree = tree or load_tree()
    if crop_to_faces is None:
        crop_to_faces = level == "leaf"
    if crop_to_faces:
        rgb, regions = _crop(rgb, regions)
    h, w = rgb.shape[:2]
    scale = max(1.0, min_side / max(1, min(h, w)))
    size = (int(round(w * scale)), int(round(h * scale)))
    base = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR) if scale != 1.0 else rgb.copy()
    out = base.astype(np.float32)
    shown: dict[str, tuple[int, int, int]] = {}
    for reg in regions:
        if reg.label_map is None:
            continue
        groups = [level_of(tree, leaf, level) for leaf in reg.leaf_ids]
        names = sorted(set(groups))
        code = {n: i for i, n in enumerate(names)}
        lut = np.array([code[g] for g in groups] + [-1], dtype=np.int32)
        gmap = lut[reg.label_map]  # -1 (unlabelled) maps through the trailing entry
        gmap = cv2.resize(gmap.astype(np.int32), size, interpolation=cv2.INTER_NEAREST) if scale != 1.0 else gmap
        palette = np.array([node_colour(n) for n in names] + [(0, 0, 0)], dtype=np.float32)
        colour = palette[gmap]
        on = gmap >= 0
        out[on] = out[on] * (1 - alpha) + colour[on] * alpha
        edges = cv2.morphologyEx(gmap.astype(np.float32), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        out[edges] = out[edges] * 0.4 + 255 * 0.6
        for n in names:
            m = gmap == code[n]
            if m.sum() < 30 * scale:
                continue
            shown[n] = node_colour(n)
            _label(out, m, tree[n].name if n in tree else n)
    canvas = np.clip(out, 0, 255).astype(np.uint8)
    return _with_legend(canvas, shown, tree)


def _crop(rgb: np.ndarray, regions: list[FaceRegions]) -> tuple[np.ndarray, list[FaceRegions]]:
    boxes = [r.face_box for r in regions if r.face_box is not None]
    if not boxes:
        return rgb, regions
    h, w = rgb.shape[:2]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    m = int(0.35 * max(x1 - x0, y1 - y0))
    x0, y0, x1, y1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
    cropped = [
        replace(r, image_size=(y1 - y0, x1 - x0), label_map=r.label_map[y0:y1, x0:x1]) if r.label_map is not None else r
        for r in regions
    ]
    return rgb[y0:y1, x0:x1], cropped


def _label(img: np.ndarray, mask: np.ndarray, text: str) -> None:
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    font, fs = cv2.FONT_HERSHEY_SIMPLEX, 0.35
    (tw, th), _ = cv2.getTextSize(text, font, fs, 1)
    xs = np.nonzero(mask[y])[0]
    if 2 * dist[y, x] < th + 2 or len(xs) < 0.8 * tw:
        return  # too small to hold its label: the legend names it
    org = (int(x - tw / 2), int(y + th / 2))
    cv2.putText(img, text, org, font, fs, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(img, text, org, font, fs, (255, 255, 255), 1, cv2.LINE_AA)


def _with_legend(img: np.ndarray, shown: dict[str, tuple[int, int, int]], tree: ConceptTree) -> np.ndarray:
    if not shown:
        return img
    h = img.shape[0]
    row = 16
    per_col = max(1, (h - 10) // row)
    cols = (len(shown) + per_col - 1) // per_col
    width = 215 * cols
    panel = np.full((h, width, 3), 255, dtype=np.uint8)
    for i, (n, c) in enumerate(sorted(shown.items())):
        cx, cy = 8 + 215 * (i // per_col), 8 + row * (i % per_col)
        cv2.rectangle(panel, (cx, cy), (cx + 12, cy + 12), c, -1)
        label = tree[n].name if n in tree else n
        cv2.putText(panel, label[:30], (cx + 18, cy + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([img, panel], axis=1)
