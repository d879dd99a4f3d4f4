"""Uploads in flight: the files cameras sent, read for analysis and removed once handled."""

from __future__ import annotations

from pathlib import Path

from ipcam_analysis.values import Upload


def read_upload(upload: Upload) -> bytes:
    return upload.path.read_bytes()


def remove_upload(upload: Upload) -> None:
    """Delete a handled upload when its source asked for it (`remove_files`), then each folder
    it leaves empty up to, but not including, its home.

    Cameras upload into dated trees (2026-11-23/001/jpg/10/23/...) that would otherwise pile up.
    """
    if upload.remove_when_done:
        remove_file_and_empty_folders(upload.path, upload.home or upload.path.parent)


def remove_file_and_empty_folders(path: Path, home: Path) -> None:
    home = home.resolve()
    target = path.resolve()
    if home not in target.parents:
        raise ValueError(f"{path} is not inside the camera folder {home}")
    target.unlink(missing_ok=True)
    for folder in target.parents:
        if folder == home:
            break
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue  # removed by a concurrent clean-up of a sibling upload
        except OSError:
            break  # not empty: another upload is still there (or being written)
