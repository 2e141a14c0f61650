"""Optional landmark backend: the ``face_alignment`` package (2D-FAN, 68 iBUG points).

Its 68 points go through :func:`~fifa.concept_tree.segmentation.ibug68.regions_from_ibug68`, so the regions
have the usual leaf ids minus :data:`~fifa.concept_tree.segmentation.ibug68.IBUG68_UNSUPPORTED`.

Install the extra (``pip install 'fifa-toolkit[facealign]'``) and put the weights in the torch hub
cache yourself; this module never downloads anything. ``face_alignment`` (>= 1.4 with torch >= 1.7)
looks for, in ``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch/hub/checkpoints``):

* ``2DFAN4-cd938726ad.zip``  (the 2D-FAN landmark network, TorchScript)
* ``s3fd-619a316812.pth``    (the S3FD face detector)

from ``https://www.adrianbulat.com/downloads/python-fan/<file name>``. With ``weights_dir`` the
same files are read from that folder instead.

>>> from fifa.concept_tree.segmentation.face_alignment_backend import FaceAlignmentLandmarks
>>> fa = FaceAlignmentLandmarks(device="cpu")             # doctest: +SKIP
>>> regions = fa.segment(rgb)                             # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from .ibug68 import regions_from_ibug68
from .landmarks import BackendUnavailable, PersonSegmenter
from .offface import OutsideFaceRules
from .regions import FaceRegions

__all__ = [
    "BackendUnavailable",
    "FaceAlignmentLandmarks",
    "check_available",
    "missing_weights",
    "missing_weights_message",
]

BACKEND = "face_alignment"  # its name in backends.REGISTRY and FaceRegions.backend
INSTALL_HINT = "install with: pip install 'fifa-toolkit[facealign]'"
WEIGHTS_URL_BASE = "https://www.adrianbulat.com/downloads/python-fan/"

#: Weight files face_alignment loads for 2D landmarks with the S3FD detector, by torch version
#: (face_alignment picks per-version builds for torch 1.5 / 1.6, a default build otherwise).
_FAN_2D = {"1.5": "2DFAN4_1.5-a60332318a.zip", "1.6": "2DFAN4_1.6-c827573f02.zip"}
_FAN_2D_DEFAULT = "2DFAN4-cd938726ad.zip"
S3FD_WEIGHTS = "s3fd-619a316812.pth"


def torch_hub_dir(torch_home: str | os.PathLike | None = None) -> Path:
    """torch hub's folder, as ``torch.hub.get_dir()`` resolves it (without importing torch):
    ``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``."""
    if torch_home is not None:
        return Path(torch_home).expanduser() / "hub"
    env = os.environ.get("TORCH_HOME")
    if env:
        return Path(env).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path("~/.cache").expanduser()
    return base / "torch" / "hub"


def required_weights(torch_version: str | None = None) -> list[str]:
    """File names face_alignment needs for 2D landmarks with the default S3FD detector."""
    fan = _FAN_2D_DEFAULT
    if torch_version:
        major_minor = ".".join(torch_version.split("+")[0].split(".")[:2])
        fan = _FAN_2D.get(major_minor, _FAN_2D_DEFAULT)
    return [fan, S3FD_WEIGHTS]


def weights_folder(torch_home: str | os.PathLike | None = None, weights_dir: str | os.PathLike | None = None) -> Path:
    """Where the weight files are looked for: ``weights_dir`` if given, else the hub checkpoints folder."""
    if weights_dir is not None:
        return Path(weights_dir).expanduser()
    return torch_hub_dir(torch_home) / "checkpoints"


def missing_weights(
    torch_home: str | os.PathLike | None = None,
    *,
    weights_dir: str | os.PathLike | None = None,
    torch_version: str | None = None,
) -> list[Path]:
    """The weight files that are not there (empty list: all present). Needs neither torch nor
    face_alignment, and touches no network."""
    folder = weights_folder(torch_home, weights_dir)
    return [folder / name for name in required_weights(torch_version) if not (folder / name).is_file()]


def missing_weights_message(missing: list[Path]) -> str:
    folders = sorted({str(p.parent) for p in missing})
    lines = [
        "face_alignment weights are missing (this toolkit never downloads them). Put these files in "
        + (folders[0] if len(folders) == 1 else ", ".join(folders))
        + ":"
    ]
    lines += [f"  {p.name}  (from {WEIGHTS_URL_BASE}{p.name})" for p in missing]
    lines.append("or set TORCH_HOME (files go in $TORCH_HOME/hub/checkpoints) or pass weights_dir=FOLDER.")
    return "\n".join(lines)


def _import_face_alignment():
    try:
        import face_alignment  # noqa: F401
    except ImportError as e:  # the package or one of its own dependencies is missing
        raise BackendUnavailable(
            f"the face-alignment backend needs the 'face_alignment' package ({e}); {INSTALL_HINT}"
        ) from e
    return face_alignment


def _torch_version() -> str | None:
    """The installed torch's version, read from its metadata (torch is not imported)."""
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def check_available(weights_dir: str | os.PathLike | None = None) -> None:
    """Raise :class:`BackendUnavailable` unless ``face_alignment`` imports (the message gives the
    install command) and its weight files are in place (the message names each missing file)."""
    _import_face_alignment()
    missing = missing_weights(weights_dir=weights_dir, torch_version=_torch_version())
    if missing:
        raise BackendUnavailable(missing_weights_message(missing))


@contextlib.contextmanager
def _offline_hub(folder: Path):
    """Point torch hub at ``folder`` (as its ``checkpoints``) and make any download attempt fail."""
    import torch.hub

    def refuse(url, *a, **k):
        raise BackendUnavailable(
            f"face_alignment tried to download {url}; put that file in {folder} (this toolkit never downloads weights)"
        )

    previous = getattr(torch.hub, "_hub_dir", None)
    patched = []
    with tempfile.TemporaryDirectory(prefix="fifa-hub-") as tmp:
        hub = Path(tmp)
        if folder.name == "checkpoints":
            hub = folder.parent
        else:
            (hub / "checkpoints").symlink_to(folder.resolve(), target_is_directory=True)
        torch.hub.set_dir(str(hub))
        modules = [torch.hub]
        with contextlib.suppress(ImportError):
            import face_alignment.utils as fa_utils

            modules.append(fa_utils)
        for m in modules:
            if hasattr(m, "download_url_to_file"):
                patched.append((m, m.download_url_to_file))
                m.download_url_to_file = refuse
        try:
            yield
        finally:
            for m, fn in patched:
                m.download_url_to_file = fn
            torch.hub._hub_dir = previous


class FaceAlignmentLandmarks:
    """68-point landmarks from ``face_alignment`` (S3FD detector + 2D-FAN), fed to the 68-point path.

    Raises :class:`BackendUnavailable` when the package or its weights are missing, before any
    model is constructed (so nothing is downloaded).
    """

    def __init__(
        self,
        device: str = "cpu",
        weights_dir: str | os.PathLike | None = None,
        flip_input: bool = False,
        calibration=None,
    ):
        """``calibration``: an :class:`~fifa.concept_tree.segmentation.ibug68_calibration.Ibug68Calibration` applied
        to the points before the mesh fit (2D-FAN follows the iBUG convention like dlib; the shipped
        calibration was measured on dlib only), or ``None``."""
        fa = _import_face_alignment()
        self.calibration = calibration
        import torch

        self.device = device
        self.weights_dir = weights_folder(None, weights_dir)
        missing = missing_weights(weights_dir=self.weights_dir, torch_version=torch.__version__)
        if missing:
            raise BackendUnavailable(missing_weights_message(missing))
        landmarks_type = getattr(fa.LandmarksType, "TWO_D", None) or fa.LandmarksType._2D
        with _offline_hub(self.weights_dir):
            self._fa = fa.FaceAlignment(
                landmarks_type,
                device=device,
                flip_input=flip_input,
                face_detector="sfd",
                face_detector_kwargs={"path_to_detector": str(self.weights_dir / S3FD_WEIGHTS)},
            )
        self._person = PersonSegmenter(model=0)

    def landmarks(self, rgb: np.ndarray) -> list[np.ndarray]:
        """68 (x, y) points of every detected face, largest face first."""
        rgb = np.ascontiguousarray(rgb[..., :3])
        res = self._fa.get_landmarks_from_image(rgb)
        if not res:
            return []
        faces = [np.asarray(p, dtype=np.float64)[:, :2] for p in res]
        faces.sort(key=lambda p: -float(np.ptp(p[:, 0]) * np.ptp(p[:, 1])))
        return faces

    def person_probability(self, rgb: np.ndarray) -> np.ndarray:
        """Person probability map from MediaPipe SelfieSegmentation (ships with mediapipe, offline)."""
        return self._person(rgb)

    def segment_all(self, rgb: np.ndarray, limit: int | None = None, outside_face: bool = True,
                    rules: OutsideFaceRules = OutsideFaceRules(),
                    person: np.ndarray | None = None) -> list[FaceRegions]:  # fmt: skip
        """Regions of every detected face, largest first, at most ``limit`` (one ``no_face`` result
        when none); ``person``: a person probability map to use instead of SelfieSegmentation's."""
        h, w = rgb.shape[:2]
        faces = self.landmarks(rgb)[:limit]
        if not faces:
            from .segment import leaf_ids

            return [FaceRegions(image_size=(h, w), status="no_face", leaf_ids=leaf_ids(), backend=BACKEND,
                                error="no face detected")]  # fmt: skip
        if person is None and outside_face:
            person = self.person_probability(rgb)
        return [regions_from_ibug68(p, (h, w), person, face_index=i, rules=rules, backend=BACKEND,
                                    calibration=self.calibration) for i, p in enumerate(faces)]  # fmt: skip

    def segment(self, rgb: np.ndarray, person: np.ndarray | None = None, outside_face: bool = True) -> FaceRegions:
        """Regions of the largest face (``status == "no_face"`` when none)."""
        return self.segment_all(rgb, limit=1, outside_face=outside_face, person=person)[0]

    def close(self) -> None:
        self._person.close()

    def __enter__(self) -> FaceAlignmentLandmarks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
