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
    """Replaces every known secret in a log record's final message with its mask.

    It never raises: a handler calls it outside the protection of its `emit`, so an exception
    here would escape the caller's `log.info(...)` and break what it was doing."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            try:
                self._mask_record(record)
            except Exception:
                # Could not be masked (a traceback that cannot be formatted, say): nothing of it
                # is shown rather than a secret.
                record.msg, record.args, record.exc_info, record.exc_text = MASK, None, None, None
        return True

    def _mask_record(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            # A call whose arguments do not fit its format: what it said, masked, on one line,
            # rather than the handler's report, which would print the arguments unmasked.
            message = f"{_text(record.msg)} (arguments that do not fit: {_text(record.args)})"
            record.msg, record.args = message, None
        text = self._mask(message)
        if text != message:
            record.msg, record.args = text, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__} that cannot be shown>"
