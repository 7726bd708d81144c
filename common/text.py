"""One line of text from an exception or a library's message, safe to print or record."""

from __future__ import annotations

import reprlib

from common.masking import mask_text

LINE_LIMIT = 300  # a message past this is a dump (a traceback, a response body), not a reason

_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 60  # a value quoted in an error names it, never dumps it
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 4
_SHOWN.maxlevel = 2


def shown(value: object) -> str:
    """repr(value) cut to a few dozen characters and two levels: what an error message quotes
    of a value the user gave (a 600-byte YAML alias bomb expands to gigabytes in full).

    Example:
        >>> shown([[1, 2, 3, 4, 5, 6]] * 9)
        '[[1, 2, 3, 4, ...], [1, 2, 3, 4, ...], [1, 2, 3, 4, ...], [1, 2, 3, 4, ...], ...]'
        >>> len(shown("x" * 10_000)) <= 60
        True
    """
    return _SHOWN.repr(value)


def first_line(value: object, with_type: bool = False) -> str:
    """The first line of `str(value)`, cut to LINE_LIMIT, with any URL password masked (MLflow
    and SQLAlchemy errors quote the URL they failed on, credentials included).

    Example:
        >>> first_line(ValueError("bad\\nmore"), with_type=True)
        'ValueError: bad'
        >>> first_line(OSError("cannot reach http://ann:s3cret@host:5000/api\\n..."))
        'cannot reach http://ann:***@host:5000/api'
    """
    lines = mask_text(str(value)).strip().splitlines()
    if not lines:
        return type(value).__name__
    text = lines[0][:LINE_LIMIT]
    return f"{type(value).__name__}: {text}" if with_type else text


def last_line(text: str | None) -> str:
    """The last line of a multi-line message (where a traceback puts the error), cut and masked."""
    lines = mask_text(text or "").strip().splitlines()
    return lines[-1][:LINE_LIMIT] if lines else ""
