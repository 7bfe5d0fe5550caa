"""`faceapp site ...`: make this data folder a station of a site (a central PostgreSQL database)."""

from __future__ import annotations

import sys

from faceapp.cli.common import Progress, open_app, print_json
from faceapp.service import site as site_service
from faceapp.store.site_schema import ROLES_SQL


def register(sub) -> None:
    p = sub.add_parser("site", help="many doors, one site: a central PostgreSQL database for several stations")
    ss = p.add_subparsers(dest="site_command", metavar="SITE_COMMAND", required=True)
    c = ss.add_parser("create", help="create a site in an empty PostgreSQL database")
    c.add_argument("url", metavar="URL", help="postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
    c.add_argument("--import-local", action="store_true",
                   help="push this data folder's people, doors, groups, entries and audit into the new site "
                        "and make it the site's first station")
    c.add_argument("--station", metavar="NAME", help="this station's name (default: the host name)")
    c.set_defaults(func=cmd_create)
    j = ss.add_parser("join", help="make this data folder a station of a site")
    j.add_argument("url", metavar="URL", help="postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
    j.add_argument("--station", metavar="NAME", help="this station's name (default: the host name)")
    j.set_defaults(func=cmd_join)
    s = ss.add_parser("status", help="the site, this station, and what waits to be uploaded")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.set_defaults(func=cmd_status)
    y = ss.add_parser("sync", help="upload what waits and pull what changed, now")
    y.set_defaults(func=cmd_sync)
    lv = ss.add_parser("leave", help="stop being a station (the data stays here as a single-PC copy)")
    lv.add_argument("--force", action="store_true", help="leave even if entries have not reached the site")
    lv.set_defaults(func=cmd_leave)
    r = ss.add_parser("roles", help="print the SQL of the door-station and administrator PostgreSQL roles")
    r.set_defaults(func=cmd_roles)


def cmd_create(args) -> int:
    with open_app(args, sync=False) as app:
        counts = site_service.create_site(app, args.url, args.import_local, args.station)
        status = site_service.site_status(app, probe=False)
    if args.import_local:
        print(f"site created; imported {counts.get('people', 0)} people, {counts.get('templates', 0)} templates, "
              f"{counts.get('doors', 0)} doors, {counts.get('access_groups', 0)} groups; "
              f"this folder is station '{status.station}'")
    else:
        print("site created; on each PC: faceapp site join URL --station NAME")
    return 0


def cmd_join(args) -> int:
    with open_app(args, sync=False) as app:
        report = site_service.join_site(app, args.url, args.station, Progress("pulling"))
        status = site_service.site_status(app, probe=False)
    print(f"joined {status.site} as station '{status.station}': {status.people} people, "
          f"{status.templates} templates ({report.bytes / 1e6:.1f} MB)")
    return 0


def cmd_status(args) -> int:
    with open_app(args, sync=False) as app:
        status = site_service.site_status(app)
    if args.json:
        data = status.to_json()
        data.pop("offline_since")
        print_json(data)
        return 0
    if status.site is None:
        print("this data folder is not a station of any site (faceapp site join URL)")
        return 0
    print(f"site {status.site}, station '{status.station}'")
    print(status.line())
    print(f"last sync {status.last_sync or 'never'}; {status.people} people, {status.templates} templates; "
          f"waiting: {status.pending_entries} entries, {status.pending_audit} audit rows")
    return 0


def cmd_sync(args) -> int:
    with open_app(args, sync=False) as app:
        report, sent = site_service.sync_now(app)
    print(f"uploaded {sent} rows; pulled {report.changed} changes and {report.deleted} deletions")
    return 0


def cmd_leave(args) -> int:
    with open_app(args, sync=False) as app:
        left = site_service.leave_site(app, args.force)
    print("left the site; the data stays in this folder" + (f" ({left} rows never reached the site)" if left else ""),
          file=sys.stdout)
    return 0


def cmd_roles(args) -> int:
    sys.stdout.write(ROLES_SQL)
    return 0
