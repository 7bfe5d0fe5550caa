"""``faceapp bench``: faceapp's pipeline against plain insightface on the same frames, in one run.

(a) the baseline is what a developer gets from insightface out of the box:
``FaceAnalysis(name="buffalo_sc")`` with its default modules and default ``prepare()`` (two
detector passes, 128x128 and 640x640 letterboxed), every face embedded on every frame, and a
nearest-template search against the same enrolled people; (b) is :class:`Pipeline.process`.
Both see every frame of the videos in order, alternating in blocks of a few frames so machine
noise hits both alike. Labels are compared per face (paired by box overlap): speed bought with wrong
answers would show up as disagreement.

Also: identification time of one query against 1k..1M stored embeddings, our one matrix
product + ``reduceat`` against a plain L2 ``np.linalg.norm`` scan (and a per-person Python
loop up to 100k), and the process's peak memory.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from faceapp.capture.images import iter_image_files, load_image
from faceapp.capture.sources import Frame, VideoFileSource
from faceapp.core.errors import FaceAppError, ModelError
from faceapp.core.matcher import Gallery
from faceapp.core.metrics import pair_by_iou
from faceapp.core.types import BBox
from faceapp.engine.engine import EngineConfig, FaceEngine
from faceapp.engine.installer import require_pack
from faceapp.service import enroll
from faceapp.service.app import App
from faceapp.service.evaluate import _r

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, str], None]

UNKNOWN = "unknown"
VIDEOS = ("videos/face_recognition_short_hamilton_clip.mp4", "videos/facenet_pytorch_video.mp4")
PHOTOS = "group_photos"
# Enrolled for the label comparison: the people of the clips and group photos, plus
# enough others that a wrong match is possible.
GALLERY_DIRS = ("face_recognition_examples", "lfw_krasserm", "five_celebrity", "openface_examples",
                "facenet_pytorch_test_images")
PHOTOS_PER_PERSON = 5
MATCH_SIZES = (1_000, 10_000, 100_000, 1_000_000)
BLOCK = 20  # frames per alternation between the baseline and faceapp


def default_data_dir() -> Path:
    """Where the benchmark data lives: $FACEAPP_SHARED/faces, else ../shared/faces."""
    env = os.environ.get("FACEAPP_SHARED")
    return (Path(env) if env else Path.cwd().parent / "shared") / "faces"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / (1024 * 1024) if os.uname().sysname == "Darwin" else rss / 1024


# -- frames -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchSource:
    """A video (frames in order) or a set of still photos (each its own one-frame sequence)."""

    name: str
    paths: tuple[Path, ...]
    video: bool

    def frames(self, max_frames: int | None = None) -> Iterator[tuple[Frame, bool]]:
        """(frame, starts_a_new_sequence). Video frames carry stream time as ``captured`` so the
        tracker sees the clip's real timeline however fast we process it."""
        if self.video:
            src = VideoFileSource(self.paths[0])
            src.open()
            try:
                n = 0
                while max_frames is None or n < max_frames:
                    f = src.read()
                    if f is None:
                        break
                    t = f.position if f.position is not None else n / 25.0
                    yield Frame(f.image, n, t, f.position), n == 0
                    n += 1
            finally:
                src.close()
        else:
            for n, p in enumerate(self.paths[:max_frames] if max_frames else self.paths):
                yield Frame(load_image(p), n, 0.0, None), True


def default_sources(data_dir: Path) -> list[BenchSource]:
    """The Hamilton clip, the 1080p street video and the group photos under ``data_dir``."""
    out = []
    for rel in VIDEOS:
        p = data_dir / rel
        if p.is_file():
            out.append(BenchSource(p.name, (p,), True))
    photos = data_dir / PHOTOS
    if photos.is_dir():
        files = iter_image_files(photos)
        if files:
            out.append(BenchSource(PHOTOS, tuple(files), False))
    if not out:
        raise FaceAppError(f"no benchmark videos or photos under {data_dir} (expected {VIDEOS[0]}, ...); "
                           "give the folder with --data")
    return out


def gallery_people(data_dir: Path, per_person: int = PHOTOS_PER_PERSON,
                   dirs: Sequence[str] = GALLERY_DIRS) -> list[tuple[str, list[Path]]]:
    """(name, first photos) of the people enrolled for the label comparison."""
    people: dict[str, tuple[str, list[Path]]] = {}
    for d in dirs:
        root = data_dir / d
        if not root.is_dir():
            continue
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            name = sub.name.replace("_", " ")
            people.setdefault(name.lower(), (name, []))[1].extend(iter_image_files(sub))
    return [(n, ps[:per_person]) for n, ps in people.values() if ps]


# -- the baseline -----------------------------------------------------------------------------

class Baseline:
    """Plain insightface: FaceAnalysis with its defaults, and a nearest-template search."""

    def __init__(self, models_dir: Path, pack: str = "buffalo_sc") -> None:
        try:
            from insightface.app import FaceAnalysis
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelError(f"insightface is not installed: {exc}") from exc
        pack_dir = Path(models_dir) / pack
        if Path(models_dir).name == "models":
            # The layout FaceAnalysis expects: <root>/models/<pack>/*.onnx (found, never downloaded).
            self.fa = FaceAnalysis(name=pack, root=str(Path(models_dir).parent))
        else:
            self.fa = FaceAnalysis(name=str(pack_dir))
        self.fa.prepare(ctx_id=0)
        # insightface 2.1's alignment calls a deprecated scikit-image API on every face.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"insightface\.")
        self.emb = np.zeros((0, 512), np.float32)
        self.labels: list[str] = []

    def main_embedding(self, image: np.ndarray) -> np.ndarray | None:
        faces = self.fa.get(image)
        if not faces:
            return None
        f = max(faces, key=lambda f: float((f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])))
        return f.normed_embedding

    def enroll(self, name: str, embeddings: Sequence[np.ndarray]) -> None:
        self.emb = np.vstack([self.emb, *[np.asarray(e, np.float32)[None] for e in embeddings]])
        self.labels.extend([name] * len(embeddings))

    def process(self, image: np.ndarray, threshold: float) -> list[tuple[BBox, str]]:
        """Every face with its label (the nearest template's person, or unknown)."""
        out = []
        for f in self.fa.get(image):
            box = BBox(*(float(v) for v in f.bbox[:4]))
            if not len(self.labels):
                out.append((box, UNKNOWN))
                continue
            d = 1.0 - self.emb @ f.normed_embedding
            i = int(np.argmin(d))
            out.append((box, self.labels[i] if d[i] <= threshold else UNKNOWN))
        return out


def faceapp_labels(result) -> list[tuple[BBox, str]]:
    """Labels of a :class:`FrameResult`: the person when known; a face still voting shows its
    provisional answer (the nearest person if within the threshold the frame was judged with)."""
    out = []
    for f in result.faces:
        if f.known and f.candidate_name:
            out.append((f.bbox, f.candidate_name))
        elif f.decision == "pending" and f.candidate_name and f.distance <= f.threshold:
            out.append((f.bbox, f.candidate_name))
        else:
            out.append((f.bbox, UNKNOWN))
    return out


# -- results -----------------------------------------------------------------------------------

@dataclass
class _Tally:
    frames: int = 0
    baseline_ms: list[float] = field(default_factory=list)
    faceapp_ms: list[float] = field(default_factory=list)
    detect_ms: list[float] = field(default_factory=list)
    embedded: int = 0
    baseline_faces: int = 0
    faceapp_faces: int = 0
    paired: int = 0
    agree: int = 0
    baseline_known: int = 0
    agree_known: int = 0
    settled_agree: int = 0
    settled: int = 0

    @classmethod
    def merged(cls, tallies: Sequence[_Tally]) -> _Tally:
        out = cls()
        for t in tallies:
            for name, value in vars(t).items():
                setattr(out, name, getattr(out, name) + value)
        return out

    def add(self, base: list[tuple[BBox, str]], mine: list[tuple[BBox, str]], settled: list[bool]) -> None:
        self.baseline_faces += len(base)
        self.faceapp_faces += len(mine)
        for i, j in pair_by_iou([b for b, _ in base], [b for b, _ in mine]):
            label = base[i][1]
            same = j is not None and mine[j][1] == label
            self.paired += j is not None
            self.agree += same
            if label != UNKNOWN:
                self.baseline_known += 1
                self.agree_known += same
            if j is not None and settled[j]:
                self.settled += 1
                self.settled_agree += same


@dataclass(frozen=True)
class SourceResult:
    """Per-source numbers (milliseconds per frame, faces, agreement)."""

    name: str
    frames: int
    baseline_ms_p50: float
    faceapp_ms_p50: float
    speedup: float
    faceapp_detect_ms_p50: float
    embedded_per_frame: float
    baseline_faces: int
    faceapp_faces: int
    label_agreement: float
    label_agreement_known: float


@dataclass(frozen=True)
class MatchTiming:
    """One query against ``n`` stored embeddings (``people`` people), median milliseconds."""

    n: int
    people: int
    faceapp_ms: float
    l2_scan_ms: float
    python_loop_ms: float | None

    @property
    def speedup_vs_l2(self) -> float:
        return _speedup(self.l2_scan_ms, self.faceapp_ms)


@dataclass(frozen=True)
class BenchResult:
    """Everything ``faceapp bench`` measured."""

    pack: str
    threshold: float
    gallery_people: int
    gallery_templates: int
    frames: int
    baseline_ms_p50: float
    faceapp_ms_p50: float
    speedup: float
    video_speedup: float
    label_agreement: float
    label_agreement_known: float
    label_agreement_settled: float
    sources: tuple[SourceResult, ...]
    match: tuple[MatchTiming, ...]
    peak_rss_mb_pipeline: float
    peak_rss_mb: float
    cpu: str
    # 1-minute load average at the start and at the end: timings on a shared machine need it.
    load_average: tuple[float, float] = (math.nan, math.nan)

    def to_dict(self) -> dict:
        """The JSON object of ``faceapp bench --json``."""
        d = {k: v for k, v in asdict(self).items() if k not in ("sources", "match")}
        for k, v in list(d.items()):
            if isinstance(v, float):
                d[k] = _r(v)
        for m in self.match:
            d[f"match_ms_{_size_key(m.n)}"] = _r(m.faceapp_ms, 3)
        d["sources"] = [{k: (_r(v) if isinstance(v, float) else v) for k, v in asdict(s).items()}
                        for s in self.sources]
        d["match"] = [{"n": m.n, "people": m.people, "faceapp_ms": _r(m.faceapp_ms, 3),
                       "l2_scan_ms": _r(m.l2_scan_ms, 3),
                       "python_loop_ms": _r(m.python_loop_ms, 3) if m.python_loop_ms is not None else None,
                       "speedup_vs_l2": _r(m.speedup_vs_l2, 2)} for m in self.match]
        return d


def _size_key(n: int) -> str:
    return f"{n // 1_000_000}m" if n >= 1_000_000 and n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n % 1000 == 0 else str(n))


def _p50(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else math.nan


def _ratio(a: int, b: int) -> float:
    return a / b if b else math.nan


def _speedup(baseline_ms: float, faceapp_ms: float) -> float:
    return baseline_ms / faceapp_ms if faceapp_ms > 0 else math.nan


# -- running -----------------------------------------------------------------------------------

def run_bench(models_dir: Path | str, data_dir: Path | str, pack: str = "buffalo_sc",
              max_frames: int | None = None, match_sizes: Sequence[int] = MATCH_SIZES,
              progress: ProgressFn | None = None, threads: int = 2,
              gallery_dirs: Sequence[str] = GALLERY_DIRS, photos_per_person: int = PHOTOS_PER_PERSON) -> BenchResult:
    """Run the whole benchmark (see the module docstring). Nothing is written to the user's data:
    the faceapp side runs on a throw-away data folder. ``gallery_dirs`` (under ``data_dir``) hold
    the people enrolled on both sides, ``photos_per_person`` each."""
    models_dir, data_dir = Path(models_dir), Path(data_dir)
    load_start = os.getloadavg()[0]
    if pack not in ("buffalo_sc", "buffalo_s", "buffalo_m"):
        raise FaceAppError("the baseline is insightface's FaceAnalysis: bench an insightface pack (buffalo_sc)")
    require_pack(pack, models_dir)   # a clear ModelError (with the install command) before anything runs
    sources = default_sources(data_dir)
    people = gallery_people(data_dir, photos_per_person, gallery_dirs)
    engine = FaceEngine(EngineConfig(pack=pack, models_dir=models_dir, threads=threads)).prepare()
    baseline = Baseline(models_dir, pack)
    with tempfile.TemporaryDirectory(prefix="faceapp-bench-") as tmp:
        app = App(Path(tmp) / "home", engine=engine)
        try:
            n_people, n_templates = _enroll_both(app, baseline, people, progress)
            threshold = app.threshold
            tallies, per_source = _run_frames(app, baseline, sources, threshold, max_frames, progress)
        finally:
            app.close()
    rss_pipeline = peak_rss_mb()
    match = tuple(match_benchmark(match_sizes, threshold=threshold, progress=progress)) if match_sizes else ()
    total = _Tally.merged(tallies)
    video = _Tally.merged([t for t, src in zip(tallies, sources) if src.video])
    b50, f50 = _p50(total.baseline_ms), _p50(total.faceapp_ms)
    return BenchResult(
        pack=pack, threshold=threshold, gallery_people=n_people, gallery_templates=n_templates,
        frames=total.frames, baseline_ms_p50=b50, faceapp_ms_p50=f50, speedup=_speedup(b50, f50),
        video_speedup=_speedup(_p50(video.baseline_ms), _p50(video.faceapp_ms)),
        label_agreement=_ratio(total.agree, total.baseline_faces),
        label_agreement_known=_ratio(total.agree_known, total.baseline_known),
        label_agreement_settled=_ratio(total.settled_agree, total.settled),
        sources=tuple(per_source), match=match, peak_rss_mb_pipeline=rss_pipeline, peak_rss_mb=peak_rss_mb(),
        cpu=cpu_name(), load_average=(round(load_start, 2), round(os.getloadavg()[0], 2)),
    )


def _enroll_both(app: App, baseline: Baseline, people: list[tuple[str, list[Path]]],
                 progress: ProgressFn | None) -> tuple[int, int]:
    """Enroll each person in faceapp (quality-checked shots) and the baseline (same photos);
    returns (people, templates)."""
    total = sum(len(ps) for _, ps in people)
    done = 0
    n = n_people = 0
    for name, paths in people:
        shots, base = [], []
        for p in paths:
            done += 1
            if progress:
                progress(done, total, f"enrolling {p.name}")
            try:
                shot = enroll.check_file(app.engine, p)
            except FaceAppError:
                continue
            if not shot.ok:
                continue
            e = baseline.main_embedding(load_image(p))
            if e is None:
                continue
            shots.append(shot)
            base.append(e)
        if shots:
            enroll.save_person(app, name, shots, allow_duplicate=True)
            baseline.enroll(name, base)
            n += len(shots)
            n_people += 1
    return n_people, n


def _run_frames(app: App, baseline: Baseline, sources: list[BenchSource], threshold: float,
                max_frames: int | None, progress: ProgressFn | None) -> tuple[list[_Tally], list[SourceResult]]:
    from faceapp.service.pipeline import Pipeline

    pipeline = Pipeline(app, log_entries=False)
    pipeline.threshold = threshold
    # Warm-up: the first run of an ONNX session allocates; neither side is timed on it.
    first, _ = next(iter(sources[0].frames(1)))
    baseline.process(first.image, threshold)
    pipeline.process(first)
    tallies, results = [], []
    for src in sources:
        t = _Tally()
        for block in _blocks(src.frames(max_frames), BLOCK):
            # Baseline on the block, then faceapp on the same frames: onnxruntime's pool threads
            # keep spinning a moment after a run, so strictly alternating frames would slow
            # whichever side runs next; blocks keep that to the block edges while machine noise
            # still hits both sides within seconds of each other.
            base_labels, base_ms = [], []
            for frame, _ in block:
                t0 = time.perf_counter()
                base_labels.append(baseline.process(frame.image, threshold))
                base_ms.append((time.perf_counter() - t0) * 1e3)
            for (frame, new_sequence), base, b_ms in zip(block, base_labels, base_ms):
                if new_sequence:
                    pipeline.reset()
                t1 = time.perf_counter()
                res = pipeline.process(frame)
                t2 = time.perf_counter()
                t.frames += 1
                t.baseline_ms.append(b_ms)
                t.faceapp_ms.append((t2 - t1) * 1e3)
                t.detect_ms.append(res.detect_ms)
                t.embedded += res.embedded
                t.add(base, faceapp_labels(res), [f.decision != "pending" for f in res.faces])
            if progress:
                progress(t.frames, 0, f"{src.name}")
        b50, f50 = _p50(t.baseline_ms), _p50(t.faceapp_ms)
        results.append(SourceResult(
            name=src.name, frames=t.frames, baseline_ms_p50=b50, faceapp_ms_p50=f50,
            speedup=_speedup(b50, f50), faceapp_detect_ms_p50=_p50(t.detect_ms),
            embedded_per_frame=_ratio(t.embedded, t.frames), baseline_faces=t.baseline_faces,
            faceapp_faces=t.faceapp_faces, label_agreement=_ratio(t.agree, t.baseline_faces),
            label_agreement_known=_ratio(t.agree_known, t.baseline_known)))
        tallies.append(t)
    return tallies, results


def _blocks(items: Iterator, size: int) -> Iterator[list]:
    block: list = []
    for item in items:
        block.append(item)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


def cpu_name() -> str:
    """The CPU model and core count, for the record next to timings."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    import platform

    return f"{platform.processor() or platform.machine()} x{os.cpu_count()}"


# -- matching ------------------------------------------------------------------------------------

def synthetic_gallery(n: int, dim: int = 512, per_person: int = 5, seed: int = 0) -> Gallery:
    """A gallery of ``n`` random unit embeddings, ``per_person`` per person, built without the
    copies :meth:`Gallery.build` makes (1M x 512 float32 is 2 GB)."""
    rng = np.random.default_rng(seed)
    emb = np.empty((n, dim), np.float32)
    for s in range(0, n, 65536):
        block = rng.standard_normal((min(65536, n - s), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        emb[s:s + block.shape[0]] = block
    pids = np.arange(n, dtype=np.int64) // per_person
    starts = np.arange(0, n, per_person, dtype=np.int64)
    return Gallery(embeddings=emb, row_person=pids, person_ids=pids[starts], starts=starts,
                   names={}, template_ids=np.arange(n, dtype=np.int64))


def _l2_scan(gallery: Gallery, q: np.ndarray) -> int:
    # What one writes without thinking about it: Euclidean distance to every template,
    # in blocks only so that 1M rows do not need another 2 GB temporary.
    d = np.empty(gallery.size, np.float32)
    for s in range(0, gallery.size, 65536):
        d[s:s + 65536] = np.linalg.norm(gallery.embeddings[s:s + 65536] - q, axis=1)
    per_person = np.minimum.reduceat(d, gallery.starts)
    return int(np.argmin(per_person))


def _python_loop(gallery: Gallery, q: np.ndarray) -> int:
    ends = np.r_[gallery.starts[1:], gallery.size]
    best, best_i = math.inf, -1
    for i, (s, e) in enumerate(zip(gallery.starts, ends)):
        d = float(np.min(1.0 - gallery.embeddings[s:e] @ q))
        if d < best:
            best, best_i = d, i
    return best_i


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def match_benchmark(sizes: Sequence[int] = MATCH_SIZES, dim: int = 512, per_person: int = 5,
                    threshold: float = 0.7, progress: ProgressFn | None = None) -> list[MatchTiming]:
    """Median time of identifying one query (``Gallery.identify``) at each gallery size, with the
    two baselines measured on the same gallery and query."""
    out = []
    for k, n in enumerate(sizes, 1):
        if progress:
            progress(k, len(sizes), f"matching against {n} embeddings")
        # One size at a time in its own call, so each gallery (2 GB at 1M) is freed before the next.
        out.append(_time_match(n, dim, per_person, threshold))
    return out


def _time_match(n: int, dim: int, per_person: int, threshold: float) -> MatchTiming:
    gallery = synthetic_gallery(n, dim, per_person)
    q = gallery.embeddings[n // 2] + np.float32(0.3) * np.random.default_rng(1).standard_normal(dim, dtype=np.float32)
    q /= np.linalg.norm(q)
    repeats = 30 if n <= 100_000 else 7
    gallery.identify(q[None], threshold)   # warm the BLAS threads and page in the rows
    ours = _median_ms(lambda: gallery.identify(q[None], threshold), repeats)
    expected = gallery.identify(q[None], threshold)[0]
    l2 = _median_ms(lambda: _l2_scan(gallery, q), max(3, repeats // 3))
    best = expected.person_id if expected.known else expected.second_person_id
    if _l2_scan(gallery, q) != int(np.searchsorted(gallery.person_ids, best)):
        log.warning("bench: the L2 scan disagrees with the matcher at n=%d", n)
    loop = _median_ms(lambda: _python_loop(gallery, q), 3) if n <= 100_000 else None
    return MatchTiming(n, gallery.n_people, ours, l2, loop)
