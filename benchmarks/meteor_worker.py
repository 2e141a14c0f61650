"""METEOR in its own process: ``python -m fifa.benchmarks.meteor_worker``.

Started early by the scorer so that the JVM start overlaps other work; it reads
``{task: [references, predictions]}`` (tokenized) as JSON on stdin and writes
``{task: [corpus_score, [per-question scores]]}`` as JSON on stdout.  Talking to
the METEOR JVM line by line from a separate process keeps that chatter away from
the scorer's GIL (a reader thread there waits up to 5 ms per line).
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    from fifa.benchmarks.metrics_text import MeteorBatch

    m = MeteorBatch()  # the JVM starts now, while the scorer is busy elsewhere
    try:
        data = json.loads(sys.stdin.buffer.read() or b"{}")
        out = {t: m.score(r, h) for t, (r, h) in data.items()}
    finally:
        m.close()
    sys.stdout.write(json.dumps(out))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
