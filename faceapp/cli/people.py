"""enroll, import, identify, verify, people list/remove."""

from __future__ import annotations

import sys

from faceapp.cli.common import PerImage, Progress, open_app, print_json
from faceapp.service import enroll, privacy, recognize, templates


def register(sub) -> None:
    p = sub.add_parser("enroll", help="enroll a person from one or more photos")
    p.add_argument("name")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--employee-id")
    p.add_argument("--department")
    p.add_argument("--allow-duplicate", action="store_true",
                   help="enroll even if the face matches someone already enrolled")
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("import", help="enroll everyone from a folder with one sub-folder per person")
    p.add_argument("folder", metavar="DIR")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("identify", help="name the faces in photos")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("verify", help="are two photos of the same person?")
    p.add_argument("image_a", metavar="IMAGE_A")
    p.add_argument("image_b", metavar="IMAGE_B")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    people = sub.add_parser("people", help="list or remove enrolled people")
    psub = people.add_subparsers(dest="people_command", metavar="ACTION", required=True)
    p = psub.add_parser("list", help="list enrolled people")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_people_list)
    p = psub.add_parser("remove", help="remove a person with their photos and templates")
    p.add_argument("person", metavar="NAME_OR_ID")
    p.add_argument("--with-entries", action="store_true", help="also delete their attendance log entries")
    p.add_argument("--scrub-backups", action="store_true",
                   help="also remove them from the safety copies faceapp keeps in HOME/backups")
    p.set_defaults(func=cmd_people_remove)
    p = psub.add_parser("recompute", help="compute templates for the current recognition model from the stored "
                                          "face crops (after changing the model pack)")
    p.set_defaults(func=cmd_people_recompute)


def cmd_enroll(args) -> int:
    with open_app(args) as app:
        pid, shots = enroll.enroll_files(app, args.name, args.images, args.employee_id, args.department,
                                         allow_duplicate=args.allow_duplicate)
        person = app.store.get_person(pid)
        for s in shots:
            if s.note:
                print(f"{s.source}: {s.note}", file=sys.stderr)
        print(f"enrolled '{person.name}' (id {pid}) from {len(shots)} photo(s)")
    return 0


def cmd_import(args) -> int:
    with open_app(args) as app:
        report = enroll.import_folder(app, args.folder, progress=Progress("importing"))
        print(report.summary())
    # A re-run after an interrupted or finished import has nothing new to do: that is success.
    return 0 if report.accepted or report.already_stored else 1


def _face_json(r) -> dict:
    m = r.match
    return {
        "bbox": r.face.bbox.as_list(),
        "det_score": round(r.face.detection.score, 4),
        "person": m.name,
        "person_id": m.person_id,
        "distance": round(m.distance, 4) if m.distance != float("inf") else None,
        "similarity": round(m.similarity, 4) if m.distance != float("inf") else None,
        "known": m.known,
    }


def cmd_identify(args) -> int:
    images = PerImage()
    with open_app(args) as app:
        for path, results in images.each(args.images, lambda p: recognize.identify_file(app, p)):
            if args.json:
                print_json({"image": path, "faces": [_face_json(r) for r in results]})
                continue
            if not results:
                print(f"{path}: no face found")
            for r in results:
                m = r.match
                label = m.name if m.known else "unknown"
                dist = "" if m.distance == float("inf") else f" (distance {m.distance:.2f})"
                b = r.face.bbox
                print(f"{path}: {label}{dist} at [{b.x1:.0f},{b.y1:.0f},{b.x2:.0f},{b.y2:.0f}]")
    return images.exit_code


def cmd_verify(args) -> int:
    with open_app(args) as app:
        v = recognize.verify_files(app, args.image_a, args.image_b)
    if args.json:
        print_json({"image_a": args.image_a, "image_b": args.image_b, "same_person": v.same,
                    "distance": round(v.distance, 4), "similarity": round(v.similarity, 4),
                    "threshold": round(v.threshold, 4)})
    else:
        verdict = "same person" if v.same else "different people"
        print(f"{verdict} (distance {v.distance:.2f}, threshold {v.threshold:.2f})")
    return 0


def cmd_people_list(args) -> int:
    with open_app(args) as app:
        people = app.store.list_people()
    if args.json:
        print_json([{"id": p.id, "name": p.name, "employee_id": p.employee_id, "department": p.department,
                     "active": p.active, "photos": p.n_photos, "created": p.created} for p in people])
        return 0
    if not people:
        print("nobody is enrolled yet (faceapp enroll NAME PHOTO...)")
    for p in people:
        extra = ", ".join(x for x in (p.employee_id, p.department) if x)
        state = "" if p.active else " [inactive]"
        print(f"{p.id:>5}  {p.name}{state}  {p.n_photos} photo(s){'  ' + extra if extra else ''}")
    return 0


def cmd_people_remove(args) -> int:
    with open_app(args) as app:
        person = app.store.find_person(args.person)
        holding = privacy.copies_holding(app, person)
        scrub = args.scrub_backups
        if holding and not scrub and sys.stdin.isatty():  # the offer; scripts say --scrub-backups
            answer = input(f"{len(holding)} safety cop{'y' if len(holding) == 1 else 'ies'} of the database in "
                           f"{holding[0].parent} also hold '{person.name}'. Remove them from those too? [y/N] ")
            scrub = answer.strip().lower() in ("y", "yes")
        app.store.remove_person(person.id, remove_entries=args.with_entries)
        app.invalidate_gallery()
        scrubbed = privacy.scrub_person_from_safety_copies(app, person, args.with_entries) if scrub else []
        days = app.settings.safety_copy_retention_days
    print(f"removed '{person.name}' with {person.n_photos} photo(s) and their templates")
    if scrubbed:
        print(f"also removed them from {len(scrubbed)} safety cop{'y' if len(scrubbed) == 1 else 'ies'} in "
              f"{scrubbed[0].parent}")
    elif holding:
        until = f"until they are {days} days old" if days > 0 else "(kept forever: see faceapp admin retention)"
        print(f"{len(holding)} safety cop{'y' if len(holding) == 1 else 'ies'} in {holding[0].parent} still hold "
              f"them, {until}; --scrub-backups removes a person from those too")
    return 0


def cmd_people_recompute(args) -> int:
    with open_app(args) as app:
        before = templates.template_status(app)
        if before.complete:
            print(f"all {before.photos} photo(s) already have templates for {before.model_id}")
            return 0
        added = templates.recompute_templates(app, progress=Progress("recomputing"))
        print(f"computed {added} template(s) for {before.model_id}")
    return 0
