"""Settings that load but probably do not mean what was written: one line each, warned at start
and by `--check-config`."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from ipcam_analysis.config.model import AppConfig
from ipcam_analysis.detect import DETECTORS
from ipcam_analysis.detect.local import label_names


def config_warnings(config: AppConfig) -> list[str]:
    """Every warning about the configuration, one line each."""
    known = {name.casefold(): name for name in label_names()}
    checks = [("labels", config.labels, config.detector.type, config.new_labels_only)]
    for name, own in config.cameras.items():
        if own.labels is not None:
            camera = config.camera(name)
            checks.append(
                (f"cameras.{name}.labels", own.labels, camera.detector, camera.new_labels_only)
            )
    return [
        warning
        for where, labels, kind, new_labels_only in checks
        for label in labels
        if (warning := _unknown_label(where, label, kind, new_labels_only, known))
    ]


def _unknown_label(
    where: str, label: str, kind: str, new_labels_only: bool, known: dict[str, str]
) -> str | None:
    """`labels: 'Persn' is not a label the local detector knows (nearest: Person)`, or None
    for a known label (or one Rekognition may well answer)."""
    if label.casefold() in known:
        return None
    plugin = DETECTORS[kind]
    nearest = _nearest(label, known)
    if not plugin.label_names_known:
        if not nearest:
            return None  # Rekognition answers thousands of labels the project does not list
        return (
            f"{where}: {label!r} is not a label Rekognition is known to give (nearest: {nearest})"
        )
    line = f"{where}: {label!r} is not a label the local detector knows"
    line += f" (nearest: {nearest})" if nearest else " (none close)"
    if plugin.unknown_label_effect and not new_labels_only:
        line += f": {plugin.unknown_label_effect}"
    return line


def _nearest(label: str, known: dict[str, str]) -> str:
    matches: Sequence[str] = difflib.get_close_matches(label.casefold(), list(known), n=3)
    return ", ".join(known[match] for match in matches)
