"""watch (headless door station), door and group management, entry log list/export/report."""

from __future__ import annotations

import argparse
import math
import sys

from faceapp.cli.common import add_output_force, open_app, positive_int, print_json
from faceapp.core.access import LIVENESS_MODES
from faceapp.core.csvexport import local_iso
from faceapp.core.errors import FaceAppError
from faceapp.service import attendance, presence
from faceapp.service.site import SiteSync
from faceapp.store.attendance import DECISIONS, AttendanceStore


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError("give a positive number of seconds")
    return value


def _filters(p: argparse.ArgumentParser, decision: bool = True) -> None:
    p.add_argument("--from", dest="since", metavar="DATE", help="first local day (2024-05-31, today, yesterday)")
    p.add_argument("--to", dest="until", metavar="DATE", help="last local day, included")
    p.add_argument("--door", metavar="NAME", help="only this door")
    p.add_argument("--person", metavar="NAME", help="only this person (name or id)")
    if decision:
        p.add_argument("--decision", choices=DECISIONS)


def register(sub) -> None:
    p = sub.add_parser("watch", help="run recognition without a window and log entries (a door station)",
                       description="Recognise faces from a webcam, video file, folder of images or stream and log "
                                   "one entry per person passing. Files run as fast as possible and stop at their "
                                   "end; cameras run until --seconds or Ctrl+C.")
    p.add_argument("source", metavar="SOURCE", nargs="?",
                   help="webcam number, video file, folder of images or RTSP/HTTP URL")
    p.add_argument("--door", metavar="NAME", help="the door SOURCE guards (default: the door in the settings)")
    p.add_argument("--camera", metavar="SOURCE=DOOR", action="append", default=[],
                   help="one more camera of this station and its door (repeatable): all cameras share one engine "
                        "and gallery, files play in real time, and a camera that ends or fails leaves the others "
                        "running")
    p.add_argument("--seconds", type=_seconds, metavar="N", help="stop after N seconds")
    p.add_argument("--grid", action="store_true",
                   help="with --camera: show the cameras in a window, one tile per door (click one to enlarge)")
    p.add_argument("--json", action="store_true", help="print each event as one JSON object per line")
    p.add_argument("--no-log", action="store_true", help="print events but write nothing to the entry log")
    p.set_defaults(func=cmd_watch)

    door = sub.add_parser("door", help="doors and which access groups they admit",
                          description="A door with no groups admits every enrolled person (within its hours). "
                                      "Hours look like 'Mon-Fri 07:00-19:00; Sat 09:00-13:00'.")
    dsub = door.add_subparsers(dest="door_command", metavar="ACTION", required=True)
    p = dsub.add_parser("add", help="create a door")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--groups", metavar="G1,G2", help="access groups it admits (default: everyone enrolled)")
    p.add_argument("--hours", metavar="HOURS", help="opening hours for everyone, e.g. 'Mon-Fri 07:00-19:00'")
    p.set_defaults(func=cmd_door_add)
    p = dsub.add_parser("list", help="list doors with their groups and hours")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_door_list)
    p = dsub.add_parser("remove", help="delete a door (its log entries stay)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_door_remove)
    p = dsub.add_parser("hours", help="set a door's opening hours ('always' to clear them)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("hours", metavar="HOURS")
    p.set_defaults(func=cmd_door_hours)
    p = dsub.add_parser("liveness", help="require a live face at a door: off, passive or challenge",
                        description="off: as before. passive: a known person's face must be judged live by the "
                                    "MiniFASNet models (needs the minifasnet pack), else 'denied: not live'. "
                                    "challenge: also asks the person to turn the head left then right; a still "
                                    "photo cannot do that.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("mode", metavar="off|passive|challenge", type=str.lower, choices=LIVENESS_MODES)
    p.set_defaults(func=cmd_door_liveness)
    p = dsub.add_parser("allow", help="let a group through a door, optionally only within hours")
    p.add_argument("name", metavar="DOOR")
    p.add_argument("group", metavar="GROUP")
    p.add_argument("--hours", metavar="HOURS", help="when this group may pass, e.g. 'Mon-Fri 08:00-18:00'")
    p.set_defaults(func=cmd_door_allow)
    p = dsub.add_parser("disallow", help="stop letting a group through a door")
    p.add_argument("name", metavar="DOOR")
    p.add_argument("group", metavar="GROUP")
    p.add_argument("--open", action="store_true",
                   help="confirm removing the door's last group (the door then admits everyone enrolled)")
    p.set_defaults(func=cmd_door_disallow)

    group = sub.add_parser("group", help="access groups and their members")
    gsub = group.add_subparsers(dest="group_command", metavar="ACTION", required=True)
    p = gsub.add_parser("add", help="create an access group")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_group_add)
    p = gsub.add_parser("list", help="list groups with members and doors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_group_list)
    p = gsub.add_parser("remove", help="delete a group (refused while a door admits it)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_group_remove)
    p = gsub.add_parser("assign", help="put a person into a group")
    p.add_argument("person", metavar="PERSON", help="name or id")
    p.add_argument("group", metavar="GROUP")
    p.set_defaults(func=cmd_group_assign)
    p = gsub.add_parser("unassign", help="take a person out of a group")
    p.add_argument("person", metavar="PERSON", help="name or id")
    p.add_argument("group", metavar="GROUP")
    p.set_defaults(func=cmd_group_unassign)

    logp = sub.add_parser("log", help="the entry log: list, export to CSV, daily attendance report")
    lsub = logp.add_subparsers(dest="log_command", metavar="ACTION", required=True)
    p = lsub.add_parser("list", help="show the newest entries")
    _filters(p)
    p.add_argument("--limit", type=positive_int, default=50, metavar="N", help="at most N entries (default 50)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_log_list)
    p = lsub.add_parser("export", help="entries as CSV (times in local ISO 8601 with offset)")
    _filters(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE.csv")
    p.add_argument("--bom", action="store_true", help="start with a UTF-8 byte-order mark (for Excel)")
    add_output_force(p)
    p.set_defaults(func=cmd_log_export)
    p = lsub.add_parser("report", help="daily attendance: first in and last out per person per day, as CSV")
    _filters(p, decision=False)
    p.add_argument("-o", "--output", required=True, metavar="FILE.csv")
    p.add_argument("--bom", action="store_true", help="start with a UTF-8 byte-order mark (for Excel)")
    add_output_force(p)
    p.set_defaults(func=cmd_log_report)
    p = lsub.add_parser("timesheet", help="weekly hours per person per day (first in to last out; "
                                          "a night shift counts on the day it started), as CSV")
    p.add_argument("--week", required=True, metavar="YYYY-Www", help="ISO week, e.g. 2026-W49")
    p.add_argument("-o", "--output", required=True, metavar="FILE.csv")
    p.add_argument("--bom", action="store_true", help="start with a UTF-8 byte-order mark (for Excel)")
    add_output_force(p)
    p.set_defaults(func=cmd_log_timesheet)
    from faceapp.cli.visitors import register_log_correct

    register_log_correct(lsub)


# -- watch -----------------------------------------------------------------------------------------
def event_json(ev) -> dict:
    """The JSON object `watch --json` prints for an EntryEvent."""
    return {"time": ev.time.astimezone().isoformat(timespec="seconds"), "door": ev.door, "person": ev.name,
            "person_id": ev.person_id, "decision": ev.decision,
            "distance": round(ev.distance, 4) if ev.distance is not None else None,
            "reason": ev.reason, "entry_id": ev.entry_id, "track_id": ev.track_id}


def event_line(ev) -> str:
    dist = f"  distance {ev.distance:.2f}" if ev.distance is not None else ""
    why = f"  ({ev.reason})" if ev.reason else ""
    return (f"{ev.time.astimezone().isoformat(timespec='seconds')}  {ev.door}  {ev.decision:<8} "
            f"{ev.name or 'unknown'}{dist}{why}")


def cmd_watch(args) -> int:
    def show(ev) -> None:
        if args.json:
            print_json(event_json(ev))
        else:
            print(event_line(ev), flush=True)

    if args.camera:
        return _watch_cameras(args, show)
    if args.source is None:
        raise FaceAppError("watch needs a SOURCE or at least one --camera SOURCE=DOOR")
    with open_app(args) as app, SiteSync(app).running():
        summary = attendance.watch(app, args.source, door=args.door, seconds=args.seconds, on_event=show,
                                   log_entries=not args.no_log)
    print(f"watch: {summary.describe()}", file=sys.stderr)
    return 0


def _watch_cameras(args, show) -> int:
    """Several cameras in one process (service.stations); exit 1 if a camera could not run."""
    from faceapp.service.stations import CameraSpec, Station

    try:
        cameras = [CameraSpec.parse(c) for c in args.camera]
    except ValueError as exc:
        raise FaceAppError(f"--camera: {exc}") from None
    if args.source is not None:
        cameras.insert(0, CameraSpec(args.source, args.door))
    with open_app(args) as app, SiteSync(app).running():
        station = Station(app, cameras, log_entries=not args.no_log)
        if args.grid:
            from faceapp.gui.camera_grid import run_grid

            return run_grid(station, on_event=show, seconds=args.seconds)
        summaries = station.run(seconds=args.seconds, on_event=show)
    failed = 0
    for summary in summaries:
        print(f"watch: {summary.describe()}", file=sys.stderr)
        if summary.stopped_by.startswith("error"):
            failed += 1
            print(f"faceapp: error: camera of door '{summary.door}': {summary.stopped_by[7:]}", file=sys.stderr)
    return 1 if failed else 0


# -- doors & groups ---------------------------------------------------------------------------------
def _door_text(d) -> str:
    hours = d.hours or "always"
    if d.open_to_all:
        who = "everyone enrolled"
    else:
        who = ", ".join(f"{g} ({h})" if h else g for g, h in d.groups)
    live = f"; liveness {d.liveness}" if d.liveness != "off" else ""
    return f"{d.name}: {who}; hours {hours}{live}"


def cmd_door_add(args) -> int:
    groups = [g.strip() for g in (args.groups or "").split(",") if g.strip()]
    with open_app(args) as app:
        d = AttendanceStore(app.store).add_door(args.name, args.hours, groups)
    print(f"added door {_door_text(d)}")
    return 0


def cmd_door_list(args) -> int:
    with open_app(args) as app:
        doors = AttendanceStore(app.store).doors()
    if args.json:
        print_json([{"id": d.id, "name": d.name, "hours": d.hours, "liveness": d.liveness,
                     "groups": [{"name": g, "hours": h} for g, h in d.groups]} for d in doors])
        return 0
    if not doors:
        print("no doors yet: every station admits everyone enrolled (faceapp door add NAME --groups G)")
    for d in doors:
        print(_door_text(d))
    return 0


def cmd_door_remove(args) -> int:
    with open_app(args) as app:
        AttendanceStore(app.store).remove_door(args.name)
    print(f"removed door '{args.name}'")
    return 0


def _change_door(args, change) -> int:
    """Apply ``change(AttendanceStore) -> Door`` and print the door as it is now."""
    with open_app(args) as app:
        d = change(AttendanceStore(app.store))
    print(_door_text(d))
    return 0


def cmd_door_hours(args) -> int:
    return _change_door(args, lambda s: s.set_door_hours(args.name, args.hours))


def cmd_door_liveness(args) -> int:
    from faceapp.service.liveness import MISSING_PACK

    with open_app(args) as app:
        d = AttendanceStore(app.store).set_door_liveness(args.name, args.mode)
        missing = d.liveness != "off" and not app.liveness_installed
    print(_door_text(d))
    if missing:
        # The policy is stored anyway (the station may get the pack later), but until then a passive
        # door turns every known face away and a challenge door relies on the head turn alone.
        print(f"warning: {MISSING_PACK}; until then this door denies known faces as not live"
              if d.liveness == "passive" else
              f"warning: {MISSING_PACK}; until then this door checks the head turn only", file=sys.stderr)
    return 0


def cmd_door_allow(args) -> int:
    return _change_door(args, lambda s: s.allow_group(args.name, args.group, args.hours))


def cmd_door_disallow(args) -> int:
    return _change_door(args, lambda s: s.disallow_group(args.name, args.group, open_door=args.open))


def cmd_group_add(args) -> int:
    with open_app(args) as app:
        g = AttendanceStore(app.store).add_group(args.name)
    print(f"added group '{g.name}' (put people in it with: faceapp group assign PERSON '{g.name}')")
    return 0


def cmd_group_list(args) -> int:
    with open_app(args) as app:
        groups = AttendanceStore(app.store).groups()
    if args.json:
        print_json([{"id": g.id, "name": g.name, "members": list(g.members), "doors": list(g.doors)} for g in groups])
        return 0
    if not groups:
        print("no access groups yet (faceapp group add NAME)")
    for g in groups:
        members = ", ".join(g.members) or "nobody"
        doors = ", ".join(g.doors) or "no door"
        print(f"{g.name}: {members}; admitted at {doors}")
    return 0


def cmd_group_remove(args) -> int:
    with open_app(args) as app:
        AttendanceStore(app.store).remove_group(args.name)
    print(f"removed group '{args.name}'")
    return 0


def _membership(args, change, verb: str) -> int:
    with open_app(args) as app:
        person = app.store.find_person(args.person)
        change(AttendanceStore(app.store), person.id)
    print(f"'{person.name}' {verb} group '{args.group}'")
    return 0


def cmd_group_assign(args) -> int:
    return _membership(args, lambda s, pid: s.assign(pid, args.group), "is in")


def cmd_group_unassign(args) -> int:
    return _membership(args, lambda s, pid: s.unassign(pid, args.group), "is no longer in")


# -- log ----------------------------------------------------------------------------------------------
def _query(args, app, **kw):
    return attendance.entry_query(args.since, args.until, args.door, args.person,
                                  getattr(args, "decision", None), store=app.store, tz=app.site_tz, **kw)


def cmd_log_list(args) -> int:
    with open_app(args) as app:
        entries = AttendanceStore(app.store).entries(_query(args, app, limit=args.limit, newest_first=True))
    entries.reverse()   # newest last, like a terminal log
    if args.json:
        print_json([{"id": e.id, "time": local_iso(e.time), "door": e.door, "person": e.person_name,
                     "person_id": e.person_id, "decision": e.decision,
                     "distance": round(e.distance, 4) if e.distance is not None else None,
                     "reason": e.reason, "snapshot": e.has_snapshot} for e in entries])
        return 0
    if not entries:
        print("no entries")
    for e in entries:
        dist = f"  distance {e.distance:.2f}" if e.distance is not None else ""
        why = f"  ({e.reason})" if e.reason else ""
        print(f"{e.id:>6}  {local_iso(e.time)}  {e.door}  {e.decision:<8} {e.person_name or 'unknown'}{dist}{why}")
    return 0


def cmd_log_export(args) -> int:
    with open_app(args) as app:
        n = attendance.export_log(app, "entries", args.output, _query(args, app), bom=args.bom, force=args.force)
    print(f"wrote {n} entries to {args.output}")
    return 0


def cmd_log_timesheet(args) -> int:
    presence.parse_week(args.week)  # a bad week fails before anything else
    with open_app(args) as app:
        n = presence.export_timesheet(app, args.output, args.week, bom=args.bom, force=args.force)
    print(f"wrote {n} timesheet rows for {args.week} to {args.output}")
    return 0


def cmd_log_report(args) -> int:
    with open_app(args) as app:
        n = attendance.export_log(app, "report", args.output, _query(args, app), bom=args.bom, force=args.force)
    print(f"wrote {n} person-days to {args.output}")
    return 0
