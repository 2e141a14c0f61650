"""Config files, --set overrides and their errors."""

from __future__ import annotations

import pytest

from fifa.core.errors import UserError
from fifa.modeling.config import incompatible_keys, load_config


def test_shipped_config_and_overrides(tiny_cfg_path):
    cfg = load_config(tiny_cfg_path, ["train.max_steps=7", "lora.r=4", "data.tasks.det=2", "model.freeze_vision=true"])
    assert cfg.model.base == "tiny" and cfg.model.tiny.family == "llava"
    assert cfg.train.max_steps == 7 and cfg.lora.r == 4 and cfg.model.freeze_vision is True
    assert cfg.data.tasks == {"det": 2.0}
    assert cfg.heads.bce_weight == 2.0 and cfg.heads.dice_weight == 0.5  # LISA's defaults


@pytest.mark.parametrize(
    "item, hint",
    [("train.max_step=3", "train.max_steps"), ("lora.rank=8", "lora.r"), ("heads.dice_wieght=1", "heads.dice_weight")],
)
def test_unknown_key_names_the_closest(item, hint):
    with pytest.raises(UserError, match=rf"unknown config key '{item.split('=')[0]}'.*{hint}"):
        load_config(None, [item])


def test_unknown_key_in_file_and_bad_values(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  batch_sise: 4\n")
    with pytest.raises(UserError, match="train.batch_sise.*train.batch_size"):
        load_config(p)
    with pytest.raises(UserError, match="expects an integer"):
        load_config(None, ["train.max_steps=many"])
    with pytest.raises(UserError, match="mask_decoder"):
        load_config(None, ["heads.mask_decoder=unet"])
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_resume_compatibility_ignores_only_resumable_keys():
    a = load_config(None).to_dict()
    b = load_config(None, ["train.max_steps=999", "eval.every=5"]).to_dict()
    c = load_config(None, ["train.lr=0.5", "lora.r=2"]).to_dict()
    assert incompatible_keys(a, b) == []
    assert incompatible_keys(a, c) == ["lora.r", "train.lr"]


def test_config_is_frozen_and_choices_are_checked():
    import dataclasses

    import pytest

    from fifa.core.errors import UserError
    from fifa.modeling.config import load_config

    cfg = load_config(None, [])
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 1.0  # configs are values: a changed run is a new config (load_config / overrides)
    for key, bad in (
        ("heads.mask_decoder", "unet"),
        ("train.precision", "fp8"),
        ("predict.verdicts", "maybe"),
        ("model.tiny.family", "gpt"),
        ("train.scheduler", "step"),
    ):
        with pytest.raises(UserError, match=key.replace(".", r"\.")):
            load_config(None, [f"{key}={bad}"])
    assert load_config(None, ["heads.mask_decoder=linear"]).heads.mask_decoder == "linear"
