"""The service's own Intake for a source's tests, its queue a test's collector (no database):
files are written, kept and removed as in the service, and refusals come from a real or a
scripted admission."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ipcam_analysis.ingest.admission import UploadAdmission
from ipcam_analysis.ingest.handoff import Refusal
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.service.intake import Intake
from ipcam_analysis.store import LocalStorage
from ipcam_analysis.values import Upload

PutMany = Callable[[Sequence[Upload]], list[int]]


def collecting_intake(
    put_many: PutMany,
    data_dir: Path,
    admission: UploadAdmission | None = None,
    storage: Any = None,
) -> Intake:
    """An Intake whose queue is `put_many` (what the test collects, or raises to refuse);
    without `admission`, every upload is admitted; without `storage`, it is data_dir's."""
    queue: Any = SimpleNamespace(put_many=put_many)
    return Intake(
        queue,
        storage or LocalStorage(data_dir),
        admission or UploadAdmission(10_000, lambda: 0, 0, []),
        Metrics(lambda: 0),
    )


class ScriptedAdmission(UploadAdmission):
    """Refuses with whatever the test puts in `refusal[0]` (None: take the upload)."""

    def __init__(self, refusal: list[Refusal | None]) -> None:
        super().__init__(10_000, lambda: 0, 0, [])
        self._refusal = refusal

    def refusal(self) -> Refusal | None:
        return self._refusal[0]
