"""Sightings: who was seen on which local day at which door, first and last, and how many times
(separate appearances). Written by a running station a few times a minute per person, read by
the Presence page, the daily report (last out = last seen) and the weekly timesheet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from faceapp.store.db import Store


@dataclass(frozen=True)
class Sighting:
    day: date
    person_id: int | None
    person_name: str
    door: str
    first_seen: datetime  # aware UTC
    last_seen: datetime
    visits: int


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


class PresenceStore:
    """The ``sightings`` table of one faceapp database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, day: date, person_id: int, name: str, door: str, when: datetime, new_visit: bool) -> None:
        """``person_id`` seen at ``door`` at ``when`` (aware); ``new_visit`` for a new appearance."""
        t = when.isoformat(timespec="milliseconds")
        with self.store.transaction() as conn:
            cur = conn.execute(
                "UPDATE sightings SET last_seen = max(last_seen, ?), first_seen = min(first_seen, ?), "
                "visits = visits + ?, person_name = ? WHERE day = ? AND person_id = ? AND door = ?",
                (t, t, 1 if new_visit else 0, name, day.isoformat(), person_id, door))
            if cur.rowcount == 0:
                conn.execute("INSERT INTO sightings (day, person_id, person_name, door, first_seen, last_seen, visits) "
                             "VALUES (?, ?, ?, ?, ?, ?, 1)", (day.isoformat(), person_id, name, door, t, t))

    def sightings(self, since: date, until: date | None = None) -> list[Sighting]:
        """Rows of the local days ``since`` .. ``until`` (inclusive; default: that one day)."""
        until = until or since
        rows = self.store.query(
            "SELECT day, person_id, person_name, door, first_seen, last_seen, visits FROM sightings "
            "WHERE day >= ? AND day <= ? ORDER BY day, person_name COLLATE NOCASE, door",
            (since.isoformat(), until.isoformat()))
        return [Sighting(date.fromisoformat(r["day"]), r["person_id"], r["person_name"], r["door"],
                         _utc(r["first_seen"]), _utc(r["last_seen"]), r["visits"]) for r in rows]

    def purge_before(self, day: date) -> int:
        """Delete sightings older than ``day`` (retention); returns how many."""
        with self.store.transaction() as conn:
            return conn.execute("DELETE FROM sightings WHERE day < ?", (day.isoformat(),)).rowcount
