"""Pydantic validation errors as one line for the user: the key path, what is wrong, and for a
mistyped key the closest known one."""

from __future__ import annotations

import difflib
import reprlib
from typing import Any

from pydantic import BaseModel, ValidationError

# The wrong value is quoted in short: a long string or a deep list (YAML aliases can make one of
# millions of items from a few lines) must not turn the one line into megabytes.
_SHORT = reprlib.Repr()  # keyword settings need Python 3.12
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 2, 4, 4
_SHORT.maxstring = _SHORT.maxother = 60


def describe_validation_error(exc: ValidationError, root: type[BaseModel]) -> str:
    """The first problem as `key.path: what is wrong`, with a suggestion for a mistyped key."""
    errors = exc.errors()
    first = errors[0]
    parts, parent = _walk(first["loc"][:-1], root)
    last = first["loc"][-1] if first["loc"] else ""
    key = _dotted([*parts, last]) if first["loc"] else "(top level)"
    if first["type"] == "extra_forbidden":
        message = f"unknown key {key!r}"
        names = list(getattr(parent, "model_fields", ()))
        matches = difflib.get_close_matches(str(last), names, n=1, cutoff=0.6)
        if matches:
            message += f" (did you mean {matches[0]!r}?)"
    elif first["type"] == "union_tag_invalid":
        context = first.get("ctx", {})
        message = f"{key}.type: must be one of {context.get('expected_tags')} (got {_SHORT.repr(context.get('tag'))})"
    else:
        text = first["msg"].removeprefix("Value error, ")
        message = f"{key}: {text}" if first["loc"] else text
        if first["type"] not in ("missing", "value_error") and "input" in first:
            message += f" (got {_SHORT.repr(first['input'])})"
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return message


def _dotted(parts: list[Any]) -> str:
    """`cameras.cam01.time_window[0].start`: list positions in brackets."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def _walk(loc: tuple[Any, ...], root: type[BaseModel]) -> tuple[list[Any], Any]:
    """Follow an error location through the model tree: the key names and the model at its end.

    Discriminated unions put the member's tag in the location; it is skipped in the key names.
    """
    model: Any = root
    parts: list[Any] = []
    for part in loc:
        members = _models_in(model)
        tagged = [m for m in members if part in _type_tags(m)]
        if tagged:
            model = tagged[0]
            continue
        parts.append(part)
        field = getattr(model, "model_fields", {}).get(str(part))
        model = field.annotation if field is not None else None
        candidates = _models_in(model)
        model = candidates[0] if len(candidates) == 1 else model
    return parts, model


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation such as `X | None` or a union of detectors can hold."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [
        arg
        for arg in getattr(annotation, "__args__", ())
        if isinstance(arg, type) and issubclass(arg, BaseModel)
    ]


def _type_tags(model: type[BaseModel]) -> tuple[Any, ...]:
    type_field = model.model_fields.get("type")
    return getattr(type_field.annotation, "__args__", ()) if type_field else ()
