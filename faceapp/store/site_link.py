"""The link between a station's SQLite replica and its site (PostgreSQL, psycopg 3).

- :meth:`SiteLink.push` runs inside a station's local write transaction, before its COMMIT:
  the replicated rows that transaction changed (``site_changes``, filled by triggers) are
  written to the site in ONE site transaction, with the pending audit rows and entries. Only
  when the site committed does the local transaction commit; if the site is unreachable or
  refuses, the local transaction rolls back and nothing changed anywhere. Changes that touch
  only entries (a retention purge, a dropped snapshot) are kept local when the site cannot take
  them, so a station keeps working offline.
- :meth:`SiteLink.pull` copies every site row with a revision above the station's last one
  (and every deletion) into the replica in one local transaction.
- :meth:`SiteLink.upload` sends entries and audit rows written here (``site_outbox``) with
  ``ON CONFLICT DO NOTHING`` and forgets them locally only after the site committed: an
  upload repeated after a crash is a no-op.

The connection string never holds a password: it lives in libpq's password file (``passfile``,
0600, in the data folder) or comes from PGPASSWORD / ~/.pgpass.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from faceapp.core.errors import DuplicateError, SiteError, SiteUnavailableError
from faceapp.core.redact import redact_text, redact_url
from faceapp.store.common import utc_now
from faceapp.store.site_schema import AUDIT_COLUMNS, SCHEMA_VERSION, TABLE, TABLES, SiteTable

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3
UPLOAD_BATCH = 500
PASSFILE = "site.pgpass"
_UNIQUE_WHAT = {"people_name": "a person with this name", "doors_name": "a door with this name",
                "access_groups_name": "a group with this name"}


def split_password(url: str) -> tuple[str, str | None, str | None]:
    """``(conninfo without password, password or None, user)`` of a libpq URL or key=value string."""
    import psycopg.conninfo

    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise SiteError(f"not a PostgreSQL address: {redact_url(url)} "
                        f"(expected postgresql://USER@HOST:PORT/DATABASE)") from exc
    password = params.pop("password", None)
    params.pop("passfile", None)
    return psycopg.conninfo.make_conninfo(**params), password, params.get("user")


def shown_url(conninfo: str) -> str:
    """A connection string as it may be shown: never a password (there is none stored, but
    a hand-written one is masked anyway)."""
    import psycopg.conninfo

    try:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return redact_url(conninfo)
    params.pop("password", None)
    user = params.pop("user", "")
    host = params.pop("host", "") or "localhost"
    port = params.pop("port", "")
    db = params.pop("dbname", "")
    query = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "passfile")
    where = f"[{host}]" if host.startswith("/") else host
    return f"postgresql://{user + '@' if user else ''}{where}{':' + port if port else ''}/{db}" + (
        f"?{query}" if query else "")


def write_passfile(path: Path, user: str | None, password: str) -> None:
    """libpq password file with one line for ``user`` (any host/port/database), mode 0600."""
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace(":", "\\:")

    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"*:*:*:{esc(user or '*')}:{esc(password)}\n")
    os.replace(tmp, path)


def connect(conninfo: str, passfile: Path | None, timeout: int = CONNECT_TIMEOUT, station: str = "",
            password: str | None = None):
    """An open psycopg connection (not autocommit); SiteUnavailableError with a password-free
    one-line reason when the site cannot be reached or refuses the login."""
    import psycopg

    kwargs: dict[str, Any] = {"connect_timeout": max(2, int(timeout)), "autocommit": True,
                              "application_name": f"faceapp {station}".strip()[:60]}
    if passfile is not None and passfile.exists():
        kwargs["passfile"] = str(passfile)
    if password:
        kwargs["password"] = password
    try:
        return psycopg.connect(conninfo, **kwargs)
    except psycopg.Error as exc:
        raise SiteUnavailableError(f"the site {shown_url(conninfo)} is unreachable ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact_text(text)[:300]


def site_error(exc: BaseException) -> SiteError:
    """A user-facing error for a psycopg error raised during a site write."""
    import psycopg

    if isinstance(exc, psycopg.errors.UniqueViolation):
        constraint = getattr(exc.diag, "constraint_name", None) or ""
        what = _UNIQUE_WHAT.get(constraint)
        if what:
            return DuplicateError(f"{what} already exists at the site (added at another station just now)")
        return SiteError("another station changed the site at the same moment; this station is being brought "
                         "up to date: try again")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return SiteError("this station's database role may not make this change (a door-station role): "
                         "make it at an administrator's station")
    if isinstance(exc, psycopg.OperationalError):
        return SiteUnavailableError(f"the site went away during the change ({_reason(exc)}); nothing was changed")
    return SiteError(f"the site refused the change ({_reason(exc)}); nothing was changed")


@dataclass(frozen=True)
class PullReport:
    changed: int
    deleted: int
    rev: int
    bytes: int


class SiteLink:
    """What a station knows about its site: where it is and who this station is."""

    def __init__(self, conninfo: str, passfile: Path | None, station: str) -> None:
        self.conninfo = conninfo
        self.passfile = passfile
        self.station = station
        self._columns: dict[str, tuple[str, ...]] = {}
        self.on_offline: Callable[[], None] | None = None

    @property
    def shown_url(self) -> str:
        return shown_url(self.conninfo)

    def connect(self, timeout: int = CONNECT_TIMEOUT):
        return connect(self.conninfo, self.passfile, timeout, self.station)

    def columns(self, conn: sqlite3.Connection, table: SiteTable) -> tuple[str, ...]:
        """The replicated columns this replica has (a column another version lacks is skipped)."""
        if table.name not in self._columns:
            have = {r[1] for r in conn.execute(f"PRAGMA table_info({table.name})")}
            self._columns[table.name] = tuple(c for c in table.columns if c in have)
        return self._columns[table.name]

    # -- push: one local transaction -> one site transaction --------------------------------------
    def push(self, conn: sqlite3.Connection) -> None:
        """Send what the open local transaction changed; raise (so that it rolls back) if the site
        cannot take it. Called by the store just before COMMIT."""
        changes = conn.execute("SELECT tbl, op, pk FROM site_changes ORDER BY seq").fetchall()
        if not changes:
            return
        first: dict[tuple[str, str], str] = {}
        for tbl, op, pk in changes:
            first.setdefault((tbl, pk), op)
        entries_only = all(tbl == "entries" for tbl, _ in first)
        try:
            pg = self.connect()
        except SiteUnavailableError as exc:
            if entries_only:
                conn.execute("DELETE FROM site_changes")
                return
            raise SiteUnavailableError(f"{exc}; administrative changes are refused while the site is "
                                       f"unreachable: nothing was changed") from None
        import psycopg

        try:
            with pg.transaction():
                self._apply(conn, pg, first)
                uploaded = self._upload_rows(conn, pg, UPLOAD_BATCH * 20)
        except psycopg.Error as exc:
            if entries_only:
                log.info("entry changes kept on this station only: %s", _reason(exc))
                conn.execute("DELETE FROM site_changes")
                return
            if isinstance(exc, psycopg.errors.UniqueViolation):
                clash = self._name_clash(conn, pg, first)
                if clash:
                    raise DuplicateError(clash) from None
            raise site_error(exc) from None
        except SiteError:
            raise
        finally:
            pg.close()
        conn.execute("DELETE FROM site_changes")
        self._forget(conn, uploaded)

    def _name_clash(self, conn: sqlite3.Connection, pg, first: dict[tuple[str, str], str]) -> str | None:
        """After a refused push: did another station take a name this one meant to add? (Two desks
        adding the same person at once also pick the same new id: say what matters, the name.)"""
        import psycopg

        try:
            for (tbl, pk), op in first.items():
                table = TABLE.get(tbl)
                if table is None or not table.unique_name or op != "I":
                    continue
                row = conn.execute(f"SELECT name FROM {tbl} WHERE id = ?", json.loads(pk)).fetchone()
                if row and pg.execute(f"SELECT 1 FROM {tbl} WHERE lower(name) = lower(%s)", (row[0],)).fetchone():
                    what = {"people": "a person", "doors": "a door", "access_groups": "a group"}[tbl]
                    return f"{what} named '{row[0]}' already exists at the site (added at another station just now)"
        except psycopg.Error:
            return None
        return None

    def _apply(self, conn: sqlite3.Connection, pg, first: dict[tuple[str, str], str]) -> None:
        by_table: dict[str, list[tuple[list, str]]] = {}
        for (tbl, pk), op in first.items():
            by_table.setdefault(tbl, []).append((json.loads(pk), op))
        plans = []
        for table in TABLES:
            cols = self.columns(conn, table)
            for key, op in by_table.get(table.name, ()):
                where = " AND ".join(f"{k} = ?" for k in table.keys)
                row = conn.execute(f"SELECT {', '.join(cols)} FROM {table.name} WHERE {where}", key).fetchone()
                plans.append((table, cols, key, op, row))
        # Deletions first (a name freed and taken again in one transaction), children first.
        for table, cols, key, op, row in reversed(plans):
            if row is None and op != "I":
                where = " AND ".join(f"{k} = %s" for k in table.keys)
                pg.execute(f"DELETE FROM {table.name} WHERE {where}", key)
        for table, cols, key, op, row in plans:
            if row is None:
                continue
            if op == "I" or table.name in ("settings", "credentials"):
                self._upsert_pg(pg, table, cols, row, strict=table.name not in ("settings", "credentials"))
                continue
            sets = [c for c in cols if c not in table.keys]
            if not sets:
                continue
            values = dict(zip(cols, row))
            where = " AND ".join(f"{k} = %s" for k in table.keys)
            cur = pg.execute(f"UPDATE {table.name} SET {', '.join(f'{c} = %s' for c in sets)} WHERE {where}",
                             [values[c] for c in sets] + list(key))
            if cur.rowcount == 0 and table.name != "entries":
                raise SiteError(f"this {table.name[:-1].replace('_', ' ')} was removed or changed at another "
                                f"station meanwhile; this station is being brought up to date: try again")

    @staticmethod
    def _upsert_pg(pg, table: SiteTable, cols: tuple[str, ...], row, strict: bool) -> None:
        marks = ", ".join(["%s"] * len(cols))
        sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({marks})"
        if not strict:
            sets = [c for c in cols if c not in table.keys]
            sql += f" ON CONFLICT ({', '.join(table.keys)}) DO UPDATE SET " + ", ".join(
                f"{c} = EXCLUDED.{c}" for c in sets)
        pg.execute(sql, list(row))

    # -- upload of entries and audit rows ----------------------------------------------------------
    def _upload_rows(self, conn: sqlite3.Connection, pg, limit: int) -> list[tuple[str, str]]:
        """Insert pending outbox rows at the site (inside the caller's site transaction); returns
        the (kind, uid) pairs handled (sent, or gone locally)."""
        done: list[tuple[str, str]] = []
        ecols = self.columns(conn, TABLE["entries"])
        pending = conn.execute("SELECT kind, uid FROM site_outbox LIMIT ?", (limit,)).fetchall()
        entry_uids = [u for k, u in pending if k == "entry"]
        audit_uids = [u for k, u in pending if k == "audit"]
        if entry_uids:
            rows = _rows_by_uid(conn, "entries", ecols, entry_uids)
            marks = ", ".join("(SELECT id FROM people WHERE id = %s)" if c == "person_id" else "%s" for c in ecols)
            # A person removed at the site while this station was offline: keep the entry, unlinked.
            pg.cursor().executemany(
                f"INSERT INTO entries ({', '.join(ecols)}) SELECT {marks} ON CONFLICT (uid) DO NOTHING",
                [[self.station if c == "station" and v is None else v for c, v in zip(ecols, r)] for r in rows])
        if audit_uids:
            rows = _rows_by_uid(conn, "audit", AUDIT_COLUMNS, audit_uids)
            pg.cursor().executemany(
                f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) VALUES ({', '.join(['%s'] * len(AUDIT_COLUMNS))}) "
                f"ON CONFLICT (uid) DO NOTHING",
                [[self.station if c == "station" and v is None else v for c, v in zip(AUDIT_COLUMNS, r)]
                 for r in rows])
        done += [("entry", u) for u in entry_uids] + [("audit", u) for u in audit_uids]
        return done

    @staticmethod
    def _forget(conn: sqlite3.Connection, done: Iterable[tuple[str, str]]) -> None:
        conn.executemany("DELETE FROM site_outbox WHERE kind = ? AND uid = ?", list(done))

    def upload(self, store, pg, batch: int = UPLOAD_BATCH) -> int:
        """Send pending entries and audit rows in batches; returns how many were sent. Each batch
        is forgotten locally only after the site committed it."""
        sent = 0
        while True:
            with store._lock, pg.transaction():
                done = self._upload_rows(store.conn, pg, batch)
            if not done:
                return sent
            with store.transaction(local=True) as conn:
                self._forget(conn, done)
            sent += len(done)

    # -- pull --------------------------------------------------------------------------------------
    def pull(self, store, pg, progress: Callable[[int, int], None] | None = None) -> PullReport:
        """Copy every site change above this station's revision into the replica (one local
        transaction, one consistent site snapshot)."""
        import psycopg

        changed = deleted = size = 0
        with store.transaction(local=True) as conn:
            capture = _state(conn, "capture")
            _set_state(conn, "capture", "0")    # what comes from the site is not sent back to it
            last = int(_state(conn, "rev") or 0)
            top = last
            pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            try:
                with pg.transaction():
                    for rev, tbl, pk in pg.execute(
                            "SELECT rev, tbl, pk FROM tombstones WHERE rev > %s ORDER BY rev", (last,)).fetchall():
                        table = TABLE.get(tbl)
                        if table is not None:
                            where = " AND ".join(f"{k} = ?" for k in table.keys)
                            deleted += conn.execute(f"DELETE FROM {table.name} WHERE {where}", json.loads(pk)).rowcount
                        top = max(top, rev)
                    total = 0
                    if progress:
                        total = sum(pg.execute(f"SELECT count(*) FROM {t.name} WHERE rev > %s", (last,)).fetchone()[0]
                                    for t in TABLES)
                    for table in TABLES:
                        cols = self.columns(conn, table)
                        cur = pg.cursor(name=f"pull_{table.name}")
                        cur.itersize = 2000
                        cur.execute(f"SELECT {', '.join(cols)}, rev FROM {table.name} WHERE rev > %s ORDER BY rev",
                                    (last,))
                        while True:
                            rows = cur.fetchmany(2000)
                            if not rows:
                                break
                            for row in rows:
                                top = max(top, row[-1])
                                size += sum(len(v) if isinstance(v, (bytes, str)) else 8 for v in row)
                                _upsert_local(conn, table, cols, row[:-1], self.station)
                            changed += len(rows)
                            if progress:
                                progress(changed, total)
                        cur.close()
            finally:
                pg.isolation_level = None
            _set_state(conn, "capture", capture)
            _set_state(conn, "rev", str(top))
            _set_state(conn, "last_sync", utc_now())
        return PullReport(changed, deleted, top, size)

    # -- one whole sync ----------------------------------------------------------------------------
    def sync(self, store, pg=None) -> tuple[PullReport, int]:
        """Upload what waits, then pull; ``pg`` an open connection or None for a new one."""
        own = pg is None
        pg = pg or self.connect()
        try:
            sent = self.upload(store, pg)
            report = self.pull(store, pg)
            with store.transaction(local=True) as conn:
                _set_state(conn, "last_contact", utc_now())
            return report, sent
        finally:
            if own:
                pg.close()


def _rows_by_uid(conn: sqlite3.Connection, table: str, cols: Iterable[str], uids: list[str]) -> list:
    out = []
    cols = ", ".join(cols)
    for i in range(0, len(uids), 500):
        chunk = uids[i:i + 500]
        out += conn.execute(f"SELECT {cols} FROM {table} WHERE uid IN ({', '.join('?' * len(chunk))})",
                            chunk).fetchall()
    return out


def _upsert_local(conn: sqlite3.Connection, table: SiteTable, cols: tuple[str, ...], row, station: str) -> None:
    if table.name == "entries":
        # This station's own entries come back from the site: they stay "written here".
        values = dict(zip(cols, row))
        if values.get("station") == station:
            values["station"] = None
        row = [values[c] for c in cols]
    sets = [c for c in cols if c not in table.keys and not (table.name == "entries" and c == "station")]
    sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) " + (
        f"ON CONFLICT ({', '.join(table.keys)}) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in sets)
        if sets else "ON CONFLICT DO NOTHING")
    try:
        conn.execute(sql, list(row))
    except sqlite3.IntegrityError:
        if not table.unique_name:
            raise
        # Another row still holds this name locally; its own new name comes later in this pull.
        values = dict(zip(cols, row))
        conn.execute(f"UPDATE {table.name} SET name = '~' || id || ' ' || name WHERE name = ? AND id != ?",
                     (values["name"], values["id"]))
        conn.execute(sql, list(row))


def _state(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM site_state WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _set_state(conn: sqlite3.Connection, key: str, value: str | None) -> None:
    if value is None:
        conn.execute("DELETE FROM site_state WHERE key = ?", (key,))
    else:
        conn.execute("INSERT INTO site_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                     "SET value = excluded.value", (key, value))


def read_state(conn: sqlite3.Connection) -> dict[str, str]:
    """Everything in ``site_state`` (url, station, rev, capture, last_sync, last_contact)."""
    return dict(conn.execute("SELECT key, value FROM site_state").fetchall())


def set_state(conn: sqlite3.Connection, **values: str | None) -> None:
    for k, v in values.items():
        _set_state(conn, k, v)


def site_version(pg) -> int | None:
    """The faceapp schema version of the database behind ``pg``, or None if it is no site."""
    row = pg.execute("SELECT to_regclass('public.site_meta') IS NOT NULL").fetchone()
    if not row[0]:
        return None
    got = pg.execute("SELECT value FROM site_meta WHERE key = 'schema'").fetchone()
    return int(got[0]) if got else None


def create_schema(pg) -> None:
    """Create the site schema in the empty database behind ``pg`` (one transaction)."""
    from faceapp.store.site_schema import MIGRATIONS

    others = pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    version = site_version(pg)
    if version is not None:
        raise SiteError("this database already holds a faceapp site: join it with: faceapp site join URL")
    if others:
        raise SiteError(f"this database already holds {others} other table(s); give faceapp an empty database "
                        f"(createdb faceapp)")
    with pg.transaction():
        for step in MIGRATIONS:
            pg.execute(step)
        pg.execute("INSERT INTO site_meta (key, value) VALUES ('schema', %s), ('created', %s)",
                   (str(SCHEMA_VERSION), utc_now()))


def push_everything(conn: sqlite3.Connection, pg, link: SiteLink) -> dict[str, int]:
    """Insert every replicated row of this replica into the (new, empty) site: the first station
    of a site brings its people, doors, groups and settings (``site create --import-local``)."""
    counts = {}
    with pg.transaction():
        for table in TABLES:
            if table.name == "entries":
                continue
            cols = link.columns(conn, table)
            rows = conn.execute(f"SELECT {', '.join(cols)} FROM {table.name}").fetchall()
            if table.name == "settings":
                from faceapp.store.migrations import SITE_SETTINGS

                rows = [r for r in rows if r[0] in SITE_SETTINGS]
            with pg.cursor() as cur:
                cur.executemany(f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES "
                                f"({', '.join(['%s'] * len(cols))})", [list(r) for r in rows])
            counts[table.name] = len(rows)
    return counts


def wait_notifies(pg, timeout: float) -> bool:
    """Wait up to ``timeout`` s for a site notification on ``pg`` (LISTENing); True if one came."""
    got = False
    deadline = time.monotonic() + timeout
    for _ in pg.notifies(timeout=max(0.0, deadline - time.monotonic()), stop_after=1):
        got = True
    return got
