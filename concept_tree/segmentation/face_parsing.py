"""Optional face-parsing backend: a CelebAMask-HQ 19-class parser refines the off-face concepts.

The landmark backends split the pixels outside the face oval into hair, ears, neck, upper body
and background by geometry over a person mask (SelfieSegmentation). A face parser trained on
CelebAMask-HQ knows which of those pixels are hair, ear, neck or cloth; :meth:`FaceParser.refine`
uses it for the *class* of each pixel and keeps our geometry for *which leaf* (hairline / crown /
side, helix / concha / ..., left / right). The face partition itself is never changed.

Supported model: a Segformer (``transformers``) saved in a local folder, e.g. a download of
``jonathandinu/face-parsing``. Loading is ``local_files_only``: nothing is fetched.
BiSeNet checkpoints (face-parsing.PyTorch ``79999_iter.pth``) are a TODO: the label order is
shipped (``LABEL_ORDERS["face_parsing_pytorch_bisenet"]``) but not the network.

Public models order their 19 output channels differently, so the label map is explicit:
``labels[i]`` is the CelebAMask-HQ class name of output channel ``i``.

>>> from fifa.concept_tree.segmentation.face_parsing import FaceParser, LABEL_ORDERS
>>> parser = FaceParser("models/face-parsing", LABEL_ORDERS["jonathandinu_segformer"])  # doctest: +SKIP
>>> parsed = parser.parse_face(rgb, regions)           # doctest: +SKIP
>>> regions = parser.refine(regions, parsed)           # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from fifa.core import rle as rle_utils

from ..tree import load_tree
from .labelmap import face_label_map
from .mesh_topology import eye_frame
from .offface import OutsideFaceRules, outside_face_labels
from .regions import FaceRegions

#: The CelebAMask-HQ class vocabulary (``ear_r``: earring, ``neck_l``: necklace, ``eye_g``: eyeglasses).
CELEBAMASK_HQ_CLASSES: frozenset[str] = frozenset(
    {"background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
     "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"}
)  # fmt: skip

#: Classes a label map must name for :meth:`FaceParser.refine` to work.
REQUIRED_CLASSES: tuple[str, ...] = ("background", "skin", "hair", "neck", "l_ear", "r_ear")

#: Known channel orders (each verified against its source; see docs/backends.md).
LABEL_ORDERS: dict[str, list[str]] = {
    # CelebAMask-HQ's own order (g_mask.py label_list, background = 0)
    "celebamask_hq": [
        "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
        "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
    ],
    # huggingface.co/jonathandinu/face-parsing config.json id2label (since its Jan 2024 label fix)
    "jonathandinu_segformer": [
        "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
        "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
    ],
    # zllrunning/face-parsing.PyTorch (BiSeNet, 79999_iter.pth); the network itself is a TODO here
    "face_parsing_pytorch_bisenet": [
        "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
        "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
    ],
}  # fmt: skip

# parser class -> the tree group its pixels go to, outside the face
_HAIR_LEAVES = ("hairline_center", "left_hairline", "right_hairline", "crown_hair", "left_side_hair", "right_side_hair")
_EAR_LEAVES = tuple(f"{s}_{p}" for s in ("left", "right") for p in ("helix", "concha", "tragus", "earlobe"))
_NECK_LEAVES = ("throat", "left_neck", "right_neck")
_BODY_LEAVES = ("upper_body",)
_GROUP_OF_CLASS = {
    "hair": _HAIR_LEAVES,
    "l_ear": _EAR_LEAVES,
    "r_ear": _EAR_LEAVES,
    "ear_r": _EAR_LEAVES,
    "neck": _NECK_LEAVES,
    "neck_l": _NECK_LEAVES,
    "cloth": _BODY_LEAVES,
}
#: Parser classes recorded as occluders (RLE in ``regions.meta["occluders"]``), not tree concepts.
OCCLUDER_CLASSES = {"eye_g": "eyeglasses", "hat": "hat", "ear_r": "earring", "neck_l": "necklace"}

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def validate_labels(labels, num_labels: int | None = None) -> list[str]:
    """Check a channel -> class-name list; raise one ValueError that lists every problem."""
    if isinstance(labels, str) or not hasattr(labels, "__iter__"):
        raise ValueError(f"labels must be a list of class names, got {type(labels).__name__}")
    labels = list(labels)
    problems = []
    if num_labels is not None and len(labels) != num_labels:
        problems.append(f"{len(labels)} labels given but the model has {num_labels} output channels")
    not_str = [x for x in labels if not isinstance(x, str)]
    if not_str:
        problems.append(f"non-string labels: {not_str!r}")
    unknown = [x for x in labels if isinstance(x, str) and x not in CELEBAMASK_HQ_CLASSES]
    if unknown:
        problems.append(f"unknown class names {unknown!r} (allowed: {sorted(CELEBAMASK_HQ_CLASSES)})")
    seen, dup = set(), []
    for x in labels:
        if x in seen and x not in dup:
            dup.append(x)
        seen.add(x)
    if dup:
        problems.append(f"duplicate class names {dup!r}")
    missing = [c for c in REQUIRED_CLASSES if c not in seen]
    if missing:
        problems.append(f"required classes missing: {missing!r}")
    if problems:
        raise ValueError("invalid face-parser label map: " + "; ".join(problems))
    return labels


class FaceParser:
    """A CelebAMask-HQ face parser (Segformer via ``transformers``) loaded from a local folder."""

    def __init__(
        self, model_path: str | os.PathLike, labels: list[str], device: str = "cpu", input_size: int | None = None
    ):
        path = Path(model_path).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"face-parser model not found at {path}: pass the local folder of a saved Segformer "
                "(config.json + weights); models are never downloaded"
            )
        if path.is_file():
            raise NotImplementedError(
                f"{path} is a single file; only Segformer folders (transformers save_pretrained layout) are "
                "supported. BiSeNet checkpoints (face-parsing.PyTorch) are not supported yet (TODO)."
            )
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} has no config.json: not a saved transformers model folder")
        try:
            import torch
            from transformers import SegformerForSemanticSegmentation
        except ImportError as e:
            raise ImportError(f"the face-parsing backend needs torch and transformers ({e})") from e
        cfg = json.loads((path / "config.json").read_text())
        if cfg.get("model_type") != "segformer":
            raise NotImplementedError(f"{path}: model_type {cfg.get('model_type')!r}; only 'segformer' is supported")
        self.model = SegformerForSemanticSegmentation.from_pretrained(str(path), local_files_only=True)
        self.model.to(device).eval()
        self.labels = validate_labels(labels, self.model.config.num_labels)
        self._check_config_names(self.model.config)
        self.device = device
        self.model_path = path
        self._torch = torch
        mean, std, size = _IMAGENET_MEAN, _IMAGENET_STD, 512
        pre = path / "preprocessor_config.json"
        if pre.is_file():
            p = json.loads(pre.read_text())
            mean = tuple(p.get("image_mean", mean))
            std = tuple(p.get("image_std", std))
            s = p.get("size", size)
            size = int(s.get("height", size)) if isinstance(s, dict) else int(s)
        self.input_size = int(input_size or size)
        self._mean = np.asarray(mean, dtype=np.float32)
        self._std = np.asarray(std, dtype=np.float32)

    def _check_config_names(self, config) -> None:
        names = [str(config.id2label.get(i, "")) for i in range(config.num_labels)] if config.id2label else []
        if names and all(n in CELEBAMASK_HQ_CLASSES for n in names) and names != self.labels:
            warnings.warn(
                f"the labels given differ from the model's own id2label {names}; using the labels given", stacklevel=3
            )

    # ------------------------------------------------------------------ parsing
    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """HxW int array: channel index (into ``self.labels``) of every pixel."""
        from PIL import Image

        a = np.asarray(rgb)
        if a.ndim != 3 or a.shape[2] < 3 or a.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {a.shape} {a.dtype}")
        h, w = a.shape[:2]
        s = self.input_size
        x = np.asarray(
            Image.fromarray(np.ascontiguousarray(a[..., :3])).resize((s, s), Image.BILINEAR), dtype=np.float32
        )
        x = (x / 255.0 - self._mean) / self._std
        torch = self._torch
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].to(self.device)
        with torch.no_grad():
            logits = self.model(pixel_values=t).logits
            logits = torch.nn.functional.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
            return logits.argmax(dim=1)[0].cpu().numpy().astype(np.int16)

    def parse(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """Class name -> HxW bool mask, for every class of the label map (masks are disjoint and
        cover the image)."""
        pred = self.predict(rgb)
        return {name: pred == i for i, name in enumerate(self.labels)}

    def parse_face(self, rgb: np.ndarray, regions: FaceRegions, margin: float = 1.0) -> dict[str, np.ndarray]:
        """Parse a square crop around the face (CelebAMask-HQ models expect face-centred crops):
        the face box grown by ``margin`` times its size on each side. Pixels outside the crop get
        no class (all masks False there)."""
        h, w = rgb.shape[:2]
        if regions.face_box is None:
            return self.parse(rgb)
        x0, y0, x1, y1 = regions.face_box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        half = max(x1 - x0, y1 - y0) * (0.5 + margin)
        bx0, by0 = int(max(0, np.floor(cx - half))), int(max(0, np.floor(cy - half)))
        bx1, by1 = int(min(w, np.ceil(cx + half))), int(min(h, np.ceil(cy + half)))
        sub = self.parse(np.ascontiguousarray(rgb[by0:by1, bx0:bx1]))
        out = {}
        for k, m in sub.items():
            full = np.zeros((h, w), dtype=bool)
            full[by0:by1, bx0:bx1] = m
            out[k] = full
        return out

    # ------------------------------------------------------------------ refine
    def refine(
        self, regions: FaceRegions, parsed: dict[str, np.ndarray], rules: OutsideFaceRules = OutsideFaceRules()
    ) -> FaceRegions:
        """See :func:`refine`."""
        return refine(regions, parsed, rules)


def refine(
    regions: FaceRegions, parsed: dict[str, np.ndarray], rules: OutsideFaceRules = OutsideFaceRules()
) -> FaceRegions:
    """Off-face concepts from a face parser; the face partition is kept as it is.

    Outside the face oval, a pixel the parser calls ``hair`` becomes the hair leaf our geometry
    gives there (nearest hair leaf of the geometric split: hairline / crown / side, left / right),
    likewise ear classes -> ear leaves, ``neck`` / ``neck_l`` -> neck leaves, ``cloth`` ->
    ``upper_body``, ``background`` -> the background leaf of that position. Other classes
    (skin, facial parts, hat) and unparsed pixels keep their label. The parser's left/right
    classes are not trusted for sides. Eyeglasses, hats, earrings and necklaces are recorded
    as RLEs in ``meta["occluders"]`` (not tree concepts).
    """
    if not regions.ok or regions.label_map is None or regions.landmarks is None:
        return regions
    _check_parsed(parsed, regions.image_size)
    lm = np.asarray(regions.landmarks, dtype=np.float64)
    face_full, editable = _editable(regions, lm)
    labels = _relabel(regions, parsed, rules, lm, face_full, editable)
    meta = dict(regions.meta, occluders=_occluders(regions, parsed), outside_face="face_parsing")
    return replace(regions, label_map=labels, meta=meta)


def _check_parsed(parsed: dict[str, np.ndarray], image_size: tuple[int, int]) -> None:
    bad = [k for k, m in parsed.items() if np.shape(m) != image_size]
    if bad:
        raise ValueError(f"parsed masks {bad} do not match the image size {image_size}")
    unknown = sorted(set(parsed) - CELEBAMASK_HQ_CLASSES)
    if unknown:
        raise ValueError(f"unknown parser classes {unknown}")


def _parsed_mask(parsed: dict[str, np.ndarray], name: str, image_size: tuple[int, int]) -> np.ndarray:
    x = parsed.get(name)
    return np.zeros(image_size, bool) if x is None else np.asarray(x, dtype=bool)


def _editable(regions: FaceRegions, lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face oval (HxW bool) and the pixels a parser may relabel: outside it and not a face leaf."""
    h, w = regions.image_size
    index = {k: i for i, k in enumerate(regions.leaf_ids)}
    _, face_crop, (x0, y0, x1, y1) = face_label_map(lm, (h, w), regions.leaf_ids)
    face_full = np.zeros((h, w), dtype=bool)
    face_full[y0:y1, x0:x1] = face_crop
    face_leaf_codes = np.array([index[n.id] for n in load_tree().leaves(under="face") if n.id in index])
    is_face_label = np.isin(regions.label_map, face_leaf_codes)
    return face_full, ~face_full & ~is_face_label


def _relabel(regions: FaceRegions, parsed: dict[str, np.ndarray], rules: OutsideFaceRules, lm: np.ndarray,
             face_full: np.ndarray, editable: np.ndarray) -> np.ndarray:  # fmt: skip
    """The label map with the editable pixels of each parser class set to the nearest leaf of its group."""
    h, w = regions.image_size
    ids = regions.leaf_ids
    index = {k: i for i, k in enumerate(ids)}
    labels = regions.label_map.copy()
    # geometry over the whole off-face area: as if everything there were person / background
    geo_person = outside_face_labels(lm, (h, w), np.ones((h, w), np.float32), face_full, ids, rules)
    geo_bg = outside_face_labels(lm, (h, w), np.zeros((h, w), np.float32), face_full, ids, rules)
    done = np.zeros((h, w), bool)
    for group in (_HAIR_LEAVES, _EAR_LEAVES, _NECK_LEAVES, _BODY_LEAVES):
        cls = [c for c, g in _GROUP_OF_CLASS.items() if g is group]
        target = editable & ~done & np.logical_or.reduce([_parsed_mask(parsed, c, (h, w)) for c in cls])
        if not target.any():
            continue
        codes = np.array([index[k] for k in group if k in index])
        labels[target] = _nearest_in_group(geo_person, codes, target, lm, group, index)
        done |= target
    bg = editable & ~done & _parsed_mask(parsed, "background", (h, w))
    labels[bg] = geo_bg[bg]
    return labels


def _occluders(regions: FaceRegions, parsed: dict[str, np.ndarray]) -> dict:
    """``meta["occluders"]`` with the parsed eyeglasses, hats, earrings and necklaces (RLEs) added."""
    occ = dict(regions.meta.get("occluders", {}))
    for cls, name in OCCLUDER_CLASSES.items():
        mk = _parsed_mask(parsed, cls, regions.image_size)
        if mk.any():
            occ[name] = rle_utils.encode(mk)
    return occ


def _nearest_in_group(
    geo: np.ndarray, codes: np.ndarray, target: np.ndarray, lm: np.ndarray, group, index
) -> np.ndarray:
    """For the target pixels, the label of the nearest pixel of ``geo`` whose label is in ``codes``;
    when the geometry has none of the group in the image, a side rule (eye frame)."""
    from scipy import ndimage

    member = np.isin(geo, codes)
    if member.any():
        _, (iy, ix) = ndimage.distance_transform_edt(~member, return_indices=True)
        return geo[iy[target], ix[target]]
    origin, axes, _ = eye_frame(lm)
    ys, xs = np.nonzero(target)
    u = (xs + 0.5 - origin[0]) * axes[0, 0] + (ys + 0.5 - origin[1]) * axes[0, 1]
    left, right = {
        id(_HAIR_LEAVES): ("left_side_hair", "right_side_hair"),
        id(_EAR_LEAVES): ("left_concha", "right_concha"),
        id(_NECK_LEAVES): ("left_neck", "right_neck"),
        id(_BODY_LEAVES): ("upper_body", "upper_body"),
    }[id(group)]
    return np.where(u >= 0, index[left], index[right]).astype(geo.dtype)


__all__ = [
    "CELEBAMASK_HQ_CLASSES",
    "FaceParser",
    "LABEL_ORDERS",
    "OCCLUDER_CLASSES",
    "REQUIRED_CLASSES",
    "refine",
    "validate_labels",
]
