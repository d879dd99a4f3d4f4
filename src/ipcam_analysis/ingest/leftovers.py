"""Files left in the upload folders by a crash or a failed queue write, found at start-up."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from ipcam_analysis.ingest.ftp_files import camera_name, spool_home
from ipcam_analysis.ingest.mail import SMTP_FOLDER, burst_of, message_of
from ipcam_analysis.values import Upload


def find_leftovers(
    root_dir: Path,
    cameras: list[str],
    queued_paths: set[str],
    source: str = "ftp",
    *,
    homes: bool = True,
) -> Iterator[Upload]:
    """Every file under a camera's home (with `homes`) or in its FTP spool that the queue does
    not hold, oldest name first, under the name the camera gave it; the pictures of one e-mail
    still one burst.

    `homes` only with `remove_files`: then every file there is unhandled by definition; the
    spool holds only queued copies of the files users keep."""
    for camera in cameras:
        home = root_dir / camera
        folders = [home, spool_home(home)] if homes else [spool_home(home)]
        for folder in folders:
            yield from _left_in(folder, camera, queued_paths, source)


def _left_in(home: Path, camera: str, queued_paths: set[str], source: str) -> Iterator[Upload]:
    paths = sorted(home.rglob("*")) if home.is_dir() else []
    left = [path for path in paths if path.is_file() and str(path) not in queued_paths]
    mails = Counter((path.parent, message_of(path.name)) for path in left if _from_mail(path, home))
    for path in left:
        received = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        pictures = mails[path.parent, message_of(path.name)] if _from_mail(path, home) else 1
        yield Upload(
            camera,
            path,
            received,
            original_name=camera_name(path.relative_to(home)),
            source="smtp" if _from_mail(path, home) else source,
            remove_when_done=True,
            home=home,
            burst_id=burst_of(camera, message_of(path.name)) if pictures > 1 else None,
            burst_size=pictures,
        )


def _from_mail(path: Path, home: Path) -> bool:
    return path.relative_to(home).parts[0] == SMTP_FOLDER
