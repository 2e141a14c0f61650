"""fifa.annotator: FiFa-Annotator (real/fake pair -> artifact mask -> tree regions -> grounded explanation).

Library first; the `fifa-annotate` CLI (``fifa.annotator.cli``) is a thin layer over:

* :mod:`.diffmask` -- artifact mask and statistics from two arrays, noise measured on the pair (pure)
* :mod:`.profiles` -- what the pair shows in each region: colour shift, lost detail, geometry (pure)
* :mod:`.regions` -- coverage/share per tree node and the region selection rule (pure)
* :mod:`.explain_offline`, :mod:`.explain_openai` -- the two explainers (one interface), by name in :mod:`.explainers`
* :mod:`.age` -- AGE records: a marked explanation's segments (marks: :mod:`fifa.core.marks`)
* :mod:`.store` -- atomic shards, ledger, resume, retry
* :mod:`.run` -- ``run_annotation(manifest, out, AnnotateConfig()) -> RunSummary``
* :mod:`.evaluate` -- accuracy against known truth (forged data), re-encoded pairs as negatives
* :mod:`.forge`, :mod:`.forge_faces`, :mod:`.forge_edits` -- pseudo-forgeries with exact truth
"""
