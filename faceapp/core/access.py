"""Access decisions: which enrolled person may pass which door, and when.

People belong to access groups; a door admits groups, each optionally only within
weekly time windows, and the door itself may have opening hours that apply to everyone.
Rules, in order:

1. Before any door is configured, every door admits every enrolled person. Once doors exist,
   a door that is not one of them admits nobody (a typo or a removed door must not open).
2. Outside the door's own hours (if it has any) everyone is denied.
3. A door with no groups admits every enrolled person.
4. Otherwise the person must belong to one of the door's groups whose hours (if any)
   include the current local time.

Unknown faces are never granted; that decision is made by the caller ("unknown").
Pure logic: times are aware datetimes, judged in local time (``tz=None`` means the
machine's zone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from faceapp.core.errors import FaceAppError

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ALL_DAYS = frozenset(range(7))
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


class AccessRuleError(FaceAppError):
    """An opening-hours text or an access rule the user typed is not valid."""


@dataclass(frozen=True)
class TimeWindow:
    """Days of the week (0 = Monday) and a local time span in minutes since midnight.

    ``end`` may be 1440 (24:00). An ``end`` before ``start`` runs overnight: the part after
    midnight belongs to the day the window started on ("Fri 22:00-06:00" covers Saturday 05:00)."""

    days: frozenset[int]
    start: int = 0
    end: int = 1440

    @property
    def overnight(self) -> bool:
        return self.end < self.start

    def contains(self, local: datetime) -> bool:
        """Is this local wall-clock time inside the window?"""
        minute = local.hour * 60 + local.minute
        day = local.weekday()
        if not self.overnight:
            return day in self.days and self.start <= minute < self.end
        return (day in self.days and minute >= self.start) or ((day - 1) % 7 in self.days and minute < self.end)

    def __str__(self) -> str:
        days = format_days(self.days)
        if self.start == 0 and self.end == 1440:
            return days
        return f"{days} {_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_days(days: frozenset[int]) -> str:
    """Compact day list: "daily", "Mon-Fri", "Mon,Wed,Sat-Sun"."""
    if days == _ALL_DAYS:
        return "daily"
    runs: list[list[int]] = []
    for d in sorted(days):
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}")
        else:
            parts.extend(DAY_NAMES[d] for d in run)
    return ",".join(parts)


def _parse_day(word: str, spec: str) -> int:
    w = word.strip().lower()
    for i, full in enumerate(_FULL_DAY_NAMES):
        if len(w) >= 2 and full.startswith(w):
            return i
    raise AccessRuleError(f"'{word}' is not a day of the week in '{spec}' (use Mon, Tue, ... Sun)")


def _parse_days(text: str, spec: str) -> frozenset[int]:
    t = text.strip().lower()
    if t in ("daily", "everyday", "all", "*"):
        return _ALL_DAYS
    if t in ("weekdays", "workdays"):
        return frozenset(range(5))
    if t in ("weekend", "weekends"):
        return frozenset((5, 6))
    days: set[int] = set()
    for part in t.split(","):
        if not part.strip():
            raise AccessRuleError(f"empty day in '{spec}'")
        if "-" in part:
            a, b = part.split("-", 1)
            first, last = _parse_day(a, spec), _parse_day(b, spec)
            d = first
            while True:  # Fri-Mon wraps over the weekend
                days.add(d)
                if d == last:
                    break
                d = (d + 1) % 7
        else:
            days.add(_parse_day(part, spec))
    return frozenset(days)


def _parse_time(text: str, spec: str) -> int:
    m = _TIME.match(text.strip())
    if not m:
        raise AccessRuleError(f"'{text}' is not a time like 07:30 in '{spec}'")
    h, mi = int(m.group(1)), int(m.group(2))
    if mi > 59 or h > 24 or (h == 24 and mi):
        raise AccessRuleError(f"'{text}' is not a valid time in '{spec}'")
    return h * 60 + mi


def parse_hours(spec: str | None) -> tuple[TimeWindow, ...]:
    """Parse opening hours such as ``"Mon-Fri 07:00-19:00; Sat 09:00-13:00"``.

    Windows are separated by ``;``. Each has days (``Mon-Fri``, ``Mon,Wed``, ``daily``,
    ``weekdays``; default every day) and/or a time span (``07:00-19:00``; default all day;
    ``22:00-06:00`` runs overnight). Empty text, ``always`` or ``any`` mean no restriction (an
    empty tuple). Raises :class:`AccessRuleError` with the offending part."""
    text = (spec or "").strip()
    if text.lower() in ("", "always", "any", "anytime", "24/7"):
        return ()
    windows = []
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        words = item.split()
        span = words[-1] if _looks_like_span(words[-1]) else None
        day_text = " ".join(words[:-1] if span else words)
        days = _parse_days(day_text, spec) if day_text else _ALL_DAYS
        if span is None:
            windows.append(TimeWindow(days))
            continue
        a, b = span.split("-", 1)
        start, end = _parse_time(a, spec), _parse_time(b, spec)
        if start == end:
            raise AccessRuleError(f"'{span}' is an empty time span in '{spec}'")
        if start == 1440:
            raise AccessRuleError(f"a time span cannot start at 24:00 in '{spec}'")
        if end == 0:
            end = 1440  # "18:00-00:00" means until midnight
        windows.append(TimeWindow(days, start, end))
    if not windows:
        raise AccessRuleError(f"no time window in '{spec}'")
    return tuple(windows)


def _looks_like_span(word: str) -> bool:
    return "-" in word and word[:1].isdigit()


def format_hours(windows: tuple[TimeWindow, ...]) -> str:
    """Canonical text of parsed hours ("always" when unrestricted); parses back to the same windows."""
    return "; ".join(str(w) for w in windows) if windows else "always"


def site_zone(name: str | None) -> tzinfo | None:
    """The time zone called ``name`` ("Europe/Berlin", "UTC"), or None (the machine's zone) for an
    empty name; AccessRuleError for a name the time-zone database does not know."""
    text = (name or "").strip()
    if not text:
        return None
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise AccessRuleError(f"'{text}' is not a time zone (use a name such as Europe/Berlin or UTC)") from None


def within(windows: tuple[TimeWindow, ...], local: datetime) -> bool:
    """True if there is no restriction or one of the windows contains ``local``."""
    return not windows or any(w.contains(local) for w in windows)


LIVENESS_MODES = ("off", "passive", "challenge")


def parse_liveness(mode: str) -> str:
    """A door's liveness policy as typed by a user ("off", "passive", "challenge")."""
    m = (mode or "").strip().lower()
    if m not in LIVENESS_MODES:
        raise AccessRuleError(f"liveness must be one of {', '.join(LIVENESS_MODES)}, not '{mode}'")
    return m


@dataclass(frozen=True)
class DoorPolicy:
    """What one door admits: ``groups`` maps group id -> that group's hours (empty = any time).
    ``liveness``: "off", "passive" (a known face must be judged live before it is granted) or
    "challenge" (passive, plus a head turn on request)."""

    name: str
    hours: tuple[TimeWindow, ...] = ()
    groups: dict[int, tuple[TimeWindow, ...]] = field(default_factory=dict)
    liveness: str = "off"


@dataclass(frozen=True)
class AccessDecision:
    """The verdict for one person at one door: granted or denied, and why (for the log)."""

    granted: bool
    reason: str = ""

    @property
    def decision(self) -> str:
        return "granted" if self.granted else "denied"


@dataclass(frozen=True)
class AccessRules:
    """Every door's policy and every person's groups, as loaded from the store at one moment."""

    doors: dict[str, DoorPolicy] = field(default_factory=dict)   # keyed by casefolded name
    person_groups: dict[int, frozenset[int]] = field(default_factory=dict)
    group_names: dict[int, str] = field(default_factory=dict)

    def door(self, name: str) -> DoorPolicy | None:
        return self.doors.get(name.casefold())

    def liveness(self, door: str) -> str:
        """The liveness policy of ``door`` ("off" for a door nobody configured)."""
        policy = self.door(door)
        return policy.liveness if policy is not None else "off"

    def decide(self, door: str, person_id: int, when: datetime, tz: tzinfo | None = None) -> AccessDecision:
        """May ``person_id`` pass ``door`` at ``when`` (an aware datetime, judged in local time)?"""
        policy = self.door(door)
        if policy is None:
            if self.doors:
                return AccessDecision(False, f"door '{door}' is not configured")
            return AccessDecision(True, "")
        return decide_access(policy, self.person_groups.get(person_id, frozenset()), when, tz, self.group_names)


def decide_access(policy: DoorPolicy, person_groups: frozenset[int], when: datetime, tz: tzinfo | None = None,
                  group_names: dict[int, str] | None = None) -> AccessDecision:
    """Apply the rules of the module docstring for one person (given by their group ids)."""
    local = when.astimezone(tz)
    if not within(policy.hours, local):
        return AccessDecision(False, f"outside the opening hours of {policy.name}")
    if not policy.groups:
        return AccessDecision(True, "")
    common = [g for g in policy.groups if g in person_groups]
    if not common:
        return AccessDecision(False, f"not in a group admitted at {policy.name}")
    for g in common:
        if within(policy.groups[g], local):
            return AccessDecision(True, "")
    names = group_names or {}
    which = ", ".join(names.get(g, f"group {g}") for g in common)
    return AccessDecision(False, f"outside the hours of {which} at {policy.name}")
