"""The one place secrets are masked before anything is printed or logged."""

from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "****"


def mask_secret(value: str | None, *, show_last: int = 0) -> str:
    """`****` (or `****abcd` with `show_last=4` for long keys); empty stays empty."""
    if not value:
        return ""
    if show_last and len(value) >= 4 * show_last:
        return MASK + value[-show_last:]
    return MASK


class SecretMaskingFilter(logging.Filter):
    """Replaces every known secret in a log record's final message with its mask."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        text = message
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        exc_text = record.exc_text or ""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
            exc_text = exc_text.replace(secret, MASK)
        if text != message:
            record.msg, record.args = text, None
        if record.exc_text:
            record.exc_text = exc_text
        return True
