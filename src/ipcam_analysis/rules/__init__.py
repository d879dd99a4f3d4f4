"""Pure decisions: which labels alert, which objects the filters drop, what repeats, what the
budget allows. No I/O: what the store remembers is handed in, what to remember is handed back."""

from ipcam_analysis.rules.budget import BudgetConfig, CallLimits
from ipcam_analysis.rules.exceptions import (
    ExceptionsConfig,
    ThresholdSuggestion,
    drop_learned_exceptions,
    not_a,
    suggest_thresholds,
)
from ipcam_analysis.rules.filters import (
    FiltersConfig,
    StationaryConfig,
    filter_labels,
    needed_confidence,
)
from ipcam_analysis.rules.geometry import in_zone, iou, point_in_polygon
from ipcam_analysis.rules.labels import (
    decide,
    describe_labels,
    matching_sensors,
    why_not_alerted,
)
from ipcam_analysis.rules.objects import merge_same_objects, one_name_per_object
from ipcam_analysis.rules.windows import TimeWindow, describe_time_windows, in_time_windows

__all__ = [
    "BudgetConfig",
    "CallLimits",
    "ExceptionsConfig",
    "FiltersConfig",
    "StationaryConfig",
    "ThresholdSuggestion",
    "TimeWindow",
    "decide",
    "describe_labels",
    "describe_time_windows",
    "drop_learned_exceptions",
    "filter_labels",
    "in_time_windows",
    "in_zone",
    "iou",
    "matching_sensors",
    "merge_same_objects",
    "needed_confidence",
    "not_a",
    "one_name_per_object",
    "point_in_polygon",
    "suggest_thresholds",
    "why_not_alerted",
]
