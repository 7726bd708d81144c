"""Keep secrets out of what fitscope prints or records."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


def mask_url(url: str) -> str:
    """Hide the password in a URL.

    Example:
        >>> mask_url("postgresql://ann:s3cret@db:5432/optuna")
        'postgresql://ann:***@db:5432/optuna'
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # unparsable port etc.: still never echo what might be a secret
        return url.split("@")[-1] if "@" in url else url
    if password is None:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# scheme://user:password@ — the password stops at "@", "/" or whitespace (a URL percent-encodes
# those inside a password), so a path that happens to contain "@" is not mistaken for one
_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@")


def mask_text(text: str) -> str:
    """Hide the password of every URL inside a text (a command line, an error message).

    Example:
        >>> mask_text("fitscope search iris --storage postgresql://ann:s3cret@db/optuna")
        'fitscope search iris --storage postgresql://ann:***@db/optuna'
    """
    return _CREDENTIALS.sub(r"\g<head>***@", text)
