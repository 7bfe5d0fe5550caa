"""Helpers shared by the command modules: opening the app, progress bars, JSON output."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from typing import Any, Callable, Iterable, Iterator

from faceapp.core.errors import FaceAppError, StoreError
from faceapp.service import security
from faceapp.service.app import App, HomePaths
from faceapp.store.audit import default_actor


def positive_int(text: str) -> int:
    """argparse type: a whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("give a positive number")
    return value


def add_output_force(parser) -> None:
    """--force for commands writing a user-named file (the one guard is :meth:`App.check_output`)."""
    parser.add_argument("--force", action="store_true",
                        help="replace an existing file even if it is not of this kind (never the data folder's own)")


def read_password(args, prompt: str) -> str:
    """One password: the next line of stdin with --password-stdin, else asked on the terminal."""
    if getattr(args, "password_stdin", False):
        line = sys.stdin.readline()
        if not line:
            raise FaceAppError("no administrator password on stdin")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise FaceAppError("this command needs the administrator password: run it on a terminal, "
                           "or pipe the password in with --password-stdin")
    return getpass.getpass(prompt)


def require_admin(args) -> None:
    """Once an administrator password is set, administrative commands need it (asked, or read
    with --password-stdin); a wrong one is refused with the same slow-down as in the window."""
    paths = home_paths(args)
    if not paths.db.exists():
        return  # nothing to protect yet (first run, models install...)
    try:
        app = open_app(args, sync=False)
    except StoreError:
        # An unusable database holds no password to check (nor anything to protect): the command
        # says what is wrong itself, and `restore` can put a backup in its place.
        return
    with app:
        if not security.has_admin_password(app.store):
            return
        result = security.check_admin_password(app.store, read_password(args, "Administrator password: "))
    if not result.ok:
        raise security.PasswordError(f"{result.message}; '{args.command_path}' needs the administrator password")


def cli_actor() -> str:
    """Audit name of whoever runs the command: ``cli:<os user>`` (never from the environment)."""
    return default_actor(prefix="cli")


def home_paths(args) -> HomePaths:
    """The data folder of the command line's --home (or the default one), by the same rule as :class:`App`,
    for commands that must not open the database (restore, models, evaluate)."""
    return HomePaths.of(args.home)


def open_app(args, sync: bool = True) -> App:
    """The App for the --home given on the command line (or the default one); every change
    it makes is audited under :func:`cli_actor`. On a station, one quick sync first (``sync``),
    so that the command sees and changes current data."""
    app = App(args.home)
    app.store.actor = cli_actor()
    if sync:
        from faceapp.service.site import sync_quietly

        sync_quietly(app)
    return app


class PerImage:
    """Runs a command's work on each image it was given: an image that fails (unreadable, not a
    picture) gets one error line and the others go on; ``exit_code`` is 1 if any failed."""

    def __init__(self) -> None:
        self.failures = 0

    def each(self, paths: Iterable[str], work: Callable[[str], Any]) -> Iterator[tuple[str, Any]]:
        """(path, work(path)) for every path whose work did not raise a FaceAppError."""
        for path in paths:
            try:
                result = work(path)
            except FaceAppError as exc:
                self.failures += 1
                print(f"faceapp: error: {exc}", file=sys.stderr)
                continue
            yield path, result

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class Progress:
    """A one-line progress bar on stderr (plain periodic lines when stderr is not a terminal)."""

    def __init__(self, label: str, stream=None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def __call__(self, done: int, total: int, what: str = "") -> None:
        now = time.monotonic()
        final = total and done >= total
        if not final and now - self._last < (0.1 if self.tty else 2.0):
            return
        self._last = now
        if total:
            frac = min(1.0, done / total)
            bar = "#" * int(frac * 30)
            line = f"{self.label} [{bar:<30}] {done}/{total}"
        else:
            line = f"{self.label} {done}"
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(120))
            if final:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def bytes(self, label: str, done: int, total: int) -> None:
        """Adapter for byte-counting callbacks (downloads)."""
        self.label = label
        self(done // 1024, total // 1024 if total else 0)
