"""The configuration walked for its secrets, wherever a stage's settings keep them (SecretStr,
SecretText): for the log filter, and for `--check-config` as plain data with each masked."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, RootModel, Secret, SecretStr

from ipcam_analysis.masking import MASK
from ipcam_analysis.settings import SecretText


def secrets_in(value: Any) -> list[str]:
    """Every secret value in settings (models, mappings and lists of them), for the log filter."""
    if isinstance(value, SecretText):
        return value.secret_parts()
    if isinstance(value, SecretStr | Secret):
        return [value.get_secret_value()]
    if isinstance(value, BaseModel):
        return [
            found for name in type(value).model_fields for found in secrets_in(getattr(value, name))
        ]
    if isinstance(value, dict):
        return [found for item in value.values() for found in secrets_in(item)]
    if isinstance(value, list | tuple):
        return [found for item in value for found in secrets_in(item)]
    return []


def shown(value: Any) -> Any:
    """Settings as plain data to print, every secret masked (SecretText as it shows itself)."""
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, Secret):
        return str(value)
    if isinstance(value, RootModel):
        return shown(value.root)
    if isinstance(value, BaseModel):
        return {name: shown(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shown(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return value
