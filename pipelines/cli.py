"""`fifa-data`: dataset construction commands (typer, over the library API)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from fifa.cli_utils import UserError, command, examples, make_app, run_app, setup_logging

app = make_app(
    "Build XDFA datasets: pseudo-forgeries, imports, instruction data, exports, releases, a viewer.",
    epilog=examples("fifa-data forge --out forged/ --n 60 --seed 1"),
)


class Identities(str, Enum):
    bundled = "bundled"
    lfw = "lfw"
    all = "all"


@command(app, "fifa-data forge --out forged/ --n 200 --seed 3 --identities lfw --identity-size 256")
def forge(
    out: Annotated[Path, typer.Option(help="Output folder.", file_okay=False)],
    n: Annotated[int, typer.Option(help="Number of fakes.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same output).")] = 0,
    identities: Annotated[Identities, typer.Option(help="Base faces: bundled (two public-domain photos and their "
                                                        "variants), lfw (the 100 faces of scikit-image's lfw_subset, "
                                                        "one identity each) or all.")] = Identities.bundled,
    identity_size: Annotated[int, typer.Option(help="Side (px) the 25x25 lfw faces are upscaled to.")] = 256,
    max_identities: Annotated[Optional[int], typer.Option(help="Use at most this many lfw faces.")] = None,
    faces: Annotated[Optional[Path], typer.Option(help="Extra folder (or file) of real face images used as bases.",
                                                  exists=True)] = None,
    kinds: Annotated[Optional[str], typer.Option(help="Comma-separated edit kinds (default: all; see "
                                                      "docs/forge.md).")] = None,
    jpeg_fraction: Annotated[float, typer.Option(help="Share of fakes saved as high-quality JPEG (source PNG).")] = 0.25,
    jpeg_pair_fraction: Annotated[float, typer.Option(help="Share of fakes whose fake and source are both "
                                                           "re-encoded as JPEG (q 75-95).")] = 0.15,
    reencoded_fraction: Annotated[float, typer.Option(help="Re-encoded-only pairs (not forgeries, label real), "
                                                           "as a share of --n.")] = 0.1,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Pseudo-forgeries with exact ground truth (SBI blends, region edits, subtle edits, JPEG pairs).

    Writes OUT/manifest.parquet (manifest columns + truth, truth_target, truth_mask, edit, pair_kind),
    OUT/images/{real,fake}/, OUT/masks/ (ground-truth PNGs) and OUT/forge.json (counts, skipped faces).
    """
    setup_logging(verbose)
    from fifa.annotator.forge import forge as run_forge

    if n < 0:
        raise UserError("--n must be >= 0")
    try:
        path = run_forge(out, n=n, seed=seed, faces=faces, jpeg_fraction=jpeg_fraction, identities=identities.value,
                         identity_size=identity_size, max_identities=max_identities,
                         kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else None,
                         jpeg_pair_fraction=jpeg_pair_fraction, reencoded_fraction=reencoded_fraction)
    except ValueError as e:
        raise UserError(str(e)) from None
    import json

    info = json.loads((path.parent / "forge.json").read_text())
    skipped = f", {info['skipped_faces']} face image(s) without a detectable face skipped" if info["skipped_faces"] else ""
    typer.echo(f"wrote {path}: {info['fakes']} fakes, {info['bases']} real bases, "
               f"{info['reencoded_rows']} re-encoded real rows{skipped}")


def main(argv: list[str] | None = None) -> None:
    run_app(app, argv, prog_name="fifa-data")


if __name__ == "__main__":  # pragma: no cover
    main()
