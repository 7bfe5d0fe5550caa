"""The face engine: detection with 5 landmarks, alignment to 112x112, embedding.

Construct with explicit model paths/providers, call :meth:`FaceEngine.prepare` once
(it loads the models), then call :meth:`analyze` / :meth:`detect` / :meth:`embed`
from any thread: model runs are serialised by a lock, because the OpenCV detector keeps
per-call state and two callers (live recognition and the enrollment dialog) share one engine. Nothing is loaded at import time and nothing is
ever downloaded here: missing models are a :class:`ModelError` naming the fix.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import cv2
import numpy as np

from faceapp.core.align import alignment_matrix
from faceapp.core.errors import ModelError
from faceapp.core.image import MAX_PIXELS, to_bgr8
from faceapp.core.scale import l2_normalize
from faceapp.core.types import BBox, Detection, Face
from faceapp.engine.catalog import DEFAULT_PACK, ModelPack, get_pack
from faceapp.engine.installer import require_pack

log = logging.getLogger(__name__)

CROP_SIZE = 112
MIN_DETECT_SIDE = 8  # pixels at detector input; SCRFD's finest stride


@dataclass(frozen=True)
class EngineConfig:
    """What the engine needs to load: the pack, where models live, and how to run them."""

    pack: str = DEFAULT_PACK
    models_dir: Path = Path("models")
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    threads: int = 2
    det_threshold: float = 0.5
    det_max_side: int = 640


class _Backend(Protocol):
    def detect(self, image: np.ndarray, size: tuple[int, int], threshold: float) -> tuple[np.ndarray, np.ndarray]:
        ...

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        ...


def detector_input_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Detector input (w, h) keeping the frame's aspect: longest side ``max_side``, both multiples of 32.

    A 640x360 video frame runs at 640x384 instead of a 640x640 letterbox: ~40% less work.
    """
    scale = max_side / float(max(width, height))
    w = max(32, int(math.ceil(width * scale / 32.0)) * 32)
    h = max(32, int(math.ceil(height * scale / 32.0)) * 32)
    return min(w, max_side), min(h, max_side)


class FaceEngine:
    """Loads one model pack once and turns images into :class:`Face` results."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.pack: ModelPack = get_pack(config.pack)
        self._backend: _Backend | None = None
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """Identifier of the embedding space; templates of different ids are never compared."""
        return self.pack.recognizer_id

    @property
    def run_lock(self) -> threading.Lock:
        """Held while a model runs; other models of the app (liveness) share it so that only one
        model at a time uses the CPU's threads."""
        return self._run_lock

    @property
    def embedding_dim(self) -> int:
        return self.pack.embedding_dim

    def prepare(self) -> FaceEngine:
        """Verify and load the models (idempotent, thread-safe). Raises ModelError."""
        with self._lock:
            if self._backend is not None:
                return self
            paths = require_pack(self.pack.name, Path(self.config.models_dir))
            if self.pack.backend == "insightface":
                self._backend = _InsightFaceBackend(paths["detector"], paths["recognizer"], self.config)
            elif self.pack.backend == "opencv":
                self._backend = _OpenCVBackend(paths["detector"], paths["recognizer"], self.config)
            else:  # pragma: no cover - the catalogue only has these two
                raise ModelError(f"unknown backend {self.pack.backend!r} for pack {self.pack.name}")
            log.info("engine ready: pack=%s providers=%s threads=%d",
                     self.pack.name, self.config.providers, self.config.threads)
        return self

    def _require(self) -> _Backend:
        if self._backend is None:
            self.prepare()
        assert self._backend is not None
        return self._backend

    def detect(self, image: np.ndarray, max_side: int | None = None) -> list[Detection]:
        """Faces in a BGR image, largest score first. Accepts gray/RGBA/16-bit arrays too."""
        backend = self._require()
        img = to_bgr8(image)
        h, w = img.shape[:2]
        size = detector_input_size(w, h, max_side or self.config.det_max_side)
        # A strip a few pixels thin at detector scale holds no face (and would make SCRFD's resize fail).
        if min(w, h) * min(size[0] / w, size[1] / h) < MIN_DETECT_SIDE:
            return []
        with self._run_lock:
            boxes, kps = backend.detect(img, size, self.config.det_threshold)
        out = []
        for b, k in zip(boxes, kps):
            x1, y1, x2, y2 = (float(v) for v in b[:4])
            out.append(Detection(
                bbox=BBox(max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)),
                score=float(b[4]),
                landmarks=np.asarray(k, np.float32).reshape(5, 2),
            ))
        out.sort(key=lambda d: -d.score)
        return out

    def align(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        """112x112 BGR crop aligned on the ArcFace landmark template."""
        m = alignment_matrix(detection.landmarks, CROP_SIZE)
        return cv2.warpAffine(image, m, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))

    def embed_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(n, D) unit float32 embeddings of aligned 112x112 crops, in one batch."""
        if len(crops) == 0:
            return np.zeros((0, self.embedding_dim), np.float32)
        backend = self._require()
        batch = [to_bgr8(c) for c in crops]
        with self._run_lock:
            emb = backend.embed(batch)
        return l2_normalize(emb)

    def embed(self, image: np.ndarray, detections: Sequence[Detection]) -> list[Face]:
        """Align and embed the given detections of ``image`` (batched)."""
        img = to_bgr8(image)
        crops = [self.align(img, d) for d in detections]
        emb = self.embed_crops(crops)
        return [Face(d, e, c) for d, e, c in zip(detections, emb, crops)]

    def analyze(self, image: np.ndarray, max_side: int | None = None) -> list[Face]:
        """Detect and embed every face of an image."""
        img = to_bgr8(image)
        return self.embed(img, self.detect(img, max_side))

    def analyze_photo(self, image: np.ndarray) -> list[Face]:
        """Like :meth:`analyze`, for still photos: a face that fills the picture
        (an ID-badge crop) is found by padding the image and trying again."""
        img = to_bgr8(image)
        faces = self.analyze(img)
        if faces:
            return faces
        h, w = img.shape[:2]
        pad = max(h, w) // 2
        if (h + 2 * pad) * (w + 2 * pad) > MAX_PIXELS:
            return []  # a big photo: not a tight badge crop, and padding it would exceed the size limit
        padded = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(127, 127, 127))
        found = self.detect(padded)
        faces = []
        for face in self.embed(padded, found):
            d = face.detection
            b = d.bbox
            moved = Detection(
                BBox(max(0.0, b.x1 - pad), max(0.0, b.y1 - pad), min(float(w), b.x2 - pad), min(float(h), b.y2 - pad)),
                d.score, d.landmarks - pad)
            faces.append(Face(moved, face.embedding, face.crop))
        return faces


def _session_options(threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    # Two physical cores: intra-op parallelism on both, no inter-op pool fighting it.
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # Idle pool threads would otherwise busy-wait after each run, taking the cores the capture and
    # UI threads need: measured on the Hamilton clip, 14 ms/frame without spinning vs 21 ms with,
    # and 40% less CPU.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


class _InsightFaceBackend:
    """SCRFD + ArcFace through insightface's model_zoo (sessions we configure ourselves)."""

    def __init__(self, det_path: Path, rec_path: Path, config: EngineConfig) -> None:
        try:
            import onnxruntime as ort
            from insightface.model_zoo import model_zoo
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelError(f"insightface/onnxruntime are not installed: {exc}") from exc
        ort.set_default_logger_severity(3)
        kwargs = dict(providers=list(config.providers), sess_options=_session_options(config.threads))
        try:
            self.det = model_zoo.get_model(str(det_path), **kwargs)
            self.rec = model_zoo.get_model(str(rec_path), **kwargs)
        except Exception as exc:
            raise ModelError(f"could not load models from {det_path.parent}: {exc}") from exc
        if getattr(self.det, "taskname", None) != "detection":
            raise ModelError(f"{det_path.name} is not a face detector")
        if getattr(self.rec, "taskname", None) != "recognition":
            raise ModelError(f"{rec_path.name} is not a face recogniser")
        self.det.prepare(-1, det_thresh=config.det_threshold, input_size=(640, 640))
        self.rec.prepare(-1)

    def detect(self, image, size, threshold):
        boxes, kps = self.det.detect(image, input_size=size, det_thresh=threshold)
        if kps is None:
            raise ModelError("this detector gives no landmarks; faceapp needs a 5-point model (SCRFD *_kps)")
        return boxes, kps

    def embed(self, crops):
        return np.asarray(self.rec.get_feat(list(crops)), np.float32)


class _OpenCVBackend:
    """YuNet + SFace through OpenCV's FaceDetectorYN / FaceRecognizerSF (licence-clean)."""

    def __init__(self, det_path: Path, rec_path: Path, config: EngineConfig) -> None:
        try:
            self.det = cv2.FaceDetectorYN.create(str(det_path), "", (320, 320), config.det_threshold, 0.3, 5000)
            self.rec = cv2.FaceRecognizerSF.create(str(rec_path), "")
        except cv2.error as exc:
            raise ModelError(f"could not load OpenCV models from {det_path.parent}: {exc}") from exc

    def detect(self, image, size, threshold):
        h, w = image.shape[:2]
        scale = min(size[0] / w, size[1] / h)
        small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        self.det.setScoreThreshold(float(threshold))
        self.det.setInputSize((small.shape[1], small.shape[0]))
        _, faces = self.det.detect(small)
        if faces is None or len(faces) == 0:
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        faces = np.asarray(faces, np.float32) / np.float32(scale)
        boxes = np.stack([faces[:, 0], faces[:, 1], faces[:, 0] + faces[:, 2], faces[:, 1] + faces[:, 3],
                          faces[:, 14] * scale], axis=1)
        kps = faces[:, 4:14].reshape(-1, 5, 2)
        return boxes, kps

    def embed(self, crops):
        return np.vstack([np.asarray(self.rec.feature(c), np.float32).reshape(1, -1) for c in crops])
