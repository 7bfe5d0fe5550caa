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
from faceapp.core.text import escape_unsafe

COMMAND_MODULES = [
    "faceapp.cli.models",
    "faceapp.cli.people",
    "faceapp.cli.attendance",
    "faceapp.cli.visitors",
    "faceapp.cli.evaluate",
    "faceapp.cli.liveness",
    "faceapp.cli.admin",
    "faceapp.cli.selftest",
    "faceapp.cli.site",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceapp",
        description="Face-recognition attendance and access control. Without a command, opens the window.")
    parser.add_argument("--version", action="version", version=f"faceapp {__version__}")
    parser.add_argument("--home", metavar="DIR",
                        help="data folder (database, settings, models); default $FACEAPP_HOME or the user-data folder")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--camera", metavar="SOURCE[=DOOR]", action="append",
                        help="webcam number, video file, RTSP/HTTP URL or folder of images (window only); "
                             "SOURCE=DOOR, repeatable: this station's door cameras, shown as a grid")
    parser.add_argument("--reception", action="store_true", help="start in full-screen reception mode")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _name_commands(parser)
    return parser


# Commands that only read (and `watch`, a door station): they never need the administrator
# password. Every other command does once one is set, including commands added later.
READING_COMMANDS = frozenset({
    "identify", "verify", "search", "watch", "evaluate", "bench", "liveness", "selftest", "doctor",
    "people list", "log list", "audit list", "door list", "group list", "visitors list",
    "models list", "models verify", "site status", "site roles", "site sync",
})
# Commands that check who may run them themselves (the root-only recovery of a lost password).
SELF_CHECKED_COMMANDS = frozenset({"admin reset-password"})


def _name_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Give every command its full name (args.command_path, e.g. "people remove") and every
    administrative one a --password-stdin option."""
    children = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not children:
        name = " ".join(path)
        parser.set_defaults(command_path=name)
        if name not in READING_COMMANDS and not any("--password-stdin" in a.option_strings for a in parser._actions):
            parser.add_argument("--password-stdin", action="store_true",
                                help="read the administrator password from the first line of stdin "
                                     "(needed once a password is set)")
        return
    for action in children:
        for child_name, child in action.choices.items():
            _name_commands(child, (*path, child_name))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Names, ids, audit details and file names come from users: whatever a command prints or
    # logs, no control or format character reaches the terminal as such (issue #11).
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeText(sys.stdout), SafeText(sys.stderr, keep="\n\t\r")
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    from faceapp.cli.common import require_admin

    try:
        if args.command is None:
            from faceapp.gui.main import run_gui

            return run_gui(args)
        path = getattr(args, "command_path", args.command)
        if path not in READING_COMMANDS and path not in SELF_CHECKED_COMMANDS:
            require_admin(args)
        return int(args.func(args) or 0)
    except FaceAppError as exc:
        print(f"faceapp: error: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("faceapp: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams


class SafeText:
    """A text stream that writes control and format characters as visible \\uXXXX escapes."""

    def __init__(self, stream, keep: str = "\n\t") -> None:
        self._stream = stream
        self._keep = keep

    def write(self, text: str) -> int:
        self._stream.write(escape_unsafe(text, self._keep))
        return len(text)

    def __getattr__(self, name):  # flush, isatty, fileno, encoding... of the real stream
        return getattr(self._stream, name)
