"""Where an FTP upload's bytes go: the camera's folders, a file written straight to disk, and a data
channel that queues the finished file before the 226 goes out (with or without TLS)."""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pyftpdlib.exceptions import FilesystemError
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import DTPHandler, TLS_DTPHandler
from pyftpdlib.log import logger as pyftpdlib_logger

if TYPE_CHECKING:
    from ipcam_analysis.ingest.ftp import CameraFtpHandler

# Cameras use 6 levels or so (2026-11-23/001/jpg/10/23/45.jpg); a thousand would make
# os.makedirs recurse past Python's limit.
MAX_FOLDER_DEPTH = 32


class CameraFilesystem(AbstractedFS):
    """A camera's home, chrooted by pyftpdlib, with the leniencies camera firmwares need."""

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
        return UnbufferedUploadFile(filename, mode.replace("b", ""))

    def _check_depth(self, folder: str) -> None:
        if len(Path(folder).relative_to(self.root).parts) > MAX_FOLDER_DEPTH:
            raise FilesystemError(f"more than {MAX_FOLDER_DEPTH} nested folders")

    def chdir(self, path: str) -> None:
        # pyftpdlib calls os.chdir(), moving the working directory of every thread in the process.
        if not os.path.isdir(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        self.cwd = self.fs2ftp(path)


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
