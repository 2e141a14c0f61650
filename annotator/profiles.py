"""What a fake/source pair shows inside the artifact, region by region (pure numpy).

A profile holds magnitudes in ΔE units and a ``kind`` (``colour``, ``blur``, ``noise``,
``geometry``, ``mixed``, ``none``); the explainers turn it into words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .diffmask import DiffResult


def change_profiles(result: DiffResult, label_map: np.ndarray, groups: dict[str, np.ndarray]) -> dict[str, dict]:
    """What the pair shows inside the artifact in each of several regions: colour shift, lost or
    added detail, geometry.

    Each region is given as the label ids of its leaves in ``label_map``; only the artifact's
    pixels are touched (fast). A profile holds magnitudes in ΔE units (``delta_e``: mean colour
    distance, ``shift``: size of the mean Lab shift, ``dL``/``da``/``db``, ``detail``: mean
    detail-energy change, negative when detail was lost) and a ``kind`` among ``colour``,
    ``blur``, ``noise``, ``geometry``, ``mixed`` (``none`` for a region the artifact misses).
    """
    m = result.mask
    if not m.any() or result.shift is None:
        empty = np.zeros((0, 3), np.float32)
        return {k: _profile(empty, empty[:, 0], empty[:, 0]) for k in groups}
    labels = label_map[m]
    dl = np.stack([c[m] for c in result.shift], axis=1)
    col = result.colour[m]
    det = result.detail_at(m)
    out = {}
    lut = np.zeros(int(label_map.max()) + 2 if label_map.size else 1, dtype=bool)
    for k, ids in groups.items():
        lut[:] = False
        ids = np.asarray(ids, dtype=np.int64)
        ids = ids[(ids >= 0) & (ids < lut.size - 1)]
        lut[ids] = True
        sel = lut[labels]  # -1 -> the trailing False
        out[k] = _profile(dl[sel], col[sel], det[sel])
    return out


def _profile(d: np.ndarray, colour: np.ndarray, detail_v: np.ndarray) -> dict:
    if d.shape[0] == 0:
        return {"kind": "none", "delta_e": 0.0, "shift": 0.0, "dL": 0.0, "da": 0.0, "db": 0.0, "detail": 0.0}
    mean = d.mean(axis=0)
    colour_mean = float(np.linalg.norm(mean))
    colour_abs = float(colour.mean())
    detail = float(detail_v.mean())
    prof = {
        "delta_e": colour_abs,
        "shift": colour_mean,
        "dL": float(mean[0]),
        "da": float(mean[1]),
        "db": float(mean[2]),
        "detail": detail,
    }
    prof["kind"] = _kind(colour_abs, colour_mean, detail)
    return prof


def _kind(colour_abs: float, colour_mean: float, detail: float) -> str:
    coherent = colour_mean / max(colour_abs, 1e-6)
    # blur and smoothing lose detail (0.35-1.2 x the colour distance on forged data), warps move it (< 0.25)
    if abs(detail) >= 0.4 * colour_abs and abs(detail) > 0.3:
        return "blur" if detail < 0 else "noise"
    if coherent >= 0.55:
        return "colour"
    if colour_abs > 2.0:
        return "geometry"
    return "mixed"
