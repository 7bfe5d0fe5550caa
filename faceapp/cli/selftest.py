"""selftest: open the window on a video, wait for a recognised face, quit."""

from __future__ import annotations

from faceapp.cli.common import positive_int
from faceapp.core.errors import FaceAppError


def register(sub) -> None:
    p = sub.add_parser("selftest", help="check this installation: open the window on a video and wait "
                                         "until an enrolled person is recognised")
    p.add_argument("source", help="video file, folder of images, stream URL or webcam number")
    p.add_argument("--timeout", type=positive_int, default=180, metavar="SECONDS",
                   help="give up after this long (default 180)")
    p.set_defaults(func=cmd_selftest)


def cmd_selftest(args) -> int:
    from faceapp.gui.selftest import run_selftest

    names = run_selftest(args.home, args.source, float(args.timeout))
    if not names:
        raise FaceAppError(f"nobody enrolled was recognised on {args.source} within {args.timeout} s")
    print(f"recognised: {', '.join(names)}")
    return 0
