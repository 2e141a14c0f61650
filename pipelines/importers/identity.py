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
from dataclasses import dataclass

FAMILIES = ("ffpp", "dfd", "celebdf")

_FFPP_FAKE = re.compile(r"^(\d{3})_(\d{3})$")
_FFPP_REAL = re.compile(r"^(\d{3})$")
_DFD_FAKE = re.compile(r"^(\d{2})_(\d{2})__(.+?)__[A-Za-z0-9]+$")
_DFD_REAL = re.compile(r"^(\d{2})__(.+)$")
_CELEB_FAKE = re.compile(r"^(id\d+)_(id\d+)_(\d+)$")
_CELEB_REAL = re.compile(r"^(id\d+)_(\d+)$")


@dataclass(frozen=True)
class VideoIdentity:
    group: str  # the source video (for a real video: itself)
    identities: str | None  # `|`-separated; None = the group alone
    source: str | None  # a fake's source video name, None for a real video or when unknown


def video_identity(video: str, family: str | None, fake: bool) -> VideoIdentity:
    """Group, identities and source video of ``video`` in a collection ``family`` (see module doc)."""
    if family == "ffpp":
        m = _FFPP_FAKE.match(video) if fake else _FFPP_REAL.match(video)
        if m and fake:
            return VideoIdentity(m[1], f"{m[1]}|{m[2]}", m[1])
        if m:
            return VideoIdentity(m[1], m[1], None)
    elif family == "dfd":
        m = _DFD_FAKE.match(video) if fake else _DFD_REAL.match(video)
        if m and fake:
            src = f"{m[1]}__{m[3]}"
            return VideoIdentity(src, f"DFD:{m[1]}|DFD:{m[2]}", src)
        if m:
            return VideoIdentity(video, f"DFD:{m[1]}", None)
    elif family == "celebdf":
        m = _CELEB_FAKE.match(video) if fake else _CELEB_REAL.match(video)
        if m and fake:
            src = f"{m[1]}_{m[3]}"
            return VideoIdentity(src, f"CelebDF:{m[1]}|CelebDF:{m[2]}", src)
        if m:
            return VideoIdentity(video, f"CelebDF:{m[1]}", None)
    return VideoIdentity(video, None, None)
