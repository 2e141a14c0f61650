"""Training configuration: dataclasses with working defaults, YAML files and ``--set key=value``.

``load_config(path, overrides)`` reads a YAML file whose sections mirror :class:`TrainConfig`
(``model``, ``lora``, ``heads``, ``data``, ``train``, ``eval``, ``predict``), applies dotted
overrides (``train.max_steps=200``, ``data.tasks.det=2``) and checks every key: an unknown one is a
:class:`~fifa.core.errors.UserError` naming it and the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from fifa.core.choices import bad_choice
from fifa.core.errors import UserError


@dataclass(frozen=True)
class TinyConfig:
    """Sizes of the random tiny model built from config (``model.base: tiny``)."""

    family: Literal["llava", "qwen2_vl"] = "llava"
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 256
    vision_hidden: int = 96
    vision_layers: int = 2
    vision_heads: int = 4
    patch: int = 8
    vocab_size: int = 1024  # BPE vocabulary trained on the build's text
    seed: int = 0

    def __post_init__(self):
        check_choices(self)


@dataclass(frozen=True)
class ModelConfig:
    base: str = "tiny"  # "tiny", a local folder, or a hub id (needs the network)
    tiny: TinyConfig = field(default_factory=TinyConfig)
    image_size: int = 64  # images are letterboxed to a square of this side before the processor
    freeze_vision: bool = True
    train_projector: bool = True
    train_embeddings: Literal["new", "all", "none"] = (
        "new"  # new: rows of the added tokens | all: whole embeddings + lm_head
    )
    gradient_checkpointing: bool = False
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # weights on a GPU
    trust_remote_code: bool = False

    def __post_init__(self):
        check_choices(self)


@dataclass(frozen=True)
class LoraConfig:
    enabled: bool = True
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str = r".*language_model.*\.(q|k|v|o|gate|up|down)_proj"


@dataclass(frozen=True)
class HeadsConfig:
    mask_dim: int = 64  # width of the mask query / feature space
    mask_decoder: Literal["linear", "conv", "sam"] = (
        "conv"  # linear: query . patch features | conv: + a light pixel decoder | sam: SAM (sam.py)
    )
    sam_model: str = "facebook/sam-vit-base"  # heads.mask_decoder=sam: a local folder or hub id of a SamModel
    pixel_channels: int = 32  # width of the pixel CNN's features (half resolution)
    pixel_stem: Literal["forensic", "plain"] = (
        "forensic"  # forensic: pixels + high-pass and chroma residuals | plain: pixels only
    )
    pixel_context: int = 0  # dilated residual layers after the pixel CNN (dilation 2, 4, ...): a wider view
    pixel_adapter: bool = False  # add pooled pixel-CNN features to the image tokens the LLM sees
    mask_size: int = 64  # side of the square the mask loss is computed at
    bce_weight: float = 2.0  # LISA's defaults
    dice_weight: float = 0.5
    ce_weight: float = 1.0
    region_encoder: bool = True
    det_head: bool = True
    det_weight: float = 0.5
    det_balance: bool = True  # weigh fake and real rows equally in the detection loss (a balanced prior)
    cls_head: bool = True
    cls_weight: float = 0.2
    cls_field: str = "category"  # the row column the classification head predicts (category | method)
    query_head: bool = True  # yes/no head of region queries (rq_*), read over the queried area
    query_weight: float = 0.5
    mark_head: bool = True  # which tree regions an age answer marks; guides the phrases of generated marks
    mark_weight: float = 0.5
    mark_regions: int = 64  # the most often marked regions of the training answers make its vocabulary
    mark_queries: bool = True  # the named region's learned embedding joins each mark's [SEG] query
    region_gate: bool = False  # a mark's mask = its [SEG] mask AND its named region's (face parsing) mask
    region_parse_weight: float = 1.0  # the face parsing loss (the FICT segmentation of each training image)
    region_parse_samples: int = 8  # vocabulary regions parsed per training row (found ones first)
    # what each mark of an age answer learns: its region's part of the artifact, or the whole artifact
    mark_masks: Literal["region", "artifact"] = "region"
    det_score: Literal["head", "tokens"] = "head"  # where det scores in predictions come from

    def __post_init__(self):
        check_choices(self)


@dataclass(frozen=True)
class DataConfig:
    tasks: dict[str, float] = field(default_factory=dict)  # task -> sampling weight; empty: all, weight 1
    max_length: int = 512  # tokens; longer examples are truncated (answer tokens last)
    num_workers: int = 2  # image decoding in worker processes (0: in the main process)
    chunk_rows: int = 65536  # rows shuffled together; windows of them in random order (Parquet locality)


@dataclass(frozen=True)
class TrainRunConfig:
    seed: int = 0
    max_steps: int = 200  # optimizer steps
    batch_size: int = 8  # per process
    grad_accum: int = 1
    lr: float = 2e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 10
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    max_grad_norm: float = 1.0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16/fp16 on a GPU, fp32 on CPU
    save_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 10
    threads: int = 0  # torch CPU threads (0: torch's default)

    def __post_init__(self):
        check_choices(self)


@dataclass(frozen=True)
class EvalConfig:
    every: int = 0  # steps between evaluations on the validation split (0: only at the end)
    max_questions: int = 64
    at_end: bool = True


@dataclass(frozen=True)
class PredictConfig:
    batch_size: int = 16
    max_new_tokens: int = 64
    shard_rows: int = 256  # predictions are written in shards of this many rows (resumable)
    verdicts: Literal["head", "text"] = "head"  # head: the heads open det/cls/rq answers and gate masks (guide.py)
    # segmenter: a mark naming a region keeps its mask inside that region's anchor, as the FICT segmenter finds it
    region_masks: Literal["model", "segmenter"] = "model"
    # which regions an age answer marks: head = the mark head's likely ones; mask = those its artifact mask
    # covers on the image's FICT segmentation, chosen as the annotator chooses a reference's (mark_plan.py)
    mark_source: Literal["head", "mask"] = "head"

    def __post_init__(self):
        check_choices(self)


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainRunConfig = field(default_factory=TrainRunConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


#: Keys that may change between a checkpoint and a resumed run (everything else must match).
RESUMABLE_CHANGES = (
    "train.max_steps",
    "train.save_every",
    "train.keep_checkpoints",
    "train.log_every",
    "train.threads",
    "eval.",
    "predict.",
    "data.num_workers",
)


def check_choices(section) -> None:
    """Every ``Literal`` field of a config section holds one of its values (a :class:`UserError` names the key)."""
    bad = bad_choice(section)
    if bad is not None:
        name, choices, value = bad
        key = f"{_SECTIONS.get(type(section).__name__, type(section).__name__)}.{name}"
        raise UserError(f"config key {key!r} must be one of {', '.join(map(str, choices))}; got {value!r}")


_SECTIONS = {
    "TinyConfig": "model.tiny",
    "ModelConfig": "model",
    "HeadsConfig": "heads",
    "TrainRunConfig": "train",
    "PredictConfig": "predict",
}


def _valid_keys(cls, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        out.append(key)
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            out.extend(_valid_keys(f.default_factory, key + "."))
    return out


def _unknown(key: str, valid: list[str]) -> UserError:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return UserError(f"unknown config key {key!r}{hint}")


def _coerce(value: Any, default: Any, key: str) -> Any:
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in ("true", "1", "yes", "on"):
                return True
            if value.lower() in ("false", "0", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise UserError(f"config key {key!r} expects true/false, got {value!r}")
    if isinstance(default, int) and not isinstance(default, bool):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise UserError(f"config key {key!r} expects an integer, got {value!r}") from None
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UserError(f"config key {key!r} expects a number, got {value!r}") from None
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise UserError(f"config key {key!r} expects a mapping, got {value!r}")
        return {str(k): float(v) for k, v in value.items()}
    return value if value is None else str(value)


def _build(cls, data: dict, prefix: str, valid: list[str]):
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for k, v in (data or {}).items():
        key = f"{prefix}{k}"
        if k not in fields:
            raise _unknown(key, valid)
        f = fields[k]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            if not isinstance(v, dict):
                raise UserError(
                    f"config key {key!r} is a section; give its keys, e.g. {key}.{dataclasses.fields(default)[0].name}"
                )
            kwargs[k] = _build(type(default), v, key + ".", valid)
        else:
            kwargs[k] = _coerce(v, default, key)
    return cls(**kwargs)


def _set_dotted(tree: dict, key: str, value: Any, valid: list[str]) -> None:
    parts = key.split(".")
    node = tree
    for i, p in enumerate(parts[:-1]):
        sub = ".".join(parts[: i + 1])
        if sub == "data.tasks":  # free-form mapping: data.tasks.det=2
            node = node.setdefault(p, {})
            node[".".join(parts[i + 1 :])] = value
            return
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise _unknown(key, valid)
    if key not in valid:
        raise _unknown(key, valid)
    node[parts[-1]] = value


def parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise UserError(f"--set expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else ""
    return key.strip(), value


def config_from_dict(data: dict, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    valid = _valid_keys(TrainConfig)
    tree = dict(data or {})
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(tree, key, value, valid)
    return _build(TrainConfig, tree, "", valid)


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML config (``None``: defaults) and apply ``key=value`` overrides."""
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise UserError(f"config file {p} is not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise UserError(f"config file {p} must hold a mapping of sections")
    cfg = config_from_dict(data, overrides)
    validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    """Checks across values (each choice field is checked by its section: :func:`check_choices`)."""
    t = cfg.train
    if t.batch_size < 1 or t.grad_accum < 1 or t.max_steps < 0:
        raise UserError("train.batch_size and train.grad_accum must be >= 1, train.max_steps >= 0")
    for task, w in cfg.data.tasks.items():
        if w < 0:
            raise UserError(f"data.tasks.{task} must be >= 0")
    h = cfg.heads
    if h.region_gate and not (h.mark_head and h.mark_queries and h.region_parse_weight > 0):
        raise UserError(
            "heads.region_gate needs heads.mark_head and heads.mark_queries (its regions are the mark vocabulary) "
            "and heads.region_parse_weight > 0 (the gate learns from face parsing alone)"
        )


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k != "tasks":
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def incompatible_keys(saved: dict, current: dict) -> list[str]:
    """Keys whose values differ between a checkpoint's config and this run's (resume refuses them)."""
    a, b = flatten(saved), flatten(current)
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return [k for k in diff if not any(k == r or (r.endswith(".") and k.startswith(r)) for r in RESUMABLE_CHANGES)]
