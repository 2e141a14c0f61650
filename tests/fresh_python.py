"""Run a snippet in a fresh interpreter and read the JSON it prints (tests whose subject is import-time state,
e.g. a config default patched before a CLI module builds its options)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def fresh_json(code: str, timeout: float = 300) -> Any:
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout)
