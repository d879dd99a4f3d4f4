"""Analysis in `worker_processes` child processes over the shared database (the sources and
the dashboard stay in the main process)."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import multiprocessing
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client.multiprocess import mark_process_dead

from ipcam_analysis.config import AppConfig
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.service.analysis import Analysis, MakeDetector
from ipcam_analysis.store import EventStore, open_database, open_storage
from ipcam_analysis.store.queue import UploadQueue

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0  # how often the main process looks for a child that died
STOP_SECONDS = 40.0  # a child's workers get 30 s to finish what they hold
# Under data_dir: the children's counts, one file per process (prometheus_client's multi-process
# mode, chosen by this variable when a child imports it), added up by the main /metrics.
METRICS_FOLDER = "worker-metrics"
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class AnalysisProcesses:
    """`count` child processes, each an Analysis on its own connections to the database; a
    child that dies is replaced and the uploads it held go back to the queue.

    The main process and a child share nothing but the database, two pipes and the child's
    metrics file: one pipe carries "there is work" and "stop" to the child, the other the
    child's log records back. No lock is shared, so a child killed at any moment cannot leave
    one held for the others."""

    def __init__(self, config: AppConfig, count: int, make_detector: MakeDetector | None) -> None:
        """`make_detector` must be picklable (a module-level class or function)."""
        self._config = config
        self._count = count
        self._make_detector = make_detector
        self._context = multiprocessing.get_context("spawn")  # never fork a threaded process
        self._children: dict[int, _Child] = {}
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="analysis-watch", daemon=True)
        self.metrics_folder = config.data_dir / METRICS_FOLDER

    def start(self) -> None:
        # The last run's counts are not this run's: a restart starts from zero, as one process.
        shutil.rmtree(self.metrics_folder, ignore_errors=True)
        self.metrics_folder.mkdir(parents=True)
        for number in range(1, self._count + 1):
            self._start_child(number)
        self._watcher.start()
        log.info("Analysis in %d worker processes", self._count)

    def wake(self) -> None:
        """Called on every put: each child's idle workers look at the queue."""
        for child in list(self._children.values()):
            child.tell(WAKE)

    def stop(self) -> None:
        self._stopping.set()
        for child in self._children.values():
            child.tell(STOP)
        for child in self._children.values():
            child.join(STOP_SECONDS)
            mark_process_dead(child.process.pid, str(self.metrics_folder))

    def _start_child(self, number: int) -> None:
        commands_in, commands_out = self._context.Pipe(duplex=False)
        logs_in, logs_out = self._context.Pipe(duplex=False)
        level = logging.getLogger("ipcam_analysis").getEffectiveLevel()
        process = self._context.Process(
            target=run_child,
            args=(self._config, number, self._make_detector, commands_in, logs_out, level),
            name=f"analysis-{number}",
            daemon=True,
        )
        with _environment(MULTIPROCESS_VARIABLE, str(self.metrics_folder)):
            process.start()
        # The child's ends now live in the child: closing ours lets each side see the other end.
        commands_in.close()
        logs_out.close()
        self._children[number] = _Child(process, commands_out, logs_in)

    def _watch(self) -> None:
        while not self._stopping.wait(CHECK_SECONDS):
            for number, child in list(self._children.items()):
                if child.process.is_alive() or self._stopping.is_set():
                    continue
                log.error(
                    "Worker process %d ended unexpectedly (exit code %s); starting it again",
                    number,
                    child.process.exitcode,
                )
                child.close()
                mark_process_dead(child.process.pid, str(self.metrics_folder))
                self._give_back(number)
                self._start_child(number)

    def _give_back(self, number: int) -> None:
        """The uploads a dead child was working on go back to the queue."""
        database = open_database(self._config.database, self._config.data_dir)
        try:
            UploadQueue(database).recover(_owner(self._config, number))
        finally:
            database.close()


WAKE, STOP = b"w", b"s"


class _Child:
    """The main process's side of one child: its process, its command pipe, its log relay."""

    def __init__(self, process: Any, commands: Any, logs: Any) -> None:
        self.process = process
        self._commands = commands
        # A child that is busy does not read "wake"; a full pipe must never block a put.
        os.set_blocking(commands.fileno(), False)
        self._relay = threading.Thread(target=_relay_logs, args=(logs,), daemon=True)
        self._relay.start()

    def tell(self, command: bytes) -> None:
        # Busy (it looks at the queue anyway when done) or gone (the watcher replaces it). A
        # message this small is written whole or not at all (POSIX: at most PIPE_BUF bytes).
        with contextlib.suppress(OSError):
            self._commands.send_bytes(command)

    def join(self, timeout: float) -> None:
        self.process.join(timeout)
        if self.process.is_alive():
            log.warning("Worker process %s did not stop in time; ending it", self.process.name)
            self.process.kill()
            self.process.join()
        self.close()

    def close(self) -> None:
        self._commands.close()
        self._relay.join(STOP_SECONDS)


def _relay_logs(logs: Any) -> None:
    """A child's records, logged here by the logger of the same name (so this process's
    handlers, formats and secret masking apply), until the child's end closes."""
    while True:
        try:
            record = logs.recv()
        except (EOFError, OSError):
            logs.close()
            return
        logging.getLogger(record.name).handle(record)


def run_child(
    config: AppConfig,
    number: int,
    make_detector: MakeDetector | None,
    commands: Any,
    logs: Any,
    level: int,
) -> None:
    """A worker process: runs until told to stop, and ends at once if the main process dies
    (its command pipe closes), leaving what it held to the next start's recovery."""
    _log_through(logs, level)
    database = open_database(config.database, config.data_dir)
    queue = UploadQueue(
        database, owner=_owner(config, number), lease_seconds=config.database.lease_seconds
    )
    store = EventStore(
        database, open_storage(config.storage_settings(), config.data_dir), config.history
    )
    # Counts only: the queue's depth is the main process's to tell.
    analysis = Analysis(config, database, queue, store, Metrics(None), make_detector, str(number))
    analysis.start()
    while True:
        try:
            command = commands.recv_bytes()
        except (EOFError, OSError):
            os._exit(1)  # the main process is gone: no one is left to stop us gracefully
        if command == STOP:
            break
        queue.wake_all()
    analysis.stop()
    database.close()


_ENVIRONMENT_LOCK = threading.Lock()


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """`name` set while inside: a spawned child inherits it from its start, before it imports
    anything (this process's own imports are done)."""
    with _ENVIRONMENT_LOCK:
        before = os.environ.get(name)
        os.environ[name] = value
        try:
            yield
        finally:
            if before is None:
                del os.environ[name]
            else:
                os.environ[name] = before


def _owner(config: AppConfig, number: int) -> str:
    """What a process's claims are marked with, to give them back if it dies."""
    return f"{config.node_name}/analysis-{number}"


def _log_through(logs: Any, level: int) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    # typeshed's queue also asks for get(), which only a QueueListener calls; the handler puts.
    root.addHandler(logging.handlers.QueueHandler(_PipeSender(logs)))  # type: ignore[arg-type]
    root.setLevel(logging.WARNING)
    logging.getLogger("ipcam_analysis").setLevel(level)


class _PipeSender:
    """What QueueHandler needs of a queue, over this process's end of the log pipe."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._lock = threading.Lock()  # the pipe has one writer process, many threads

    def put_nowait(self, record: logging.LogRecord) -> None:
        with self._lock:
            self._connection.send(record)
