"""visitors (unknown people grouped by face), search (entries by face), log correct (wrong matches)."""

from __future__ import annotations

from faceapp.cli.common import open_app, positive_int, print_json
from faceapp.core.csvexport import local_iso
from faceapp.service import attendance, visitors


def register(sub) -> None:
    vis = sub.add_parser("visitors", help="unknown faces grouped into visitors: list, enroll, merge, forget",
                         description="Unknown entries are grouped into visitors by face, with the recognition "
                                     "threshold: one visitor per stranger, a visit per logged entry.")
    vsub = vis.add_subparsers(dest="visitors_command", metavar="ACTION", required=True)
    p = vsub.add_parser("list", help="list visitors, the most recently seen first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_visitors_list)
    p = vsub.add_parser("enroll", help="enroll a visitor as a person from their clearest snapshots")
    p.add_argument("id", type=positive_int, metavar="ID")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--employee-id", metavar="ID")
    p.add_argument("--department", metavar="NAME")
    p.set_defaults(func=cmd_visitors_enroll)
    p = vsub.add_parser("merge", help="merge visitors that are the same person")
    p.add_argument("ids", type=positive_int, nargs="+", metavar="ID")
    p.set_defaults(func=cmd_visitors_merge)
    p = vsub.add_parser("forget", help="delete a visitor's snapshots and face data (the entries stay)")
    p.add_argument("id", type=positive_int, metavar="ID")
    p.set_defaults(func=cmd_visitors_forget)

    p = sub.add_parser("search", help="find the logged entries in which the face of a photo appears",
                       description="Compares the main face of IMAGE with the face of every logged entry "
                                   "(known or unknown) and lists those within the threshold, nearest first.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--from", dest="since", metavar="DATE", help="first local day (2024-05-31, today, yesterday)")
    p.add_argument("--to", dest="until", metavar="DATE", help="last local day, included")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)


def register_log_correct(lsub) -> None:
    """`faceapp log correct` (added to the `log` command by faceapp.cli.attendance)."""
    p = lsub.add_parser("correct", help="correct a wrong match on a logged entry",
                        description="--person: the entry was NAME_OR_ID (its snapshot is offered as a new photo "
                                    "of them, through the quality gate). --not-person: it was someone else (the "
                                    "face becomes a negative example: the named person is not matched to it again).")
    p.add_argument("entry", type=positive_int, metavar="ENTRY_ID")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--person", metavar="NAME_OR_ID", help="who it really was")
    who.add_argument("--not-person", action="store_true", help="it was not the person named")
    p.set_defaults(func=cmd_log_correct)


def visitor_json(v) -> dict:
    return {"id": v.id, "visits": v.visits, "first_seen": local_iso(v.first_seen),
            "last_seen": local_iso(v.last_seen), "doors": list(v.doors), "entry_ids": list(v.entry_ids)}


def cmd_visitors_list(args) -> int:
    with open_app(args) as app:
        found = visitors.list_visitors(app)
    if args.json:
        print_json([visitor_json(v) for v in found])
        return 0
    if not found:
        print("no visitors (unknown faces logged by a station are grouped here)")
    for v in found:
        print(f"visitor {v.id}: {v.visits} visit(s), first {local_iso(v.first_seen)}, last {local_iso(v.last_seen)}, "
              f"at {', '.join(v.doors)}")
    return 0


def cmd_visitors_enroll(args) -> int:
    with open_app(args) as app:
        done = visitors.enroll_visitor(app, args.id, args.name, args.employee_id, args.department)
    print(f"enrolled visitor {args.id} as '{' '.join(args.name.split())}' (id {done.person_id}) from "
          f"{done.photos} snapshot(s); {done.entries} past entr{'y' if done.entries == 1 else 'ies'} relabelled")
    return 0


def cmd_visitors_merge(args) -> int:
    with open_app(args) as app:
        target = visitors.merge_visitors(app, *args.ids)
    print(f"merged into visitor {target}")
    return 0


def cmd_visitors_forget(args) -> int:
    with open_app(args) as app:
        n = visitors.forget_visitor(app, args.id)
    print(f"forgot visitor {args.id}: snapshots and face data of {n} entr{'y' if n == 1 else 'ies'} deleted "
          f"(the entries stay, as unknown)")
    return 0


def hit_json(h) -> dict:
    e = h.entry
    return {"entry_id": e.id, "time": local_iso(e.time), "door": e.door, "person": e.person_name,
            "person_id": e.person_id, "decision": e.decision, "distance": round(h.distance, 4),
            "visitor_id": h.visitor_id}


def cmd_search(args) -> int:
    with open_app(args) as app:
        since = attendance.parse_date_bound(args.since)
        until = attendance.parse_date_bound(args.until, end=True)
        hits = visitors.search_file(app, args.image, since, until)
        threshold = app.threshold
    if args.json:
        print_json({"image": args.image, "threshold": threshold, "entries": [hit_json(h) for h in hits]})
        return 0
    if not hits:
        print(f"this face is in no logged entry (threshold {threshold:.2f})")
    for h in hits:
        e = h.entry
        who = e.person_name or (f"visitor {h.visitor_id}" if h.visitor_id else "unknown")
        print(f"{e.id:>6}  {local_iso(e.time)}  {e.door}  {e.decision:<8} {who}  distance {h.distance:.2f}")
    return 0


def cmd_log_correct(args) -> int:
    with open_app(args) as app:
        done = visitors.correct_entry(app, args.entry, person=args.person, not_person=args.not_person)
    if done.after is None:
        print(f"entry {done.entry_id}: not {done.before}; {done.note}")
    else:
        print(f"entry {done.entry_id}: {done.before or 'unknown'} -> {done.after}; {done.note}")
    return 0

