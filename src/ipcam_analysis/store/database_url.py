"""The database URL as a secret: every password a libpq connection string can carry kept out of
the log, and masked wherever the URL is shown."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from ipcam_analysis.masking import MASK
from ipcam_analysis.settings import SecretText


class DatabaseUrl(SecretText):
    """`database.url`: shown with its passwords masked; only they are kept out of the log (the
    rest says which server)."""

    def _display(self) -> str:
        return masked_database_url(self.get_secret_value())

    def secret_parts(self) -> list[str]:
        return database_url_secrets(self.get_secret_value())


# `password=...` in a key=value connection string: quoted (with \' and \\ escapes) or a word.
_CONNINFO_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s']*)", re.IGNORECASE)


def database_url_secrets(url: str) -> list[str]:
    """Every password a libpq connection string can carry, as written and decoded, for the
    log filter: `user:password@` and `?password=` in a URL, `password=` in key=value form."""
    if "://" in url:
        parts = urlsplit(url)
        written = [parts.netloc.rpartition("@")[0].partition(":")[2]]
        pairs = (pair.partition("=") for pair in parts.query.split("&"))
        written += [value for key, _, value in pairs if _is_password(key)]
        found = [form for secret in written for form in (secret, unquote(secret))]
    else:
        written = [match.group(2) for match in _CONNINFO_PASSWORD.finditer(url)]
        found = [form for secret in written for form in (secret, _unquoted_conninfo(secret))]
    return [secret for secret in dict.fromkeys(found) if secret]


def masked_database_url(url: str) -> str:
    """A database URL (or key=value string) as it may be shown: every password ****."""
    if "://" not in url:
        return _CONNINFO_PASSWORD.sub(lambda match: match.group(1) + MASK, url)
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    netloc = f"{user}:{MASK}@{hosts}" if password else parts.netloc
    query = "&".join(_masked_parameter(pair) for pair in parts.query.split("&"))
    return parts._replace(netloc=netloc, query=query).geturl()


def _masked_parameter(pair: str) -> str:
    key = pair.partition("=")[0]
    return f"{key}={MASK}" if _is_password(key) else pair


def _is_password(key: str) -> bool:
    return unquote(key).strip().lower() == "password"  # libpq decodes the keys too


def _unquoted_conninfo(value: str) -> str:
    if not value.startswith("'"):
        return value
    return re.sub(r"\\(.)", r"\1", value[1:].removesuffix("'"))
