"""Run a fifa command in this process and SIGKILL it at the N-th call of a named function.

    python -m testkit.killpoints fifa.annotator.store:AnnotationStore._append_ledger 3 before -- \
        fifa-annotate run --manifest m.parquet --out o

kills the process right before the 3rd ledger write (after that shard's rename): a precise,
real crash between two steps of the store's protocol. ``after`` kills right after the call.
``enospc`` makes the N-th call and every later one raise ``OSError(ENOSPC)``: a disk that fills up.
"""

from __future__ import annotations

import errno
import functools
import importlib
import os
import signal
import sys


def install(target: str, nth: int, when: str = "before") -> None:
    module_name, _, qual = target.partition(":")
    owner = importlib.import_module(module_name)
    *path, name = qual.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = [0]

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] >= nth and when == "enospc":
            raise OSError(errno.ENOSPC, "No space left on device")
        if calls[0] == nth and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        out = original(*args, **kwargs)
        if calls[0] == nth and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    setattr(owner, name, wrapper)


def main(argv: list[str]) -> None:
    target, nth, when, sep, command, *args = argv
    assert sep == "--", "usage: TARGET N before|after|enospc -- COMMAND ARGS..."
    install(target, int(nth), when)
    mains = {
        "fifa-annotate": "fifa.annotator.cli",
        "fifa-data": "fifa.pipelines.cli",
        "fifa-train": "fifa.modeling.cli",
    }
    importlib.import_module(mains[command]).main(args)


if __name__ == "__main__":
    main(sys.argv[1:])
