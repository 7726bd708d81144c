"""Keep secrets out of what fitscope prints or records."""

from __future__ import annotations

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
