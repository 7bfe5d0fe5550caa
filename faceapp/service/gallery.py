"""Loading the gallery from the store, and keeping it current without reloading everything.

The first load reads every template of the active model (1M templates: see README "Speed").
After a change the next load is incremental whenever it can be:

* templates of people newer than everyone in the gallery (the usual case: a person enrolled,
  a visitor enrolled, a folder imported) are appended into spare room after the existing rows
  (the rows are grouped by person id and new people get higher ids), so the old rows are neither
  re-read nor copied; the room doubles when full, so appends cost O(1) amortised;
* anything else (a photo added to an existing person, a removal, a deactivation, a model
  recompute) re-reads the rows, but the search index is only told the difference.

Galleries from :data:`faceapp.core.search.INDEX_FROM` templates search through a
:class:`~faceapp.core.search.TemplateIndex` (exact float32 below that size).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np

from faceapp.core.matcher import Gallery
from faceapp.core.scale import l2_normalize
from faceapp.core.search import INDEX_FROM, IndexConfig, TemplateIndex
from faceapp.store.blobs import embeddings_from_blobs
from faceapp.store.db import Store

log = logging.getLogger(__name__)

SPARE = 0.25   # room for a quarter more templates after a full load, before the first copy


class GalleryLoader:
    """Builds :class:`Gallery` snapshots of one model's templates for one store."""

    def __init__(self, store: Store, index_from: int = INDEX_FROM, index_config: IndexConfig | None = None,
                 active_only: bool = True) -> None:
        self.store = store
        self.active_only = active_only
        self.index_from = index_from
        self.index_config = index_config
        self._index: TemplateIndex | None = None
        self._index_model: str | None = None
        self._model: str | None = None
        self._max_tid = 0
        self._tail: tuple | None = None
        self._room: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None   # (emb, person, tid) buffers
        self.last_load: dict = {}

    def load(self, model_id: str, dim: int, previous: Gallery | None = None) -> Gallery:
        """The current gallery; ``previous`` (a snapshot from this loader) allows an append."""
        t0 = time.perf_counter()
        if previous is not None and self._model == model_id:
            appended = self._append(model_id, previous)
            if appended is not None:
                self.last_load = {"kind": "append", "added": appended.size - previous.size,
                                  "seconds": time.perf_counter() - t0}
                return appended
        gallery = self.store.gallery(model_id, active_only=self.active_only, dim=dim, spare=SPARE)
        self._model = model_id
        self._max_tid, self._tail = self._newest_template()
        self._room = None
        gallery = self._into_room(gallery)
        read = time.perf_counter() - t0
        gallery = self._with_index(model_id, gallery, full=True)
        self.last_load = {"kind": "full", "templates": gallery.size, "read_seconds": read,
                          "seconds": time.perf_counter() - t0}
        log.info("gallery loaded: %d templates of %d people in %.2f s (read %.2f s)", gallery.size,
                 gallery.n_people, self.last_load["seconds"], read)
        return gallery

    # -- incremental ------------------------------------------------------------------------
    def _append(self, model_id: str, previous: Gallery) -> Gallery | None:
        """``previous`` plus the templates added since, when they all belong to new people."""
        revision = self.store.revision()     # read first: a change made meanwhile shows as newer
        active = " AND p.active = 1" if self.active_only else ""
        row = self.store.query(
            "SELECT COUNT(*) AS n FROM templates t JOIN people p ON p.id = t.person_id "
            "WHERE t.model_id = ?" + active, (model_id,))[0]
        rows = self.store.query(
            "SELECT t.id, t.person_id, t.embedding, p.name, p.active FROM templates t "
            "JOIN people p ON p.id = t.person_id WHERE t.model_id = ? AND t.id > ?" + active +
            " ORDER BY t.person_id, t.id", (model_id, self._max_tid))
        # SQLite gives a deleted newest row's id to the next insert: if the newest template is not
        # the one seen last time, ids were reused and "id > last" no longer means "new".
        if self._tail is not None:
            same = self.store.query("SELECT id, person_id, model_id, embedding FROM templates WHERE id = ?",
                                    (self._max_tid,))
            if not same or _row_key(same[0]) != self._tail:
                return None
        if int(row["n"]) != previous.size + len(rows):
            return None          # something was removed, deactivated, replaced or is unusable
        last_person = int(previous.person_ids[-1]) if previous.n_people else -1
        if any(int(r["person_id"]) <= last_person for r in rows):
            return None          # a photo for someone already in the gallery: rows must be regrouped
        people = self.store.query_rows("SELECT id, name, active FROM people")
        names = {pid: name for pid, name, act in people if act or not self.active_only}
        if any(p not in names for p in previous.person_ids.tolist()):
            return None          # someone was deactivated
        inactive = frozenset(pid for pid, _, act in people if not act) if not self.active_only else frozenset()
        emb = None
        if rows:
            dim = previous.embeddings.shape[1] if previous.size else None
            emb, good, _ = embeddings_from_blobs([r["embedding"] for r in rows], dim)
            if not good.all():
                return None      # the full load leaves the damaged one out, with a warning
        keep = set(previous.person_ids.tolist()) | {int(r["person_id"]) for r in rows}
        names = {p: n for p, n in names.items() if p in keep}
        inactive = frozenset(p for p in inactive if p in keep)
        if emb is None:
            return replace(previous, names=names, inactive=inactive, revision=revision)
        k = len(rows)
        emb = l2_normalize(emb)
        pids = np.fromiter((r["person_id"] for r in rows), np.int64, k)
        tids = np.fromiter((r["id"] for r in rows), np.int64, k)
        n = previous.size
        emb_buf, pid_buf, tid_buf = self._room_for(previous, n + k)
        emb_buf[n:n + k], pid_buf[n:n + k], tid_buf[n:n + k] = emb, pids, tids
        first = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]])
        gallery = Gallery(embeddings=emb_buf[:n + k], row_person=pid_buf[:n + k],
                          person_ids=np.r_[previous.person_ids, pids[first]],
                          starts=np.r_[previous.starts, n + first].astype(np.int64),
                          names=names, template_ids=tid_buf[:n + k],
                          neg_embeddings=previous.neg_embeddings, neg_person=previous.neg_person,
                          revision=revision, inactive=inactive)
        self._max_tid, self._tail = self._newest_template()
        if gallery.size >= self.index_from:
            if self._index is not None and self._index_model == model_id and self._index.trained:
                self._index.add(tids, emb)
                gallery = _with(gallery, self._index)
            else:
                gallery = self._with_index(model_id, gallery, full=True)
        return gallery

    def _newest_template(self) -> tuple[int, tuple | None]:
        """(highest template id of any model, what that row holds)."""
        rows = self.store.query("SELECT id, person_id, model_id, embedding FROM templates ORDER BY id DESC LIMIT 1")
        if not rows:
            return 0, None
        return int(rows[0]["id"]), _row_key(rows[0])

    def _room_for(self, previous: Gallery, needed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Buffers whose first rows are ``previous``'s, with room for ``needed`` rows."""
        room = self._room
        if room is not None and room[0].shape[0] >= needed and np.shares_memory(room[0], previous.embeddings):
            return room
        n, dim = previous.size, previous.embeddings.shape[1] if previous.embeddings.ndim == 2 else 512
        cap = max(needed, 2 * n if room is not None else needed, 1024)
        emb = np.empty((cap, dim), np.float32)
        pid = np.empty(cap, np.int64)
        tid = np.empty(cap, np.int64)
        emb[:n], pid[:n], tid[:n] = previous.embeddings, previous.row_person, previous.template_ids
        self._room = (emb, pid, tid)
        return self._room

    def _into_room(self, gallery: Gallery) -> Gallery:
        """``gallery`` in buffers with spare rows, so the next enrollments append without copying
        (unused rows of np.empty are not touched, so they cost no memory until used). The store
        reads the rows into such a buffer already: then only the small id arrays are copied."""
        if not gallery.size:
            return gallery
        n = gallery.size
        base = gallery.embeddings.base
        if (isinstance(base, np.ndarray) and base.ndim == 2 and base.shape[0] > n
                and base.__array_interface__["data"][0] == gallery.embeddings.__array_interface__["data"][0]):
            pid, tid = np.empty(base.shape[0], np.int64), np.empty(base.shape[0], np.int64)
            pid[:n], tid[:n] = gallery.row_person, gallery.template_ids
            self._room = (base, pid, tid)
        emb, pid, tid = self._room_for(gallery, n + int(n * SPARE) + 1024)
        return replace(gallery, embeddings=emb[:n], row_person=pid[:n], template_ids=tid[:n])

    # -- the index ----------------------------------------------------------------------------
    def _with_index(self, model_id: str, gallery: Gallery, full: bool) -> Gallery:
        if gallery.size < self.index_from:
            return gallery
        if self._index is None or self._index_model != model_id:
            self._index = TemplateIndex(gallery.embeddings.shape[1], self.index_config)
            self._index_model = model_id
        t0 = time.perf_counter()
        added, removed = self._index.sync(gallery.template_ids, gallery.embeddings)
        log.info("search index: +%d -%d templates in %.2f s", added, removed, time.perf_counter() - t0)
        return _with(gallery, self._index)


def _row_key(row: dict) -> tuple:
    return int(row["id"]), int(row["person_id"]), row["model_id"], bytes(row["embedding"])


def _with(gallery: Gallery, index: TemplateIndex) -> Gallery:
    return replace(gallery, index=index)


