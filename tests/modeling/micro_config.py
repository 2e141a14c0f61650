"""The micro model config of the modeling tests (a module of its own: `conftest` is not importable by name
when several test folders have one)."""

#: A model small enough for a few steps per second on one core (the shipped tiny config is larger).
MICRO = [
    "model.image_size=32",
    "model.tiny.hidden=64",
    "model.tiny.intermediate=128",
    "model.tiny.layers=1",
    "model.tiny.vision_hidden=48",
    "model.tiny.vision_layers=1",
    "model.tiny.vocab_size=400",
    "heads.mask_size=32",
    "heads.mask_dim=32",
    "heads.pixel_channels=16",
    "train.batch_size=8",
    "train.log_every=1",
    "train.warmup_steps=2",
    "data.num_workers=0",
    "data.max_length=160",
    "eval.at_end=false",
    "train.threads=1",
]
