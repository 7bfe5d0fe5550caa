"""Accuracy evaluation on folders of labelled photos (``faceapp evaluate``).

Each folder given holds one sub-folder per person. Identities are merged across folders by
normalised name (the same celebrity in two collections is one person), then split
deterministically into *known* people, whose first K photos are enrolled into an in-memory
gallery (the user's database is never touched) and whose other photos are mated probes, and
*unknown* people, all of whose photos are non-mated probes. With ``folds=2`` (the default) the
split is also run the other way round, so every identity with enough photos is known once and
unknown once, and the scores of both runs are pooled: twice the searches from the same photos.

Every photo is embedded once per model; aggregations are compared on the cached embeddings.
"""

from __future__ import annotations

import logging
import math
import time
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from faceapp.capture.images import iter_image_files, load_image, person_folders
from faceapp.core import clustering, metrics
from faceapp.core.errors import FaceAppError
from faceapp.core.matcher import Aggregate, Gallery
from faceapp.core.quality import assess
from faceapp.engine.catalog import get_pack
from faceapp.engine.engine import EngineConfig, FaceEngine

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, str], None]


def normalise_name(name: str) -> str:
    """Folder name -> identity key: accents, case, spaces, '_' and '-' do not matter."""
    s = unicodedata.normalize("NFKD", name)
    return "".join(c for c in s.lower() if c.isalnum())


@dataclass(frozen=True)
class Identity:
    """One person across all folders: photos in folder order, then file name."""

    key: str
    name: str
    photos: tuple[Path, ...]


def collect_identities(dirs: Sequence[Path | str]) -> list[Identity]:
    """Identities of the given folders (one sub-folder per person), merged by normalised name."""
    if not dirs:
        raise FaceAppError("give at least one folder of people")
    merged: dict[str, tuple[str, list[Path]]] = {}
    for d in dirs:
        for sub in person_folders(d):
            photos = iter_image_files(sub)
            if not photos:
                continue
            key = normalise_name(sub.name)
            name, lst = merged.setdefault(key, (sub.name.replace("_", " "), []))
            lst.extend(photos)
    return sorted((Identity(k, n, tuple(p)) for k, (n, p) in merged.items()), key=lambda i: i.key)


def split_identities(identities: Sequence[Identity], enroll: int, fold: int = 0) -> tuple[list[Identity], list[Identity]]:
    """(known, unknown) for one fold. Identities with more than ``enroll`` photos are ordered by a
    hash of their key (mixing the collections) and alternate known/unknown; ``fold`` 1 swaps them.
    The rest are always unknown. Depends only on names and photo counts, so every model sees the
    same split."""
    eligible = sorted((i for i in identities if len(i.photos) > enroll),
                      key=lambda i: (zlib.crc32(i.key.encode()), i.key))
    known_keys = {i.key for pos, i in enumerate(eligible) if pos % 2 == fold % 2}
    known = [i for i in identities if i.key in known_keys]
    unknown = [i for i in identities if i.key not in known_keys]
    return known, unknown


@dataclass(frozen=True, eq=False)
class PhotoFace:
    """The main (largest) face of one photo, or why there is none."""

    path: Path
    embedding: np.ndarray | None
    quality_ok: bool = False
    error: str = ""

    @property
    def found(self) -> bool:
        return self.embedding is not None


def embed_photos(engine: FaceEngine, paths: Iterable[Path], progress: ProgressFn | None = None,
                 cache: dict[Path, PhotoFace] | None = None) -> dict[Path, PhotoFace]:
    """Embed the largest face of every photo (photos already in ``cache`` are not redone)."""
    todo = list(dict.fromkeys(paths))
    out: dict[Path, PhotoFace] = {} if cache is None else cache
    for n, path in enumerate(todo, 1):
        if path not in out:
            out[path] = _embed_one(engine, path)
        if progress:
            progress(n, len(todo), str(path))
    return out


def _embed_one(engine: FaceEngine, path: Path) -> PhotoFace:
    try:
        faces = engine.analyze_photo(load_image(path))
    except FaceAppError as exc:
        log.warning("%s", exc)
        return PhotoFace(path, None, error=str(exc))
    if not faces:
        return PhotoFace(path, None, error="no face found")
    face = max(faces, key=lambda f: f.bbox.area)
    ok = assess(face.detection, face.crop).ok
    return PhotoFace(path, face.embedding, ok)


def embed_strangers(engine: FaceEngine, sources: Sequence[Path], progress: ProgressFn | None = None) -> np.ndarray:
    """Embeddings of every face in videos (every frame), image files and folders of images."""
    from faceapp.capture.images import IMAGE_SUFFIXES
    from faceapp.capture.sources import VideoFileSource

    rows: list[np.ndarray] = []
    done = 0
    for src in sources:
        if src.is_dir():
            images: Iterable[np.ndarray] = (load_image(p) for p in iter_image_files(src))
        elif src.suffix.lower() in IMAGE_SUFFIXES:
            images = [load_image(src)]
        else:
            images = _video_frames(VideoFileSource(src))
        for image in images:
            rows.extend(f.embedding for f in engine.analyze(image))
            done += 1
            if progress:
                progress(done, 0, f"strangers: {src.name}")
    dim = engine.embedding_dim
    return np.vstack(rows) if rows else np.zeros((0, dim), np.float32)


def _video_frames(source) -> Iterable[np.ndarray]:
    source.open()
    try:
        while (frame := source.read()) is not None:
            yield frame.image
    finally:
        source.close()


@dataclass(frozen=True)
class EvalConfig:
    """How to evaluate: photos enrolled per known person, aggregation, number of folds (1 or 2)."""

    enroll: int = 3
    aggregate: str = "min"
    folds: int = 2
    # Enroll the first K photos that pass the enrollment quality gate (falling back to the first
    # photos with a face when too few pass). Only the gate is the app's: the app's photo check
    # (service.enroll.check_image) also refuses photos with several similar-sized faces and
    # re-detects low-scoring faces on a padded picture, which the largest face taken here skips,
    # so the enrolled set can differ a little from what the app would enroll.
    quality_gate: bool = True


@dataclass(frozen=True, eq=False)
class EvalResult:
    """Numbers of one (model, aggregation) evaluation; ``scores`` keeps the raw searches."""

    pack: str
    model_id: str
    aggregate: str
    enroll: int
    folds: int
    n_identities: int
    n_known: int
    n_photos: int
    n_templates: int
    failures_to_detect: int
    scores: metrics.SearchScores
    default_threshold: float
    misidentified_at_default: float
    extra: dict = field(default_factory=dict)

    @property
    def n_probes(self) -> int:
        return self.scores.n_mated + self.scores.n_nonmated

    @property
    def rank1(self) -> float:
        return metrics.rank1_accuracy(self.scores)

    def fnir_at_fpir(self, fpir: float) -> tuple[float, float]:
        return metrics.fnir_at_fpir(self.scores, fpir)

    @property
    def eer(self) -> tuple[float, float]:
        return metrics.equal_error_rate(self.scores)

    def to_dict(self) -> dict:
        """The JSON object of ``faceapp evaluate --json`` (rates 0..1, distances on the user scale)."""
        f1, t1 = self.fnir_at_fpir(0.01)
        f5, t5 = self.fnir_at_fpir(0.05)
        eer, teer = self.eer
        s = self.scores
        return {
            "model": self.pack,
            "model_id": self.model_id,
            "aggregate": self.aggregate,
            "enroll": self.enroll,
            "folds": self.folds,
            "n_identities": self.n_identities,
            "n_known": self.n_known,
            "n_photos": self.n_photos,
            "n_templates": self.n_templates,
            "n_probes": self.n_probes,
            "n_mated": s.n_mated,
            "n_nonmated": s.n_nonmated,
            "failures_to_detect": self.failures_to_detect,
            "rank1": _r(self.rank1),
            "fnir_at_fpir_1pct": _r(f1),
            "threshold_at_fpir_1pct": _r(t1),
            "fnir_at_fpir_5pct": _r(f5),
            "threshold_at_fpir_5pct": _r(t5),
            "eer": _r(eer),
            "eer_threshold": _r(teer),
            "default_threshold": _r(self.default_threshold),
            "fnir_at_default": _r(metrics.fnir_at(s, self.default_threshold)),
            "fpir_at_default": _r(metrics.fpir_at(s, self.default_threshold)),
            "misidentified_at_default": _r(self.misidentified_at_default),
            "genuine_max": _r(float(s.mated_distance[s.mated_rank1].max()) if s.mated_rank1.any() else math.nan),
            "impostor_min": _r(float(s.nonmated_distance.min()) if s.n_nonmated else math.nan),
            **self.extra,
        }


def _r(x: float | None, nd: int = 4) -> float | None:
    """Rounded for JSON; None, nan and inf become null (JSON has no nan). Also used by service.bench."""
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def evaluate_embedded(identities: Sequence[Identity], faces: dict[Path, PhotoFace], config: EvalConfig,
                      default_threshold: float, pack: str = "", model_id: str = "",
                      strangers: np.ndarray | None = None) -> EvalResult:
    """Run the split(s) on already embedded photos and pool the searches. ``strangers``: embeddings of
    faces of nobody in the folders, searched as extra non-mated probes in every fold."""
    if config.enroll < 1:
        raise FaceAppError("--enroll must be at least 1")
    if config.folds not in (1, 2):
        raise FaceAppError("folds must be 1 or 2")
    agg = Aggregate.parse(config.aggregate)
    parts: list[metrics.SearchScores] = []
    wrong = 0
    known_keys: set[str] = set()
    n_templates = 0
    for fold in range(config.folds):
        known, unknown = split_identities(identities, config.enroll, fold)
        gallery, probes, true_pid = _fold_searches(known, unknown, faces, config)
        if strangers is not None and len(strangers):
            probes += list(strangers)
            true_pid += [-1] * len(strangers)
        known_keys.update(i.key for i in known)
        n_templates += gallery.size
        if not probes:
            continue
        q = np.vstack(probes)
        if gallery.n_people == 0:
            parts.append(metrics.search_scores(np.zeros((len(probes), 0)), np.full(len(probes), -1)))
            continue
        pd = gallery.person_distances(q, agg)
        col_of = {int(p): c for c, p in enumerate(gallery.person_ids)}
        # A known person whose photos all failed to give a face is not enrolled: their probes are non-mated.
        true_col = np.array([col_of.get(p, -1) for p in true_pid], np.int64)
        parts.append(metrics.search_scores(pd, true_col))
        best = pd.argmin(axis=1)
        mated = true_col >= 0
        wrong += int(np.sum(mated & (best != true_col) & (pd[np.arange(len(best)), best] <= default_threshold)))
    scores = metrics.SearchScores.concat(parts)
    photos = {p for i in identities for p in i.photos}
    return EvalResult(
        pack=pack, model_id=model_id, aggregate=agg.value, enroll=config.enroll, folds=config.folds,
        n_identities=len(identities), n_known=len(known_keys), n_photos=len(photos), n_templates=n_templates,
        failures_to_detect=sum(1 for p in photos if not faces[p].found),
        scores=scores, default_threshold=float(default_threshold),
        misidentified_at_default=wrong / scores.n_mated if scores.n_mated else math.nan,
        extra={"n_stranger_faces": 0 if strangers is None else len(strangers),
               **_pair_stats(identities, faces, default_threshold)},
    )


def _labelled_faces(identities: Sequence[Identity],
                    faces: dict[Path, PhotoFace]) -> tuple[list[np.ndarray], list[int]]:
    """The embedding of every photo with a face, and the index of its identity."""
    rows, labels = [], []
    for n, ident in enumerate(identities):
        for p in ident.photos:
            if faces[p].found:
                rows.append(faces[p].embedding)
                labels.append(n)
    return rows, labels


def _pair_stats(identities: Sequence[Identity], faces: dict[Path, PhotoFace], threshold: float) -> dict:
    """1:1 figures over every pair of photos: what one comparison risks, whatever the gallery size."""
    rows, labels = _labelled_faces(identities, faces)
    if len(rows) < 2:
        return {}
    pairs = metrics.gallery_pair_distances(np.vstack(rows), np.array(labels), max_rows=5000)
    frr, far = metrics.accept_rates(pairs.genuine, pairs.impostor, threshold)
    return {"pairs_genuine": int(pairs.genuine.size), "pairs_impostor": int(pairs.impostor.size),
            "pair_frr_at_default": _r(frr, 5), "pair_far_at_default": _r(far, 6),
            "pair_threshold_at_far_1e-4": _r(metrics.threshold_at_rate(pairs.impostor, 1e-4))}


def _fold_searches(known: Sequence[Identity], unknown: Sequence[Identity], faces: dict[Path, PhotoFace],
                   config: EvalConfig) -> tuple[Gallery, list[np.ndarray], list[int]]:
    pids: list[int] = []
    rows: list[np.ndarray] = []
    names: dict[int, str] = {}
    probes: list[np.ndarray] = []
    true_pid: list[int] = []
    for pid, ident in enumerate(known):
        usable = [faces[p] for p in ident.photos if faces[p].found]
        chosen = _enrollment_choice(usable, config.enroll, config.quality_gate)
        for f in chosen:
            pids.append(pid)
            rows.append(f.embedding)
        names[pid] = ident.name
        chosen_paths = {f.path for f in chosen}
        for f in usable:
            if f.path not in chosen_paths:
                probes.append(f.embedding)
                true_pid.append(pid)
    for ident in unknown:
        for p in ident.photos:
            if faces[p].found:
                probes.append(faces[p].embedding)
                true_pid.append(-1)
    dim = probes[0].size if probes else (rows[0].size if rows else 512)
    emb = np.vstack(rows) if rows else np.zeros((0, dim), np.float32)
    return Gallery.build(pids, emb, names), probes, true_pid


def _enrollment_choice(usable: list[PhotoFace], k: int, quality_gate: bool) -> list[PhotoFace]:
    if not quality_gate:
        return usable[:k]
    good = [f for f in usable if f.quality_ok][:k]
    if len(good) < k:
        chosen = set(id(f) for f in good)
        good += [f for f in usable if id(f) not in chosen][:k - len(good)]
    # Keep photo order so "first K" stays meaningful.
    order = {id(f): i for i, f in enumerate(usable)}
    return sorted(good, key=lambda f: order[id(f)])


class Evaluator:
    """Evaluates folders of people with several models and aggregations, embedding each
    photo once per model."""

    def __init__(self, dirs: Sequence[Path | str], models_dir: Path | str, threads: int = 2,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",),
                 engines: Sequence[FaceEngine] = (), strangers: Sequence[Path | str] = ()) -> None:
        self.identities = collect_identities(dirs)
        self.stranger_sources = [Path(p) for p in strangers]
        for p in self.stranger_sources:
            if not p.exists():
                raise FaceAppError(f"stranger source not found: {p}")
        self.models_dir = Path(models_dir)
        self.threads = threads
        self.providers = providers
        # Already loaded engines to reuse (by pack name) instead of loading the models again.
        self._engines = {e.pack.name: e for e in engines}
        self._faces: dict[str, dict[Path, PhotoFace]] = {}
        self._strangers: dict[str, np.ndarray] = {}

    @property
    def photos(self) -> list[Path]:
        return [p for i in self.identities for p in i.photos]

    def faces(self, pack: str, progress: ProgressFn | None = None) -> dict[Path, PhotoFace]:
        """Embeddings of every photo with ``pack`` (computed on first use, then cached)."""
        if pack not in self._faces:
            engine = self._engines.get(pack) or FaceEngine(EngineConfig(
                pack=pack, models_dir=self.models_dir, threads=self.threads, providers=self.providers))
            self._faces[pack] = embed_photos(engine.prepare(), self.photos, progress)
            if self.stranger_sources:
                self._strangers[pack] = embed_strangers(engine, self.stranger_sources, progress)
        return self._faces[pack]

    def evaluate(self, pack: str, config: EvalConfig, threshold: float,
                 progress: ProgressFn | None = None) -> EvalResult:
        """One (model, aggregation) result at ``threshold`` for the FNIR/FPIR-at-default numbers."""
        faces = self.faces(pack, progress)
        return evaluate_embedded(self.identities, faces, config, threshold, pack=pack,
                                 model_id=get_pack(pack).recognizer_id, strangers=self._strangers.get(pack))


# -- clustering --------------------------------------------------------------------------------
CLUSTER_METHOD = "components"   # what faceapp uses for visitors (service.visitors)


def cluster_quality(identities: Sequence[Identity], faces: dict[Path, PhotoFace], threshold: float,
                    methods: Sequence[str] = clustering.METHODS, seed: int = 0) -> dict:
    """Every photo with a face as an unknown event, grouped by each method at ``threshold``:
    B-cubed precision/recall/F1 against the folders' identities. Events arrive in a fixed
    shuffled order (people interleave, as at a door); only the incremental method depends on it.
    The top-level numbers are those of :data:`CLUSTER_METHOD`; ``cluster_comparison`` has all."""
    rows, labels = _labelled_faces(identities, faces)
    if not rows:
        raise FaceAppError("no face found in any photo: nothing to cluster")
    order = np.random.default_rng(seed).permutation(len(rows))
    emb, truth = np.vstack(rows)[order], np.asarray(labels)[order]
    comparison = []
    for method in methods:
        t0 = time.perf_counter()
        pred = clustering.cluster(emb, threshold, method)
        seconds = time.perf_counter() - t0
        precision, recall, f = clustering.bcubed(truth, pred)
        comparison.append({"method": method, "bcubed_precision": _r(precision), "bcubed_recall": _r(recall),
                           "bcubed_f": _r(f), "n_clusters": int(np.unique(pred).size),
                           "seconds": _r(seconds, 4)})
    chosen = next((c for c in comparison if c["method"] == CLUSTER_METHOD), comparison[0])
    return {"cluster_method": chosen["method"], "cluster_threshold": _r(threshold),
            "bcubed_precision": chosen["bcubed_precision"], "bcubed_recall": chosen["bcubed_recall"],
            "bcubed_f": chosen["bcubed_f"], "n_clusters": chosen["n_clusters"],
            "n_identities": int(np.unique(truth).size), "n_events": len(rows), "cluster_comparison": comparison}


def format_cluster(d: dict) -> str:
    """Human-readable clustering comparison."""
    lines = [f"clustering {d['n_events']} photos of {d['n_identities']} people as unknown events at threshold "
             f"{_num(d['cluster_threshold'])} (B-cubed):"]
    for c in d["cluster_comparison"]:
        mark = "*" if c["method"] == d["cluster_method"] else " "
        lines.append(f" {mark} {c['method']:<20} precision {_num(c['bcubed_precision'])}  recall "
                     f"{_num(c['bcubed_recall'])}  F {_num(c['bcubed_f'])}  {c['n_clusters']} groups")
    return "\n".join(lines)


# -- presentation ---------------------------------------------------------------------------

def _pct(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    # Rare 1:1 false accepts (1 in 30,000) must not print as 0.0%.
    return f"{100 * x:.2g}%" if 0 < x < 0.001 else f"{100 * x:.1f}%"


def _num(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3f}"


def format_report(result: EvalResult) -> str:
    """Human-readable summary of one result."""
    d = result.to_dict()
    lines = [
        f"model {result.pack} ({result.model_id}), aggregation {result.aggregate}, "
        f"{result.enroll} enrolled photo(s) per known person, {result.folds} fold(s)",
        f"  identities: {d['n_identities']} ({d['n_known']} known in some fold), photos: {d['n_photos']}, "
        f"no face found: {d['failures_to_detect']}",
        f"  searches: {d['n_probes']} ({d['n_mated']} of enrolled people, {d['n_nonmated']} of strangers"
        + (f", {d['n_stranger_faces']} faces from --strangers searched in each fold" if d.get("n_stranger_faces") else "")
        + ")",
        f"  rank-1 (closed set):        {_pct(d['rank1'])}",
        f"  FNIR at FPIR 1%:            {_pct(d['fnir_at_fpir_1pct'])}  (threshold {_num(d['threshold_at_fpir_1pct'])})",
        f"  FNIR at FPIR 5%:            {_pct(d['fnir_at_fpir_5pct'])}  (threshold {_num(d['threshold_at_fpir_5pct'])})",
        f"  EER:                        {_pct(d['eer'])}  (threshold {_num(d['eer_threshold'])})",
        f"  at threshold {_num(d['default_threshold'])}:          FNIR {_pct(d['fnir_at_default'])}, "
        f"FPIR {_pct(d['fpir_at_default'])}, wrong person {_pct(d['misidentified_at_default'])}",
        f"  same person up to {_num(d['genuine_max'])}, strangers from {_num(d['impostor_min'])}",
    ]
    if d.get("pairs_impostor"):
        lines.append(f"  photo pairs at threshold {_num(d['default_threshold'])}: {_pct(d['pair_far_at_default'])} of "
                     f"{d['pairs_impostor']} different-person pairs accepted, {_pct(d['pair_frr_at_default'])} of "
                     f"{d['pairs_genuine']} same-person pairs rejected; 1 in 10,000 accepted at "
                     f"{_num(d['pair_threshold_at_far_1e-4'])}")
    n_non = d["n_nonmated"]
    if n_non < metrics.min_samples_for_rate(0.01):
        lines.append(f"  note: FPIR 1% rests on {n_non} stranger searches "
                     f"(about {metrics.min_samples_for_rate(0.01)} are needed for a firm estimate)")
    return "\n".join(lines)


TABLE_HEADER = ("| model | aggregation | rank-1 | FNIR @ FPIR 1% | threshold @ FPIR 1% | FNIR @ FPIR 5% | EER "
                "| FNIR / FPIR @ default (threshold) | no face |\n|---|---|---|---|---|---|---|---|---|")


def format_table_row(result: EvalResult) -> str:
    d = result.to_dict()
    return (f"| {result.pack} | {result.aggregate} | {_pct(d['rank1'])} | {_pct(d['fnir_at_fpir_1pct'])} "
            f"| {_num(d['threshold_at_fpir_1pct'])} | {_pct(d['fnir_at_fpir_5pct'])} | {_pct(d['eer'])} "
            f"| {_pct(d['fnir_at_default'])} / {_pct(d['fpir_at_default'])} ({_num(d['default_threshold'])}) "
            f"| {d['failures_to_detect']} |")


def save_plot(result: EvalResult, path: Path | str) -> Path:
    """Genuine vs stranger distance histograms with the thresholds, and the DET curve, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise FaceAppError("--plot needs matplotlib: pip install 'faceapp[plot]'") from None
    s = result.scores
    out = Path(path)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    try:
        bins = np.linspace(0.0, 1.4, 57)
        gen = s.mated_distance[np.isfinite(s.mated_distance)]
        imp = s.nonmated_distance[np.isfinite(s.nonmated_distance)]
        # Densities: strangers usually outnumber the enrolled people's searches many times.
        ax1.hist(gen, bins=bins, alpha=0.6, color="tab:green", density=True, label=f"same person ({gen.size})")
        ax1.hist(imp, bins=bins, alpha=0.6, color="tab:red", density=True,
                 label=f"stranger, nearest person ({imp.size})")
        _, t1 = result.fnir_at_fpir(0.01)
        ax1.axvline(result.default_threshold, color="black", label=f"threshold {result.default_threshold:.2f}")
        if math.isfinite(t1):
            ax1.axvline(t1, color="black", linestyle="--", label=f"FPIR 1% at {t1:.2f}")
        ax1.set_xlabel("distance (1 - cosine similarity)")
        ax1.set_ylabel("density of searches")
        ax1.set_title(f"{result.pack} / {result.aggregate}")
        ax1.legend(fontsize=8)
        c = metrics.error_curve(s)
        floor_x = 0.5 / max(1, s.n_nonmated)
        floor_y = 0.5 / max(1, s.n_mated)
        ax2.step(np.maximum(c.fpir, floor_x), np.maximum(c.fnir, floor_y), where="post")
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        ax2.set_xlabel("FPIR (stranger accepted as someone)")
        ax2.set_ylabel("FNIR (enrolled person missed)")
        ax2.set_title("DET curve")
        ax2.grid(True, which="both", alpha=0.3)
        fd = metrics.fnir_at(s, result.default_threshold)
        fp = metrics.fpir_at(s, result.default_threshold)
        if math.isfinite(fd) and math.isfinite(fp):
            ax2.plot([max(fp, floor_x)], [max(fd, floor_y)], "ko", label="default threshold")
            ax2.legend(fontsize=8)
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100)
    finally:
        plt.close(fig)
    return out
