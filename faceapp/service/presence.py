"""Presence: who is in today (from sightings, not only logged entries), the daily report's last
out as the last time seen, and the weekly timesheet.

A running station calls :meth:`SightingRecorder.observe` with each frame's faces; it writes a
person's sighting when a new appearance (track) starts and then every ``every`` seconds while
they stay in view, so the database sees a few writes a minute, not one per frame."""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Iterable

from faceapp.core.csvexport import DayAttendance, neutralize
from faceapp.core.errors import FaceAppError, StoreError
from faceapp.core.timesheet import Presence, Shift, shifts, week_days
from faceapp.store.attendance import AttendanceStore, EntryQuery, utc_iso
from faceapp.store.db import Store
from faceapp.store.presence import PresenceStore, Sighting

log = logging.getLogger(__name__)

SIGHTING_EVERY = 10.0  # seconds between two writes for a person who stays in view


class SightingRecorder:
    """Turns the faces on screen into sightings (see the module docstring)."""

    def __init__(self, store: Store, door: str, every: float = SIGHTING_EVERY, tz: tzinfo | None = None) -> None:
        self._presence = PresenceStore(store)
        self.door = door
        self.every = every
        self.tz = tz
        self._last: dict[int, tuple[int, float]] = {}  # person -> (track, monotonic time written)

    def observe(self, faces: Iterable, wall: datetime, now: float | None = None) -> int:
        """Record the known faces of one frame; returns how many sightings were written."""
        now = time.monotonic() if now is None else now
        written = 0
        for f in faces:
            pid = getattr(f, "candidate_id", None)
            if pid is None or not f.known or f.decision == "pending":
                continue
            last = self._last.get(pid)
            new_visit = last is None or last[0] != f.track_id
            if not new_visit and now - last[1] < self.every:
                continue
            try:
                self._presence.record(wall.astimezone(self.tz).date(), pid, f.candidate_name or f"person {pid}",
                                      self.door, wall, new_visit and (last is None or now - last[1] >= self.every))
            except (StoreError, sqlite3.Error) as exc:
                log.warning("could not record that %s was seen: %s", f.candidate_name, exc)
                continue
            self._last[pid] = (f.track_id, now)
            written += 1
        return written


@dataclass(frozen=True)
class PresenceRow:
    """One person today: first and last seen (over all doors), where last, how many appearances."""

    person_id: int | None
    person: str
    first_seen: datetime
    last_seen: datetime
    last_door: str
    doors: tuple[str, ...]
    visits: int


def presence_today(store: Store, day: date | None = None, tz: tzinfo | None = None) -> list[PresenceRow]:
    """Everyone seen on ``day`` (local; default today), newest sighting first."""
    day = day or datetime.now(tz).date()
    by_person: dict[object, list[Sighting]] = {}
    for s in PresenceStore(store).sightings(day):
        by_person.setdefault(s.person_id if s.person_id is not None else s.person_name, []).append(s)
    rows = []
    for items in by_person.values():
        last = max(items, key=lambda s: s.last_seen)
        rows.append(PresenceRow(last.person_id, last.person_name, min(s.first_seen for s in items), last.last_seen,
                                last.door, tuple(dict.fromkeys(s.door for s in items)), sum(s.visits for s in items)))
    rows.sort(key=lambda r: r.last_seen, reverse=True)
    return rows


def with_last_seen(days: list[DayAttendance], store: Store, tz: tzinfo | None = None) -> list[DayAttendance]:
    """The daily report with last out = the last time the person was seen that day (if later
    than their last entry): a person who stays on camera is still in."""
    if not days:
        return days
    seen: dict[tuple[date, int], datetime] = {}
    for s in PresenceStore(store).sightings(min(d.day for d in days), max(d.day for d in days)):
        if s.person_id is not None:
            key = (s.day, s.person_id)
            seen[key] = max(seen.get(key, s.last_seen), s.last_seen)
    out = []
    for d in days:
        last = seen.get((d.day, d.person_id)) if d.person_id is not None else None
        if last is not None and last.astimezone(tz) > d.last_out:
            d = replace(d, last_out=last.astimezone(tz))
        out.append(d)
    return out


# -- weekly timesheet -------------------------------------------------------------------------------
TIMESHEET_HEADER = ("person", "person_id", "employee_id", "department", "date", "first_in", "last_out", "hours")


def parse_week(text: str) -> date:
    """The Monday of an ISO week 'YYYY-Www' (e.g. 2026-W49); FaceAppError if malformed."""
    try:
        year, week = text.strip().upper().split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    except (ValueError, AttributeError) as exc:
        raise FaceAppError(f"bad week '{text}': use YYYY-Www, e.g. 2026-W49") from exc


def week_presence(store: Store, monday: date, tz: tzinfo | None = None) -> list[Presence]:
    """Every moment someone was let in or seen in the week (and a day either side, so night
    shifts crossing the week's edges pair up)."""
    start, end = monday - timedelta(days=1), monday + timedelta(days=8)
    since = datetime.combine(start, datetime.min.time(), tz).astimezone(timezone.utc)
    until = datetime.combine(end, datetime.min.time(), tz).astimezone(timezone.utc)
    entries = AttendanceStore(store).entries(EntryQuery(since=utc_iso(since), until=utc_iso(until)))
    out = [Presence(e.person_id, e.person_name or "", e.when.astimezone(tz)) for e in entries
           if e.decision == "granted" and e.person_id is not None]
    for s in PresenceStore(store).sightings(start, end):
        if s.person_id is not None:
            out += [Presence(s.person_id, s.person_name, s.first_seen.astimezone(tz)),
                    Presence(s.person_id, s.person_name, s.last_seen.astimezone(tz))]
    return out


def timesheet(store: Store, monday: date, tz: tzinfo | None = None) -> list[Shift]:
    """The week's shifts (first in to last out, a night shift as one), per person, by start day."""
    days = set(week_days(monday))
    return [s for s in shifts(week_presence(store, monday, tz)) if s.day in days]


def timesheet_rows(store: Store, monday: date, tz: tzinfo | None = None) -> list[list[str]]:
    """CSV rows: one per person and shift, then one 'week total' row per person."""
    people = {p.id: p for p in store.list_people()}
    rows: list[list[str]] = []
    by_person: dict[int, list[Shift]] = {}
    for s in timesheet(store, monday, tz):
        by_person.setdefault(s.person_id, []).append(s)
    for pid, items in sorted(by_person.items(), key=lambda kv: kv[1][0].person.casefold()):
        p = people.get(pid)
        emp, dept = (p.employee_id or "", p.department or "") if p is not None else ("", "")
        name = p.name if p is not None else items[0].person
        for s in items:
            rows.append([neutralize(v) for v in (name, pid, emp, dept, s.day.isoformat(),
                                                 s.start.isoformat(timespec="seconds"),
                                                 s.end.isoformat(timespec="seconds"), f"{s.hours:.2f}")])
        total = sum(s.hours for s in items)
        rows.append([neutralize(v) for v in (name, pid, emp, dept, "week total", "", "", f"{total:.2f}")])
    return rows


def export_timesheet(app, path: Path | str, week: str, bom: bool = False, force: bool = False) -> int:
    """Write the weekly timesheet of ``week`` ('YYYY-Www') as CSV, audited; returns the row count."""
    from faceapp.service.attendance import write_csv_file

    monday = parse_week(week)
    app.check_output(path, "csv", force)
    n = write_csv_file(path, TIMESHEET_HEADER, timesheet_rows(app.store, monday), bom)
    app.audit("log.export", {"path": str(Path(path)), "rows": n, "kind": "timesheet", "week": week})
    return n
