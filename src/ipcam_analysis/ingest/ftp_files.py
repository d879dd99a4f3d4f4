"""Where an FTP upload's bytes go: the camera's folders, a file written straight to disk, and a data
channel that queues the finished file before the 226 goes out (with or without TLS).

Cameras often send every picture under one name (`snapshot.jpg`), the next one before the first
is analysed; so what the queue holds is always a file of its own, never overwritten:
- with `remove_files`, the upload is written in a unique in-flight folder beside the name the
  camera gave (`.upload-<id>/snapshot.jpg`), deleted with it once handled;
- without, the file keeps the camera's name for the user, and the queue holds a hard link (or
  copy) in an in-flight folder of a spool beside the homes; a STOR over a kept file writes a
  new file instead of changing the one the queue may hold.
"""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pyftpdlib.exceptions import FilesystemError
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import DTPHandler, TLS_DTPHandler
from pyftpdlib.log import logger as pyftpdlib_logger

if TYPE_CHECKING:
    from ipcam_analysis.ingest.ftp_session import CameraFtpHandler

# Cameras use 6 levels or so (2026-11-23/001/jpg/10/23/45.jpg); a thousand would make
# os.makedirs recurse past Python's limit.
MAX_FOLDER_DEPTH = 32
# Beside the cameras' homes, out of their reach: the queued copies of the files users keep.
SPOOL_FOLDER = ".upload-spool"
_IN_FLIGHT_FOLDER = re.compile(r"\.upload-[0-9a-f]{12}")


def in_flight_path(path: Path) -> Path:
    """Where a received file is kept apart from the next of the same name (the camera's name
    and folders unchanged, so `camera_name` gives them back)."""
    return path.parent / f".upload-{uuid.uuid4().hex[:12]}" / path.name


def camera_name(relative: Path) -> str:
    """The path a camera sent, from the path of its in-flight file below the home or spool."""
    return "/".join(part for part in relative.parts if not _IN_FLIGHT_FOLDER.fullmatch(part))


def spool_home(home: Path) -> Path:
    """Where the queued copies of a camera's kept files wait (see the module's docstring)."""
    return home.parent / SPOOL_FOLDER / home.name


def spool_copy(received: Path, home: Path) -> Path:
    """The received file, hard-linked (copied across file systems) into an in-flight folder in
    the spool, at the same place below it as below the home."""
    copy = in_flight_path(spool_home(home) / received.relative_to(home))
    copy.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(received, copy)
    except OSError:
        shutil.copyfile(received, copy)
    return copy


class CameraFilesystem(AbstractedFS):
    """A camera's home, chrooted by pyftpdlib, with the leniencies camera firmwares need."""

    cmd_channel: CameraFtpHandler

    def mkdir(self, path: str) -> None:
        # Some cameras send a whole dated path, such as `MKD 2026-11-23/001/jpg`, at once.
        self._check_depth(path)
        os.makedirs(path)

    def open(self, filename: str, mode: str) -> IO[Any]:
        if "r" in mode and "+" not in mode:
            return super().open(filename, mode)
        # The pipeline may just have removed the empty folder the camera had entered.
        self._check_depth(os.path.dirname(filename))
        os.makedirs(os.path.dirname(filename), exist_ok=True)
        if not self.cmd_channel.remove_files:
            _detach_from_queue(filename, truncating="w" in mode)
            return UnbufferedUploadFile(filename, mode.replace("b", ""))
        path = in_flight_path(Path(filename))
        path.parent.mkdir()
        return UnbufferedUploadFile(str(path), mode.replace("b", ""))

    def _check_depth(self, folder: str) -> None:
        if len(Path(folder).relative_to(self.root).parts) > MAX_FOLDER_DEPTH:
            raise FilesystemError(f"more than {MAX_FOLDER_DEPTH} nested folders")

    def chdir(self, path: str) -> None:
        # pyftpdlib calls os.chdir(), moving the working directory of every thread in the process.
        if not os.path.isdir(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        self.cwd = self.fs2ftp(path)


def _detach_from_queue(filename: str, *, truncating: bool) -> None:
    """A kept file whose inode the spool shares gets one of its own before it is written."""
    try:
        if os.stat(filename).st_nlink < 2:
            return
    except FileNotFoundError:
        return
    if truncating:
        os.unlink(filename)
        return
    own = Path(filename).with_name(f".upload-{uuid.uuid4().hex[:12]}")  # REST + STOR resumes it
    shutil.copyfile(filename, own)
    os.replace(own, filename)


class UnbufferedUploadFile(io.FileIO):
    """An upload written straight to disk, so a full disk fails the write at once.

    pyftpdlib answers 426 when a write fails; with Python's buffered files the failure could
    come at close() instead, where pyftpdlib neither answers the camera nor deletes the part.
    """

    def write(self, data: Any) -> int:
        # FileIO may write less than asked (the disk filling up); pyftpdlib ignores the count.
        view = memoryview(data).cast("B")
        while view:
            written = super().write(view)
            if not written:  # not expected of a regular file; never loop on it
                raise OSError(errno.EIO, "the upload could not be written")
            view = view[written:]
        return len(data)


class QueueBeforeReplyMixin:
    """A data channel that queues a received file before the control channel says 226.

    pyftpdlib's DTPHandler.close() replies first and calls on_file_received() after: a crash
    in between would lose an upload the camera was told is delivered.
    """

    # Set by DTPHandler.
    _closed: bool
    _resp: tuple[str, Callable[[str], None]] | tuple[()]
    receive: bool
    file_obj: IO[bytes] | None
    cmd_channel: CameraFtpHandler

    def close(self) -> None:
        finished = self._resp and self._resp[0].startswith("226")
        file = self.file_obj
        # With TLS, close() may come again while the TLS shutdown is under way: queue once.
        if not self._closed and self.receive and finished and file and not file.closed:
            file.close()
            refusal = self.cmd_channel.queue_received_file(file.name)
            if refusal is not None:
                self._resp = (refusal, pyftpdlib_logger.warning)
        super().close()  # type: ignore[misc]


class CameraDTPHandler(QueueBeforeReplyMixin, DTPHandler):
    """The data channel of a plain FTP session."""


class CameraTlsDTPHandler(QueueBeforeReplyMixin, TLS_DTPHandler):
    """The data channel of an FTPS session (protected after PROT P)."""
