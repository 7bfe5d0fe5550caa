"""Weekly timesheet logic (pure): moments a person was let in or seen become shifts, first in
to last out. A gap of more than SHIFT_GAP starts a new shift, so a night shift
(in 22:00, out 06:00) is one shift, counted on the day it started, not split over two days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable

SHIFT_GAP = timedelta(hours=10)  # shorter than any rest between two shifts


@dataclass(frozen=True)
class Presence:
    person_id: int
    person: str
    when: datetime  # aware, local


@dataclass(frozen=True)
class Shift:
    person_id: int
    person: str
    start: datetime
    end: datetime

    @property
    def day(self) -> date:
        return self.start.date()

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600.0


def shifts(moments: Iterable[Presence], gap: timedelta = SHIFT_GAP) -> list[Shift]:
    """Group each person's moments into shifts (sorted by person, then start)."""
    by_person: dict[int, list[Presence]] = {}
    for m in moments:
        by_person.setdefault(m.person_id, []).append(m)
    out: list[Shift] = []
    for pid, items in by_person.items():
        items.sort(key=lambda m: m.when)
        start = prev = items[0]
        for m in items[1:]:
            if m.when - prev.when > gap:
                out.append(Shift(pid, prev.person, start.when, prev.when))
                start = m
            prev = m
        out.append(Shift(pid, prev.person, start.when, prev.when))
    out.sort(key=lambda s: (s.person.casefold(), s.person_id, s.start))
    return out


def week_days(monday: date) -> list[date]:
    return [monday + timedelta(days=i) for i in range(7)]
