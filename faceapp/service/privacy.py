"""Privacy: retention (old snapshots and entries are purged) and subject-access exports.

Retention (settings ``snapshot_retention_days`` and ``entry_retention_days``, 0 = keep):
:func:`apply_retention` removes the snapshots of entries older than the first and the entries
older than the second, in one transaction with its audit row. It runs when a pipeline that
logs starts (a station or `faceapp watch`), when an administrator applies the retention
settings in the window, and by hand with `faceapp purge`; a station left running does not
purge again until its pipeline restarts. The audit log itself is never purged (it is
append-only; see :mod:`faceapp.store.audit`).

Subject access (:func:`export_person_data`): everything stored about one person, as a folder
or a .zip: ``person.json`` (details, access groups, template count per model, photo list,
entry summary, the audit rows about them), their photo crops as PNG, their log entries as CSV
and the snapshots of those entries.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import tempfile
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from faceapp import __version__
from faceapp.core.csvexport import ENTRY_HEADER, entries_csv_rows, write_csv
from faceapp.core.errors import FaceAppError
from faceapp.core.fsutil import make_tree_private
from faceapp.core.types import Person
from faceapp.service.app import App
from faceapp.store.attendance import AttendanceStore, EntryQuery, utc_iso
from faceapp.store.audit import AuditLog
from faceapp.store.backup import safety_copies, scrub_person_from_copy
from faceapp.store.db import Store

log = logging.getLogger(__name__)


# -- retention ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PurgeReport:
    """What a retention run removed (or, for a preview, would remove)."""

    snapshots: int
    entries: int
    snapshot_days: int
    entry_days: int
    safety_copies: int = 0     # old copies of the database deleted from HOME/backups

    @property
    def removed_anything(self) -> bool:
        return bool(self.snapshots or self.entries)

    def describe(self) -> str:
        snap = (f"{self.snapshots} snapshot(s) older than {self.snapshot_days} days"
                if self.snapshot_days > 0 else "snapshots kept (no limit)")
        ent = (f"{self.entries} entr{'y' if self.entries == 1 else 'ies'} older than {self.entry_days} days"
               if self.entry_days > 0 else "entries kept (no limit)")
        copies = f"; {self.safety_copies} old safety cop{'y' if self.safety_copies == 1 else 'ies'}" \
            if self.safety_copies else ""
        return f"{snap}; {ent}{copies}"


def _cutoff(days: int, now: datetime) -> str | None:
    return utc_iso(now - timedelta(days=int(days))) if days and days > 0 else None


def preview_retention(store: Store, snapshot_days: int, entry_days: int, now: datetime | None = None) -> PurgeReport:
    """How much :func:`apply_retention` with these limits would remove now (nothing is changed).

    Snapshots of entries that the entry limit removes anyway are not counted twice."""
    now = now or datetime.now(timezone.utc)
    snap_before, entry_before = _cutoff(snapshot_days, now), _cutoff(entry_days, now)
    entries = snapshots = 0
    if entry_before:
        entries = int(store.query("SELECT COUNT(*) AS n FROM entries WHERE time < ?", (entry_before,))[0]["n"])
    if snap_before:
        sql = "SELECT COUNT(*) AS n FROM entries WHERE snapshot IS NOT NULL AND time < ?"
        params: list = [snap_before]
        if entry_before:
            sql += " AND time >= ?"
            params.append(entry_before)
        snapshots = int(store.query(sql, params)[0]["n"])
    return PurgeReport(snapshots, entries, max(0, int(snapshot_days)), max(0, int(entry_days)))


def apply_retention(app: App, now: datetime | None = None, record_empty: bool = False) -> PurgeReport:
    """Purge snapshots and entries older than the settings allow, in one transaction.

    An audit row records the run when it removed something (or always, with ``record_empty``:
    a purge started by hand)."""
    s = app.settings
    now = now or datetime.now(timezone.utc)
    snap_before = _cutoff(s.snapshot_retention_days, now)
    entry_before = _cutoff(s.entry_retention_days, now)
    entries = snapshots = 0
    store = app.store
    with store.transaction() as conn:
        if entry_before:
            entries = conn.execute("DELETE FROM entries WHERE time < ?", (entry_before,)).rowcount
        if snap_before:
            snapshots = conn.execute("UPDATE entries SET snapshot = NULL WHERE snapshot IS NOT NULL AND time < ?",
                                     (snap_before,)).rowcount
        report = PurgeReport(snapshots, entries, max(0, s.snapshot_retention_days), max(0, s.entry_retention_days))
        if report.removed_anything or record_empty:
            store.audit("retention.purge", "entries", {
                "snapshots_removed": snapshots, "entries_removed": entries,
                "snapshot_retention_days": report.snapshot_days, "entry_retention_days": report.entry_days}, conn)
    if report.removed_anything:
        store.scrub_wal()
        log.info("retention: removed %s", report.describe())
    old_copies = purge_safety_copies(app, now)
    if old_copies:
        report = replace(report, safety_copies=old_copies)
    return report


def purge_safety_copies(app: App, now: datetime | None = None) -> int:
    """Delete the safety copies in HOME/backups (made before restores and upgrades: full copies
    of the database, faces included) older than ``safety_copy_retention_days`` (0 = keep); audited."""
    days = app.settings.safety_copy_retention_days
    if days <= 0:
        return 0
    cutoff = ((now or datetime.now(timezone.utc)) - timedelta(days=days)).timestamp()
    removed = []
    for path in safety_copies(app.paths.backups):
        try:
            if path.stat().st_mtime < cutoff:
                for p in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
                    p.unlink(missing_ok=True)
                removed.append(path.name)
        except OSError as exc:
            log.warning("could not remove the old safety copy %s: %s", path, exc)
    if removed:
        app.audit("retention.safety_copies", {"removed": removed, "days": days})
    return len(removed)


def scrub_person_from_safety_copies(app: App, person: Person, remove_entries: bool) -> list[Path]:
    """Remove a person (already removed from the database) from every safety copy in
    HOME/backups too; audited. Returns the copies that held them."""
    scrubbed = [p for p in safety_copies(app.paths.backups)
                if scrub_person_from_copy(p, person.id, person.name, remove_entries)]
    if scrubbed:
        app.audit("person.scrub_copies", {"copies": [p.name for p in scrubbed], "entries": remove_entries},
                  target=f"person:{person.id}")
    return scrubbed


def copies_holding(app: App, person: Person) -> list[Path]:
    """Safety copies in HOME/backups that still hold ``person`` (same id and name)."""
    found = []
    for path in safety_copies(app.paths.backups):
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                if conn.execute("SELECT 1 FROM people WHERE id = ? AND name = ?", (person.id, person.name)).fetchone():
                    found.append(path)
            finally:
                conn.close()
        except sqlite3.Error:
            continue
    return found


# -- subject access ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubjectExport:
    """Where a subject-access export went and what it holds."""

    path: Path
    person: Person
    photos: int
    entries: int
    snapshots: int
    audit_rows: int

    def describe(self) -> str:
        return (f"{self.photos} photo(s), {self.entries} log entr{'y' if self.entries == 1 else 'ies'}, "
                f"{self.snapshots} snapshot(s), {self.audit_rows} audit row(s)")


def export_person_data(app: App, person_id: int, dest: Path | str, force: bool = False) -> SubjectExport:
    """Write everything stored about one person to ``dest``: a ``.zip`` file, or a folder that
    does not exist yet (or is empty). Written to a temporary place first, so a failure leaves
    nothing half-written under ``dest``. The export itself is audited."""
    dest = Path(dest)
    as_zip = dest.suffix.lower() == ".zip"
    parent = dest.parent
    app.check_output(dest, "zip" if as_zip else "folder", force)
    if not parent.is_dir():
        raise FaceAppError(f"folder '{parent}' does not exist")
    if not as_zip and dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FaceAppError(f"'{dest}' exists and is not an empty folder; choose a new folder or a .zip file")
    if as_zip and dest.is_dir():
        raise FaceAppError(f"'{dest}' is a folder")
    person = app.store.get_person(person_id)
    try:
        work = Path(tempfile.mkdtemp(prefix=".subject-export-", dir=parent))
    except OSError as exc:
        raise FaceAppError(f"cannot write to '{parent}': {exc.strerror or exc}") from exc
    try:
        os.chmod(work, 0o700)
        content = work / "export"
        content.mkdir()
        summary = _write_subject_files(app, person, content)
        make_tree_private(content)  # face crops and snapshots: owner-only whatever the umask
        if as_zip:
            tmp_zip = work / "export.zip"
            with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(content.rglob("*")):
                    if f.is_file():
                        zf.write(f, f.relative_to(content).as_posix())
            os.chmod(tmp_zip, 0o600)
            os.replace(tmp_zip, dest)
        else:
            if dest.is_dir():
                dest.rmdir()  # empty, checked above
            os.replace(content, dest)
    except OSError as exc:
        raise FaceAppError(f"cannot write '{dest}': {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = SubjectExport(dest, person, *summary)
    app.audit("person.export", {"path": str(dest), "photos": result.photos, "entries": result.entries,
                                "snapshots": result.snapshots}, target=f"person:{person.id}")
    return result


def _write_subject_files(app: App, person: Person, folder: Path) -> tuple[int, int, int, int]:
    store = app.store
    target = f"person:{person.id}"
    photos = store.query("SELECT id, crop, quality, source, created FROM photos WHERE person_id = ? ORDER BY id",
                         (person.id,))
    (folder / "photos").mkdir()
    photo_list = []
    for r in photos:
        name = f"photos/photo-{r['id']}.png"
        (folder / name).write_bytes(r["crop"])  # stored as PNG already: the exact bytes we keep
        photo_list.append({"file": name, "id": r["id"], "quality": r["quality"], "source": r["source"],
                           "created": r["created"]})
    models = store.query("SELECT model_id, COUNT(*) AS n FROM templates WHERE person_id = ? GROUP BY model_id "
                         "ORDER BY model_id", (person.id,))
    att = AttendanceStore(store)
    try:
        groups = att.person_groups(person.id)
    except sqlite3.OperationalError:  # a database without the attendance tables
        groups = []
    entries = att.entries(EntryQuery(person_id=person.id))
    with open(folder / "entries.csv", "w", encoding="utf-8", newline="") as fh:
        write_csv(fh, ENTRY_HEADER, entries_csv_rows(entries))
    snapshots = 0
    for e in entries:
        if e.has_snapshot:
            data = att.snapshot(e.id)
            if data:
                (folder / "snapshots").mkdir(exist_ok=True)
                (folder / "snapshots" / f"entry-{e.id}.jpg").write_bytes(data)
                snapshots += 1
    audit = AuditLog(store).records(target=target, newest_first=False)
    s = app.settings
    doc = {
        "about": "Everything this faceapp installation stores about one person (subject access export).",
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "faceapp_version": __version__,
        "person": {"id": person.id, "name": person.name, "employee_id": person.employee_id,
                   "department": person.department, "active": person.active, "enrolled": person.created},
        "access_groups": groups,
        "photos": photo_list,
        "templates": {
            "count": sum(int(m["n"]) for m in models),
            "by_model": {m["model_id"]: int(m["n"]) for m in models},
            "note": "a template is a list of numbers computed from one photo by the named recognition model; "
                    "it is what the camera's picture is compared with",
        },
        "entry_faces": {
            "count": int(store.query("SELECT COUNT(*) AS n FROM entry_faces f JOIN entries e ON e.id = f.entry_id "
                                     "WHERE e.person_id = ?", (person.id,))[0]["n"]),
            "note": "the same kind of numbers computed from the snapshot of each of their log entries (search by "
                    "face); deleted with the snapshot",
        },
        "negative_examples": {
            "count": int(store.query("SELECT COUNT(*) AS n FROM negatives WHERE person_id = ?",
                                     (person.id,))[0]["n"]),
            "note": "faces an administrator said are not this person (corrected wrong matches)",
        },
        "entries": {"count": len(entries), "file": "entries.csv", "snapshots": snapshots,
                    "first": entries[0].time if entries else None, "last": entries[-1].time if entries else None},
        "retention": {"snapshot_retention_days": s.snapshot_retention_days,
                      "entry_retention_days": s.entry_retention_days},
        "audit": [{"time": a.time, "actor": a.actor, "action": a.action, "details": a.changes} for a in audit],
    }
    (folder / "person.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    return len(photo_list), len(entries), snapshots, len(audit)
