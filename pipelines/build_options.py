"""The library half of ``fifa-data build``: a :class:`~fifa.pipelines.build.BuildConfig` from command-line values,
and the line that reports a build.

    config = build_config(tasks="det,cls", split_ratios="0.8,0.1,0.1", review=["ana.json"], fc_llm="offline")
    summary = build(["ann/"], "build/", config)
    print(summary_line(summary))
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from fifa.core.tasks import TASK_IDS

from .build import BuildConfig, BuildError, BuildSummary, ChoiceError
from .conversation import ConversationConfig
from .splits import SplitRatios

PathLike = str | os.PathLike


def build_config(
    *,
    seed: int = 0,
    tasks: str | None = None,
    split_ratios: str = "0.8,0.1,0.1",
    rq_queries: int = 3,
    negative_fraction: float = 1 / 3,
    real_queries: int = 2,
    bench_per_class: int = 500,
    bench_cls: str = "method",
    methods: PathLike | None = None,
    review: Sequence[PathLike] | None = None,
    review_rule: str = "all",
    extra_qa: Sequence[PathLike] | None = None,
    image_root: PathLike | None = None,
    fc_llm: str = "offline",
    base_url: str | None = None,
    model: str = "gpt-4o-mini",
    api_key_file: PathLike | None = None,
    fc_concurrency: int = 8,
    fc_max_cost: float | None = None,
    cache_dir: PathLike | None = None,
) -> BuildConfig:
    """The build's settings as the command line gives them: ``tasks`` comma-separated (None: every task),
    ``split_ratios`` ``"train,validation,test"``, ``bench_per_class`` 0 for no cap, paths as paths; the fc
    conversations' OpenAI settings (the key is read from ``api_key_file``, else ``$OPENAI_API_KEY``, only for
    ``fc_llm="openai"``). Raises :class:`~fifa.pipelines.build.BuildError` for bad split ratios."""
    from fifa.core.llm import OpenAIConfig, read_api_key
    from fifa.core.llm_cache import default_cache_dir

    try:
        ratios = SplitRatios.parse(split_ratios)
    except ValueError as e:
        raise BuildError(str(e)) from None
    oa = OpenAIConfig(
        model=model,
        base_url=base_url,
        api_key=read_api_key(api_key_file) if fc_llm == "openai" else None,
        cache_dir=str(cache_dir or default_cache_dir()),
    )
    try:
        return BuildConfig(
            seed=seed,
            tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()) if tasks is not None else TASK_IDS,
            ratios=ratios,
            rq_queries=rq_queries,
            negative_fraction=negative_fraction,
            real_queries=real_queries,
            bench_per_class=bench_per_class or None,
            bench_cls=bench_cls,
            methods=str(methods) if methods else None,
            review=tuple(str(p) for p in review) if review else None,
            review_rule=review_rule,
            extra_qa=tuple(str(p) for p in extra_qa or ()),
            image_root=str(image_root) if image_root else None,
            fc=ConversationConfig(llm=fc_llm, openai=oa, concurrency=fc_concurrency, max_cost=fc_max_cost),
        )
    except ChoiceError as e:  # named as the command line names it
        option = "--" + e.field.replace("_", "-")
        raise BuildError(f"{option} must be one of {', '.join(e.choices)}, got {e.value!r}") from None


def summary_line(s: BuildSummary) -> str:
    """What a build wrote, in one line (rows per split, bench questions, annotations kept, left out)."""
    return (
        f"wrote {s.out}: {s.rows.get('train', 0)} train, {s.rows.get('validation', 0)} validation rows, "
        f"{s.bench} bench questions from {s.annotations['kept']} of {s.annotations['read']} annotations"
        + (f"; left out: {s.left_out}" if s.left_out else "")
    )
