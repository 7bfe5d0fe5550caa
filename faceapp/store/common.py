"""Small helpers every store module shares: the clock, the acting user, name and text cleaning."""

from __future__ import annotations

import getpass
import os
from datetime import datetime, timezone

from faceapp.core.errors import FaceAppError, StoreError
from faceapp.core.text import clean_text

MAX_NAME = 200


def utc_now() -> str:
    """Current UTC time as ISO 8601 with offset (what every table stores)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def default_actor(prefix: str = "local") -> str:
    """Who is acting: ``<prefix>:<os user>``. Never taken from the environment: an audit row
    must name the account that ran the process, not what that process was told to claim."""
    return f"{prefix}:{os_user()}"


def os_user() -> str:
    """The account of the process, from its real user id (not $USER/$LOGNAME, which anyone can set);
    ``uid<N>`` when the system has no name for it."""
    if hasattr(os, "getuid"):
        import pwd

        try:
            return pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            return f"uid{os.getuid()}"
    try:  # Windows: no uid; the login name is the best there is
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def clean_name(name: str, what: str = "a name") -> str:
    """Validate a name (person, door, group): NFC, trimmed, 1..200 characters, no control or
    invisible format characters (see :mod:`faceapp.core.text`). Raises StoreError."""
    try:
        text = clean_text(name, what, MAX_NAME)
    except FaceAppError as exc:
        raise StoreError(str(exc)) from None
    if not text:
        raise StoreError(f"{what} cannot be empty")
    return text


def opt_text(value: str | None, what: str = "this field") -> str | None:
    """An optional text field (employee id, department), cleaned like a name; empty means None."""
    if value is None:
        return None
    try:
        return clean_text(str(value), what, MAX_NAME) or None
    except FaceAppError as exc:
        raise StoreError(str(exc)) from None
