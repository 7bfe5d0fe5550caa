"""The audit log: who changed what, when (table ``audit`` of migration v3).

Rows are append-only: SQLite triggers refuse UPDATE and DELETE, and this module has no
way to do either. Changes to people, photos, templates and settings are audited by
:class:`faceapp.store.db.Store` inside the transaction that makes them (so a change and its
audit row are written together or not at all); other administrative actions (exports,
backups, restores, retention purges, logins) call :meth:`faceapp.service.app.App.audit`
(or :meth:`faceapp.store.db.Store.audit`). :class:`AuditLog` reads the rows back.

``details`` is JSON text; for edits it maps each changed field to ``[old, new]``.
``target`` names what was acted on, e.g. ``person:12`` or ``photo:40``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from faceapp.core.redact import redact_text, redact_value
from faceapp.store.common import default_actor, os_user, utc_now  # noqa: F401 (re-exported)

AUDIT_HEADER = ("time", "actor", "action", "target", "details", "id")


@dataclass(frozen=True)
class AuditRecord:
    """One audit row. ``time`` is UTC ISO 8601; ``details`` is JSON text."""

    id: int
    time: str
    actor: str
    action: str
    target: str | None
    details: str

    @property
    def changes(self) -> dict[str, Any]:
        """``details`` parsed (an empty dict if it is not a JSON object)."""
        try:
            value = json.loads(self.details)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def describe(self) -> str:
        """The details as one readable line: ``name: 'Ann' → 'Anne', photos: 3``."""
        parts = []
        for key, value in self.changes.items():
            if isinstance(value, list) and len(value) == 2:
                parts.append(f"{key}: {_short(value[0])} → {_short(value[1])}")
            elif value is None:
                continue  # an empty field at creation says nothing
            else:
                parts.append(f"{key}: {_short(value)}")
        return ", ".join(parts)


def _short(value: Any, limit: int = 80) -> str:
    if value is None:
        text = "—"
    elif isinstance(value, str):
        text = f"'{value}'"
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"




def write_audit(conn: sqlite3.Connection, actor: str, action: str, target: str | None = None,
                details: dict[str, Any] | None = None) -> int:
    """Append one row using ``conn`` (call inside the transaction of the change it records)."""
    # Secrets in URLs (camera addresses) never reach the append-only log: it cannot be cleaned later.
    text = json.dumps(redact_value(details or {}), ensure_ascii=False, sort_keys=True, default=str)
    cur = conn.execute("INSERT INTO audit (time, actor, action, target, details) VALUES (?, ?, ?, ?, ?)",
                       (utc_now(), actor or "unknown", action, redact_text(target) if target else target, text))
    return int(cur.lastrowid)


class _Queryable(Protocol):
    def query(self, sql: str, params: Sequence | dict = ()) -> list[dict]: ...


class AuditLog:
    """Reading the audit rows of one open store (anything with ``query``, e.g. ``Store``)."""

    def __init__(self, store: _Queryable) -> None:
        self.store = store

    def records(self, action: str | None = None, target: str | None = None, since: str | None = None,
                until: str | None = None, search: str | None = None, limit: int | None = None,
                newest_first: bool = True) -> list[AuditRecord]:
        """Rows matching the filters. ``action`` matches exactly or as a prefix ending in '.'
        (``person.`` gives every person action); ``search`` looks into actor, target and details."""
        where, params = [], []
        if action:
            if action.endswith("."):
                where.append("action LIKE ? ESCAPE '\\'")
                params.append(_escape_like(action) + "%")
            else:
                where.append("action = ?")
                params.append(action)
        if target:
            where.append("target = ?")
            params.append(target)
        if since:
            where.append("time >= ?")
            params.append(since)
        if until:
            where.append("time < ?")
            params.append(until)
        if search:
            like = "%" + _escape_like(search) + "%"
            where.append("(actor LIKE ? ESCAPE '\\' OR IFNULL(target,'') LIKE ? ESCAPE '\\' "
                         "OR details LIKE ? ESCAPE '\\' OR action LIKE ? ESCAPE '\\')")
            params += [like, like, like, like]
        sql = "SELECT id, time, actor, action, target, details FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        order = "DESC" if newest_first else "ASC"
        sql += f" ORDER BY id {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [AuditRecord(r["id"], r["time"], r["actor"], r["action"], r["target"], r["details"])
                for r in self.store.query(sql, params)]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# Fields of audit details that identify a person; after the person is removed the rows about them
# keep who did what, when, and the person's id, but no longer say who the person was (issue #11).
PERSONAL_FIELDS = ("name", "employee_id", "department")


def removed_label(person_id: int) -> str:
    return f"removed person #{person_id}"


def anonymise_person(conn: sqlite3.Connection, person_id: int) -> int:
    """Replace name, employee id and department in the audit rows about ``person_id`` by
    "removed person #ID" (call inside the removal's transaction). The audit log is otherwise
    append-only: its UPDATE trigger is lifted for these rows only, inside the same transaction,
    and put back before it commits. Returns the number of rows changed."""
    label = removed_label(person_id)
    changed = []
    for rid, details in conn.execute("SELECT id, details FROM audit WHERE target = ?", (f"person:{person_id}",)):
        try:
            d = json.loads(details)
        except ValueError:
            continue
        if not isinstance(d, dict) or not any(k in d for k in PERSONAL_FIELDS):
            continue
        for key in PERSONAL_FIELDS:
            if key in d:
                v = d[key]
                d[key] = [None if x is None else label for x in v] if isinstance(v, list) else (
                    None if v is None else label)
        changed.append((json.dumps(d, ensure_ascii=False, sort_keys=True), rid))
    if not changed:
        return 0
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'audit_no_update'").fetchone()
    if row is not None:
        conn.execute("DROP TRIGGER audit_no_update")
    conn.executemany("UPDATE audit SET details = ? WHERE id = ?", changed)
    if row is not None:
        conn.execute(row[0])
    return len(changed)
