"""fifa.annotator: FiFa-Annotator (real/fake pair -> artifact mask -> tree regions -> grounded explanation).

Library first; the `fifa-annotate` CLI (``fifa.annotator.cli``) is a thin layer over:

* :mod:`.diffmask` -- artifact mask and statistics from two arrays (pure)
* :mod:`.regions` -- coverage/share per tree node and the region selection rule (pure)
* :mod:`.explain_offline`, :mod:`.explain_openai` -- the two explainers (one interface)
* :mod:`.age` -- AGE records: marked explanation, segments, GLaMM / plain renderers
* :mod:`.store` -- atomic shards, ledger, resume, retry
* :mod:`.run` -- ``run_annotation(manifest, out, AnnotateConfig()) -> RunSummary``
* :mod:`.evaluate` -- accuracy against known truth (forged data)
"""

from .age import to_glamm, to_plain  # noqa: F401
