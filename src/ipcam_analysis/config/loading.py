"""Reading a config file: YAML, size limits, validation in one line for the user, and
relative paths resolved against the file's folder."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from ipcam_analysis.config.messages import describe_validation_error
from ipcam_analysis.config.model import AppConfig
from ipcam_analysis.errors import ConfigError
from ipcam_analysis.settings import config_folder
from ipcam_analysis.store.storage import STORAGE_URL_VARIABLE

# A real configuration holds a few hundred values; aliases nested in each other multiply.
MAX_CONFIG_VALUES = 100_000
# Settings the environment overrides: containers, systemd units and test runs set them, and a
# database password need not sit in config.yaml.
ENVIRONMENT_OVERRIDES = {
    "IPCAM_DATABASE_URL": ("database", "url"),
    STORAGE_URL_VARIABLE: ("storage", "url"),
}


def _expanded_size(data: object) -> int:
    """How many values `data` holds once YAML aliases are expanded, counted without expanding
    them: a list or mapping that appears many times (an alias) is counted once and reused."""
    sizes: dict[int, int] = {}

    def size(value: object) -> int:
        if isinstance(value, dict):
            children = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            children = value
        else:
            return 1
        known = sizes.get(id(value))
        if known is None:
            sizes[id(value)] = 1  # an alias to itself counts once, not forever
            known = sizes[id(value)] = 1 + sum(size(child) for child in children)
        return known

    return size(data)


def load_config(path: Path) -> AppConfig:
    """Read, validate and resolve a config file, or raise ConfigError with one line for the user."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or "invalid YAML"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    except RecursionError:  # PyYAML builds nested brackets recursively
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a mapping of keys to values")
    if _expanded_size(data) > MAX_CONFIG_VALUES:
        raise ConfigError(
            f"{path}: the configuration expands to more than {MAX_CONFIG_VALUES} values "
            "(YAML aliases, *name, repeated inside each other?)"
        )
    _override_from_environment(data)
    try:
        return AppConfig.model_validate(data, context=config_folder(path.resolve().parent))
    except ValidationError as exc:
        problem = describe_validation_error(exc, AppConfig)
        for variable, (section, key) in ENVIRONMENT_OVERRIDES.items():
            if problem.startswith(f"{section}.{key}:") and os.environ.get(variable):
                problem += f" (set by {variable})"
        raise ConfigError(f"{path}: {problem}") from None


def _override_from_environment(data: dict[str, object]) -> None:
    for variable, (section, key) in ENVIRONMENT_OVERRIDES.items():
        value = os.environ.get(variable)
        if value:
            settings = data.get(section)
            data[section] = {**(settings if isinstance(settings, dict) else {}), key: value}
