"""One place that takes secrets out of URLs before anything is logged, audited, shown or stored.

Camera addresses carry credentials in two ways: userinfo (``rtsp://admin:pw@host/...``) and
query parameters (``http://host/video.cgi?user=admin&pwd=pw``). Passwords are often typed
without percent-encoding, so ``#``, ``@``, ``?`` and ``:`` may appear raw inside them; this
module therefore does not use :func:`urllib.parse.urlsplit` (which would cut such a password at
the ``#`` and leave it in the "fragment") but takes the userinfo as everything up to the *last*
``@`` before the path. Plain Python, no dependencies.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# A URL anywhere in a text: scheme://... up to whitespace or a quote/bracket that ends it.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]{1,15}://[^\s\"'<>\]\[{}|\\^`]+")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)(.*)$", re.DOTALL)
# Query parameter names that carry a credential ("named like user/pass/pwd/password/token/key/secret").
_SECRET_PARAM = re.compile(r"user|login|pass|pwd|token|key|secret|auth|sig|credential", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with its userinfo and credential-like query values replaced by ``***``.

    Text that is not a URL comes back unchanged. ``rtsp://admin:Pa#ss@cam/x?token=t`` becomes
    ``rtsp://***@cam/x?token=***``."""
    if not isinstance(url, str):
        return url
    m = _SCHEME.match(url)
    if not m:
        return url
    scheme, rest = m.groups()
    # The host part ends at the first '/' after the last '@' that precedes it: a password may
    # hold '@', '#', '?' or ':' unencoded, but the authority never holds a '/'.
    slash = rest.find("/")
    authority, tail = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    at = authority.rfind("@")
    if at >= 0:
        authority = MASK + authority[at:]
    text = authority + tail
    # Query and fragment both may carry parameters (some cameras take "#user=...").
    starts = [i for i in (text.find("?"), text.find("#")) if i >= 0]
    if not starts:
        return scheme + text
    start = min(starts)
    return scheme + text[: start + 1] + _redact_params(text[start + 1:])


def _redact_params(params: str) -> str:
    out = []
    for part in re.split(r"([&;#?])", params):
        if part in ("&", ";", "#", "?") or "=" not in part:
            out.append(part)
            continue
        name, _, value = part.partition("=")
        out.append(f"{name}={MASK}" if value and _SECRET_PARAM.search(name) else part)
    return "".join(out)


def redact_text(text: str) -> str:
    """Every URL inside ``text`` redacted by :func:`redact_url` (for log lines and messages)."""
    if not isinstance(text, str) or "://" not in text:
        return text
    return _URL_IN_TEXT.sub(_redact_match, text)


def _redact_match(m: re.Match) -> str:
    # Punctuation that ends a sentence is not part of the URL ("cannot open rtsp://...: timeout").
    url = m.group(0)
    core = url.rstrip(".,:;)!")
    return redact_url(core) + url[len(core):]


def redact_value(value: Any) -> Any:
    """``value`` with :func:`redact_text` applied to every string inside it (dicts, lists, tuples)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v) for v in value)
    return value


def has_secret(url: str) -> bool:
    """True if :func:`redact_url` would change ``url``."""
    return isinstance(url, str) and redact_url(url) != url


class RedactingFilter:
    """A :mod:`logging` filter (attach it to handlers) that redacts URLs in every record."""

    def filter(self, record) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is logging's business, not ours
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            import traceback

            record.exc_text = redact_text("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


def install_log_redaction(logger=None) -> None:
    """Attach one :class:`RedactingFilter` to every handler of ``logger`` (default: the root logger)."""
    import logging

    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
