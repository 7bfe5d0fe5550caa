"""Templates for a new recognition model, recomputed from the stored aligned crops.

Templates of different models are never compared, so after the model pack changes
every person is unknown until this has run. It needs no original photos: the crops
kept with each photo are exactly what the recogniser takes as input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from faceapp.service.app import App

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, str], None]
BATCH = 32


@dataclass(frozen=True)
class TemplateStatus:
    """How many stored photos have (no) template for the active model."""

    model_id: str
    photos: int
    missing: int

    @property
    def complete(self) -> bool:
        return self.missing == 0


def template_status(app: App) -> TemplateStatus:
    """Counts for the active model (cheap: no image is decoded)."""
    rows = app.store.query(
        "SELECT COUNT(*) AS n, SUM(NOT EXISTS (SELECT 1 FROM templates t WHERE t.photo_id = f.id "
        "AND t.model_id = ?)) AS missing FROM photos f", (app.model_id,))
    n = int(rows[0]["n"] or 0)
    return TemplateStatus(app.model_id, n, int(rows[0]["missing"] or 0))


def recompute_templates(app: App, progress: ProgressFn | None = None,
                        should_stop: Callable[[], bool] | None = None, batch: int = BATCH) -> int:
    """Embed every stored crop that has no template for the active model; returns how many were added.

    Each batch is stored in its own transaction, so stopping (or a crash) keeps the work
    done and a later run continues where this one ended."""
    engine = app.engine
    model_id = engine.model_id
    photos = app.store.photos_missing_templates(model_id)
    total = len(photos)
    done = 0
    if progress:
        progress(0, total, "")
    try:
        for start in range(0, total, batch):
            if should_stop and should_stop():
                break
            chunk = photos[start:start + batch]
            emb = engine.embed_crops([p.crop for p in chunk])
            app.store.add_templates(model_id, [(p.id, e) for p, e in zip(chunk, emb)])
            done += len(chunk)
            if progress:
                progress(done, total, f"photo {chunk[-1].id}")
    finally:
        if done:
            app.invalidate_gallery()
    log.info("recomputed %d of %d missing template(s) for %s", done, total, model_id)
    return done


def template_counts(app: App) -> dict[int, int]:
    """person id -> number of templates of the active model (people with none are absent)."""
    rows = app.store.query("SELECT person_id, COUNT(*) AS n FROM templates WHERE model_id = ? GROUP BY person_id",
                           (app.model_id,))
    return {int(r["person_id"]): int(r["n"]) for r in rows}
