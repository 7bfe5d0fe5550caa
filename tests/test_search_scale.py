"""Search at scale: the indexed search (int8 inverted file + exact float32 re-ranking) gives the
same best person as the exact float32 search on a real-embedding gallery, and the gallery is
kept current incrementally (enrolling one person appends, it does not reload or rebuild)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import HAMILTON, person_photos
from faceapp.capture.images import load_image
from faceapp.capture.sources import VideoFileSource
from faceapp.core.matcher import Gallery
from faceapp.core.search import IndexConfig, TemplateIndex
from faceapp.service import enroll
from faceapp.service import gallery as gallery_mod


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _near(base, cos, rng):
    noise = rng.standard_normal(base.shape).astype(np.float32)
    noise -= (noise * base).sum(1, keepdims=True) * base
    return _unit(cos * base + np.sqrt(1 - cos * cos) * _unit(noise))


@pytest.fixture(scope="module")
def real_faces(engine):
    """Real buffalo_sc embeddings: 10 LFW people x 10 photos, and faces of the Hamilton clip."""
    from faceapp.capture.images import iter_image_files
    from conftest import FACES

    people = []
    for sub in sorted(p for p in (FACES / "lfw_krasserm").iterdir() if p.is_dir()):
        embs = [f.embedding for f in (engine.analyze_photo(load_image(p))[:1] for p in iter_image_files(sub)) for f in f]
        people.append(np.array(embs, np.float32))
    video = []
    src = VideoFileSource(HAMILTON)
    src.open()
    try:
        for k in range(40):
            frame = src.read()
            if frame is None:
                break
            if k % 2 == 0:
                video += [f.embedding for f in engine.analyze(frame.image)]
    finally:
        src.close()
    return people, np.array(video, np.float32)


def _enrolled(people):
    """Each real person enrolled with 3 photos; the rest of their photos are queries."""
    emb, pids, queries = [], [], []
    for pid, e in enumerate(people, 1):
        emb.append(e[:3])
        pids += [pid] * 3
        queries.append(e[3:])
    return emb, pids, queries


def test_indexed_search_agrees_with_exact_search_on_real_embeddings(real_faces):
    people, video = real_faces
    rng = np.random.default_rng(0)
    emb, pids, queries = _enrolled(people)
    # Distractors: 4,000 people of 5 templates around look-alikes of the clip's faces and others.
    n_dis = 4000
    cos = np.where(rng.random((n_dis, 1)) < 0.5, 0.5, 0.3).astype(np.float32)
    centre = _near(video[rng.integers(0, len(video), n_dis)], cos, rng)
    emb.append(_near(np.repeat(centre, 5, axis=0), 0.8, rng))
    pids += list(100 + np.repeat(np.arange(n_dis), 5))
    queries.append(video)
    gallery = Gallery.build(pids, np.vstack(emb), {p: f"p{p}" for p in set(pids)})
    queries = np.vstack(queries)
    exact = gallery.person_distances(queries)
    index = TemplateIndex(512, IndexConfig())   # the defaults
    index.sync(gallery.template_ids, gallery.embeddings)
    indexed = Gallery(gallery.embeddings, gallery.row_person, gallery.person_ids, gallery.starts, gallery.names,
                      gallery.template_ids, index=index)
    approx = indexed.person_distances(queries)
    assert index.size == gallery.size and index._index.nlist > 8
    # Same best person for every query, and the same (exact) distance to them.
    differ = np.flatnonzero(approx.argmin(axis=1) != exact.argmin(axis=1))
    assert differ.size == 0, [(float(exact[i].min()), float(approx[i].min())) for i in differ]
    np.testing.assert_allclose(approx.min(axis=1), exact.min(axis=1), atol=1e-5)
    # The enrolled LFW people are still found as themselves under the default threshold.
    known = indexed.identify(queries[:sum(len(e) - 3 for e in people)], 0.7)
    truth = np.repeat(np.arange(1, len(people) + 1), [len(e) - 3 for e in people])
    assert np.mean([m.person_id == t for m, t in zip(known, truth)]) >= 0.9


def test_a_query_with_only_far_candidates_is_searched_again_wider(real_faces):
    """One probed cell misses people whose templates were filed elsewhere; a query whose best
    candidate is farther than ``wide_above`` is searched again in ``wide_nprobe`` cells (here all
    of them, so it must then agree with exact search)."""
    people, video = real_faces
    rng = np.random.default_rng(1)
    emb, pids, queries = _enrolled(people)
    centre = _near(video[rng.integers(0, len(video), 2000)], 0.4, rng)
    emb.append(_near(np.repeat(centre, 5, axis=0), 0.8, rng))
    pids += list(100 + np.repeat(np.arange(2000), 5))
    gallery = Gallery.build(pids, np.vstack(emb), {p: f"p{p}" for p in set(pids)})
    queries = np.vstack(queries + [video])
    exact = gallery.person_distances(queries).argmin(axis=1)

    def answers(config):
        index = TemplateIndex(512, config)
        index.sync(gallery.template_ids, gallery.embeddings)
        g = Gallery(gallery.embeddings, gallery.row_person, gallery.person_ids, gallery.starts, gallery.names,
                    gallery.template_ids, index=index)
        d = g.person_distances(queries)
        return d.argmin(axis=1), d.min(axis=1)

    narrow = IndexConfig(cells=64, nprobe=1, spill=0.0, wide_above=2.0)      # never looks wider
    best, _ = answers(narrow)
    missed = best != exact
    assert missed.any()      # else this gallery could not show the second pass at work
    wide = IndexConfig(cells=64, nprobe=1, spill=0.0, wide_nprobe=64, rerank=4096)
    best, dist = answers(wide)
    far = dist > wide.wide_above
    assert far.any() and (best[far] == exact[far]).all()
    assert (best != exact).sum() < missed.sum()


def test_enrolling_one_person_appends_to_the_indexed_gallery(app, monkeypatch):
    # A tiny "large" gallery: index from 2 templates on, so the real code paths run.
    loader = gallery_mod.GalleryLoader(app.store, index_from=2, index_config=IndexConfig(nprobe=4, rerank=16))
    monkeypatch.setitem(app._gallery_loaders, False, loader)
    enroll.enroll_files(app, "Barack Obama", person_photos("face_recognition_examples", "Barack_Obama")[:2])
    read = []
    plain_read = app.store.gallery
    monkeypatch.setattr(app.store, "gallery", lambda *a, **k: read.append(plain_read(*a, **k)) or read[-1])
    first = app.gallery()
    # The rows the store read (into a buffer with room to spare) are the gallery's: not copied.
    assert np.shares_memory(read[-1].embeddings, first.embeddings)
    assert loader.last_load["kind"] == "full" and first.index is not None and first.index.size == 2

    biden = person_photos("face_recognition_examples", "Joe_Biden")
    enroll.enroll_files(app, "Joe Biden", biden[:1])
    second = app.gallery()
    assert loader.last_load["kind"] == "append" and loader.last_load["added"] == 1
    assert np.shares_memory(first.embeddings, second.embeddings)       # the old rows were not copied
    assert second.index is first.index and second.index.size == 3      # filed, not rebuilt
    assert first.size == 2                                              # the old snapshot is unchanged
    probe = app.engine.analyze_photo(load_image(biden[1]))[0].embedding[None]
    match = second.identify(probe, app.threshold)[0]
    assert match.name == "Joe Biden"

    # Removing someone re-reads the rows; the index drops exactly their templates.
    biden_id = app.store.find_person("Joe Biden").id
    enroll.delete_person(app, biden_id)
    third = app.gallery()
    assert loader.last_load["kind"] == "full" and third.index is first.index and third.index.size == 2
    assert biden_id not in set(third.person_ids.tolist())
    assert third.identify(probe, app.threshold)[0].name is None
