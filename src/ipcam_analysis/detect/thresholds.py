"""Confidence thresholds by label: one number, or a map by label name, alias or parent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated

from pydantic import Field

from ipcam_analysis.values import Label

Percent = Annotated[float, Field(gt=0, le=100)]
# How a setting is written: `15`, or `{Animal: 8, Person: 40, default: 15}`.
PercentByLabel = Percent | dict[str, Percent]


@dataclass(frozen=True)
class LabelThresholds:
    """Each label's threshold: its own name's or alias's, else its parents' lowest, else the
    default."""

    default: float
    by_name: Mapping[str, float] = field(default_factory=dict)  # case-folded names

    @classmethod
    def parse(cls, setting: float | Mapping[str, float], default: float) -> LabelThresholds:
        """The setting; `default` holds for labels a map leaves out, unless it names `default`."""
        if not isinstance(setting, Mapping):
            return cls(float(setting))
        by_name = {name.casefold(): float(value) for name, value in setting.items()}
        return cls(by_name.pop("default", default), by_name)

    @property
    def lowest(self) -> float:
        """What a detector must report for every label to be held to its own threshold later."""
        return min((self.default, *self.by_name.values()))

    def for_label(self, label: Label) -> float:
        for name in (label.name, *label.aliases):
            if name.casefold() in self.by_name:
                return self.by_name[name.casefold()]
        parents = [
            self.by_name[p.casefold()] for p in label.parents if p.casefold() in self.by_name
        ]
        return min(parents, default=self.default)

    def passing(self, labels: Sequence[Label]) -> tuple[Label, ...]:
        """The labels, each with only its instances at or above its own threshold."""
        kept = []
        for label in labels:
            threshold = self.for_label(label)
            instances = tuple(i for i in label.instances if i.confidence >= threshold)
            if instances or (not label.instances and label.confidence >= threshold):
                best = instances[0].confidence if instances else label.confidence
                kept.append(replace(label, confidence=best, instances=instances))
        return tuple(kept)


def named_thresholds(value: float | dict[str, float] | None) -> float | dict[str, float] | None:
    """A settings validator: a map's keys are names."""
    if isinstance(value, dict) and any(not name.strip() for name in value):
        raise ValueError("each key must be a label or parent name, or `default`")
    return value
