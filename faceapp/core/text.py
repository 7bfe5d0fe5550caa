"""Text a person types that faceapp stores and shows again: names, ids, departments, doors, groups.

Two dangers (issue #11): control characters that a terminal obeys (``ESC ] 0;...`` retitles the
window, ``ESC [2J`` clears it) and invisible format characters that make two different names
look the same ("Tony Blair" and "Tony\\u200bBlair", or U+202E turning text around). Such text is
refused when it is stored (:func:`clean_text`), and anything printed goes through
:func:`escape_unsafe` in case older data holds it. Plain Python.
"""

from __future__ import annotations

import unicodedata

from faceapp.core.errors import FaceAppError

# Cc control, Cf format (bidi overrides, zero-width, soft hyphen, BOM), Cs surrogates,
# Zl/Zp line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def unsafe_char(text: str) -> str | None:
    """The first control or format character in ``text`` (None when there is none)."""
    for c in text:
        if unicodedata.category(c) in _UNSAFE_CATEGORIES:
            return c
    return None


def describe_char(c: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE`` (a name for an error message, never the character)."""
    return f"U+{ord(c):04X}" + (f" {unicodedata.name(c)}" if unicodedata.name(c, "") else "")


def clean_text(value: str, what: str, max_length: int) -> str:
    """``value`` NFC-normalised, whitespace collapsed, checked: raises FaceAppError (one line)
    if it holds a control or format character or is longer than ``max_length``. May return ""."""
    if not isinstance(value, str):
        raise FaceAppError(f"{what} must be text")
    text = " ".join(unicodedata.normalize("NFC", value).split())
    bad = unsafe_char(text)
    if bad is not None:
        raise FaceAppError(f"{what} cannot contain control characters or invisible formatting characters "
                           f"(found {describe_char(bad)})")
    if len(text) > max_length:
        raise FaceAppError(f"{what} can have at most {max_length} characters (this one has {len(text)})")
    return text


def escape_unsafe(text: str, keep: str = "\n\t") -> str:
    """``text`` with every control or format character (except those in ``keep``) written as
    a visible ``\\uXXXX`` escape, so printing stored text cannot drive the terminal. The escape is
    also a valid JSON string escape, so JSON output stays valid and means the same."""
    if not any(unicodedata.category(c) in _UNSAFE_CATEGORIES for c in text if c not in keep):
        return text
    return "".join(_escape(c) if c not in keep and unicodedata.category(c) in _UNSAFE_CATEGORIES
                   else c for c in text)


def _escape(c: str) -> str:
    n = ord(c)
    if n <= 0xFFFF:
        return f"\\u{n:04x}"
    n -= 0x10000  # beyond the BMP: a UTF-16 surrogate pair, as JSON writes it
    return f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"
