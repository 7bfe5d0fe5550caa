"""The administrator password: a salted scrypt hash, and a slow-down after wrong guesses.

- Stored in the ``credentials`` table (role "admin"): scheme, the scrypt parameters, a random
  16-byte salt and the derived key. Never the password; parameters are stored per row so that
  they can be raised later without invalidating existing hashes.
- Comparison is constant-time (:func:`hmac.compare_digest`).
- Wrong passwords are counted in the database (so restarting the app does not reset them):
  from the 3rd failure on, the next try must wait ``2**(failures-3)`` seconds, at most 60 s.
  A try during the wait is refused without looking at the password; the caller shows
  "try again in N s" (nothing here sleeps, so the GUI thread never blocks).
- A right password resets the counter. Failures and password changes are audited.

The password protects the GUI (reception screen). Whoever can read the data folder can read
the database itself, so `faceapp admin set-password` on the command line resets it without
the old one: file permissions, not this password, protect the data folder.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from faceapp.core.csvexport import local_iso, neutralize
from faceapp.core.errors import FaceAppError
from faceapp.service.app import App
from faceapp.service.attendance import write_csv_file
from faceapp.store.audit import AUDIT_HEADER, AuditLog
from faceapp.store.db import Store, utc_now

log = logging.getLogger(__name__)

ROLE = "admin"
SCHEME = "scrypt"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
FREE_FAILURES = 2       # the 3rd wrong password starts the slow-down
MAX_DELAY = 60.0


class PasswordError(FaceAppError):
    """A password was refused (wrong, too short, not set...)."""


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost: n=2**15, r=8 needs 32 MiB and ~0.1 s per check on a laptop core."""

    n: int = 2 ** 15
    r: int = 8
    p: int = 1
    dklen: int = 32

    @property
    def maxmem(self) -> int:
        return 128 * self.n * self.r * self.p + (1 << 20)

    def to_json(self) -> str:
        return json.dumps({"n": self.n, "r": self.r, "p": self.p, "dklen": self.dklen})

    @classmethod
    def from_json(cls, text: str) -> ScryptParams:
        """Stored parameters; ValueError for values no faceapp writes (a hand-edited row must
        not make a password check allocate gigabytes)."""
        d = json.loads(text)
        params = cls(int(d["n"]), int(d["r"]), int(d["p"]), int(d["dklen"]))
        if not (2 <= params.n <= 2 ** 20 and params.n & (params.n - 1) == 0 and 1 <= params.r <= 32
                and 1 <= params.p <= 16 and 16 <= params.dklen <= 64):
            raise ValueError(f"unexpected scrypt parameters {d}")
        return params


DEFAULT_PARAMS = ScryptParams()


@dataclass(frozen=True)
class LoginResult:
    """Outcome of a password check. ``retry_after``: seconds before the next try is accepted."""

    ok: bool
    retry_after: float = 0.0
    failures: int = 0
    message: str = ""


def failure_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive wrong passwords: 0, 0, 1, 2, 4 ... 60."""
    if failures <= FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY, 2.0 ** (failures - FREE_FAILURES - 1))


def _normalise(password: str) -> bytes:
    if not isinstance(password, str):
        raise PasswordError("the password must be text")
    # The same password typed on two keyboards may arrive in two Unicode forms.
    return unicodedata.normalize("NFC", password).encode("utf-8")


def validate_new_password(password: str) -> None:
    """Raise PasswordError if ``password`` is not acceptable as a new administrator password."""
    text = unicodedata.normalize("NFC", password) if isinstance(password, str) else None
    if text is None:
        raise PasswordError("the password must be text")
    if len(text) < MIN_PASSWORD_LENGTH:
        raise PasswordError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(text) > MAX_PASSWORD_LENGTH:
        raise PasswordError(f"the password can have at most {MAX_PASSWORD_LENGTH} characters")
    if not text.strip():
        raise PasswordError("the password cannot be only spaces")


def hash_password(password: str, salt: bytes, params: ScryptParams = DEFAULT_PARAMS) -> bytes:
    return hashlib.scrypt(_normalise(password), salt=salt, n=params.n, r=params.r, p=params.p,
                          maxmem=params.maxmem, dklen=params.dklen)


def has_admin_password(store: Store) -> bool:
    """True once an administrator password was set (the first run sets one)."""
    return bool(store.query("SELECT 1 AS x FROM credentials WHERE role = ?", (ROLE,)))


def set_admin_password(store: Store, password: str, params: ScryptParams = DEFAULT_PARAMS,
                       reset: bool = False) -> None:
    """Set (first run) or replace the administrator password; resets the failure counter.

    The caller checks the current password first where that matters (the GUI does through
    its gate); ``reset`` only changes how the audit row names the change."""
    validate_new_password(password)
    salt = secrets.token_bytes(16)
    digest = hash_password(password, salt, params)
    with store.transaction() as conn:
        existed = conn.execute("SELECT 1 FROM credentials WHERE role = ?", (ROLE,)).fetchone() is not None
        conn.execute(
            "INSERT OR REPLACE INTO credentials (role, scheme, params, salt, hash, updated, failures, last_failure) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, NULL)", (ROLE, SCHEME, params.to_json(), salt, digest, utc_now()))
        action = "admin.password_reset" if reset and existed else (
            "admin.password_change" if existed else "admin.password_set")
        store.audit(action, "admin", {"scheme": SCHEME, "n": params.n, "r": params.r, "p": params.p}, conn)
    log.info("administrator password %s", "changed" if existed else "set")


def retry_after(store: Store, now: float | None = None) -> float:
    """Seconds until the next password try is accepted (0 = now)."""
    rows = store.query("SELECT failures, last_failure FROM credentials WHERE role = ?", (ROLE,))
    if not rows:
        return 0.0
    return _remaining(rows[0]["failures"], rows[0]["last_failure"], time.time() if now is None else now)


def _remaining(failures: int, last_failure: float | None, now: float) -> float:
    if not failures or last_failure is None:
        return 0.0
    delay = failure_delay(int(failures))
    # A clock set back must not lock the administrator out for longer than the delay itself.
    return max(0.0, min(delay, float(last_failure) + delay - now))


def check_admin_password(store: Store, password: str, now: float | None = None) -> LoginResult:
    """Check a password against the stored hash, honouring and updating the slow-down.

    Raises PasswordError when no password is set. ``now`` (epoch seconds) is for tests."""
    now = time.time() if now is None else now
    rows = store.query("SELECT scheme, params, salt, hash, failures, last_failure FROM credentials WHERE role = ?",
                       (ROLE,))
    if not rows:
        raise PasswordError("no administrator password is set yet (faceapp admin set-password)")
    row = rows[0]
    wait = _remaining(row["failures"], row["last_failure"], now)
    if wait > 0:
        return LoginResult(False, wait, int(row["failures"]), f"too many wrong passwords: {wait_message(wait)}")
    if row["scheme"] != SCHEME:
        raise PasswordError(f"unknown password scheme {row['scheme']!r}; set a new one with: faceapp admin set-password")
    try:
        digest = hash_password(password, row["salt"], ScryptParams.from_json(row["params"]))
    except PasswordError:
        digest = b""
    except (ValueError, KeyError, TypeError) as exc:  # damaged parameters
        raise PasswordError(f"the stored password is damaged ({exc}); set a new one with: "
                            f"faceapp admin set-password") from exc
    ok = hmac.compare_digest(digest, bytes(row["hash"]))
    with store.transaction() as conn:
        if ok:
            conn.execute("UPDATE credentials SET failures = 0, last_failure = NULL WHERE role = ?", (ROLE,))
            store.audit("admin.login", "admin", {"after_failures": int(row["failures"])}, conn)
            return LoginResult(True)
        # Re-read inside the write lock: another window may have counted a failure meanwhile.
        failures = int(conn.execute("SELECT failures FROM credentials WHERE role = ?", (ROLE,)).fetchone()[0]) + 1
        conn.execute("UPDATE credentials SET failures = ?, last_failure = ? WHERE role = ?", (failures, now, ROLE))
        store.audit("admin.login_failed", "admin", {"failures": failures}, conn)
    wait = failure_delay(failures)
    message = "wrong password" + (f"; {wait_message(wait)}" if wait else "")
    return LoginResult(False, wait, failures, message)


def wait_message(seconds: float) -> str:
    """'try again in N s' with N rounded up."""
    return f"try again in {max(1, math.ceil(seconds))} s"


# -- the audit log as CSV ---------------------------------------------------------------------------
def export_audit(app: App, path: Path | str, bom: bool = False, action: str | None = None,
                 search: str | None = None, force: bool = False) -> int:
    """Write the audit log (oldest first) as a spreadsheet-safe CSV, atomically; the export is
    itself audited. Returns the number of rows written."""
    app.check_output(path, "csv", force)
    records = AuditLog(app.store).records(action=action, search=search, newest_first=False)
    rows = ([neutralize(v) for v in (local_iso(r.time), r.actor, r.action, r.target or "", r.details, r.id)]
            for r in records)
    n = write_csv_file(path, AUDIT_HEADER, rows, bom)
    app.audit("audit.export", {"path": str(path), "rows": n})
    return n
