"""The e-mail package's policy our messages are built and flattened with: its SMTP policy, with
each header parsed and folded once per distinct value rather than on every set, read and write."""

from __future__ import annotations

import functools
from email.headerregistry import BaseHeader, HeaderRegistry
from email.policy import EmailPolicy
from typing import Any

# Distinct header values remembered by each cache: an alert's own (date, Message-ID, the
# picture's file name) pass through, while the ones every alert sets (sender, recipients, types,
# boundaries, a camera's subject) stay. Both full: about 1 MB.
REMEMBERED_HEADERS = 128


class _HeaderClasses(HeaderRegistry):
    """The stdlib's registry makes a new class for every header it parses (a fifth of the time
    to build an alert e-mail), and parses a stored header again on every read (the generator
    reads a part's Content-Type several times); here each class is made once per header name
    and each distinct value parsed once. Header objects are immutable, so they are shared."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        made = self._made.get(name)
        if made is None:
            made = self._made[name] = super().__getitem__(name)
        return made

    @functools.lru_cache(maxsize=REMEMBERED_HEADERS)  # noqa: B019 (one registry, kept for good)
    def __call__(self, name: str, value: str) -> BaseHeader:
        return super().__call__(name, value)


class _FoldedOnce(EmailPolicy):
    """Stores a header set by the program as the text it is written as (folded, non-ASCII as
    encoded words), as a message read from the wire has it: flattening writes that text as it
    is instead of folding the header again each time (a fifth of flattening an alert), and a
    read parses it as it parses a received message's."""

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if not isinstance(value, str):
            return super().header_store_parse(name, value)
        return name, self._folded(name, value)

    @functools.lru_cache(maxsize=REMEMBERED_HEADERS)  # noqa: B019 (one policy, kept for good)
    def _folded(self, name: str, value: str) -> str:
        """The value as a parsed message stores it: the folded text after `Name:`."""
        _, header = super().header_store_parse(name, value)  # parsed; CR or LF refused
        _, stored = self.header_source_parse(header.fold(policy=self).splitlines(keepends=True))
        return str(stored)


# CRLF line ends for the wire, and non-ASCII bodies quoted-printable or base64 rather than raw
# 8-bit, which some relays still mangle: policy.SMTP with cte_type 7bit.
MAIL_POLICY = _FoldedOnce(linesep="\r\n", cte_type="7bit", header_factory=_HeaderClasses())
