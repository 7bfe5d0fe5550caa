"""Backups of the whole database as one file, and restoring them.

A backup is an SQLite database made with the online backup API (consistent even while the
app or a door station writes: WAL readers do not block writers) plus a ``backup_meta`` table
that marks it as a faceapp backup (format, app and schema version, time, counts). Crops,
templates, snapshots, settings, credentials and the audit log all live in the database, so
the one file is everything.

Restoring never opens the user's file for writing: it is copied next to the database first and
checked (faceapp backup? not from a newer schema? ``integrity_check``?). A fresh database is
then built with faceapp's own migrations and the rows of the tables faceapp knows are copied
into it, type-checked (so no trigger, view or table of the file survives), migrated if older,
and only then written over the live database, in one transaction (the online backup API
again), so other connections see either the old or the new data. A damaged live database
is replaced as a file instead. Either way a copy of the current database is kept first.
Restoring replaces the audit log too: the replaced log lives on in that safety copy.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from faceapp import __version__
from faceapp.core.errors import EmbeddingError, StoreError
from faceapp.core.fsutil import claim_new_file, fsync_dir, make_private, private_workdir, replacing
from faceapp.store.blobs import embedding_from_blob
from faceapp.store.migrations import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

BACKUP_FORMAT = "faceapp-backup"
BACKUP_FORMAT_VERSION = 1
BACKUP_SUFFIX = ".faceapp-backup"
SAFETY_PREFIX = "before-restore"
SQLITE_MAGIC = b"SQLite format 3\x00"
_COUNTED = ("people", "photos", "templates", "entries", "audit")


@dataclass(frozen=True)
class BackupInfo:
    """What a backup file says about itself."""

    path: Path
    format_version: int
    app_version: str
    schema_version: int
    created: str
    counts: dict[str, int]
    size: int

    def describe(self) -> str:
        c = self.counts
        return (f"{c.get('people', 0)} people, {c.get('photos', 0)} photos, {c.get('entries', 0)} log entries, "
                f"{c.get('audit', 0)} audit rows; made {self.created} by faceapp {self.app_version} "
                f"(schema {self.schema_version})")


@dataclass(frozen=True)
class RestoreResult:
    """``safety_copy``: where the replaced database was kept. ``mode``: "online" (written into the
    live database in one transaction) or "replaced" (the damaged/missing file was swapped)."""

    info: BackupInfo
    safety_copy: Path | None
    migrated_from: int
    mode: str


def backup_database(db_path: Path | str, dest: Path | str) -> BackupInfo:
    """Copy the database at ``db_path`` into the backup file ``dest`` (replaced atomically).

    Safe while other connections read and write. Raises StoreError with a one-line message."""
    db_path, dest = Path(db_path), Path(dest)
    if not db_path.is_file():
        raise StoreError(f"there is no database at {db_path} to back up")
    folder = dest.parent
    if dest.is_dir():
        raise StoreError(f"{dest} is a folder; give a file name for the backup")
    if not folder.is_dir():
        raise StoreError(f"folder '{folder}' does not exist")
    if _same_file(dest, db_path):
        raise StoreError("the backup cannot overwrite the database itself")
    try:
        with replacing(dest) as tmp:
            _chmod_private(tmp)
            src = _connect(db_path)
            try:
                dst = sqlite3.connect(str(tmp), isolation_level=None)
                try:
                    src.backup(dst)
                    # The copy carries the source's WAL flag; a backup must be one self-contained file.
                    dst.execute("PRAGMA journal_mode = DELETE")
                    counts = _counts(dst)
                    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
                    schema = _user_version(dst)
                    meta = {"format": BACKUP_FORMAT, "format_version": str(BACKUP_FORMAT_VERSION),
                            "app_version": __version__, "schema_version": str(schema),
                            "created": created, **{f"count_{k}": str(v) for k, v in counts.items()}}
                    dst.execute("BEGIN")
                    dst.execute("CREATE TABLE backup_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                    dst.executemany("INSERT INTO backup_meta (key, value) VALUES (?, ?)", meta.items())
                    dst.execute("COMMIT")
                    check = dst.execute("PRAGMA integrity_check").fetchone()[0]
                    if check != "ok":
                        raise StoreError(f"the backup copy failed its integrity check ({check})")
                finally:
                    dst.close()
            finally:
                src.close()
    except sqlite3.Error as exc:
        raise StoreError(f"could not back up {db_path}: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"cannot write '{dest}': {exc.strerror or exc}") from exc
    log.info("backup written to %s", dest)
    return BackupInfo(dest, BACKUP_FORMAT_VERSION, __version__, schema, created, counts, dest.stat().st_size)


def is_backup_file(path: Path | str) -> bool:
    """True if ``path`` is a faceapp backup file (of any version): safe to replace with a new one."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if fh.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                return False
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            return conn.execute("SELECT value FROM backup_meta WHERE key = 'format'").fetchone() == (BACKUP_FORMAT,)
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        return False


def read_backup_info(path: Path | str) -> BackupInfo:
    """Check that ``path`` is a faceapp backup this version can restore; raises StoreError."""
    path = Path(path)
    _require_sqlite_file(path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise _not_a_backup(path) from exc
    try:
        return _info(conn, path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is damaged or not a faceapp backup ({exc}); nothing was restored") from exc
    finally:
        conn.close()


def restore_database(backup: Path | str, db_path: Path | str, safety_dir: Path | str) -> RestoreResult:
    """Replace the database at ``db_path`` with the content of ``backup``.

    A copy of the current database goes to ``safety_dir`` first. Refuses files that are not
    faceapp backups, that are damaged, or that come from a newer schema; older ones are
    migrated. Raises StoreError; on any failure the current database is unchanged."""
    backup, db_path, safety_dir = Path(backup), Path(db_path), Path(safety_dir)
    info = read_backup_info(backup)
    if _same_file(backup, db_path):
        raise StoreError("that file is the database itself, not a backup of it")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    # Locked while in use: a killed restore leaves it unlocked, and the next start removes it.
    with private_workdir(db_path.parent, ".restore-") as work:
        staged = work / "staged.db"
        try:
            shutil.copyfile(backup, staged)
        except OSError as exc:
            raise StoreError(f"cannot read {backup}: {exc.strerror or exc}") from exc
        _chmod_private(staged)
        fresh = work / "fresh.db"
        migrated_from = _rebuild(staged, fresh, backup)
        _chmod_private(fresh)
        # One quick_check decides both steps: a healthy database is backed up and then written
        # into online; a damaged or missing one is copied raw and then replaced as a file.
        healthy = _healthy(db_path)
        safety = _keep_current(db_path, safety_dir, healthy)
        mode = _install(fresh, db_path, healthy)
    log.info("restored %s into %s (%s)", backup, db_path, mode)
    return RestoreResult(info, safety, migrated_from, mode)


def scrub_person_from_copy(path: Path | str, person_id: int, name: str, remove_entries: bool) -> bool:
    """Remove one person from a safety copy in place, as :meth:`Store.remove_person` does from
    the live database (photos, templates, snapshots, optionally entries; audit rows anonymised),
    then VACUUM so nothing stays in free pages. Matches on id *and* name (ids can be reused).
    Returns False when the copy does not hold that person."""
    from faceapp.store.audit import anonymise_person

    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        if conn.execute("SELECT 1 FROM people WHERE id = ? AND name = ?", (person_id, name)).fetchone() is None:
            return False
        conn.execute("BEGIN IMMEDIATE")
        if remove_entries:
            conn.execute("DELETE FROM entries WHERE person_id = ?", (person_id,))
        else:
            conn.execute("UPDATE entries SET snapshot = NULL WHERE person_id = ?", (person_id,))
        conn.execute("DELETE FROM people WHERE id = ?", (person_id,))
        anonymise_person(conn, person_id)
        conn.execute("COMMIT")
        conn.execute("VACUUM")
        return True
    except sqlite3.Error as exc:
        raise StoreError(f"could not remove the person from {path}: {exc}") from exc
    finally:
        conn.close()


def safety_copies(folder: Path | str) -> list[Path]:
    """The copies faceapp keeps in ``folder`` (HOME/backups) before a restore or an upgrade."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith("before-") and p.is_file()
                  and not p.name.endswith(("-wal", "-shm", "-journal")))


def default_backup_name(now: datetime | None = None, prefix: str = "faceapp") -> str:
    """``faceapp-20240531-142500.faceapp-backup`` (local time)."""
    now = now or datetime.now()
    return f"{prefix}-{now.strftime('%Y%m%d-%H%M%S')}{BACKUP_SUFFIX}"


# -- helpers ---------------------------------------------------------------------------------------
def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    tables = _tables(conn)
    return {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in _COUNTED if t in tables}


def _require_sqlite_file(path: Path) -> None:
    if not path.exists():
        raise StoreError(f"{path} not found")
    if not path.is_file():
        raise StoreError(f"{path} is not a file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if head != SQLITE_MAGIC:
        raise _not_a_backup(path)


def _not_a_backup(path: Path, why: str = "") -> StoreError:
    extra = f" {why}" if why else ""
    return StoreError(f"{path} is not a faceapp backup{extra} (make one with: faceapp backup FILE)")


def _info(conn: sqlite3.Connection, path: Path) -> BackupInfo:
    tables = _tables(conn)
    if "backup_meta" not in tables:
        raise _not_a_backup(path)
    meta = dict(conn.execute("SELECT key, value FROM backup_meta").fetchall())
    if meta.get("format") != BACKUP_FORMAT:
        raise _not_a_backup(path)
    try:
        fmt = int(meta.get("format_version", "0"))
    except ValueError:
        raise _not_a_backup(path, "(unreadable format version)") from None
    schema = _user_version(conn)
    if fmt > BACKUP_FORMAT_VERSION or schema > SCHEMA_VERSION:
        raise StoreError(f"{path} is a backup from a newer faceapp ({meta.get('app_version', '?')}, schema {schema}; "
                         f"this one knows schema {SCHEMA_VERSION}); upgrade faceapp to restore it")
    if not {"people", "photos", "templates"} <= tables:
        raise _not_a_backup(path, "(tables missing)")
    counts = {k[len("count_"):]: int(v) for k, v in meta.items() if k.startswith("count_") and v.isdigit()}
    return BackupInfo(path, fmt, meta.get("app_version", "?"), schema, meta.get("created", "?"), counts,
                      path.stat().st_size)


def _rebuild(staged: Path, fresh: Path, origin: Path) -> int:
    """Build ``fresh`` with faceapp's own migrations and copy into it the rows of the tables
    faceapp knows, read from the ``staged`` copy of the backup; returns the backup's schema.

    Nothing of the file's schema survives: its triggers, views, indexes and extra tables are never
    installed (a backup edited to drop the audit triggers or to rewrite entries has no effect).
    The tables are those of faceapp's schema at the backup's version (a table missing from the
    file refuses it); every value must have the type its column declares; tables that the
    migrations fill themselves (the revision counter) keep their fresh rows. The copied data is
    then upgraded by the same migrations as any older database."""
    try:
        src = sqlite3.connect(f"{staged.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"{origin} is damaged ({exc}); nothing was restored") from exc
    dst = sqlite3.connect(str(fresh), isolation_level=None)
    try:
        check = src.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise StoreError(f"{origin} is damaged ({check}); nothing was restored")
        version = _user_version(src)
        file_tables = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        dst.execute("PRAGMA journal_mode = DELETE")
        dst.execute("PRAGMA foreign_keys = OFF")  # rows arrive table by table; checked below
        dst.execute("BEGIN")
        for step in MIGRATIONS[:version]:
            step(dst)
        tables = [r[0] for r in dst.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        missing = [t for t in tables if t not in file_tables]
        if missing:
            raise StoreError(f"{origin} is not a complete faceapp backup (tables missing: {', '.join(missing)}); "
                             f"nothing was restored")
        for table in tables:
            if dst.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone() is None:
                _copy_rows(src, dst, table, origin)
        for step in MIGRATIONS[version:]:
            step(dst)
        dst.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        bad = dst.execute("PRAGMA foreign_key_check").fetchone()
        if bad is not None:
            raise StoreError(f"{origin} has rows of table {bad[0]} that refer to missing rows of {bad[2]}; "
                             f"nothing was restored")
        dst.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{origin} is damaged or cannot be restored ({' '.join(str(exc).split())}); "
                         f"nothing was restored") from exc
    finally:
        src.close()
        dst.close()
    if version < SCHEMA_VERSION:
        log.info("backup migrated from schema %d to %d", version, SCHEMA_VERSION)
    return version


# Python types a column of each SQLite affinity may hold in a database faceapp wrote.
_AFFINITY_TYPES = {"INTEGER": (int,), "REAL": (float, int), "NUMERIC": (int, float), "TEXT": (str,),
                   "BLOB": (bytes,)}


def _affinity(declared: str) -> str:
    """SQLite's column affinity rules (https://sqlite.org/datatype3.html, 3.1)."""
    d = declared.upper()
    if "INT" in d:
        return "INTEGER"
    if any(k in d for k in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in d or not d:
        return "BLOB"
    if any(k in d for k in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def _copy_rows(src: sqlite3.Connection, dst: sqlite3.Connection, table: str, origin: Path) -> None:
    columns = [(r[1], _affinity(r[2] or "")) for r in dst.execute(f'PRAGMA table_info("{table}")')]
    have = {r[1] for r in src.execute(f'PRAGMA table_info("{table}")')}
    lacking = [c for c, _ in columns if c not in have]
    if lacking:
        raise StoreError(f"{origin} is not a complete faceapp backup (table {table} lacks {', '.join(lacking)}); "
                         f"nothing was restored")
    names = ", ".join(f'"{c}"' for c, _ in columns)
    insert = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" for _ in columns)})'
    allowed = [_AFFINITY_TYPES[a] for _, a in columns]
    cur = src.execute(f'SELECT {names} FROM "{table}" ORDER BY rowid')
    while rows := cur.fetchmany(500):
        for row in rows:
            for value, (column, _), ok in zip(row, columns, allowed):
                if value is not None and not isinstance(value, ok):
                    raise StoreError(f"{origin} holds a {type(value).__name__} in {table}.{column}, which faceapp "
                                     f"never writes; nothing was restored")
                if column == "embedding":   # templates, entry faces, negatives: finite unit vectors only
                    try:
                        embedding_from_blob(value)
                    except EmbeddingError as exc:
                        raise StoreError(f"{origin} holds a damaged embedding in {table} ({exc}); "
                                         f"nothing was restored") from None
        dst.executemany(insert, rows)


def _healthy(db_path: Path) -> bool:
    """True if the live database opens and passes a quick check (else it is replaced as a file)."""
    if not db_path.is_file() or db_path.stat().st_size == 0:
        return False
    try:
        conn = _connect(db_path)
        try:
            return conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


def _keep_current(db_path: Path, safety_dir: Path, healthy: bool) -> Path | None:
    """A copy of the current database in ``safety_dir`` (a backup file if it is ``healthy``, else
    the raw files); None when there is no database yet."""
    if not db_path.exists():
        return None
    try:
        safety_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        make_private(safety_dir)
    except OSError as exc:
        raise StoreError(f"cannot create {safety_dir} for a copy of the current database: "
                         f"{exc.strerror or exc}; nothing was restored") from exc
    # A unique name, claimed atomically: a second restore in the same second must not
    # overwrite the first one's copy (it may be the only copy of the original database).
    stem = default_backup_name(prefix=SAFETY_PREFIX)[: -len(BACKUP_SUFFIX)]
    if healthy:
        dest = claim_new_file(safety_dir, stem, BACKUP_SUFFIX)
        try:
            backup_database(db_path, dest)
        except BaseException:
            _unlink(dest)
            raise
        return dest
    dest = claim_new_file(safety_dir, stem + "-damaged", ".db")
    try:
        shutil.copyfile(db_path, dest)
        wal = db_path.with_name(db_path.name + "-wal")
        if wal.exists():
            shutil.copyfile(wal, dest.with_name(dest.name + "-wal"))
            _chmod_private(dest.with_name(dest.name + "-wal"))
        _chmod_private(dest)
    except OSError as exc:
        _unlink(dest)
        raise StoreError(f"cannot copy the current database to {dest}: {exc.strerror or exc}; "
                         f"nothing was restored") from exc
    return dest


def _install(staged: Path, db_path: Path, healthy: bool) -> str:
    """Write ``staged`` over the database: online into a ``healthy`` one, else by replacing the file."""
    if healthy:
        src = sqlite3.connect(str(staged), isolation_level=None)
        dst = _connect(db_path)
        try:
            page_size = int(dst.execute("PRAGMA page_size").fetchone()[0])
            if int(src.execute("PRAGMA page_size").fetchone()[0]) != page_size:
                # A WAL database only accepts a backup of its own page size.
                src.execute("PRAGMA journal_mode = DELETE")
                src.execute(f"PRAGMA page_size = {page_size}")
                src.execute("VACUUM")
            src.backup(dst)
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":  # pragma: no cover - the copy was checked; this is belt and braces
                raise StoreError(f"the restored database failed its check ({check})")
        except sqlite3.Error as exc:
            raise StoreError(f"could not restore into {db_path}: {exc}") from exc
        finally:
            src.close()
            dst.close()
        return "online"
    # Missing or damaged: nothing can be using it. Its log must go first, or SQLite would
    # replay the old log onto the new file.
    for suffix in ("-wal", "-shm", "-journal"):
        _unlink(db_path.with_name(db_path.name + suffix))
    os.replace(staged, db_path)
    fsync_dir(db_path.parent)
    return "replaced"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _chmod_private(path: Path) -> None:
    # Biometric data: readable by the owner only (no-op where chmod means nothing).
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)
