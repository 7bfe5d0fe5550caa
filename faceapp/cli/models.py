"""models install / list / verify / use."""

from __future__ import annotations

import sys

from faceapp.cli.common import Progress, home_paths, open_app
from faceapp.engine.catalog import CATALOG, LIVENESS_PACK, all_packs, find_pack, get_pack
from faceapp.engine.installer import install_pack, list_packs, verify_pack
from faceapp.service.templates import template_status


def register(sub) -> None:
    models = sub.add_parser("models", help="install, check and choose face models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = msub.add_parser("install", help="install a model pack (verified against its sha256)")
    p.add_argument("--pack", default=None, help=f"one of: {', '.join(all_packs())} (default: the configured pack; "
                        f"{LIVENESS_PACK} is the optional liveness pack for doors that require it)")
    p.add_argument("--from", dest="source", metavar="PATH",
                   help="local folder or .zip with the model files (offline install); "
                        "without it the official source is downloaded")
    p.set_defaults(func=cmd_install)
    p = msub.add_parser("list", help="list the known packs and what is installed")
    p.set_defaults(func=cmd_list)
    p = msub.add_parser("verify", help="check installed files against their sha256")
    p.add_argument("--pack", default=None)
    p.set_defaults(func=cmd_verify)
    p = msub.add_parser("use", help="choose the pack recognition uses")
    p.add_argument("pack", choices=sorted(CATALOG))
    p.set_defaults(func=cmd_use)


def _licence_line(name: str) -> str:
    pack = find_pack(name)
    use = "commercial use allowed" if pack.commercial_use else "NOT for commercial use"
    return f"licence of '{name}': {pack.licence} ({use})"


def cmd_install(args) -> int:
    if args.pack is None:
        with open_app(args) as app:
            pack = app.settings.pack
    else:
        pack = find_pack(args.pack).name
    paths = home_paths(args)
    paths.create()
    print(_licence_line(pack), file=sys.stderr)
    bar = Progress("installing")
    report = install_pack(pack, paths.models, source=args.source, progress=bar.bytes)
    print(report.summary())
    return 0


def cmd_list(args) -> int:
    with open_app(args) as app:
        active = app.settings.pack
        models = app.paths.models
    for st in list_packs(models):
        mark = "*" if st.name == active else ("L" if st.backend == "liveness" else " ")
        state = "installed" if st.ok else ("DAMAGED (run: faceapp models verify)" if st.installed else "not installed")
        licence = "commercial use OK" if st.commercial_use else "non-commercial research only"
        print(f"{mark} {st.name:<11} {st.size / 1e6:6.1f} MB  {state:<14} {licence}  - {st.description}")
    print("(* = pack used for recognition; change with: faceapp models use PACK. "
          "L = liveness pack, used by doors set to passive or challenge)")
    return 0


def cmd_verify(args) -> int:
    models = home_paths(args).models
    if args.pack:
        reports = [verify_pack(args.pack, models)]
    else:
        # Installed as list_packs counts it: no file missing (damaged ones included).
        reports = [rep for rep in (verify_pack(name, models) for name in all_packs()) if not rep.missing]
    if not reports:
        print("no model pack is installed; install one with: faceapp models install --from PATH")
        return 1
    bad = []
    for rep in reports:
        name = rep.pack
        for f in rep.files:
            detail = f" ({f.detail})" if f.detail else ""
            print(f"{name}/{f.name}: {f.status}{detail}")
        if not rep.ok:
            bad.append(name)
    for name in bad:
        print(f"fix with: faceapp models install --pack {name} [--from DIR_OR_ZIP]", file=sys.stderr)
    return 1 if bad else 0


def cmd_use(args) -> int:
    pack = get_pack(args.pack)
    with open_app(args) as app:
        old_model = app.model_id
        app.update_settings(pack=pack.name)
        print(f"recognition now uses '{pack.name}' ({pack.description})")
        print(_licence_line(pack.name))
        # template_status counts for app.model_id, which is now the new pack's recognizer.
        if pack.recognizer_id != old_model and not template_status(app).complete:
            print("enrolled people need templates for this model: run  faceapp people recompute")
    return 0
