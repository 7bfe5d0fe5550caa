"""Spreadsheet-safe CSV of the entry log and of the daily attendance report (pure logic).

- One header row, then one row per entry; RFC 4180 quoting by the csv module (names with
  commas, quotes or non-ASCII letters survive a round trip).
- Times are ISO 8601 in local time with the UTC offset ("2024-05-02T08:59:12+02:00"): the
  database stores UTC; a reader sees their wall clock and still has an exact instant.
- Formula injection: a text cell starting with ``= + - @``, a tab or a carriage return would be
  run as a formula by Excel/LibreOffice; it gets a leading ``'`` so it shows as text.
- UTF-8, optionally with a byte-order mark so that Excel detects the encoding.

Writing the file (temp file + rename) is the service layer's job; here rows become text.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timezone, tzinfo
from typing import Iterable, Iterator, Protocol, Sequence

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

ENTRY_HEADER = ("time", "door", "person", "person_id", "employee_id", "department", "decision", "distance",
                "reason", "entry_id")
REPORT_HEADER = ("date", "person", "person_id", "employee_id", "department", "first_in", "last_out", "entries",
                 "doors")
# person id -> (employee id, department), for the columns above ("" when unknown or deleted)
PeopleInfo = dict[int, tuple[str, str]]


def person_info(people: PeopleInfo | None, person_id: int | None) -> tuple[str, str]:
    """(employee id, department) of a person, '' for strangers and deleted people."""
    if people is None or person_id is None:
        return "", ""
    return people.get(person_id, ("", ""))


class EntryLike(Protocol):
    """What the export needs of a logged entry (the store's EntryRecord has these)."""

    id: int
    time: str              # UTC ISO 8601
    door: str
    person_id: int | None
    person_name: str | None
    decision: str
    distance: float | None
    reason: str | None


def neutralize(value: object) -> str:
    """The cell text, with a leading ``'`` if a spreadsheet would take it for a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def parse_utc(text: str) -> datetime:
    """An aware datetime from a stored ISO 8601 time (naive values are taken as UTC)."""
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def local_iso(utc_text: str, tz: tzinfo | None = None) -> str:
    """A stored UTC time as local ISO 8601 with offset, to the second."""
    return parse_utc(utc_text).astimezone(tz).isoformat(timespec="seconds")


def format_distance(distance: float | None) -> str:
    """Four decimals; never negative (1 - cosine can be -1e-7 for identical vectors), so a
    number cell can never look like a formula."""
    if distance is None or distance != distance or distance in (float("inf"), float("-inf")):
        return ""
    return f"{max(0.0, float(distance)):.4f}"


def entry_row(e: EntryLike, tz: tzinfo | None = None, people: PeopleInfo | None = None) -> list[str]:
    """One CSV row (in ENTRY_HEADER order) of an entry."""
    return [neutralize(v) for v in (
        local_iso(e.time, tz), e.door, e.person_name or "", "" if e.person_id is None else e.person_id,
        *person_info(people, e.person_id), e.decision, format_distance(e.distance), e.reason or "", e.id)]


@dataclass(frozen=True)
class DayAttendance:
    """One person on one local day: when they first came in and when they were last let through."""

    day: date
    person_id: int | None
    person: str
    first_in: datetime
    last_out: datetime
    entries: int
    doors: tuple[str, ...]

    def row(self, people: PeopleInfo | None = None) -> list[str]:
        return [neutralize(v) for v in (
            self.day.isoformat(), self.person, "" if self.person_id is None else self.person_id,
            *person_info(people, self.person_id), self.first_in.isoformat(timespec="seconds"), self.last_out.isoformat(timespec="seconds"),
            self.entries, ", ".join(self.doors))]


def daily_attendance(entries: Iterable[EntryLike], tz: tzinfo | None = None) -> list[DayAttendance]:
    """First-in / last-out per person per local day, from *granted* entries only (a denied
    person did not come in). People are told apart by id, or by name for deleted people.
    Sorted by day, then name."""
    groups: dict[tuple[date, object], list[tuple[datetime, EntryLike]]] = {}
    for e in entries:
        if e.decision != "granted" or (e.person_id is None and not e.person_name):
            continue
        local = parse_utc(e.time).astimezone(tz)
        key = (local.date(), e.person_id if e.person_id is not None else f"name:{e.person_name}")
        groups.setdefault(key, []).append((local, e))
    out = []
    for (day, _), items in groups.items():
        items.sort(key=lambda x: x[0])
        doors = tuple(dict.fromkeys(e.door for _, e in items))
        last = items[-1][1]
        out.append(DayAttendance(day, last.person_id, last.person_name or "", items[0][0], items[-1][0],
                                 len(items), doors))
    out.sort(key=lambda d: (d.day, d.person.casefold(), d.person_id or 0))
    return out


def write_csv(stream: io.TextIOBase, header: Sequence[str], rows: Iterable[Sequence[str]], bom: bool = False) -> int:
    """Write the header and rows to a text stream opened with ``newline=""``; returns the row count."""
    if bom:
        stream.write(BOM)
    writer = csv.writer(stream, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(header)
    n = 0
    for row in rows:
        writer.writerow(row)
        n += 1
    return n


def entries_csv_rows(entries: Iterable[EntryLike], tz: tzinfo | None = None,
                     people: PeopleInfo | None = None) -> Iterator[list[str]]:
    for e in entries:
        yield entry_row(e, tz, people)


def report_csv_rows(days: Iterable[DayAttendance], people: PeopleInfo | None = None) -> Iterator[list[str]]:
    for d in days:
        yield d.row(people)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[str]], bom: bool = False) -> str:
    """The whole CSV as one string (small exports, tests)."""
    buf = io.StringIO(newline="")
    write_csv(buf, header, rows, bom)
    return buf.getvalue()
