"""The explainers, by name: one registry (``fifa.pipelines.export.registry``'s exporters are the model).

An explainer module's factory is registered with :func:`explainer`: it takes the run's
:class:`~fifa.annotator.run.AnnotateConfig` and returns an :class:`~fifa.annotator.explain.Explainer`.
:func:`make_explainer` looks ``config.llm`` up here; ``AnnotateConfig``'s ``llm`` check and ``fifa-annotate
--llm``'s choices (:func:`explainer_choice`) read the names, so a new explainer is one decorated factory. The
factories import their explainer when called: ``openai`` is imported only by a run that uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .explain import Explainer
    from .run import AnnotateConfig

__all__ = ["EXPLAINERS", "explainer", "explainer_choice", "make_explainer"]

Factory = Callable[["AnnotateConfig"], "Explainer"]

#: explainer name -> factory, in registration order (the order ``fifa-annotate run --help`` lists them in)
EXPLAINERS: dict[str, Factory] = {}


def explainer(name: str) -> Callable[[Factory], Factory]:
    """Register the decorated factory as explainer ``name`` (a name registered twice is a programming error)."""

    def register(factory: Factory) -> Factory:
        if name in EXPLAINERS:
            raise ValueError(f"explainer {name!r} registered twice")
        EXPLAINERS[name] = factory
        return factory

    return register


def make_explainer(config: AnnotateConfig) -> Explainer:
    """The explainer ``config.llm`` names; ``ValueError`` for a name nobody registered."""
    factory = EXPLAINERS.get(config.llm)
    if factory is None:
        raise ValueError(f"unknown explainer {config.llm!r} ({'|'.join(EXPLAINERS)})")
    return factory(config)


def explainer_choice() -> type[Enum]:
    """The registered names as a ``str`` enum, for typer options (made when called: the names registered then)."""
    members: Any = [(name, name) for name in EXPLAINERS]
    return Enum("ExplainerChoice", members, type=str, module=__name__)  # type: ignore[return-value]


@explainer("offline")
def _offline(config: AnnotateConfig) -> Explainer:
    """Template text from the regions' measured profiles (no calls; runs in the workers)."""
    from .explain_offline import OfflineExplainer

    return OfflineExplainer()


@explainer("openai")
def _openai(config: AnnotateConfig) -> Explainer:
    """An OpenAI-compatible chat model (``config.openai``: endpoint, model, prices, cache)."""
    from .explain_openai import OpenAIExplainer

    return OpenAIExplainer(config.openai)
