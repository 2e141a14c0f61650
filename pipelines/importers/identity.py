"""Groups and identities from the video names of public collections (leak-free splits).

``group`` is the source video a frame comes from (a fake's group is its source's), and
``identities`` every person the image shows (DESIGN.md; ``|``-separated, null = the group
alone). A builder unions groups that share an identity, so no person lands in two splits.

* FaceForensics++ (YouTube): real ``000`` -> group ``000``, identities ``000``; fake ``000_003``
  (target video 000, face of 003) -> group ``000``, identities ``000|003``. Both ids are
  FF++'s own, so ``003`` joins the group of real video 003 and of fake ``003_000``.
* DeepFakeDetection (FF++ ``actors``): real ``01__exit_phone_room`` -> group that name,
  identities ``DFD:01``; fake ``01_02__exit_phone_room__YVGY8LOK`` -> group
  ``01__exit_phone_room`` (its source video), identities ``DFD:01|DFD:02``.
* Celeb-DF: real ``id0_0007`` -> group ``id0_0007``, identities ``CelebDF:id0``; fake
  ``id0_id16_0007`` -> group ``id0_0007``, identities ``CelebDF:id0|CelebDF:id16``.
* anything else: group = the video name, identities null.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class VideoIdentity:
    group: str  # the source video (for a real video: itself)
    identities: str | None  # `|`-separated; None = the group alone
    source: str | None  # a fake's source video name, None for a real video or when unknown


@dataclass(frozen=True)
class _Naming:
    fake: re.Pattern  # groups: target person, source person, [scene/clip]
    real: re.Pattern  # group 1: the person
    prefix: str  # identity namespace
    source: Callable[[re.Match], str]  # a fake's source video name


_NAMING = {
    "ffpp": _Naming(re.compile(r"^(\d{3})_(\d{3})$"), re.compile(r"^(\d{3})$"), "", lambda m: m[1]),
    "dfd": _Naming(
        re.compile(r"^(\d{2})_(\d{2})__(.+?)__[A-Za-z0-9]+$"),
        re.compile(r"^(\d{2})__(.+)$"),
        "DFD:",
        lambda m: f"{m[1]}__{m[3]}",
    ),
    "celebdf": _Naming(
        re.compile(r"^(id\d+)_(id\d+)_(\d+)$"), re.compile(r"^(id\d+)_(\d+)$"), "CelebDF:", lambda m: f"{m[1]}_{m[3]}"
    ),
}
FAMILIES = tuple(_NAMING)


def video_identity(video: str, family: str | None, fake: bool) -> VideoIdentity:
    """Group, identities and source video of ``video`` in a collection ``family`` (see module doc)."""
    naming = _NAMING.get(family or "")
    m = naming and (naming.fake if fake else naming.real).match(video)
    if not m:
        return VideoIdentity(video, None, None)
    p = naming.prefix
    if fake:
        src = naming.source(m)
        return VideoIdentity(src, f"{p}{m[1]}|{p}{m[2]}", src)
    return VideoIdentity(video, f"{p}{m[1]}", None)
