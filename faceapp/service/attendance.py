"""Attendance use cases shared by the CLI and the GUI: the headless station (`watch`), CSV
exports of the log and of the daily report, date filters, and snapshot retention."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, time as dtime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Callable, Iterable, Sequence

from faceapp.core.csvexport import (
    ENTRY_HEADER,
    REPORT_HEADER,
    PeopleInfo,
    daily_attendance,
    entries_csv_rows,
    report_csv_rows,
    write_csv,
)
from faceapp.core.errors import FaceAppError, ImageError, NotFoundError
from faceapp.core.fsutil import replacing
from faceapp.service.app import App
from faceapp.service.presence import with_last_seen
from faceapp.store.attendance import AttendanceStore, EntryQuery, utc_iso
from faceapp.store.db import Store

log = logging.getLogger(__name__)


def purge_snapshots(store: Store, days: int, now: datetime | None = None) -> int:
    """Remove snapshots of entries older than ``days`` days (the entries stay). ``days`` <= 0
    keeps them forever. Returns how many were removed. Stations enforce retention through
    :func:`faceapp.service.privacy.apply_retention` (snapshots and entries, audited); this only
    handles the snapshots, unaudited."""
    if days <= 0:
        return 0
    now = now or datetime.now(timezone.utc)
    n = AttendanceStore(store).purge_snapshots(utc_iso(now - timedelta(days=days)))
    if n:
        log.info("removed %d snapshot(s) older than %d days", n, days)
    return n


# -- dates -----------------------------------------------------------------------------------
def parse_date_bound(text: str | None, end: bool = False, tz: tzinfo | None = None,
                     today: date | None = None) -> str | None:
    """A --from/--to value as a UTC bound for :class:`EntryQuery`.

    A date (2024-05-31, "today", "yesterday") is a local day: as a start it means its midnight,
    as an end the following midnight, so ``--to`` includes that whole day. A date with a time
    (2024-05-31T08:00, naive = local time) is used as is."""
    if text is None or not str(text).strip():
        return None
    t = str(text).strip()
    today = today or datetime.now(tz).date()
    named = {"today": today, "yesterday": today - timedelta(days=1)}
    try:
        if t.lower() in named:
            day = named[t.lower()]
        elif len(t) <= 10:
            day = date.fromisoformat(t)
        else:
            dt = datetime.fromisoformat(t)
            return utc_iso(dt if dt.tzinfo else _localize(dt, tz))
    except ValueError:
        raise FaceAppError(f"'{t}' is not a date like 2024-05-31 (or 2024-05-31T08:00)") from None
    if end:
        day += timedelta(days=1)
    return utc_iso(_localize(datetime.combine(day, dtime()), tz))


def _localize(naive: datetime, tz: tzinfo | None) -> datetime:
    return naive.replace(tzinfo=tz) if tz is not None else naive.astimezone()


def entry_query(since: str | None = None, until: str | None = None, door: str | None = None,
                person: str | None = None, decision: str | None = None, store: Store | None = None,
                tz: tzinfo | None = None, limit: int | None = None, newest_first: bool = False) -> EntryQuery:
    """An :class:`EntryQuery` from user filters (dates as for :func:`parse_date_bound`). A person
    given by name also matches entries logged before a rename (through their id)."""
    person_id = None
    name = person
    if person and store is not None:
        try:
            found = store.find_person(person)
            person_id, name = found.id, (person if not person.strip().isdigit() else found.name)
        except NotFoundError:
            pass  # deleted people are still in the log by name
    if decision and decision not in ("granted", "denied", "unknown"):
        raise FaceAppError(f"decision must be granted, denied or unknown, not '{decision}'")
    return EntryQuery(since=parse_date_bound(since, tz=tz), until=parse_date_bound(until, end=True, tz=tz),
                      door=door or None, person=name or None, person_id=person_id, decision=decision or None,
                      limit=limit, newest_first=newest_first)


# -- CSV ---------------------------------------------------------------------------------------
def write_csv_file(path: Path | str, header: Sequence[str], rows: Iterable[Sequence[str]], bom: bool = False) -> int:
    """Write a CSV atomically: a temp file in the same folder, flushed, then renamed over ``path``.
    A crash or a full disk never leaves a half-written file under the final name."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FaceAppError(f"folder '{path.parent}' does not exist")
    try:
        with replacing(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
            n = write_csv(fh, header, rows, bom)
    except PermissionError as exc:
        raise FaceAppError(f"cannot write '{path}': permission denied (is it open in a spreadsheet?)") from exc
    except OSError as exc:
        raise FaceAppError(f"cannot write '{path}': {exc.strerror or exc}") from exc
    return n


def people_info(store: Store) -> PeopleInfo:
    """Employee id and department of everyone enrolled, for the CSV columns."""
    return {p.id: (p.employee_id or "", p.department or "") for p in store.list_people()}


def export_entries(store: Store, path: Path | str, query: EntryQuery = EntryQuery(), bom: bool = False,
                   tz: tzinfo | None = None) -> int:
    """The entries matching ``query`` as CSV (oldest first); returns the number of rows."""
    entries = AttendanceStore(store).entries(_chronological(query))
    return write_csv_file(path, ENTRY_HEADER, entries_csv_rows(entries, tz, people_info(store)), bom)


def export_report(store: Store, path: Path | str, query: EntryQuery = EntryQuery(), bom: bool = False,
                  tz: tzinfo | None = None) -> int:
    """The daily attendance report (first in / last out per person per local day) as CSV."""
    entries = AttendanceStore(store).entries(_chronological(query))
    days = with_last_seen(daily_attendance(entries, tz), store, tz)  # last out = last seen, not last entry
    return write_csv_file(path, REPORT_HEADER, report_csv_rows(days, people_info(store)), bom)


EXPORTS = {"entries": export_entries, "report": export_report}


def export_log(app: App, kind: str, path: Path | str, query: EntryQuery = EntryQuery(), bom: bool = False,
               force: bool = False) -> int:
    """Write the entries (``kind="entries"``) or the daily report (``"report"``) as CSV and audit
    the export: every caller, CLI or window, leaves the same audit row. Returns the row count.
    ``force`` allows replacing an existing file that is not a CSV (see :meth:`App.check_output`)."""
    app.check_output(path, "csv", force)
    n = EXPORTS[kind](app.store, path, query, bom=bom, tz=app.site_tz)
    app.audit("log.export", {"path": str(Path(path)), "rows": n, "kind": kind})
    return n


def _chronological(query: EntryQuery) -> EntryQuery:
    return replace(query, newest_first=False, limit=None)


# -- the headless station -------------------------------------------------------------------------
def resolve_door(app: App, name: str | None) -> str:
    """The door a station logs for: ``name`` or the settings' door. Once doors are configured it
    must be one of them (a typo must not create an unrestricted door); before that any name works."""
    door = " ".join((name or app.settings.door).split())
    doors = AttendanceStore(app.store).doors()
    if not doors:
        return door
    for d in doors:
        if d.name.casefold() == door.casefold():
            return d.name
    names = ", ".join(d.name for d in doors)
    raise NotFoundError(f"no door called '{door}' (doors: {names}); create it with: faceapp door add '{door}'")


@dataclass(frozen=True)
class WatchSummary:
    """What a `watch` run did."""

    source: str
    door: str
    frames: int
    seconds: float
    stopped_by: str           # eof | time | stopped | interrupted
    events: tuple             # tuple[EntryEvent, ...]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def count(self, decision: str) -> int:
        return sum(1 for e in self.events if e.decision == decision)

    def describe(self) -> str:
        counts = ", ".join(f"{self.count(d)} {d}" for d in ("granted", "denied", "unknown"))
        return (f"{self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} fps) from {self.source}, "
                f"door '{self.door}'; {len(self.events)} entries: {counts} (stopped: {self.stopped_by})")


def stop_reason(should_stop: Callable[[], bool] | None, seconds: float | None, t0: float) -> str | None:
    """Why a watch loop started at monotonic ``t0`` must stop now ("stopped", "time"), or None."""
    if should_stop is not None and should_stop():
        return "stopped"
    if seconds is not None and time.monotonic() - t0 >= seconds:
        return "time"
    return None


def watch(app: App, source, door: str | None = None, seconds: float | None = None,
          on_event: Callable | None = None, should_stop: Callable[[], bool] | None = None,
          log_entries: bool = True) -> WatchSummary:
    """Run the recognition pipeline over a source without a window, logging entries.

    ``source`` is a ``--camera``-style text (webcam number, file, folder, URL) or a FrameSource.
    Files and folders run as fast as possible and stop at their end; live sources reconnect
    after failures. Stops after ``seconds`` (wall clock) if given, or when ``should_stop()``.
    ``on_event(EntryEvent)`` is called for every entry as it happens."""
    from faceapp.capture.sources import ResilientSource, open_source
    from faceapp.service.pipeline import Pipeline

    door = resolve_door(app, door)
    app.engine  # noqa: B018 - load the models now: a missing model is an error, not a frame failure
    if isinstance(source, str):
        spec = source
        src = open_source(spec, loop=False, realtime=False)
        if src.live:
            src = ResilientSource(lambda: open_source(spec, loop=False, realtime=False))
    else:
        src = source
    src.open()
    description = src.description
    timer = None
    if seconds is not None and isinstance(src, ResilientSource):
        timer = threading.Timer(max(0.0, seconds), src.stop)   # a reconnect backoff would not return
        timer.daemon = True
        timer.start()
    pipeline = Pipeline(app, door=door, log_entries=log_entries)
    events: list = []
    frames = 0
    stopped_by = "eof"
    t0 = time.monotonic()
    try:
        while True:
            reason = stop_reason(should_stop, seconds, t0)
            if reason:
                stopped_by = reason
                break
            frame = src.read()
            description = src.description
            if frame is None:
                if seconds is not None and time.monotonic() - t0 >= seconds:
                    stopped_by = "time"
                break
            try:
                result = pipeline.process(frame)
            except ImageError as exc:   # one unusable frame must not end the station
                log.warning("frame %d skipped: %s", frame.index, exc)
                continue
            frames += 1
            for ev in result.events:
                events.append(ev)
                if on_event is not None:
                    on_event(ev)
    except KeyboardInterrupt:
        stopped_by = "interrupted"
    finally:
        if timer is not None:
            timer.cancel()
        src.close()
    return WatchSummary(description, door, frames, time.monotonic() - t0, stopped_by, tuple(events))
