"""Deterministic, vectorised randomness keyed by strings (no global RNG state).

Every choice a build makes (template, query region, negative cell, split order) is a pure
function of ``(seed, key, salt)``: the same inputs and seed give the same build on any machine,
and adding one sample does not reshuffle the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def string_hash(values: Iterable[str | None], seed: int = 0) -> np.ndarray:
    """uint64 hash of each string (blake2b, stable across runs and platforms); None hashes as ''."""
    salt = str(int(seed)).encode()
    out = [
        int.from_bytes(hashlib.blake2b((v or "").encode("utf-8"), digest_size=8, salt=salt[:16]).digest(), "little")
        for v in values
    ]
    return np.asarray(out, dtype=np.uint64)


def salt_of(name: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little"))


def mix(h: np.ndarray, salt: str | int | np.ndarray) -> np.ndarray:
    """splitmix64 of ``h`` combined with ``salt`` (a name, an int, or an array of the same length)."""
    s = salt_of(salt) if isinstance(salt, str) else np.asarray(salt, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (np.asarray(h, dtype=np.uint64) ^ (s * _GOLD)) + _GOLD
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def pick(h: np.ndarray, salt: str, n: int) -> np.ndarray:
    """An index in ``[0, n)`` per hash."""
    return (mix(h, salt) % np.uint64(max(n, 1))).astype(np.int64)


def uniform(h: np.ndarray, salt: str) -> np.ndarray:
    """A float in ``[0, 1)`` per hash."""
    return (mix(h, salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
