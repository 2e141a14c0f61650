"""Importers of public deepfake collections into manifests (`fifa-data import ...`).

Each is a typed function returning an :class:`ImportReport` (rows written, every failure with
its reason) and writing ``<manifest stem>.import.json`` next to the manifest:

* :func:`import_ffpp`: FaceForensics++ videos -> sampled, face-cropped, pixel-aligned frame pairs;
* :func:`import_deepfakebench`: DeepfakeBench's dataset JSON (its frames, used in place);
* :func:`import_ddvqa`: DD-VQA's question/answer pairs attached to imported FF++ frames;
* :func:`import_folders`: ``real/``, ``fake/<method>/``, optional ``source/``.

See docs/import.md.
"""

from .ddvqa import DDVQAConfig, import_ddvqa
from .deepfakebench import DFBConfig, import_deepfakebench
from .facecrop import CropConfig, CropTransform, FaceCropper
from .ffpp import FFPPConfig, import_ffpp, scan_ffpp
from .folders import FoldersConfig, import_folders
from .report import Failure, ImportLayoutError, ImportReport

__all__ = [
    "CropConfig",
    "CropTransform",
    "DDVQAConfig",
    "DFBConfig",
    "FFPPConfig",
    "FaceCropper",
    "Failure",
    "FoldersConfig",
    "ImportLayoutError",
    "ImportReport",
    "import_ddvqa",
    "import_deepfakebench",
    "import_ffpp",
    "import_folders",
    "scan_ffpp",
]
