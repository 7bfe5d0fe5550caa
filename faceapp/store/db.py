"""The faceapp database: people, photos (aligned crops), templates, entries, settings.

All multi-row changes run in one explicit ``BEGIN IMMEDIATE`` transaction (sqlite-utils'
write helpers commit on their own, so they are used only outside transactions).
WAL mode lets the GUI read while a worker writes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import sqlite_utils

from faceapp.core.errors import StoreError
from faceapp.core.fsutil import make_private
from faceapp.store.audit import write_audit
from faceapp.store.backup import backup_database, default_backup_name
from faceapp.store.blobs import decode_blob, encode_jpeg, encode_png  # noqa: F401 (re-exported)
from faceapp.store.common import MAX_NAME, clean_name, default_actor, utc_now  # noqa: F401 (re-exported)
from faceapp.store.migrations import MIGRATIONS, SCHEMA_VERSION
from faceapp.store.people import NewPhoto, PeopleMixin, PhotoRecord  # noqa: F401 (re-exported)
from faceapp.store.settings_rows import SettingsMixin
from faceapp.store.site_link import PASSFILE, SiteLink, read_state

log = logging.getLogger(__name__)

SAFETY_FOLDER = "backups"  # beside the database; `faceapp restore` keeps its copies there too

class Store(PeopleMixin, SettingsMixin):
    """One open database. Thread-safe: a lock serialises use of the connection.

    Every change to people, photos, templates and settings appends an audit row in the same
    transaction, in the name of ``actor`` (refined by the CLI and the GUI's admin gate: "cli:alice",
    "gui:admin"...)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.actor = default_actor()
        self._lock = threading.RLock()
        self.site: SiteLink | None = None
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = None
        try:
            conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 30000")
            # Deleted faces must not linger in free pages of the file (biometric data).
            conn.execute("PRAGMA secure_delete = ON")
            self.db = sqlite_utils.Database(conn)
            if str(path) != ":memory:":
                self.db.enable_wal()
                # Names, face crops and templates: owner-only whatever the umask or the folder's
                # mode (SQLite gives a new -wal/-shm the mode of the database file).
                make_private(*(self.path.with_name(self.path.name + s) for s in ("", "-wal", "-shm")))
            conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
            self.reload_site()
        except BaseException as exc:
            # Refused (newer schema, not a database...): let go of the file at once, untouched.
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(f"{self.path} is not a usable faceapp database ({exc}); "
                                 f"restore a backup with: faceapp restore FILE") from exc
            raise

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        with self._lock:
            try:
                self.conn.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass
            self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema -------------------------------------------------------------
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer faceapp (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade faceapp or use another --home")
        if 0 < version < SCHEMA_VERSION and str(self.path) != ":memory:":
            self._safety_copy(version)
        for i in range(version, SCHEMA_VERSION):
            with self.transaction() as conn:
                # Another process opening the same old database may have migrated it meanwhile.
                if int(conn.execute("PRAGMA user_version").fetchone()[0]) > i:
                    continue
                MIGRATIONS[i](conn)
                conn.execute(f"PRAGMA user_version = {i + 1}")
            log.info("database migrated to schema %d", i + 1)

    def _safety_copy(self, version: int) -> Path:
        """Before an upgrade changes the schema: a restorable backup in ``<home>/backups/``."""
        folder = self.path.parent / SAFETY_FOLDER
        dest = folder / default_backup_name(prefix=f"before-upgrade-schema{version}")
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            backup_database(self.path, dest)
        except (OSError, StoreError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise StoreError(f"cannot keep a copy of {self.path} before upgrading it ({reason}); "
                             f"nothing was changed") from exc
        log.warning("database upgrade from schema %d to %d: a copy of the old one is in %s",
                    version, SCHEMA_VERSION, dest)
        return dest

    def reload_site(self) -> None:
        """(Re)read whether this data folder is a station of a site (``site_state``)."""
        with self._lock:
            state = read_state(self.conn)
        if state.get("url") and str(self.path) != ":memory:":
            self.site = SiteLink(state["url"], self.path.parent / PASSFILE, state.get("station") or "")
        else:
            self.site = None

    @contextmanager
    def transaction(self, local: bool = False) -> Iterator[sqlite3.Connection]:
        """All-or-nothing block: BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception.

        On a station, what the block changed in replicated tables is first written to the site
        in one site transaction (:meth:`SiteLink.push`); if the site refuses or cannot be reached
        the block rolls back. ``local``: this block only touches the replica's own bookkeeping."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                if self.site is not None and not local:
                    self.site.push(self.conn)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence | dict = ()) -> list[dict]:
        with self._lock:
            return list(self.db.query(sql, params))

    def query_rows(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """Like :meth:`query` but plain tuples: for the hundreds of thousands of rows a large
        gallery reads, where building a dict per row is most of the time."""
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def audit(self, action: str, target: str | None = None, details: dict | None = None,
              conn: sqlite3.Connection | None = None) -> int:
        """Append an audit row as ``self.actor``: inside the caller's transaction when ``conn``
        (from :meth:`transaction`) is given, else in a transaction of its own."""
        if conn is not None:
            return write_audit(conn, self.actor, action, target, details)
        with self.transaction() as c:
            return write_audit(c, self.actor, action, target, details)
