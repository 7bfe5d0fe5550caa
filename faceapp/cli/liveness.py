"""liveness: is the face in a photo a live person or a photo / screen held up to the camera?"""

from __future__ import annotations

from faceapp.cli.common import PerImage, open_app, print_json
from faceapp.service import liveness


def register(sub) -> None:
    p = sub.add_parser("liveness", help="passive liveness of the faces in photos (needs the minifasnet pack)",
                       description="Scores every face from 0 (a photo or screen shown to the camera) to 1 (a live "
                                   "person) with the MiniFASNet models, at the liveness threshold in the settings. "
                                   "Meant for camera pictures: a scanned ID photo is a photo by nature.")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.set_defaults(func=cmd_liveness)


def cmd_liveness(args) -> int:
    images = PerImage()
    with open_app(args) as app:
        liveness.require_liveness(app)   # a missing pack is one error, not one per image
        threshold = app.settings.liveness_threshold
        for path, faces in images.each(args.images, lambda p: liveness.check_file(app, p)):
            if args.json:
                print_json({"image": str(path), "threshold": threshold, "faces": [f.to_dict() for f in faces]})
                continue
            if not faces:
                print(f"{path}: no face found")
            for f in faces:
                r = f.result
                verdict = ("live" if f.live else "NOT live") if r.judged else f"not judged ({r.reason})"
                score = f"  score {r.score:.2f}" if r.judged else ""
                print(f"{path}: {verdict}{score}  box {r.bbox.as_list()}")
    return images.exit_code
