"""Small helpers every store module shares: the clock, the acting user, name and text cleaning."""

from __future__ import annotations

import getpass
import os
from datetime import datetime, timezone

from faceapp.core.errors import StoreError

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


def clean_name(name: str) -> str:
    """Validate a person's name: trimmed, 1..200 characters, no control characters."""
    if not isinstance(name, str):
        raise StoreError("a name must be text")
    name = " ".join(name.split())
    if not name:
        raise StoreError("a name cannot be empty")
    if len(name) > MAX_NAME:
        raise StoreError(f"a name can have at most {MAX_NAME} characters (this one has {len(name)})")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise StoreError("a name cannot contain control characters")
    return name


def opt_text(value: str | None) -> str | None:
    """An optional text field: whitespace collapsed, empty means None."""
    if value is None:
        return None
    value = " ".join(str(value).split())
    return value or None
