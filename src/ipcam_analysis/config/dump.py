"""The configuration as plain data with every secret masked, for `--check-config`."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ipcam_analysis.notify.apprise import secrets_in_url


def masked_url(url: str) -> str:
    """An Apprise URL with its tokens and passwords replaced by ****."""
    for secret in sorted(secrets_in_url(url)[1:], key=len, reverse=True):
        url = url.replace(secret, "****")
    return url


def masked(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "****" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return value
