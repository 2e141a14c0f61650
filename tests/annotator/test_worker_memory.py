"""Worker processes reuse freed image-sized blocks instead of faulting in fresh pages per row."""

from __future__ import annotations

import subprocess
import sys

PROBE = r"""
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from fifa.annotator.worker import keep_freed_memory
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rows = [np.ones((384, 384, 3), np.float32) for _ in range(10)]; del rows  # first use faults either way
before = faults()
for _ in range(50):  # a row: ten image-sized arrays alive at once (as in the diff map), then freed
    rows = [np.ones((384, 384, 3), np.float32) for _ in range(10)]
    del rows
print(faults() - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_tuned_worker_reuses_freed_arrays():
    default, tuned = _faults("default"), _faults("tuned")
    # default glibc returns the freed blocks to the system (trim) and faults them in again for
    # every row (~430 faults per 1.7 MB array); tuned, the heap keeps and reuses them
    assert default > 50 * 10 * 200
    assert tuned < default / 20
