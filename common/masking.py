"""Keep secrets out of what fitscope prints or records."""

from __future__ import annotations

import re

# scheme://user:password@host — the password runs to the LAST "@" of the token, so a raw "/",
# "#", "?", "+" or "@" inside it (psycopg and SQLAlchemy accept them unencoded) stays hidden.
# A path that holds an "@" after a host:port may be hidden with it: hiding too much is the safe
# side. The user name may hold an "@" too (user@server names on managed PostgreSQL).
_SCHEME = r"\b[a-zA-Z][a-zA-Z0-9+.-]*://"
_IN_TEXT = re.compile(rf"(?P<head>{_SCHEME}[^:/\s]*:)\S*@")  # a token ends at whitespace
_WHOLE = re.compile(rf"(?P<head>{_SCHEME}[^:/\s]*:).*@", re.DOTALL)  # one URL: all of it


def mask_url(url: str) -> str:
    """Hide the password in a URL.

    Example:
        >>> mask_url("postgresql://ann:s3cret@db:5432/optuna")
        'postgresql://ann:***@db:5432/optuna'
        >>> mask_url("postgresql://ann:se/cr#et@db/optuna")
        'postgresql://ann:***@db/optuna'
    """
    return _WHOLE.sub(r"\g<head>***@", url, count=1)


def mask_text(text: str) -> str:
    """Hide the password of every URL inside a text (a command line, an error message).

    Example:
        >>> mask_text("fitscope search iris --storage postgresql://ann:s3cret@db/optuna")
        'fitscope search iris --storage postgresql://ann:***@db/optuna'
    """
    return _IN_TEXT.sub(r"\g<head>***@", text)
