"""The explainer interface shared by the ``offline`` and ``openai`` backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

CATEGORY_WORDS = {
    "FS": "face-swap",
    "FR": "face-reenactment",
    "FE": "face-editing",
    "EFS": "entirely synthesised",
    "real": "authentic",
}


@dataclass
class RegionInfo:
    id: str
    name: str
    coverage: float = 0.0
    share: float = 0.0
    profile: dict = field(default_factory=dict)  # see profiles.change_profiles
    description: str = ""
    artifacts: list[str] = field(default_factory=list)

    def phrase(self) -> str:
        n = self.name.strip()
        return "the " + (n[0].lower() + n[1:] if n and not n[:2].isupper() else n)


@dataclass
class ExplainContext:
    sample_id: str
    label: str
    category: str | None = None
    method: str | None = None
    grounded: bool = True
    regions: list[RegionInfo] = field(default_factory=list)  # chosen (grounded) or candidate regions
    stats: dict = field(default_factory=dict)
    image_jpeg: bytes | None = None
    source_jpeg: bytes | None = None
    image_size: tuple[int, int] | None = None

    @property
    def allowed_ids(self) -> list[str]:
        return [r.id for r in self.regions]


@dataclass
class ExplainResult:
    text: str = ""  # marked explanation (see age.py), measured against the source where there is one
    visible: str = ""  # marked description of what the fake alone shows: marks of the same regions, in order
    ok: bool = True
    error_code: str | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    calls: int = 0  # HTTP requests actually sent (retries included)
    cached: bool = False
    latency_s: float = 0.0
    region_ids: list[str] = field(default_factory=list)  # ids in the order they are explained


class Explainer(Protocol):
    name: str  # backend + model + prompt version, stored in the `explainer` column
    needs_images: bool

    def explain(self, ctx: ExplainContext) -> ExplainResult: ...


def real_text(ctx: ExplainContext) -> str:
    return (
        "No manipulation artifacts: this is an authentic photograph, with consistent skin texture, "
        "lighting and facial geometry, so no region is marked."
    )
