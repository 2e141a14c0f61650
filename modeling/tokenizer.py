"""Special tokens and the tiny byte-level BPE tokenizer trained on a build's own text (no downloads)."""

from __future__ import annotations

from collections.abc import Iterable

from fifa.core.marks import PHRASE_CLOSE, PHRASE_OPEN
from fifa.core.marks import SEG_TOKEN as SEG

REGION = "<region>"
IMAGE = "<image>"

#: Tokens the trainer adds to any base tokenizer.
ADDED_TOKENS = (SEG, REGION, PHRASE_OPEN, PHRASE_CLOSE)

#: Chat markers of the tiny tokenizer (a compact ChatML).
TINY_SPECIALS = ("<pad>", "<s>", "</s>", "<unk>", IMAGE, "<|user|>", "<|assistant|>", "<|end|>") + ADDED_TOKENS

TINY_CHAT_TEMPLATE = (
    "{% macro text(c) %}{% if c is string %}{{ c }}{% else %}{% for p in c %}{% if p['type'] == 'image' %}"
    "<image>\n{% elif p['type'] == 'text' %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}{% endmacro %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}<|user|>{{ text(m['content']) }}<|end|>"
    "{% else %}<|assistant|>{{ text(m['content']) }}<|end|>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def train_tiny_tokenizer(texts: Iterable[str], vocab_size: int = 1024, extra: tuple[str, ...] = ()):
    """A ``PreTrainedTokenizerFast`` (byte-level BPE) trained on ``texts``, with every special token declared."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(TINY_SPECIALS + extra),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="<|end|>",
        unk_token="<unk>",
        additional_special_tokens=[IMAGE, "<|user|>", "<|assistant|>", "<|end|>", *ADDED_TOKENS, *extra],
    )
    fast.chat_template = TINY_CHAT_TEMPLATE
    check_single_ids(fast)
    return fast


def add_special_tokens(tokenizer) -> int:
    """Add ``[SEG]``, ``<region>``, ``<p>``, ``</p>`` to a base tokenizer; returns how many were new."""
    have = set(tokenizer.get_vocab())
    new = [t for t in ADDED_TOKENS if t not in have]
    if new:
        tokenizer.add_special_tokens({"additional_special_tokens": new}, replace_extra_special_tokens=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    check_single_ids(tokenizer)
    return len(new)


def check_single_ids(tokenizer) -> None:
    """Every added token must encode to one id, with or without a leading space (LISA issue 55)."""
    for t in ADDED_TOKENS:
        for text in (t, f" {t}", f"a {t} b"):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            tid = tokenizer.convert_tokens_to_ids(t)
            if ids.count(tid) != 1:
                raise ValueError(f"token {t!r} does not encode to a single id in {text!r}: {ids}")
