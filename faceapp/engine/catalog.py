"""The model packs faceapp knows: which files, their hashes, licences and official sources.

Weights are never shipped with the app; :mod:`faceapp.engine.installer` fetches or copies
them into ``<models_dir>/<pack>/`` and checks every file against the hashes below.
"""

from __future__ import annotations

from dataclasses import dataclass

from faceapp.core.errors import ModelError

_INSIGHTFACE_RELEASE = "https://github.com/deepinsight/insightface/releases/download/v0.7"
_OPENCV_ZOO = "https://github.com/opencv/opencv_zoo/raw/main/models"
_INSIGHTFACE_LICENCE = "insightface model packs: non-commercial research use only"
_INSIGHTFACE_SOURCE = "insightface GitHub release v0.7 (deepinsight/insightface, model zoo)"


@dataclass(frozen=True)
class ModelFile:
    """One ONNX file of a pack and where its official copy lives."""

    name: str
    role: str  # "detector" | "recognizer" | "liveness_<scale>"
    sha256: str  # "" when no hash is published: the installer then checks the size only
    size: int
    url: str | None  # the file itself, or the zip that contains it
    member: str | None = None  # path inside the zip at ``url``, if ``url`` is a zip


@dataclass(frozen=True)
class ModelPack:
    """A detector + recognizer pair that the engine loads together."""

    name: str
    backend: str  # "insightface" | "opencv"
    detector: ModelFile
    recognizer: ModelFile
    licence: str
    commercial_use: bool
    source: str
    description: str
    # Identifies the embedding space: templates are comparable across packs with the same id.
    recognizer_id: str
    embedding_dim: int

    @property
    def files(self) -> tuple[ModelFile, ModelFile]:
        """The detector and recognizer files, in that order."""
        return (self.detector, self.recognizer)

    @property
    def size(self) -> int:
        """Bytes on disk once installed."""
        return self.detector.size + self.recognizer.size


def _insightface_file(spec: tuple[str, str, int], role: str, zip_pack: str) -> ModelFile:
    name, sha256, size = spec
    return ModelFile(
        name=name,
        role=role,
        sha256=sha256,
        size=size,
        url=f"{_INSIGHTFACE_RELEASE}/{zip_pack}.zip",
        member=name,  # the official zips hold their files at the root
    )


# sha256 and byte size of the official, unmodified files.
_DET_500M = (
    "det_500m.onnx",
    "5e4447f50245bbd7966bd6c0fa52938c61474a04ec7def48753668a9d8b4ea3a",
    2_524_817,
)
_DET_2_5G = (
    "det_2.5g.onnx",
    "041f73f47371333d1d17a6fee6c8ab4e6aecabefe398ff32cca4e2d5eaee0af9",
    3_292_009,
)
_W600K_MBF = (
    "w600k_mbf.onnx",
    "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
    13_616_099,
)
# insightface publishes no per-file hashes for buffalo_l; these are the values recorded
# independently by many projects that pin the v0.7 buffalo_l.zip members, and they agree.
_DET_10G = (
    "det_10g.onnx",
    "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91",
    16_923_827,
)
_W600K_R50 = (
    "w600k_r50.onnx",
    "4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43",
    174_383_860,
)

def _insightface_pack(name: str, det: tuple[str, str, int], rec: tuple[str, str, int], *, recognizer_id: str,
                      description: str, rec_zip: str | None = None) -> ModelPack:
    """A pack of the insightface v0.7 release (512-d, non-commercial) whose files come from
    ``<name>.zip``, or the recognizer from ``<rec_zip>.zip`` when faceapp pairs across zips."""
    rec_zip = rec_zip or name
    if rec_zip == name:
        source = f"{_INSIGHTFACE_SOURCE}, {name}.zip"
    else:
        source = f"{_INSIGHTFACE_SOURCE}: {det[0]} from {name}.zip, {rec[0]} from {rec_zip}.zip"
    return ModelPack(
        name=name,
        backend="insightface",
        detector=_insightface_file(det, "detector", zip_pack=name),
        recognizer=_insightface_file(rec, "recognizer", zip_pack=rec_zip),
        licence=_INSIGHTFACE_LICENCE,
        commercial_use=False,
        source=source,
        description=description,
        recognizer_id=recognizer_id,
        embedding_dim=512,
    )


CATALOG: dict[str, ModelPack] = {
    "buffalo_sc": _insightface_pack(
        "buffalo_sc", _DET_500M, _W600K_MBF, recognizer_id="w600k_mbf",
        description="SCRFD-500MF detector + ArcFace MobileFaceNet (WebFace600K), 512-d. "
        "Small and fast: the default.",
    ),
    "buffalo_s": _insightface_pack(
        "buffalo_s", _DET_500M, _W600K_MBF, recognizer_id="w600k_mbf",
        description="Same detector and recognizer as buffalo_sc (the official zip also holds "
        "landmark models, which faceapp does not use or install).",
    ),
    # The official buffalo_m.zip pairs det_2.5g with w600k_r50; faceapp pairs it with the
    # small recognizer so templates stay comparable with buffalo_sc. Hence two zips.
    "buffalo_m": _insightface_pack(
        "buffalo_m", _DET_2_5G, _W600K_MBF, recognizer_id="w600k_mbf", rec_zip="buffalo_sc",
        description="SCRFD-2.5GF detector (finds smaller and turned faces better than "
        "det_500m) + ArcFace MobileFaceNet, 512-d. faceapp's own pairing: the official "
        "buffalo_m uses det_2.5g with w600k_r50; here det_2.5g is paired with w600k_mbf, "
        "so templates are shared with buffalo_sc/buffalo_s.",
    ),
    "buffalo_l": _insightface_pack(
        "buffalo_l", _DET_10G, _W600K_R50, recognizer_id="w600k_r50",
        description="SCRFD-10GF detector + ArcFace ResNet-50 (WebFace600K), 512-d. Most "
        "accurate, about 190 MB and several times slower on CPU.",
    ),
    "opencv": ModelPack(
        name="opencv",
        backend="opencv",
        detector=ModelFile(
            name="face_detection_yunet_2023mar.onnx",
            role="detector",
            sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
            size=232_589,
            url=f"{_OPENCV_ZOO}/face_detection_yunet/face_detection_yunet_2023mar.onnx",
            member=None,
        ),
        recognizer=ModelFile(
            name="face_recognition_sface_2021dec.onnx",
            role="recognizer",
            sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
            size=38_696_353,
            url=f"{_OPENCV_ZOO}/face_recognition_sface/face_recognition_sface_2021dec.onnx",
            member=None,
        ),
        licence="YuNet: MIT; SFace: Apache-2.0",
        commercial_use=True,
        source="OpenCV Zoo (github.com/opencv/opencv_zoo): models/face_detection_yunet/ "
        "and models/face_recognition_sface/",
        description="OpenCV YuNet detector + SFace recognizer, 128-d. The licence-clean "
        "choice for commercial use.",
        recognizer_id="sface",
        embedding_dim=128,
    ),
}

DEFAULT_PACK = "buffalo_sc"


@dataclass(frozen=True)
class LivenessModel:
    """One anti-spoofing model and the crop it was trained on: the detector's face box scaled by
    ``scale`` about its centre, resized to ``input_size`` square (BGR, 0..255)."""

    file: ModelFile
    scale: float
    input_size: int = 80


@dataclass(frozen=True)
class LivenessPack:
    """An optional pack of passive liveness (anti-spoofing) models whose verdicts are fused."""

    name: str
    models: tuple[LivenessModel, ...]
    licence: str
    commercial_use: bool
    source: str
    description: str
    backend: str = "liveness"
    recognizer_id: str = ""

    @property
    def files(self) -> tuple[ModelFile, ...]:
        return tuple(m.file for m in self.models)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def _minifasnet(name: str, sha256: str, size: int, scale: float) -> LivenessModel:
    # No official ONNX download exists (the original repository ships .pth files): a site installs
    # these from a local folder or zip, so there is no URL to fetch.
    return LivenessModel(ModelFile(name=name, role=f"liveness_{scale}", sha256=sha256, size=size, url=None),
                         scale=scale)


LIVENESS_PACK = "minifasnet"
LIVENESS_CATALOG: dict[str, LivenessPack] = {
    LIVENESS_PACK: LivenessPack(
        name=LIVENESS_PACK,
        models=(
            _minifasnet("minifasnet_v2_2.7_80x80.onnx",
                        "4433e871ef03f6c4c13de1757e63dcd69db14b6d7d9cff2319cb274c0f6dbecb", 1_750_284, 2.7),
            _minifasnet("minifasnet_v1se_4.0_80x80.onnx",
                        "a8e67ffbaf39fa74c3b2ed673b530fcfb2f47379d0f26a52b71c2fc6473ec20f", 1_750_909, 4.0),
        ),
        licence="Apache-2.0",
        commercial_use=True,
        source="minivision-ai/Silent-Face-Anti-Spoofing @b6d5f04 (ONNX export of "
        "2.7_80x80_MiniFASNetV2.pth and 4_0_0_80x80_MiniFASNetV1SE.pth); install from a local folder or zip",
        description="Silent-Face MiniFASNetV2 (2.7x crop) + MiniFASNetV1SE (4.0x crop): passive liveness "
        "(photo / screen attacks) for doors that require it. Optional.",
    ),
}

AnyPack = ModelPack | LivenessPack


def _unknown(name: str) -> ModelError:
    choices = ", ".join([*CATALOG, *LIVENESS_CATALOG])
    return ModelError(f"unknown model pack {name!r}; choose one of: {choices}")


def get_pack(name: str) -> ModelPack:
    """The recognition pack called ``name``; ModelError if there is none."""
    try:
        return CATALOG[name]
    except KeyError:
        if name in LIVENESS_CATALOG:
            raise ModelError(f"'{name}' is a liveness pack, not a recognition pack; "
                             f"choose one of: {', '.join(CATALOG)}") from None
        raise _unknown(name) from None


def find_pack(name: str) -> AnyPack:
    """Any catalogue pack (recognition or liveness) called ``name``; ModelError if there is none."""
    pack = CATALOG.get(name) or LIVENESS_CATALOG.get(name)
    if pack is None:
        raise _unknown(name)
    return pack


def all_packs() -> dict[str, AnyPack]:
    """Every pack faceapp can install: recognition packs first, then the optional liveness pack."""
    return {**CATALOG, **LIVENESS_CATALOG}
