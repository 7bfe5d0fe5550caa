"""backup, restore, audit list/export, admin set-password/retention, people export, purge."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from faceapp.cli.common import add_output_force, home_paths, open_app, positive_int, print_json
from faceapp.core.access import site_zone
from faceapp.core.csvexport import local_iso
from faceapp.core.errors import FaceAppError
from faceapp.core.fsutil import give_back
from faceapp.engine.installer import verify_pack
from faceapp.service import privacy, security
from faceapp.store.audit import AuditLog
from faceapp.store.backup import read_backup_info, restore_database
from faceapp.store.migrations import SCHEMA_VERSION


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of days") from None
    if not 0 <= value <= 36500:
        raise argparse.ArgumentTypeError("give a number of days from 0 (keep forever) to 36500")
    return value


def _subcommands(parser: argparse.ArgumentParser):
    for action in parser._actions:  # argparse keeps no public handle on a parser's sub-commands
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError(f"{parser.prog} has no sub-commands")


def register(sub) -> None:
    p = sub.add_parser("backup", help="copy the whole database (people, photos, log, audit) into one backup file",
                       description="Safe while the window or a door station is running.")
    p.add_argument("file", metavar="FILE")
    add_output_force(p)
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="replace the database with a backup (a copy of the current one is kept)",
                       description="Refuses files that are not faceapp backups or come from a newer faceapp; "
                                   "older backups are upgraded. The current database is first copied to "
                                   "HOME/backups/. Restart open faceapp windows afterwards.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_restore)

    audit = sub.add_parser("audit", help="the audit log: who changed what, when")
    asub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    p = asub.add_parser("list", help="show the newest audit rows")
    p.add_argument("--limit", type=positive_int, default=50, metavar="N", help="at most N rows (default 50)")
    p.add_argument("--action", metavar="ACTION", help="only this action (e.g. person.remove, or person. for all)")
    p.add_argument("--person", metavar="NAME_OR_ID", help="only rows about this enrolled person")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit_list)
    p = asub.add_parser("export", help="the whole audit log as CSV")
    p.add_argument("-o", "--output", required=True, metavar="FILE.csv")
    p.add_argument("--bom", action="store_true", help="start with a UTF-8 byte-order mark (for Excel)")
    add_output_force(p)
    p.set_defaults(func=cmd_audit_export)

    admin = sub.add_parser("admin", help="administrator password and privacy settings")
    adsub = admin.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    p = adsub.add_parser("set-password", help="set or change the administrator password",
                         description="Once a password is set, changing it needs the current one (asked first; "
                                     "with --password-stdin: the current password on the first line, the new "
                                     "one on the second). A lost password: see 'admin reset-password'.")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the passwords from stdin, one per line (current first, if one is set)")
    p.set_defaults(func=cmd_set_password)
    p = adsub.add_parser("reset-password", help="recovery of a lost password: root only, audited",
                         description="Sets a new administrator password without the old one. Only root may do "
                                     "this (run it with sudo); the reset is written to the audit log.")
    p.add_argument("--password-stdin", action="store_true", help="read the new password from the first line of stdin")
    p.set_defaults(func=cmd_reset_password)
    p = adsub.add_parser("retention", help="show or set how long snapshots and log entries are kept")
    p.add_argument("--snapshots", type=_days, metavar="DAYS", help="keep unknown/denied snapshots DAYS days (0 = keep)")
    p.add_argument("--entries", type=_days, metavar="DAYS", help="keep log entries DAYS days (0 = keep)")
    p.add_argument("--safety-copies", type=_days, metavar="DAYS",
                   help="keep the copies made before restores and upgrades (HOME/backups) DAYS days (0 = keep)")
    p.set_defaults(func=cmd_retention)

    p = adsub.add_parser("timezone", help="show or set the site's time zone (door hours and daily reports)")
    p.add_argument("zone", nargs="?", help="an IANA name such as Europe/Berlin or UTC; 'machine' = this computer's")
    p.set_defaults(func=cmd_timezone)

    p = sub.add_parser("doctor", help="check the data folder: who can read it, and the installed models",
                       description="Warns when other users of this computer can read the data folder or the "
                                   "database, and checks the configured model pack file by file (sha256). "
                                   "Exit status 1 when something needs fixing.")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("purge", help="delete snapshots and log entries older than the retention settings now")
    p.set_defaults(func=cmd_purge)

    people = sub.choices.get("people")
    if people is not None:
        p = _subcommands(people).add_parser(
            "export", help="everything stored about one person, for a subject-access request",
            description="Writes person.json, their photo crops (PNG), their log entries (CSV) and snapshots "
                        "to a new folder, or to a .zip file.")
        p.add_argument("person", metavar="NAME_OR_ID")
        p.add_argument("-o", "--output", required=True, metavar="DIR_OR_ZIP")
        add_output_force(p)
        p.set_defaults(func=cmd_people_export)


# -- backup & restore -------------------------------------------------------------------------------
def cmd_backup(args) -> int:
    with open_app(args) as app:
        info = app.backup(args.file, force=args.force)
    print(f"backed up {info.describe()} to {args.file} ({info.size / 1e6:.1f} MB)")
    return 0


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise FaceAppError("restore replaces the current database; add --yes to confirm")
    answer = input(f"{question} Type 'yes' to go on: ")
    return answer.strip().lower() == "yes"


def _refuse_on_a_station(args, paths) -> None:
    """A station's data comes from its site (and may hold entries not yet uploaded): restoring
    a backup over it would silently end its membership and lose those entries."""
    if not paths.db.exists():
        return
    try:
        app = open_app(args, sync=False)  # only asks whether it is a station: no network
    except FaceAppError:
        return  # a damaged database: restoring it is the fix its error names
    with app:
        link = app.store.site
        if link is not None:
            raise FaceAppError(f"this data folder is station '{link.station}' of the site {link.shown_url}: its data "
                               f"comes from the site; restore the site's database (pg_restore), or leave the site "
                               f"first (faceapp site leave)")


def cmd_restore(args) -> int:
    paths = home_paths(args)
    info = read_backup_info(args.file)  # refuse a bad file before asking anything
    _refuse_on_a_station(args, paths)
    if not args.yes and not _confirm(f"Replace the database in {paths.home} with {args.file} "
                                     f"({info.describe()})? A copy of the current one is kept."):
        print("nothing restored")
        return 1
    result = restore_database(args.file, paths.db, paths.home / "backups")
    with open_app(args) as app:
        app.audit("backup.restore", {"path": str(Path(args.file)), "backup_created": info.created,
                                     "backup_app_version": info.app_version, "backup_schema": result.migrated_from,
                                     "previous_database": str(result.safety_copy) if result.safety_copy else None,
                                     "mode": result.mode})
    print(f"restored {info.describe()}")
    if result.migrated_from < SCHEMA_VERSION:
        print(f"upgraded it from schema {result.migrated_from} to {SCHEMA_VERSION}")
    if result.safety_copy is not None:
        print(f"the previous database is kept in {result.safety_copy}")
    print("restart any faceapp window or door station that is running")
    return 0


# -- audit ------------------------------------------------------------------------------------------
def cmd_audit_list(args) -> int:
    with open_app(args) as app:
        target = f"person:{app.store.find_person(args.person).id}" if args.person else None
        rows = AuditLog(app.store).records(action=args.action, target=target, limit=args.limit)
    rows.reverse()  # newest last, like a terminal log
    if args.json:
        print_json([{"id": r.id, "time": local_iso(r.time), "actor": r.actor, "action": r.action,
                     "target": r.target, "details": r.changes} for r in rows])
        return 0
    if not rows:
        print("the audit log is empty")
    for r in rows:
        target = f" {r.target}" if r.target else ""
        details = f"  {r.describe()}" if r.describe() else ""
        print(f"{r.id:>6}  {local_iso(r.time)}  {r.actor}  {r.action}{target}{details}")
    return 0


def cmd_audit_export(args) -> int:
    with open_app(args) as app:
        n = security.export_audit(app, args.output, bom=args.bom, force=args.force)
    print(f"wrote {n} audit rows to {args.output}")
    return 0


# -- admin ------------------------------------------------------------------------------------------
def _read_new_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise FaceAppError("no password on stdin")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise FaceAppError("no terminal to ask for the password on; pipe it in with --password-stdin")
    first = getpass.getpass("New administrator password: ")
    security.validate_new_password(first)
    if getpass.getpass("Repeat it: ") != first:
        raise FaceAppError("the two passwords differ; nothing changed")
    return first


def cmd_set_password(args) -> int:
    # The current password, if one is set, was checked before this runs (cli.require_admin).
    with open_app(args) as app:
        existed = security.has_admin_password(app.store)
        security.set_admin_password(app.store, _read_new_password(args.password_stdin))
    print("administrator password " + ("changed" if existed else "set"))
    return 0


def cmd_reset_password(args) -> int:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise FaceAppError("only root can reset a lost administrator password: "
                           "sudo faceapp --home DIR admin reset-password (it is audited)")
    paths = home_paths(args)
    owner = paths.home.stat() if paths.home.exists() else None
    with open_app(args) as app:
        security.set_admin_password(app.store, _read_new_password(args.password_stdin), reset=True)
    if owner is not None:
        give_back(paths.home, owner.st_uid, owner.st_gid)
    print("administrator password reset (recorded in the audit log)")
    return 0


def cmd_retention(args) -> int:
    with open_app(args) as app:
        changes = {}
        if args.snapshots is not None:
            changes["snapshot_retention_days"] = args.snapshots
        if args.entries is not None:
            changes["entry_retention_days"] = args.entries
        if args.safety_copies is not None:
            changes["safety_copy_retention_days"] = args.safety_copies
        if changes:
            app.update_settings(**changes)
        s = app.settings
        preview = privacy.preview_retention(app.store, s.snapshot_retention_days, s.entry_retention_days)

    def days(n: int) -> str:
        return f"{n} days" if n > 0 else "forever"

    print(f"snapshots of unknown/denied faces are kept {days(s.snapshot_retention_days)}; "
          f"log entries are kept {days(s.entry_retention_days)}; "
          f"safety copies of the database are kept {days(s.safety_copy_retention_days)}")
    if preview.removed_anything:
        print(f"the next purge removes {preview.describe()} (run it now with: faceapp purge)")
    return 0


def cmd_timezone(args) -> int:
    with open_app(args) as app:
        if args.zone is not None:
            zone = "" if args.zone.strip().lower() in ("machine", "local", "") else args.zone.strip()
            site_zone(zone)   # refuse an unknown name before anything is stored
            app.update_settings(timezone=zone)
        zone = app.settings.timezone
    print(f"site time zone: {zone or 'the machine’s own'} (door hours and daily reports are judged in it)")
    return 0


def cmd_doctor(args) -> int:
    with open_app(args) as app:
        warnings = app.paths.privacy_warnings()
        pack = app.settings.pack
        report = verify_pack(pack, app.paths.models)
    for line in warnings:
        print(f"warning: {line}")
    if not warnings:
        print(f"data folder {home_paths(args).home}: private (owner only)")
    damaged = [f"{f.name} ({f.status}{', ' + f.detail if f.detail else ''})" for f in report.files if f.status in ("missing", "mismatch")]
    if damaged:
        print(f"warning: model pack '{pack}': " + ", ".join(damaged) +
              f"; fix with: faceapp models install --pack {pack} [--from DIR_OR_ZIP]")
    else:
        print(f"model pack '{pack}': every file matches its sha256")
    return 1 if warnings or damaged else 0


def cmd_purge(args) -> int:
    with open_app(args) as app:
        report = privacy.apply_retention(app, record_empty=True)
    print(f"removed {report.describe()}")
    return 0


def cmd_people_export(args) -> int:
    with open_app(args) as app:
        person = app.store.find_person(args.person)
        result = privacy.export_person_data(app, person.id, args.output, force=args.force)
    print(f"wrote everything stored about '{person.name}' to {result.path}: {result.describe()}")
    return 0
