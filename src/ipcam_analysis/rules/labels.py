"""Which labels alert: watched labels matched by name, parent, alias or category."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ipcam_analysis.values import Decision, Label, MatchedLabel


def folded(names: Iterable[str]) -> set[str]:
    return {name.casefold() for name in names}


def decide(labels: Sequence[Label], watched: Sequence[str], new_labels_only: bool) -> Decision:
    """Alarm mode: alert on watched labels. New-labels mode: alert on anything not watched.

    Names are compared case-insensitively, and a label matches through its parents, aliases and
    categories too: Rekognition calls "Human" an alias of "Person" and "Car" a child of "Vehicle".
    """
    watched_names = folded(watched)
    matched: list[MatchedLabel] = []
    ignored: list[str] = []
    for label in labels:
        if new_labels_only:
            known = _known_because(label, watched_names)
            if known is None:
                shown = (
                    f"{label.name} ({', '.join(label.parents)})" if label.parents else label.name
                )
                matched.append(MatchedLabel(label, shown))
            else:
                ignored.append(f"{label.name}{known}")
        elif folded(_names_of(label)) & watched_names:
            matched.append(MatchedLabel(label, label.name))
        else:
            ignored.append(label.name)
    return Decision(alert=bool(matched), matched=tuple(matched), ignored=tuple(ignored))


def why_not_alerted(decision: Decision, new_labels_only: bool) -> str | None:
    """Why the labels left after the filters did not alert, for the event's reason:
    `not in labels: Tree, Plant`; in new-labels mode `already known: Person, Car (ignored
    parent: Vehicle)`. None when every label alerted (or none was left)."""
    if not decision.ignored:
        return None
    heading = "already known" if new_labels_only else "not in labels"
    return f"{heading}: {', '.join(decision.ignored)}"


def _names_of(label: Label) -> tuple[str, ...]:
    """Every name a label answers to in alarm mode, runner-ups of merged objects included."""
    return (
        label.name,
        *label.parents,
        *label.aliases,
        *label.categories,
        *label.runner_up_names,
    )


def _known_because(label: Label, watched_names: set[str]) -> str | None:
    """In new-labels mode, why a label is not new: '' when listed, ' (ignored parent: P)' when
    a parent is; None when it is new."""
    if folded((label.name, *label.aliases)) & watched_names:
        return ""
    for parent in label.parents:
        if parent.casefold() in watched_names:
            return f" (ignored parent: {parent})"
    return None


def matching_sensors(
    matched: Sequence[MatchedLabel], sensor_labels: Sequence[str]
) -> tuple[str, ...]:
    """The sensor labels (one binary sensor each) an alert turns on, matched as `decide` matches."""
    names = folded(name for match in matched for name in _names_of(match.label))
    return tuple(label for label in sensor_labels if label.casefold() in names)


def describe_labels(labels: Iterable[Label]) -> str:
    """`Person 98.7%, Tree 91.0%` for logs."""
    return ", ".join(f"{label.name} {label.confidence:.1f}%" for label in labels) or "none"
