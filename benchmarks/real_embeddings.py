"""Real buffalo_sc embeddings of the shared photos and of every face in the shared videos.

Used by bench_search.py (and the search agreement test builds its own, smaller set). Cached in
``--cache`` (default /tmp/faceapp-bench/real_embeddings.npz, never committed: biometric data).

    python benchmarks/real_embeddings.py [--data ../shared/faces] [--cache FILE.npz]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np

from faceapp.capture.images import iter_image_files, load_image
from faceapp.capture.sources import VideoFileSource
from faceapp.engine.engine import EngineConfig, FaceEngine
from faceapp.engine.installer import install_pack
from faceapp.service.bench import default_data_dir

log = logging.getLogger("real_embeddings")
IDENTITY_DIRS = ("face_recognition_examples", "lfw_krasserm", "five_celebrity", "openface_examples",
                 "facenet_pytorch_test_images", "extras/lfw_singletons")
VIDEOS = ("videos/face_recognition_short_hamilton_clip.mp4", "videos/facenet_pytorch_video.mp4")
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "faceapp-bench" / "real_embeddings.npz"


def compute(data: Path, models: Path) -> dict[str, np.ndarray]:
    """photo_emb (n, 512) + photo_label (identity strings), video_emb (m, 512) + video_index."""
    engine = FaceEngine(EngineConfig(pack="buffalo_sc", models_dir=models)).prepare()
    photo_emb, photo_label = [], []
    for d in IDENTITY_DIRS:
        root = data / d
        if not root.is_dir():
            continue
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            for f in iter_image_files(sub):
                faces = engine.analyze_photo(load_image(f))
                if faces:
                    big = max(faces, key=lambda fc: fc.detection.bbox.area)
                    photo_emb.append(big.embedding)
                    photo_label.append(sub.name.replace("_", " ").lower())
    video_emb, video_index = [], []
    for k, rel in enumerate(VIDEOS):
        src = VideoFileSource(data / rel)
        src.open()
        try:
            while (frame := src.read()) is not None:
                for face in engine.analyze(frame.image):
                    video_emb.append(face.embedding)
                    video_index.append(k)
        finally:
            src.close()
    log.info("%d photo and %d video embeddings", len(photo_emb), len(video_emb))
    return {"photo_emb": np.asarray(photo_emb, np.float32), "photo_label": np.asarray(photo_label),
            "video_emb": np.asarray(video_emb, np.float32), "video_index": np.asarray(video_index, np.int64)}


def load(cache: Path = DEFAULT_CACHE, data: Path | None = None) -> dict[str, np.ndarray]:
    """The cached embeddings, computed (and cached) on first use."""
    if cache.is_file():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    data = data or default_data_dir()
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        install_pack("buffalo_sc", models, source=data.parent / "models")
        out = compute(data, models)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    out = load(args.cache, args.data)
    print({k: v.shape for k, v in out.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
