"""Command line: `faceapp` opens the window; subcommands work headless.

Each module in COMMAND_MODULES adds its subcommands with ``register(subparsers)`` and
sets ``func(args) -> int`` on them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from faceapp import __version__
from faceapp.core.errors import FaceAppError
from faceapp.core.redact import install_log_redaction, redact_text

COMMAND_MODULES = [
    "faceapp.cli.models",
    "faceapp.cli.people",
    "faceapp.cli.attendance",
    "faceapp.cli.visitors",
    "faceapp.cli.evaluate",
    "faceapp.cli.liveness",
    "faceapp.cli.admin",
    "faceapp.cli.selftest",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceapp",
        description="Face-recognition attendance and access control. Without a command, opens the window.")
    parser.add_argument("--version", action="version", version=f"faceapp {__version__}")
    parser.add_argument("--home", metavar="DIR",
                        help="data folder (database, settings, models); default $FACEAPP_HOME or the user-data folder")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--camera", metavar="SOURCE",
                        help="webcam number, video file, RTSP/HTTP URL or folder of images (window only)")
    parser.add_argument("--reception", action="store_true", help="start in full-screen reception mode")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    try:
        if args.command is None:
            from faceapp.gui.main import run_gui

            return run_gui(args)
        return int(args.func(args) or 0)
    except FaceAppError as exc:
        print(f"faceapp: error: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("faceapp: interrupted", file=sys.stderr)
        return 130
