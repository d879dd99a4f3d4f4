"""Files left in the upload folders by a crash or a failed queue write, found at start-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from ipcam_analysis.ingest.mail import SMTP_FOLDER
from ipcam_analysis.values import Upload


def find_leftovers(
    root_dir: Path, cameras: list[str], queued_paths: set[str], source: str = "ftp"
) -> Iterator[Upload]:
    """Every file under a camera's home that the queue does not hold, oldest name first.

    Only meaningful with `remove_files`: then every file there is unhandled by definition."""
    for camera in cameras:
        home = root_dir / camera
        for path in sorted(home.rglob("*")) if home.is_dir() else ():
            if path.is_file() and str(path) not in queued_paths:
                received = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
                name = path.relative_to(home)
                yield Upload(
                    camera,
                    path,
                    received,
                    original_name=name.as_posix(),
                    source="smtp" if name.parts[0] == SMTP_FOLDER else source,
                    remove_when_done=True,
                    home=home,
                )
