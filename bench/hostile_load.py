#!/usr/bin/env python3
"""Hostile load on the listeners, and what a camera sees meanwhile: the service as a process
under `prlimit` (systemd's default soft limit of 1,024 open files), attacked from loopback
addresses while one camera (127.0.1.1) sends a snapshot each way (FTP, FTPS, HTTP push, SMTP)
over and over; then the same once the attack is over.

  idle-flood    --connections idle connections to the HTTP push port, from 30 addresses
  one-address   from 127.0.0.2 alone: 35 idle and 35 trickling connections (headers begun,
                never ended) and 20 wrong passwords at once, again as each is answered

    .venv/bin/python bench/hostile_load.py                             # both, 20 s each
    .venv/bin/python bench/hostile_load.py --attack idle-flood --hard 524288
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402

SOURCES = {"ftp": "ftp", "ftps": "ftp", "http": "http", "smtp": "smtp"}  # kind -> its port
CAMERA = common.Camera("cam01", "127.0.1.1")
FLOOD_ADDRESSES = [f"127.0.0.{n}" for n in range(2, 32)]
ATTACKER = "127.0.0.2"
HEADER_START = b"POST /upload HTTP/1.1\r\nHost: cameras\r\n"
CAMERA_TIMEOUT_SECONDS = 5.0  # a camera waiting longer counts as refused
RECOVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Target:
    pid: int
    ports: dict[str, int]
    log: Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attack", nargs="+", choices=list(ATTACKS), default=list(ATTACKS))
    parser.add_argument("--limit", type=int, default=1024, help="the soft open-files limit")
    parser.add_argument("--hard", type=int, help="the hard limit (default: --limit)")
    parser.add_argument("--connections", type=int, default=1100, help="idle-flood's size")
    parser.add_argument("--seconds", type=float, default=20.0, help="each attack's length")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    common.exit_on_sigterm()
    common.FTP_TIMEOUT_SECONDS = CAMERA_TIMEOUT_SECONDS
    results = [measure(attack, args) for attack in args.attack]
    common.print_table(
        ["attack", "log kB", "RSS peak MB", "files peak", "camera during", "camera after"],
        [
            [
                r["attack"],
                r["log_kb"],
                r["rss_peak_mb"],
                r["open_files_peak"],
                _summary(r["camera_during"]),
                _summary(r["camera_after"]),
            ]
            for r in results
        ],
    )
    limits = {"soft": args.limit, "hard": args.hard or args.limit}
    common.write_results("hostile_load", {"limits": limits, "results": results}, args.output)
    return 0


def measure(attack: str, args: argparse.Namespace) -> dict[str, Any]:
    snapshot = common.snapshot_jpeg(common.SIZES["800x488"])
    with hostile_service(args) as target:
        log_before = target.log.stat().st_size
        open_files = common.Sampler(lambda: _open_files(target.pid), every=0.2)
        with open_files, ATTACKS[attack](target, args):
            during = camera_rounds(target, snapshot, args.seconds)
        after = camera_rounds(target, snapshot, RECOVERY_SECONDS, until_all_pass=True)
        return {
            "attack": attack,
            "log_kb": round((target.log.stat().st_size - log_before) / 1024, 1),
            "rss_peak_mb": common.process_rss_mb(target.pid, "VmHWM"),
            "open_files_peak": max(value for _, value in open_files.samples),
            "camera_during": during,
            "camera_after": after,
        }


@contextmanager
def hostile_service(args: argparse.Namespace) -> Iterator[Target]:
    with ExitStack() as stack:
        stack.enter_context(common.moto_rekognition(common.rekognition_person()))
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-hostile-")))
        ports = {kind: common.free_port() for kind in ("ftp", "http", "smtp")}
        settings = common.service_settings(
            work,
            cameras=2,
            workers=1,
            detector={"type": "rekognition"},
            smtp_port=None,
            ftp_port=ports["ftp"],
            sections={
                "ftp_server": {"tls": {"mode": "optional"}},
                "http_ingest": {"enabled": True, "host": common.LOOPBACK, "port": ports["http"]},
                "smtp_server": {"enabled": True, "host": common.LOOPBACK, "port": ports["smtp"]},
            },
        )
        wrapper = ["prlimit", f"--nofile={args.limit}:{args.hard or args.limit}", "--"]
        pid = stack.enter_context(common.service_process(settings, work, wrapper))
        for port in ports.values():
            common.wait_for(lambda port=port: _answers(port), 60, f"port {port}", poll=0.1)
        yield Target(pid, ports, work / "data" / "ipcam_analysis.log")


def camera_rounds(
    target: Target, snapshot: bytes, seconds: float, *, until_all_pass: bool = False
) -> dict[str, dict[str, int]]:
    """The camera's uploads each way, round after round for `seconds` (or until one round
    passes every way): per way, how many were accepted and how many were not."""
    tally: dict[str, Counter[str]] = {kind: Counter() for kind in SOURCES}
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        passed = True
        for kind, port_kind in SOURCES.items():
            address = (common.LOOPBACK, target.ports[port_kind])
            try:
                common.UPLOADERS[kind](address, CAMERA, snapshot, f"r{rounds}-{kind}.jpg")
                tally[kind]["accepted"] += 1
            except Exception:  # any failure is what the camera saw: not accepted
                tally[kind]["refused"] += 1
                passed = False
        if until_all_pass and passed:
            break
    return {kind: dict(counts) for kind, counts in tally.items()}


@contextmanager
def idle_flood(target: Target, args: argparse.Namespace) -> Iterator[None]:
    with ExitStack() as held:
        for number in range(args.connections):
            source = FLOOD_ADDRESSES[number % len(FLOOD_ADDRESSES)]
            with suppress(OSError):  # past the listen backlog, a connection may not complete
                held.enter_context(_connected(source, target.ports["http"]))
        yield


@contextmanager
def one_address(target: Target, args: argparse.Namespace) -> Iterator[None]:
    stop = threading.Event()
    with ExitStack() as held:
        for number in range(70):
            with suppress(OSError):
                sock = held.enter_context(_connected(ATTACKER, target.ports["http"]))
                if number % 2:
                    sock.sendall(HEADER_START)
        guessers = [
            threading.Thread(target=_guess, args=(target.ports["http"], stop), daemon=True)
            for _ in range(20)
        ]
        for guesser in guessers:
            guesser.start()
        yield
        stop.set()
    for guesser in guessers:
        guesser.join(60)


def _guess(port: int, stop: threading.Event) -> None:
    """Wrong passwords from ATTACKER, one after another on new connections, until `stop`."""
    import httpx

    transport = httpx.HTTPTransport(local_address=ATTACKER)
    with httpx.Client(transport=transport, timeout=120) as client:
        while not stop.is_set():
            with suppress(httpx.HTTPError):
                client.post(
                    f"http://127.0.0.1:{port}/upload", content=b"x", auth=("cam01", "guess")
                )


ATTACKS: dict[str, Callable[[Target, argparse.Namespace], Any]] = {
    "idle-flood": idle_flood,
    "one-address": one_address,
}


def _connected(source: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(2)
    try:
        sock.bind((source, 0))
        sock.connect((common.LOOPBACK, port))
    except OSError:
        sock.close()
        raise
    return sock


def _answers(port: int) -> bool:
    with suppress(OSError), socket.create_connection((common.LOOPBACK, port), timeout=1):
        return True
    return False


def _open_files(pid: int) -> int:
    try:
        return len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return 0


def _summary(tally: dict[str, dict[str, int]]) -> str:
    return " ".join(
        f"{kind} {counts.get('accepted', 0)}/{sum(counts.values())}"
        for kind, counts in tally.items()
    )


if __name__ == "__main__":
    sys.exit(main())
